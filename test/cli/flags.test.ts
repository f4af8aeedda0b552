import { strict as assert } from 'assert';
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { daemonArgs, parseFlags, ShimFlags, UsageError } from '../../shim/cli/flags';
import { groupingKey, socketPath } from '../../shim/cli/start';
import { defaultSpec, makeTempDir, removeTempDir } from '../fakes/fixtures';

const EMPTY: ShimFlags = {
  namespace: '',
  id: '',
  address: '',
  publishBinary: '',
  bundle: '',
  socket: '',
  protocol: '',
  debug: false,
  version: false,
  info: false,
  action: '',
};

describe('cli: parseFlags', () => {
  it('parses the start command line containerd writes', () => {
    const argv = [
      '-namespace', 'default',
      '-address', '/run/containerd/containerd.sock',
      '-publish-binary', '/usr/bin/containerd',
      '-id', 'abc',
      '-debug',
      'start',
    ];
    assert.deepEqual(parseFlags(argv), {
      ...EMPTY,
      namespace: 'default',
      address: '/run/containerd/containerd.sock',
      publishBinary: '/usr/bin/containerd',
      id: 'abc',
      debug: true,
      action: 'start',
    });
  });

  it('parses the delete command line of containerd 1.7/2.x, with -bundle', () => {
    const argv = [
      '-id', 'abc',
      '-namespace', 'k8s.io',
      '-address', '/run/containerd/containerd.sock',
      '-publish-binary', '/usr/bin/containerd',
      '-bundle', '/run/containerd/io.containerd.runtime.v2.task/k8s.io/abc',
      'delete',
    ];
    const f = parseFlags(argv);
    assert.equal(f.action, 'delete');
    assert.equal(f.bundle, '/run/containerd/io.containerd.runtime.v2.task/k8s.io/abc');
    assert.equal(f.namespace, 'k8s.io');
    assert.equal(f.debug, false);
  });

  it('accepts --flag=value', () => {
    assert.deepEqual(parseFlags(['--id=x', 'delete']), { ...EMPTY, id: 'x', action: 'delete' });
    assert.equal(parseFlags(['-namespace=ns', '--address', '/a', 'start']).namespace, 'ns');
    // A value may itself contain '='.
    assert.equal(parseFlags(['-address=unix:///x?a=b', 'start']).address, 'unix:///x?a=b');
  });

  it('parses -v and --version without action', () => {
    assert.deepEqual(parseFlags(['-v']), { ...EMPTY, version: true });
    assert.equal(parseFlags(['--version']).version, true);
    assert.equal(parseFlags(['-info']).info, true);
  });

  it('takes Go bool syntax -flag=false / -flag=true', () => {
    assert.equal(parseFlags(['-debug=false', 'start']).debug, false);
    assert.equal(parseFlags(['-debug=true', 'start']).debug, true);
  });

  it('stops at the first non-flag word, like Go\'s flag package', () => {
    const f = parseFlags(['-id', 'a', 'start', '-id', 'b', '-bogus']);
    assert.equal(f.id, 'a');
    assert.equal(f.action, 'start');
    assert.equal(parseFlags(['-id', 'a', '--', 'delete']).action, 'delete');
    assert.equal(parseFlags([]).action, '');
  });

  it('takes the next word as a value even when it starts with a dash', () => {
    assert.equal(parseFlags(['-id', '-weird', 'start']).id, '-weird');
  });

  it('rejects an unknown flag with a UsageError naming it', () => {
    assert.throws(() => parseFlags(['-namespace', 'x', '-bogus', 'start']), (err: unknown) => {
      assert.ok(err instanceof UsageError);
      assert.match((err as Error).message, /flag provided but not defined: -bogus/);
      return true;
    });
    assert.throws(() => parseFlags(['--bogus=1']), UsageError);
  });

  it('rejects a value flag at the end without a value', () => {
    assert.throws(() => parseFlags(['-id']), (err: unknown) => err instanceof UsageError && /needs an argument: -id/.test((err as Error).message));
  });
});

describe('cli: daemonArgs', () => {
  const SOCK = '/run/containerd/s/0123abcd';

  it('round-trips through parseFlags with action serve', () => {
    const start = parseFlags([
      '-namespace', 'default',
      '-address', '/run/containerd/containerd.sock',
      '-publish-binary', '/usr/bin/containerd',
      '-id', 'abc',
      '-debug',
      'start',
    ]);
    const args = daemonArgs(start, SOCK);
    assert.equal(args[args.length - 1], 'serve');
    assert.deepEqual(parseFlags(args), { ...start, socket: SOCK, action: 'serve' });
  });

  it('round-trips without optional flags', () => {
    const start = parseFlags(['-namespace', 'k8s.io', '-address', '/run/containerd/containerd.sock', '-id', 'x', 'start']);
    const args = daemonArgs(start, SOCK);
    assert.ok(!args.includes('-debug'));
    assert.ok(!args.includes('-publish-binary'));
    assert.deepEqual(parseFlags(args), { ...start, socket: SOCK, action: 'serve' });
  });

  it('passes a gRPC transport on, and leaves the ttrpc default implicit', () => {
    const start = parseFlags(['-namespace', 'k8s.io', '-address', '/run/containerd/containerd.sock', '-id', 'x', 'start']);
    assert.ok(!daemonArgs(start, SOCK, 'ttrpc').includes('-protocol'));
    assert.deepEqual(parseFlags(daemonArgs(start, SOCK, 'grpc')), { ...start, socket: SOCK, protocol: 'grpc', action: 'serve' });
  });

  it('keeps values that look like flags', () => {
    const start: ShimFlags = { ...EMPTY, namespace: 'ns', id: 'id', address: '-addr', publishBinary: '-bin', action: 'start' };
    assert.deepEqual(parseFlags(daemonArgs(start, SOCK)), { ...start, socket: SOCK, action: 'serve' });
  });
});

describe('cli: groupingKey and socketPath', () => {
  let tmp: string;

  beforeEach(() => {
    tmp = makeTempDir('burrow-cli-');
  });

  afterEach(() => removeTempDir(tmp));

  function bundleWith(annotations?: Record<string, string>): string {
    const spec = defaultSpec();
    if (annotations) spec.annotations = annotations;
    fs.writeFileSync(path.join(tmp, 'config.json'), JSON.stringify(spec));
    return tmp;
  }

  it('groups a pod\'s containers by the CRI sandbox id', () => {
    const bundle = bundleWith({ 'io.kubernetes.cri.sandbox-id': 'pod-sandbox-1', 'io.kubernetes.cri.container-type': 'container' });
    assert.equal(groupingKey(bundle, 'app-container'), 'pod-sandbox-1');
  });

  it('prefers the runc group annotation', () => {
    const bundle = bundleWith({ 'io.kubernetes.cri.sandbox-id': 'sb', 'io.containerd.runc.v2.group': 'grp' });
    assert.equal(groupingKey(bundle, 'c'), 'grp');
  });

  it('uses the container id without a grouping annotation, or without a readable spec', () => {
    assert.equal(groupingKey(bundleWith(), 'c1'), 'c1');
    assert.equal(groupingKey(bundleWith({ 'io.kubernetes.cri.sandbox-id': '' }), 'c1'), 'c1');
    fs.writeFileSync(path.join(tmp, 'config.json'), '{not json');
    assert.equal(groupingKey(tmp, 'c2'), 'c2');
    assert.equal(groupingKey(path.join(tmp, 'missing'), 'c3'), 'c3');
  });

  it('puts the socket at /run/containerd/s/<sha256 of address/namespace/key>', () => {
    const flags = { ...EMPTY, address: '/run/containerd/containerd.sock', namespace: 'default' };
    const sock = socketPath(flags, 'abc');
    const hash = createHash('sha256').update('/run/containerd/containerd.sock/default/abc').digest('hex');
    assert.equal(sock, `/run/containerd/s/${hash}`);
    assert.match(path.basename(sock), /^[0-9a-f]{64}$/);
    assert.ok(Buffer.byteLength(`unix://${sock}`) < 108, 'fits sun_path even as a unix:// address');
  });

  it('gives each address, namespace and group a socket of its own', () => {
    const base = { ...EMPTY, address: '/run/containerd/containerd.sock', namespace: 'default' };
    const socks = new Set([
      socketPath(base, 'a'),
      socketPath(base, 'b'),
      socketPath({ ...base, namespace: 'k8s.io' }, 'a'),
      socketPath({ ...base, address: '/run/other/containerd.sock' }, 'a'),
    ]);
    assert.equal(socks.size, 4);
    assert.equal(socketPath(base, 'a'), socketPath({ ...base, id: 'whatever' }, 'a'), 'the id only matters as the key');
  });
});
