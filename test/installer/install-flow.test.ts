// install() and uninstall() through every step on a containerd 2.x layout (config version 3,
// drop-in, imports), where this machine has no containerd 2 to run: `containerd --version` is a
// script printing a 2.1 version line, and CRI Status is answered by a gRPC server on a unix
// socket that reads the config files the way containerd 2.x does at each (re)start: the main
// file, then every file its `imports` patterns name, runtimes merged key by key. The real
// containerd 1.6 path is covered end to end in e2e/install.test.ts.
import { strict as assert } from 'assert';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as protobuf from 'protobufjs';
import { parse } from 'smol-toml';
import { DEFAULT_REGISTRATION } from '../../installer/containerd-config';
import { InstallerError } from '../../installer/errors';
import { InstallerOptions, install, uninstall } from '../../installer/install';
import { readState } from '../../installer/install-state';

const FIXTURES = path.resolve(__dirname, '..', '..', '..', 'test', 'installer', 'fixtures');

const PROTO = `
syntax = "proto3";
package runtime.v1;
service RuntimeService { rpc Status(StatusRequest) returns (StatusResponse) {} }
message StatusRequest { bool verbose = 1; }
message RuntimeCondition { string type = 1; bool status = 2; string reason = 3; string message = 4; }
message RuntimeStatus { repeated RuntimeCondition conditions = 1; }
message RuntimeHandler { string name = 1; }
message StatusResponse { RuntimeStatus status = 1; map<string, string> info = 2; repeated RuntimeHandler runtime_handlers = 3; }
`;

/** Go filepath.Glob for the patterns these tests use: `*` within one path element. */
function glob(pattern: string): string[] {
  const dir = path.dirname(pattern);
  const re = new RegExp(`^${path.basename(pattern).replace(/[.+^${}()|\\]/g, '\\$&').replace(/\*/g, '[^/]*')}$`);
  try {
    return fs.readdirSync(dir).filter((n) => re.test(n)).sort().map((n) => path.join(dir, n));
  } catch {
    return [];
  }
}

/** Runtime handler names containerd 2.x would load from `main` and its imports. */
function loadHandlers(main: string): string[] {
  const files = [main];
  const names = new Set<string>();
  for (let i = 0; i < files.length; i++) {
    const doc = parse(fs.readFileSync(files[i], 'utf8')) as Record<string, any>;
    const plugin = doc.version === 3 ? 'io.containerd.cri.v1.runtime' : 'io.containerd.grpc.v1.cri';
    for (const n of Object.keys(doc.plugins?.[plugin]?.containerd?.runtimes ?? {})) names.add(n);
    for (const p of (doc.imports ?? []) as string[]) {
      for (const f of glob(path.isAbsolute(p) ? p : path.join(path.dirname(files[i]), p))) if (!files.includes(f)) files.push(f);
    }
  }
  return [...names].sort();
}

class FakeCri {
  handlers: string[] = [];
  restarts = 0;
  private server = new grpc.Server();

  constructor(private readonly configPath: string, readonly socket: string) {}

  async start(): Promise<void> {
    this.handlers = loadHandlers(this.configPath);
    const def = protoLoader.fromJSON(protobuf.parse(PROTO, { keepCase: true }).root.toJSON(), { keepCase: true });
    const pkg = grpc.loadPackageDefinition(def) as unknown as { runtime: { v1: { RuntimeService: grpc.ServiceClientConstructor } } };
    this.server.addService(pkg.runtime.v1.RuntimeService.service, {
      Status: (_call: unknown, cb: grpc.sendUnaryData<unknown>) =>
        cb(null, {
          status: { conditions: [{ type: 'RuntimeReady', status: true }] },
          info: {},
          runtime_handlers: this.handlers.map((name) => ({ name })),
        }),
    });
    await new Promise<void>((resolve, reject) =>
      this.server.bindAsync(`unix://${this.socket}`, grpc.ServerCredentials.createInsecure(), (e) => (e ? reject(e) : resolve())),
    );
  }

  /** What a restart does to the CRI plugin: the config files read again. */
  restart = async (): Promise<void> => {
    this.restarts++;
    this.handlers = loadHandlers(this.configPath);
  };

  stop(): Promise<void> {
    return new Promise((resolve) => this.server.tryShutdown(() => resolve()));
  }
}

describe('install and uninstall on a containerd 2.x layout (config version 3, drop-in)', function () {
  this.timeout(30_000);
  let dir: string;
  let etc: string;
  let config: string;
  let cri: FakeCri;
  const logs: string[] = [];

  const options = (over: Partial<InstallerOptions> = {}): InstallerOptions => ({
    payloadDir: path.join(dir, 'payload'),
    installDir: path.join(dir, 'opt', 'burrow'),
    shimLinkDir: path.join(dir, 'usr-local-bin'),
    configPath: config,
    registration: DEFAULT_REGISTRATION,
    hostExec: [],
    containerdBinary: path.join(dir, 'containerd'),
    restart: cri.restart,
    criSocket: cri.socket,
    waitTimeoutMs: 5_000,
    nodeLabel: { key: 'burrow.dev/runtime', value: 'installed' },
    log: (m) => logs.push(m),
    ...over,
  });

  beforeEach(async function () {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'burrow-install-'));
    etc = path.join(dir, 'etc', 'containerd');
    fs.mkdirSync(etc, { recursive: true });
    config = path.join(etc, 'config.toml');
    fs.copyFileSync(path.join(FIXTURES, 'containerd-2.1-v3.toml'), config);
    fs.writeFileSync(path.join(dir, 'containerd'), '#!/bin/sh\necho "containerd github.com/containerd/containerd/v2 v2.1.4 75cb2b7193e4e490e9fbdc236c0e811ccaba3376"\n', { mode: 0o755 });
    // A payload: what install copies and the shim it runs with -v.
    const payload = path.join(dir, 'payload');
    fs.mkdirSync(path.join(payload, 'bin'), { recursive: true });
    fs.writeFileSync(path.join(payload, 'bin', 'containerd-shim-burrow-v2'), '#!/bin/sh\necho "containerd-shim-burrow-v2: test payload"\n', { mode: 0o755 });
    fs.writeFileSync(path.join(payload, 'bin', 'burrow-host-check'), '#!/bin/sh\necho "host check: test payload"\n', { mode: 0o755 });
    fs.writeFileSync(path.join(payload, 'manifest.json'), JSON.stringify({ id: 'a'.repeat(64), burrowVersion: '0', nodeVersion: '0', arch: 'x64', files: {} }));
    cri = new FakeCri(config, path.join(dir, 'containerd.sock'));
    await cri.start();
  });

  afterEach(async function () {
    await cri.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('writes the drop-in and the import, restarts once, is idempotent, and uninstall restores byte for byte', async function () {
    const original = fs.readFileSync(config);
    assert.deepEqual(cri.handlers, ['runc']);

    const r = await install(options());
    assert.deepEqual([r.configChanged, r.restarted, r.containerd.raw], [true, true, 'v2.1.4']);
    assert.deepEqual(cri.handlers, ['burrow', 'runc']);
    const drop = path.join(etc, 'conf.d', 'burrow.toml');
    assert.match(fs.readFileSync(drop, 'utf8'), /^version = 3\n\n\[plugins\."io\.containerd\.cri\.v1\.runtime"\.containerd\.runtimes\.burrow\]/);
    assert.deepEqual((parse(fs.readFileSync(config, 'utf8')) as { imports: string[] }).imports, [drop]);
    assert.ok(fs.readFileSync(`${config}.burrow-backup`).equals(original));
    assert.ok(!fs.existsSync(`${drop}.burrow-backup`), 'a file the installer created has no backup');
    assert.equal(fs.readlinkSync(path.join(dir, 'usr-local-bin', 'containerd-shim-burrow-v2')), path.join(dir, 'opt', 'burrow', 'current', 'bin', 'containerd-shim-burrow-v2'));
    assert.ok(logs.some((l) => l.includes('shim runs on this host: containerd-shim-burrow-v2: test payload')));
    assert.ok(logs.includes('host check: test payload'));
    const st = readState(path.join(dir, 'opt', 'burrow'))!;
    assert.deepEqual(st.createdDirs, [path.join(etc, 'conf.d')]);
    assert.equal(st.addedImport, drop);

    const mainAfter = fs.readFileSync(config);
    const again = await install(options());
    assert.deepEqual([again.configChanged, again.restarted], [false, false]);
    assert.equal(cri.restarts, 1);
    assert.ok(fs.readFileSync(config).equals(mainAfter));

    const u = await uninstall(options());
    assert.deepEqual([u.configChanged, u.restarted], [true, true]);
    assert.ok(fs.readFileSync(config).equals(original), 'main config not restored byte for byte');
    assert.ok(!fs.existsSync(path.join(etc, 'conf.d')), 'the conf.d the installer created is still there');
    assert.ok(!fs.existsSync(`${config}.burrow-backup`));
    assert.ok(!fs.existsSync(path.join(dir, 'usr-local-bin', 'containerd-shim-burrow-v2')));
    assert.ok(!fs.existsSync(path.join(dir, 'opt', 'burrow')));
    assert.deepEqual(cri.handlers, ['runc']);
    assert.deepEqual(fs.readdirSync(etc), ['config.toml']);
  });

  it('with an import pattern that covers conf.d, the main config is never written', async function () {
    const text = `imports = ["${etc}/conf.d/*.toml"]\n${fs.readFileSync(config, 'utf8').replace(/^imports = \[\]$/m, '')}`;
    fs.writeFileSync(config, text);
    fs.mkdirSync(path.join(etc, 'conf.d'));
    const r = await install(options());
    assert.equal(r.configChanged, true);
    assert.equal(fs.readFileSync(config, 'utf8'), text);
    assert.ok(!fs.existsSync(`${config}.burrow-backup`));
    assert.deepEqual(cri.handlers, ['burrow', 'runc']);
    await uninstall(options());
    assert.equal(fs.readFileSync(config, 'utf8'), text);
    assert.deepEqual(fs.readdirSync(path.join(etc, 'conf.d')), [], 'the pre-existing conf.d must stay, empty');
    assert.deepEqual(cri.handlers, ['runc']);
  });

  it('uninstall after the operator edited the main config keeps their edit and removes only our import', async function () {
    await install(options());
    const edited = `${fs.readFileSync(config, 'utf8')}\n[debug]\nlevel = "info"\n`;
    fs.writeFileSync(config, edited);
    await uninstall(options());
    const doc = parse(fs.readFileSync(config, 'utf8')) as { imports?: unknown; debug?: { level: string } };
    assert.equal(doc.imports, undefined);
    assert.equal(doc.debug?.level, 'info');
    assert.ok(logs.some((l) => /was edited since install: removed only handler "burrow"/.test(l)));
    assert.deepEqual(cri.handlers, ['runc']);
  });

  it('refuses a corrupt config before touching anything', async function () {
    const bad = Buffer.from("version = 3\n[plugins.'io.containerd.cri.v1.runtime'\n");
    fs.writeFileSync(config, bad);
    await assert.rejects(install(options()), (e: Error) => e instanceof InstallerError && e.message.includes(`${config} is not valid TOML`));
    assert.ok(fs.readFileSync(config).equals(bad));
    assert.ok(!fs.existsSync(path.join(dir, 'opt')));
    assert.ok(!fs.existsSync(path.join(dir, 'usr-local-bin')));
    assert.ok(!fs.existsSync(path.join(etc, 'conf.d')));
    assert.equal(cri.restarts, 0);
  });

  it('never replaces a shim on PATH that is not its own link', async function () {
    fs.mkdirSync(path.join(dir, 'usr-local-bin'));
    fs.writeFileSync(path.join(dir, 'usr-local-bin', 'containerd-shim-burrow-v2'), 'someone else\'s');
    await assert.rejects(install(options()), /exists and is not the installer's link/);
    assert.equal(fs.readFileSync(path.join(dir, 'usr-local-bin', 'containerd-shim-burrow-v2'), 'utf8'), 'someone else\'s');
    assert.equal(fs.readFileSync(config, 'utf8'), fs.readFileSync(path.join(FIXTURES, 'containerd-2.1-v3.toml'), 'utf8'));
    // What it did copy before refusing is recorded, and uninstall takes it away.
    await uninstall(options());
    assert.ok(!fs.existsSync(path.join(dir, 'opt', 'burrow')));
  });

  it('fails when containerd does not report the handler after the restart, and says what it saw', async function () {
    const noop = async (): Promise<void> => undefined; // a restart that does not make containerd reload
    await assert.rejects(install(options({ restart: noop, waitTimeoutMs: 1_500 })), /did not report runtime handler "burrow" within 1500 ms \(last: runtime ready: true, handlers: runc\)/);
    // The half-done install is still fully reversible.
    await uninstall(options({ restart: cri.restart }));
    assert.ok(fs.readFileSync(config).equals(fs.readFileSync(path.join(FIXTURES, 'containerd-2.1-v3.toml'))));
  });
});
