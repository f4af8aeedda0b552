// The shim binary over both transports, without containerd: `start` with runtime options
// asking for gRPC (Protocol = "grpc", as CRI's options table or ctr --runtime-config-path
// deliver them) prints the bootstrap JSON and serves gRPC; without them it prints the bare
// address and serves ttrpc. The same script of every Task method (and the Sandbox service)
// runs over each, and the two transcripts must be identical: one implementation, two wires.
// Also: containerd 2.3's BootstrapParams on stdin (socket_dir, options in extensions).

import * as grpc from '@grpc/grpc-js';
import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { decodeMessage, encodeMessage, lookupService } from '../shim/protocol/proto-registry';
import { Code, RpcError } from '../shim/protocol/status';
import { TtrpcClient } from '../shim/protocol/ttrpc-client';
import { criNode, podCase } from './cri/node';
import {
  assertNoLeaks,
  buildDir,
  BUSYBOX_REF,
  cgroupHierarchies,
  containerdForSuite,
  CRI_NAMESPACE,
  defaultSpec,
  freshBusyboxRootfs,
  matrixVersions,
  repoRoot,
  Result,
  run,
  sleep,
  snapshotHost,
} from './harness';

const SHIM = path.join(repoRoot(), 'bin', 'containerd-shim-burrow-v2');
const BASE = '/run/burrow-e2e/grpc-direct';
const TASK_V2 = 'containerd.task.v2.Task';
const TASK_V3 = 'containerd.task.v3.Task';
const SANDBOX = 'containerd.runtime.sandbox.v1.Sandbox';
const NS = 'grpcdirect';
const BURROW = 'io.containerd.burrow.v2';
const CGROUP_PARENT = 'burrow-e2e-grpc-direct';

type Transport = 'ttrpc' | 'grpc';

/** runtimeoptions.v1.Options{config_body} in an Any: what CRI sends for a non-runc runtime's options table. */
function runtimeOptionsAny(toml: string): Buffer {
  const options = encodeMessage('runtimeoptions.v1.Options', { config_body: toml });
  return Buffer.from(encodeMessage('google.protobuf.Any', { type_url: 'runtimeoptions.v1.Options', value: options }));
}

function types(service: string, method: string): { req: string; res: string } {
  const m = lookupService(service === TASK_V3 ? TASK_V2 : service).methods[method];
  m.resolve();
  return { req: m.resolvedRequestType!.fullName.slice(1), res: m.resolvedResponseType!.fullName.slice(1) };
}

interface Caller {
  call(service: string, method: string, req: object): Promise<Record<string, any>>;
  close(): void;
}

class TtrpcCaller implements Caller {
  constructor(private readonly client: TtrpcClient) {}
  async call(service: string, method: string, req: object): Promise<Record<string, any>> {
    const t = types(service, method);
    const bytes = await this.client.call(service, method, encodeMessage(t.req, req), {
      metadata: { 'containerd-namespace-ttrpc': NS },
      timeoutMs: 20_000,
    });
    return decodeMessage(t.res, bytes);
  }
  close(): void {
    this.client.close();
  }
}

class GrpcCaller implements Caller {
  private readonly client: grpc.Client;
  constructor(socket: string) {
    this.client = new grpc.Client(`unix://${socket}`, grpc.credentials.createInsecure());
  }
  call(service: string, method: string, req: object): Promise<Record<string, any>> {
    const t = types(service, method);
    const md = new grpc.Metadata();
    md.set('containerd-namespace', NS);
    return new Promise((resolve, reject) => {
      this.client.makeUnaryRequest(
        `/${service}/${method}`,
        (v: object) => Buffer.from(encodeMessage(t.req, v)),
        (b: Buffer) => decodeMessage(t.res, b),
        req,
        md,
        { deadline: Date.now() + 20_000 },
        (err: grpc.ServiceError | null, value?: Record<string, any>) => {
          if (err) reject(new RpcError(err.code as unknown as Code, err.details));
          else resolve(value ?? {});
        },
      );
    });
  }
  close(): void {
    this.client.close();
  }
}

describe('shim binary over ttrpc and gRPC: same handlers, same answers', function () {
  this.timeout(120_000);
  let rootfs: string;
  const env = { TTRPC_ADDRESS: path.join(BASE, 'events.sock'), BURROW_ROOT: path.join(BASE, 'state') };
  const shimFlags = (id: string) => ['-namespace', NS, '-address', path.join(BASE, 'containerd.sock'), '-id', id];

  function bundle(id: string): string {
    const dir = path.join(BASE, 'bundles', id);
    fs.rmSync(dir, { recursive: true, force: true });
    fs.mkdirSync(dir, { recursive: true });
    const spec = defaultSpec(rootfs);
    spec.process.args = ['sleep', '100'];
    spec.linux.cgroupsPath = `/${CGROUP_PARENT}/${id}`;
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(spec));
    return dir;
  }

  async function start(id: string, dir: string, stdin?: Buffer) {
    return run(SHIM, [...shimFlags(id), 'start'], { cwd: dir, env, timeoutMs: 20_000, input: stdin });
  }

  async function waitGone(sock: string): Promise<void> {
    for (let i = 0; i < 50 && fs.existsSync(sock); i++) await sleep(100);
    assert.ok(!fs.existsSync(sock), `shim socket ${sock} still exists after Shutdown`);
  }

  /** Runs every Task method (and the Sandbox service) once; returns what each answered, pids and times abstracted. */
  async function transcript(c: Caller, id: string, dir: string): Promise<unknown[]> {
    const out: unknown[] = [];
    const pids = new Map<number, string>();
    const norm = (v: unknown, key = ''): unknown => {
      if (Array.isArray(v)) return v.map((x) => norm(x));
      if (v && typeof v === 'object' && !(v instanceof Uint8Array)) {
        const o = v as Record<string, unknown>;
        if ('seconds' in o && 'nanos' in o) return Number(o.seconds) === -62135596800 ? 'ZERO_TIME' : Number(o.seconds) > 0 ? 'TIME' : o;
        return Object.fromEntries(Object.entries(o).map(([k, x]) => [k, norm(x, k)]));
      }
      if ((key === 'pid' || key === 'task_pid' || key === 'shim_pid') && typeof v === 'number' && v > 0) {
        if (!pids.has(v)) pids.set(v, `PID${pids.size + 1}`);
        return pids.get(v);
      }
      return v instanceof Uint8Array ? `bytes:${v.length}` : v;
    };
    const step = async (service: string, method: string, req: object, keep?: (r: Record<string, any>) => unknown) => {
      try {
        const r = await c.call(service, method, req);
        out.push([method, 'ok', norm(keep ? keep(r) : r)]);
        return r;
      } catch (err) {
        assert.ok(err instanceof RpcError, `${method}: ${String(err)}`);
        out.push([method, Code[err.code], err.message]);
        return undefined;
      }
    };
    const execSpec = (args: string[]) => ({
      type_url: 'types.containerd.io/opencontainers/runtime-spec/1/Process',
      value: Buffer.from(JSON.stringify({ args, cwd: '/', user: { uid: 0, gid: 0 }, env: ['PATH=/bin'] })),
    });
    await step(TASK_V3, 'State', { id });
    await step(TASK_V3, 'Connect', { id });
    await step(TASK_V3, 'Create', { id, bundle: dir });
    await step(TASK_V3, 'Create', { id, bundle: dir });
    await step(TASK_V3, 'State', { id });
    await step(TASK_V3, 'Pids', { id });
    const waiting = c.call(TASK_V3, 'Wait', { id });
    await step(TASK_V3, 'Start', { id });
    await step(TASK_V2, 'State', { id });
    await step(TASK_V3, 'Exec', { id, exec_id: 'e1', spec: execSpec(['sh', '-c', 'exit 5']) });
    await step(TASK_V3, 'Start', { id, exec_id: 'e1' });
    await step(TASK_V3, 'Wait', { id, exec_id: 'e1' });
    await step(TASK_V3, 'Delete', { id, exec_id: 'e1' });
    await step(TASK_V3, 'Exec', { id, exec_id: 'bad', spec: { type_url: 'x', value: Buffer.from('{nope') } });
    await step(TASK_V3, 'ResizePty', { id, width: 80, height: 24 });
    await step(TASK_V3, 'CloseIO', { id, stdin: true });
    await step(TASK_V3, 'Update', {
      id,
      resources: { type_url: 'types.containerd.io/opencontainers/runtime-spec/1/LinuxResources', value: Buffer.from('{"pids":{"limit":50}}') },
    });
    await step(TASK_V3, 'Update', { id });
    await step(TASK_V3, 'Stats', { id }, (r) => r.stats?.type_url);
    await step(TASK_V3, 'Pause', { id });
    await step(TASK_V3, 'State', { id }, (r) => r.status);
    await step(TASK_V3, 'Resume', { id });
    await step(TASK_V3, 'Checkpoint', { id, path: '/tmp/x' });
    await step(TASK_V3, 'Kill', { id, signal: 9 });
    out.push(['Wait (from before Start)', norm(await waiting)]);
    await step(TASK_V3, 'Kill', { id, signal: 9 });
    await step(TASK_V3, 'Delete', { id });
    await step(TASK_V3, 'Delete', { id });
    await step(SANDBOX, 'PingSandbox', { sandbox_id: 'nope' });
    await step(SANDBOX, 'SandboxStatus', { sandbox_id: 'nope' });
    await step(SANDBOX, 'CreateSandbox', { sandbox_id: 'bad..id', bundle_path: dir });
    await step(TASK_V3, 'Shutdown', { id });
    return out;
  }

  before(async function () {
    rootfs = await freshBusyboxRootfs(BASE);
  });

  after(function () {
    fs.rmSync(BASE, { recursive: true, force: true });
    // The containers' cgroups went with Delete; their common parent is ours to remove.
    for (const h of cgroupHierarchies()) {
      const dir = path.join(h, CGROUP_PARENT);
      if (fs.existsSync(dir)) fs.rmdirSync(dir);
    }
  });

  const transcripts = new Map<Transport, unknown[]>();

  for (const transport of ['ttrpc', 'grpc'] as Transport[]) {
    it(`runs every Task method over ${transport}`, async function () {
      const id = 'cmp';
      const dir = bundle(id);
      const r = await start(id, dir, transport === 'grpc' ? runtimeOptionsAny('# chosen per runtime handler\nProtocol = "grpc"\n') : undefined);
      assert.equal(r.code, 0, r.stderr);
      let sock: string;
      let caller: Caller;
      if (transport === 'grpc') {
        // No -publish-binary: not run by containerd, so the 2.x form (version 3).
        const boot = JSON.parse(r.stdout) as { version: number; address: string; protocol: string };
        assert.equal(boot.version, 3);
        assert.equal(boot.protocol, 'grpc');
        assert.match(boot.address, /^\/run\/containerd\/s\/[0-9a-f]{64}$/);
        assert.equal(fs.readFileSync(path.join(dir, 'address'), 'utf8'), r.stdout);
        sock = boot.address;
        caller = new GrpcCaller(sock);
      } else {
        assert.match(r.stdout, /^unix:\/\/\/run\/containerd\/s\/[0-9a-f]{64}$/);
        sock = r.stdout.slice('unix://'.length);
        const client = new TtrpcClient(r.stdout);
        await client.connect();
        caller = new TtrpcCaller(client);
      }
      try {
        transcripts.set(transport, await transcript(caller, id, dir));
      } finally {
        caller.close();
      }
      await waitGone(sock);
      assert.deepEqual(fs.readdirSync(env.BURROW_ROOT), []);
    });
  }

  it('gives identical answers over both transports', function () {
    const t = transcripts.get('ttrpc');
    const g = transcripts.get('grpc');
    assert.ok(t && g, 'both transport cases must have run');
    assert.deepEqual(g, t);
    if (process.env.BURROW_E2E_SHOW_TRANSCRIPT) console.log(JSON.stringify(t));
    // The script is meaningful: it saw successes and each kind of refusal.
    const outcomes = new Set(t.map((x) => (x as unknown[])[1]));
    for (const o of ['ok', 'NotFound', 'AlreadyExists', 'InvalidArgument', 'Unimplemented']) assert.ok(outcomes.has(o), `no ${o} in ${JSON.stringify(t)}`);
  });

  it('reads containerd 2.3 BootstrapParams on stdin: socket_dir and the options in extensions', async function () {
    const id = 'boot';
    const dir = bundle(id);
    const socketDir = path.join(BASE, 's');
    const params = (version: string, toml: string) =>
      Buffer.from(
        encodeMessage('containerd.runtime.bootstrap.v1.BootstrapParams', {
          instance_id: id,
          namespace: NS,
          log_level: -4,
          containerd_version: version,
          containerd_ttrpc_address: env.TTRPC_ADDRESS,
          containerd_grpc_address: path.join(BASE, 'containerd.sock'),
          containerd_binary: '/usr/bin/containerd',
          extensions: [{ value: { type_url: 'runtimeoptions.v1.Options', value: encodeMessage('runtimeoptions.v1.Options', { config_body: toml }) } }],
          socket_dir: socketDir,
        }),
      );

    // 2.0-2.3 cannot keep a gRPC shim (see bootstrap-output.ts): refused with the reason.
    const refused = await start(id, dir, params('2.3.4', 'Protocol = "grpc"'));
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /gRPC mode does not work with containerd 2\.3.*use ttrpc/);
    assert.equal(refused.stdout, '');
    assert.ok(!fs.existsSync(path.join(dir, 'address')));

    // A typo in the options is refused by name, not silently ignored.
    const typo = await start(id, dir, params('2.3.4', 'Protocl = "grpc"'));
    assert.equal(typo.code, 1);
    assert.match(typo.stderr, /unknown option Protocl/);

    // ttrpc under the socket directory BootstrapParams names.
    const r = await start(id, dir, params('2.3.4', ''));
    assert.equal(r.code, 0, r.stderr);
    assert.ok(r.stdout.startsWith(`unix://${socketDir}/`), r.stdout);
    const client = new TtrpcClient(r.stdout);
    await client.connect();
    const caller = new TtrpcCaller(client);
    try {
      assert.ok((await caller.call(TASK_V3, 'Connect', { id })).shim_pid > 0);
      await caller.call(TASK_V3, 'Shutdown', { id });
    } finally {
      caller.close();
    }
    await waitGone(r.stdout.slice('unix://'.length));
  });

  it('refuses gRPC on containerd 1.6, whose shims speak ttrpc only', async function () {
    const id = 'old';
    const dir = bundle(id);
    const fake = path.join(BASE, 'containerd-1.6');
    fs.writeFileSync(fake, '#!/bin/sh\necho "containerd github.com/containerd/containerd 1.6.20~ds1 1.6.20~ds1-1+deb12u3"\n', { mode: 0o755 });
    const r = await run(SHIM, [...shimFlags(id), '-publish-binary', fake, 'start'], {
      cwd: dir,
      env,
      timeoutMs: 20_000,
      input: runtimeOptionsAny('Protocol = "grpc"'),
    });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /gRPC mode needs containerd 1\.7 or newer \(this is containerd 1\.6/);
  });
});

// `ctr run` with Burrow in gRPC mode (ctr --runtime-config-path hands containerd a
// runtimeoptions.v1.Options with the file's path). containerd 1.7 dials the shim with grpc-go
// and keeps it, across a restart too (it re-reads the JSON in the bundle's `address`); 1.6
// cannot speak gRPC to shims and 2.0-2.3 drop a gRPC shim the moment they connect (see
// shim/cli/bootstrap-output.ts), so there `start` refuses with the reason, which ctr shows.
for (const version of matrixVersions()) describe(`ctr run with Burrow in gRPC mode on containerd ${version}`, function () {
  this.timeout(180_000);
  const node = containerdForSuite({ name: `grpc-ctr-${version.replace('.', '')}`, version });
  let optionsFile: string;

  const ctrRun = (id: string, args: string[], flags: string[] = []): Promise<Result> =>
    node.c.ctr(['run', '--rm', ...flags, '--runtime', BURROW, '--runtime-config-path', optionsFile, BUSYBOX_REF, id, ...args], { timeoutSec: 60 });

  before(async function () {
    const dir = buildDir(`grpc-ctr-${version}`);
    fs.mkdirSync(dir, { recursive: true });
    optionsFile = path.join(dir, 'burrow-grpc.toml');
    fs.writeFileSync(optionsFile, 'Protocol = "grpc"\n');
  });

  if (version === '1.7') {
    it('runs a container over gRPC: output, exit code, exec, restart of containerd, clean removal', async function () {
      const baseline = await snapshotHost(node.c);
      const r = await ctrRun('grpc-echo', ['sh', '-c', 'echo hello over grpc; exit 3']);
      assert.equal(r.code, 3, r.stderr);
      assert.equal(r.stdout, 'hello over grpc\n');
      assert.match(node.c.readLog(), /shim bootstrap parameters.*protocol=grpc/);
      assert.match(node.c.readLog(), /shim started.*id=grpc-echo.*protocol=grpc/);

      const id = 'grpc-long';
      const d = await node.c.ctr(['run', '-d', '--runtime', BURROW, '--runtime-config-path', optionsFile, BUSYBOX_REF, id, 'sleep', '600']);
      assert.equal(d.code, 0, d.stderr);
      const boot = JSON.parse(fs.readFileSync(path.join(node.c.bundleDir(id), 'address'), 'utf8')) as Record<string, unknown>;
      assert.deepEqual(Object.keys(boot).sort(), ['address', 'protocol', 'version']);
      assert.equal(boot.version, 2);
      assert.equal(boot.protocol, 'grpc');
      const ex = await node.c.ctr(['task', 'exec', '--exec-id', 'e1', id, 'sh', '-c', 'echo in; exit 2']);
      assert.equal(ex.code, 2, ex.stderr);
      assert.equal(ex.stdout, 'in\n');

      await node.c.restart();
      const ls = await node.c.ctr(['task', 'ls']);
      assert.match(ls.stdout, new RegExp(`^${id}\\s+\\d+\\s+RUNNING`, 'm'), ls.stdout + ls.stderr);
      const again = await node.c.ctr(['task', 'exec', '--exec-id', 'e2', id, 'echo', 'after restart']);
      assert.equal(again.code, 0, again.stderr);
      assert.equal(again.stdout, 'after restart\n');

      const kill = await node.c.ctr(['task', 'kill', '-s', 'SIGKILL', id]);
      assert.equal(kill.code, 0, kill.stderr);
      for (let i = 0; i < 100 && !/STOPPED/.test((await node.c.ctr(['task', 'ls'])).stdout); i++) await sleep(100);
      const rm = await node.c.ctr(['task', 'rm', id]);
      assert.equal(rm.code, 0, rm.stderr);
      const crm = await node.c.ctr(['containers', 'rm', id]);
      assert.equal(crm.code, 0, crm.stderr);
      await assertNoLeaks(node.c, baseline);
      // Shutdown was answered before the shim closed its connections (GOAWAY, then close).
      assert.doesNotMatch(node.c.readLog(), /failed to shutdown shim task/);
    });
  } else {
    it('refuses gRPC mode with the reason, and leaves nothing behind', async function () {
      const baseline = await snapshotHost(node.c);
      const r = await ctrRun('grpc-refused', ['echo', 'never']);
      assert.notEqual(r.code, 0);
      assert.equal(r.stdout, '');
      const reason = version === '1.6' ? /gRPC mode needs containerd 1\.7 or newer \(this is containerd 1\.6/ : /gRPC mode does not work with containerd 2\.1: containerd 2\.0-2\.3 run their dead-shim cleanup/;
      assert.match(r.stderr, reason);
      // The default transport still works on the same containerd.
      const ok = await node.c.ctr(['run', '--rm', '--runtime', BURROW, BUSYBOX_REF, 'ttrpc-still', 'echo', 'fine']);
      assert.equal(ok.code, 0, ok.stderr);
      assert.equal(ok.stdout, 'fine\n');
      await assertNoLeaks(node.c, baseline);
    });
  }
});

// The CRI route to gRPC mode on containerd 1.7: a runtime handler whose `options` table says
// Protocol = "grpc" (CRI hands it to the shim as runtimeoptions.v1.Options.config_body).
if (matrixVersions().includes('1.7')) describe('a CRI pod with Burrow in gRPC mode on containerd 1.7', function () {
  this.timeout(300_000);
  const version = '1.7';
  const HANDLER = 'burrow-grpc';
  const rt = '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.burrow-grpc';
  const node = criNode({
    name: 'grpc-cri-17',
    version,
    configExtra: [
      `${rt}]`,
      '  runtime_type = "io.containerd.burrow.v2"',
      '  pod_annotations = ["*"]',
      '  container_annotations = ["*"]',
      `${rt}.options]`,
      '  Protocol = "grpc"',
      '',
    ].join('\n'),
  });

  it('runs the pod and a container over gRPC, exec and stats, and tears down cleanly', async function () {
    await podCase(node, HANDLER, async (k) => {
      const pod = await k.pod('grpc-pod');
      assert.equal((await node.client.podSandboxStatus(pod.id)).status?.state, 'SANDBOX_READY');
      const boot = JSON.parse(fs.readFileSync(path.join(node.c.bundleDir(pod.id, CRI_NAMESPACE), 'address'), 'utf8')) as Record<string, unknown>;
      assert.deepEqual([boot.version, boot.protocol], [2, 'grpc']);
      const id = await k.run(pod, { name: 'sleeper', image: BUSYBOX_REF, command: ['sleep', '3600'] });
      assert.equal((await node.client.containerStatus(id)).status?.state, 'CONTAINER_RUNNING');
      const r = await node.client.execSync(id, ['sh', '-c', 'echo over grpc; exit 6'], 30);
      assert.equal(r.stdout.toString(), 'over grpc\n');
      assert.equal(r.exit_code, 6);
      const stats = await node.client.containerStats(id);
      assert.ok(Number(stats?.memory?.working_set_bytes?.value ?? 0) > 0, `no memory stats: ${JSON.stringify(stats)}`);
      assert.match(node.c.readLog(), new RegExp(`shim started.*id=${pod.id}.*protocol=grpc`));
    });
  });
});
