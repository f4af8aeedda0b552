// Proves the e2e harness itself against containerd's reference runc shim, so
// that when a Burrow e2e test fails, the harness is not the suspect.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  buildBusyboxImage, buildDir, BUSYBOX_REF, describeResult, diffSnapshots, ensureHostTools, HostSnapshot,
  importImage, listProcesses, PrivateContainerd, readEnviron, readMountInfo, readProc, Result, RUNC_SHIM_ROOT, SHIM_SOCKET_DIR, sleep,
  snapshotHost, assertNoLeaks,
} from './harness';

const RUNC_RUNTIME = 'io.containerd.runc.v2';
const RUNC_SHIM = 'containerd-shim-runc-v2';

function expectOk(args: string[], r: Result): void {
  assert.equal(r.code, 0, describeResult('ctr', args, r));
}

async function taskStatus(c: PrivateContainerd, id: string, namespace?: string): Promise<string | undefined> {
  const r = await c.ctr(['task', 'ls'], { namespace });
  expectOk(['task', 'ls'], r);
  const line = r.stdout.split('\n').find((l) => l.split(/\s+/)[0] === id);
  return line?.trim().split(/\s+/)[2];
}

async function waitStatus(c: PrivateContainerd, id: string, want: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: string | undefined;
  while (Date.now() < deadline) {
    last = await taskStatus(c, id);
    if (last === want) return;
    await sleep(100);
  }
  assert.fail(`task ${id} in ${c.name}: status ${last ?? '(absent)'} after ${timeoutMs} ms, want ${want}`);
}

describe('e2e harness against the runc shim (io.containerd.runc.v2)', function () {
  this.timeout(180_000);
  let c: PrivateContainerd;
  let baseline: HostSnapshot;
  const snap = (): Promise<HostSnapshot> => snapshotHost(c, { shimBinaries: [RUNC_SHIM] });
  const ctrRun = (args: string[], input?: string): Promise<Result> =>
    c.ctr(['run', '--rm', '--runtime', RUNC_RUNTIME, BUSYBOX_REF, ...args], { input });

  before(async () => {
    ensureHostTools();
    c = await PrivateContainerd.start({ name: 'harness' });
    await importImage(c);
  });

  beforeEach(async () => {
    baseline = await snap();
  });

  afterEach(function () {
    if (this.currentTest?.state === 'failed' && c) {
      console.error(`--- containerd ${c.name} log (tail) ---\n${c.readLog(60)}`);
    }
  });

  after(async () => {
    if (!c) return;
    await c.stop();
    assert.ok(!fs.existsSync(c.instanceDir), `${c.instanceDir} still exists after stop()`);
    assert.ok(!fs.existsSync(c.root), `${c.root} still exists after stop()`);
  });

  it('builds the busybox OCI archive reproducibly', async () => {
    const a = await buildBusyboxImage();
    const b = await buildBusyboxImage();
    assert.deepEqual(a, b);
    assert.ok(fs.statSync(a.archive).size > 1_000_000, `${a.archive} is suspiciously small`);
    await assertNoLeaks(c, baseline);
  });

  it('runs /bin/echo hello to completion', async () => {
    const args = ['t1', '/bin/echo', 'hello'];
    const r = await ctrRun(args);
    expectOk(args, r);
    assert.equal(r.stdout, 'hello\n');
    await assertNoLeaks(c, baseline);
  });

  it('propagates the exit code of sh -c "exit 3"', async () => {
    const args = ['t2', 'sh', '-c', 'exit 3'];
    const r = await ctrRun(args);
    assert.equal(r.code, 3, describeResult('ctr', args, r));
    await assertNoLeaks(c, baseline);
  });

  it('feeds stdin to the container', async () => {
    const args = ['t3', 'sh', '-c', 'read x; echo $x'];
    const r = await ctrRun(args, 'hi\n');
    expectOk(args, r);
    assert.equal(r.stdout, 'hi\n');
    await assertNoLeaks(c, baseline);
  });

  it('runs a detached task through RUNNING → kill → STOPPED → rm', async () => {
    const id = 'd1';
    const runArgs = ['run', '-d', '--runtime', RUNC_RUNTIME, BUSYBOX_REF, id, 'sleep', '300'];
    expectOk(runArgs, await c.ctr(runArgs));
    await waitStatus(c, id, 'RUNNING');

    // While it runs, the harness must see what a leak check would flag.
    const during = diffSnapshots(baseline, await snap());
    for (const want of ['process: ', 'mount: ', 'shim-socket: ', 'bundle: ']) {
      assert.ok(during.some((l) => l.startsWith(want)), `no "${want}" entry while ${id} runs:\n${during.join('\n')}`);
    }
    const bundle = c.bundleDir(id);
    // Shims inherit containerd's environment: this is how BURROW_ROOT reaches ours.
    const shim = listProcesses().find((p) => p.argv[0]?.endsWith(RUNC_SHIM) && p.argv.includes(id));
    assert.ok(shim, `no ${RUNC_SHIM} process for ${id}`);
    const env = readEnviron(shim.pid);
    assert.equal(env.get('BURROW_ROOT'), c.burrowRoot, `BURROW_ROOT of shim pid ${shim.pid}`);
    assert.equal(env.get('TTRPC_ADDRESS'), c.ttrpcAddress, `TTRPC_ADDRESS of shim pid ${shim.pid}`);
    assert.equal(fs.realpathSync(`/proc/${shim.pid}/cwd`), bundle, `cwd of shim pid ${shim.pid}`);
    const rootfs = readMountInfo().find((m) => m.mountPoint === path.join(bundle, 'rootfs'));
    assert.equal(rootfs?.fsType, 'overlay', `rootfs of ${id} not an overlay mount`);
    const address = fs.readFileSync(path.join(bundle, 'address'), 'utf8');
    assert.match(address, new RegExp(`^unix://${SHIM_SOCKET_DIR}/[0-9a-f]{64}$`));
    // Reference for shim authors: the spec containerd 1.6 + ctr hand a runtime.
    fs.writeFileSync(
      path.join(buildDir('captured'), 'runc-default-config.json'),
      JSON.stringify(JSON.parse(fs.readFileSync(path.join(bundle, 'config.json'), 'utf8')), null, 2) + '\n',
    );

    const kill = ['task', 'kill', '-s', 'SIGKILL', id];
    expectOk(kill, await c.ctr(kill));
    await waitStatus(c, id, 'STOPPED');
    expectOk(['task', 'rm', id], await c.ctr(['task', 'rm', id]));
    expectOk(['c', 'rm', id], await c.ctr(['c', 'rm', id]));
    await assertNoLeaks(c, baseline);
  });

  it('imports into and runs in the k8s.io namespace', async () => {
    const ns = 'k8s.io';
    await importImage(c, BUSYBOX_REF, ns);
    const args = ['run', '--rm', '--runtime', RUNC_RUNTIME, BUSYBOX_REF, 'k1', 'sh', '-c', 'echo $((6*7))'];
    const r = await c.ctr(args, { namespace: ns });
    expectOk(args, r);
    assert.equal(r.stdout, '42\n');
    await assertNoLeaks(c, baseline);
  });

  it('stop() and a restart after a crash reap running containers completely', async () => {
    const name = 'harness-reap';
    let other = await PrivateContainerd.start({ name });
    const before = await snapshotHost(other, { shimBinaries: [RUNC_SHIM] });
    try {
      await importImage(other);
      const id = 'r1';
      const runArgs = ['run', '-d', '--runtime', RUNC_RUNTIME, BUSYBOX_REF, id, 'sleep', '300'];
      expectOk(runArgs, await other.ctr(runArgs));
      const running = diffSnapshots(before, await snapshotHost(other, { shimBinaries: [RUNC_SHIM] }));
      assert.ok(running.some((l) => l.startsWith('process: ')), `no shim seen for ${id}:\n${running.join('\n')}`);

      // Simulate a crashed test run: containerd dies, shim and container stay.
      const pid = other.pid;
      assert.ok(pid !== undefined && readProc(pid), `containerd of ${name} not running`);
      process.kill(pid, 'SIGKILL');
      // start() under the same name must find and clear the leftovers first.
      other = await PrivateContainerd.start({ name });
      const afterRestart = diffSnapshots(before, await snapshotHost(other, { shimBinaries: [RUNC_SHIM] }));
      assert.deepEqual(afterRestart, [], `leftovers survived restart of ${name}`);
      assert.ok(!fs.existsSync(path.join(RUNC_SHIM_ROOT, 'default', id)), `runc state of ${id} survived`);

      // And stop() with a running container leaves nothing behind either.
      await importImage(other);
      expectOk(runArgs, await other.ctr(runArgs));
    } finally {
      await other.stop();
    }
    assert.deepEqual(diffSnapshots(before, await snapshotHost(other, { shimBinaries: [RUNC_SHIM] })), []);
    assert.deepEqual(other.instanceProcesses(), new Map(), `processes of ${name} survived stop()`);
    assert.ok(!fs.existsSync(other.instanceDir) && !fs.existsSync(other.root), `dirs of ${name} survived stop()`);
    await assertNoLeaks(c, baseline);
  });
});
