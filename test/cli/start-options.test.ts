import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { BootstrapError, grpcShimVersion, isShimSandboxBundle, parseContainerdVersion, startOutput } from '../../shim/cli/bootstrap-output';
import { OptionsError, parseOptionsToml, parseStartInput, protocolFromOptions } from '../../shim/cli/start-options';
import { encodeMessage } from '../../shim/protocol/proto-registry';
import { readFields, WireFormatError } from '../../shim/protocol/wire-reader';
import { makeTempDir, removeTempDir } from '../fakes/fixtures';

const ID = 'c0ffee';

function any(typeUrl: string, typeName: string, msg: object): Buffer {
  return Buffer.from(encodeMessage('google.protobuf.Any', { type_url: typeUrl, value: encodeMessage(typeName, msg) }));
}

const runtimeOptions = (msg: object) => ({ typeUrl: 'runtimeoptions.v1.Options', value: Buffer.from(encodeMessage('runtimeoptions.v1.Options', msg)) });

describe('cli: what start reads on stdin', () => {
  it('no bytes: no options', () => {
    assert.deepEqual(parseStartInput(Buffer.alloc(0), ID), {});
  });

  it('1.6-2.2: the options Any itself', () => {
    const bytes = any('runtimeoptions.v1.Options', 'runtimeoptions.v1.Options', { config_body: 'Protocol = "grpc"' });
    const input = parseStartInput(bytes, ID);
    assert.equal(input.bootstrap, undefined);
    assert.equal(input.options?.typeUrl, 'runtimeoptions.v1.Options');
    assert.equal(protocolFromOptions(input.options), 'grpc');
  });

  it('2.3+: BootstrapParams whose instance_id is ours, options in the first extension, socket_dir', () => {
    const bytes = Buffer.from(
      encodeMessage('containerd.runtime.bootstrap.v1.BootstrapParams', {
        instance_id: ID,
        namespace: 'k8s.io',
        log_level: -8,
        containerd_version: '2.3.4',
        extensions: [{ value: { type_url: 'runtimeoptions.v1.Options', value: encodeMessage('runtimeoptions.v1.Options', { config_body: 'protocol = "ttrpc"' }) } }],
        socket_dir: '/run/other/s',
      }),
    );
    const input = parseStartInput(bytes, ID);
    assert.deepEqual(input.bootstrap, { containerdVersion: '2.3.4', socketDir: '/run/other/s' });
    assert.equal(protocolFromOptions(input.options), 'ttrpc');
  });

  it('an Any is never taken for BootstrapParams, even though both start with a string field 1', () => {
    // type_url "c0ffee" would be instance_id c0ffee: the id decides, so the same bytes for
    // another container id are an Any.
    const bytes = any('runtimeoptions.v1.Options', 'runtimeoptions.v1.Options', {});
    assert.equal(parseStartInput(bytes, 'runtimeoptions.v1.Options').bootstrap !== undefined, true);
    assert.equal(parseStartInput(bytes, ID).bootstrap, undefined);
  });

  it('garbage is refused with what it is', () => {
    assert.throws(() => parseStartInput(Buffer.from([0x0a, 0x7f]), ID), OptionsError);
    assert.throws(() => readFields(Buffer.from([0x0b])), WireFormatError);
    assert.throws(() => readFields(Buffer.from([0x08])), /truncated varint/);
  });
});

describe('cli: Burrow runtime options (Protocol)', () => {
  let tmp: string;
  beforeEach(() => (tmp = makeTempDir('burrow-opts-')));
  afterEach(() => removeTempDir(tmp));

  it('ttrpc without options, with another runtime\'s options, or without the key', () => {
    assert.equal(protocolFromOptions(undefined), 'ttrpc');
    assert.equal(protocolFromOptions({ typeUrl: 'containerd.runc.v1.Options', value: Buffer.alloc(0) }), 'ttrpc');
    assert.equal(protocolFromOptions(runtimeOptions({ config_body: '# nothing\n' })), 'ttrpc');
  });

  it('reads config_body (CRI) and config_path (ctr --runtime-config-path), keys without regard to case', () => {
    assert.equal(protocolFromOptions(runtimeOptions({ config_body: "Protocol = 'GRPC' # comment\n" })), 'grpc');
    const file = path.join(tmp, 'burrow.toml');
    fs.writeFileSync(file, '\n"protocol" = "grpc"\n');
    assert.equal(protocolFromOptions(runtimeOptions({ config_path: file })), 'grpc');
    assert.equal(protocolFromOptions({ typeUrl: 'type.googleapis.com/runtimeoptions.v1.Options', value: runtimeOptions({ config_path: file }).value }), 'grpc');
  });

  it('refuses what it cannot honour, by name', () => {
    assert.throws(() => protocolFromOptions(runtimeOptions({ config_path: path.join(tmp, 'absent.toml') })), /runtime options file ".*absent.toml": ENOENT/);
    assert.throws(() => protocolFromOptions(runtimeOptions({ config_body: 'Protocol = "http"' })), /Protocol "http" is neither "ttrpc" nor "grpc"/);
    assert.throws(() => parseOptionsToml('SystemdCgroup = "true"', 'src'), /src line 1: unknown option SystemdCgroup/);
    assert.throws(() => parseOptionsToml('[options]\nProtocol = "grpc"', 'src'), /tables are not part/);
    assert.throws(() => parseOptionsToml('Protocol = grpc', 'src'), /not a string/);
    assert.throws(() => parseOptionsToml('just words', 'src'), /expected key = "value"/);
  });
});

describe('cli: what start prints', () => {
  it('ttrpc: the bare unix:// address every containerd reads', () => {
    assert.equal(startOutput('ttrpc', '/run/containerd/s/abc', 2), 'unix:///run/containerd/s/abc');
  });

  it('ttrpc under 2.x\'s shim sandboxer: version 3 JSON, so the pod\'s containers attach without start', () => {
    assert.ok(isShimSandboxBundle('/run/containerd/io.containerd.sandbox.controller.v1.shim/k8s.io/abc'));
    assert.ok(!isShimSandboxBundle('/run/containerd/io.containerd.runtime.v2.task/k8s.io/abc'));
    assert.deepEqual(JSON.parse(startOutput('ttrpc', '/run/containerd/s/abc', 3)), { version: 3, address: 'unix:///run/containerd/s/abc', protocol: 'ttrpc' });
  });

  it('gRPC: the bootstrap JSON with the plain socket path containerd net.Dials', () => {
    assert.deepEqual(JSON.parse(startOutput('grpc', '/run/containerd/s/abc', 3)), { version: 3, address: '/run/containerd/s/abc', protocol: 'grpc' });
  });

  it('gRPC version by containerd: 2 for 1.7, refused on 1.6 and 2.0-2.3, 3 beyond and without containerd', () => {
    assert.equal(grpcShimVersion(parseContainerdVersion('containerd github.com/containerd/containerd 1.7.24~ds1 1.7.24~ds1-6')), 2);
    assert.equal(grpcShimVersion(undefined), 3);
    assert.equal(grpcShimVersion(parseContainerdVersion('2.4.0')), 3);
    assert.throws(() => grpcShimVersion(parseContainerdVersion('containerd github.com/containerd/containerd/v2 2.1.9+unknown')), BootstrapError);
    assert.throws(() => grpcShimVersion(parseContainerdVersion('v2.0.0')), /containerd 2\.0/);
    assert.throws(() => grpcShimVersion(parseContainerdVersion('1.6.20')), /needs containerd 1\.7 or newer/);
    assert.equal(parseContainerdVersion('no version here'), undefined);
  });
});
