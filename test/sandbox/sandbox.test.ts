import { strict as assert } from 'assert';
import { ChildProcess, execFileSync, spawn } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { silentLogger } from '../../shim/log/logger';
import { SandboxError, SandboxErrorKind } from '../../shim/sandbox/errors';
import { ExitRouter } from '../../shim/sandbox/exit-router';
import { NativeError } from '../../shim/sandbox/native-api';
import { processStartTime } from '../../shim/sandbox/proc';
import type { RootfsMount } from '../../shim/sandbox/rootfs';
import { CreateOptions, forceCleanup, Sandbox, SandboxDeps } from '../../shim/sandbox/sandbox';
import { SandboxRecord, StateStore } from '../../shim/sandbox/state-store';
import { FakeNative } from '../fakes/fake-native';
import { Bundle, makeBundle, makeTempDir, openFdCount, removeTempDir, settle, waitUntil } from '../fakes/fixtures';

const NS = 'default';
const DEAD_PID = 999999999;
const OVERLAY: RootfsMount[] = [
  {
    type: 'overlay',
    source: 'overlay',
    options: ['index=off', 'lowerdir=/snap/2/fs:/snap/1/fs', 'upperdir=/snap/3/fs', 'workdir=/snap/3/work'],
  },
];

async function rejectsWithKind(p: Promise<unknown>, kind: SandboxErrorKind, ...parts: string[]): Promise<SandboxError> {
  let caught: unknown;
  try {
    await p;
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof SandboxError, `expected a SandboxError ${kind}, got ${String(caught)}`);
  assert.equal(caught.kind, kind, caught.message);
  for (const part of parts) assert.ok(caught.message.includes(part), `${JSON.stringify(caught.message)} should name ${part}`);
  return caught;
}

function throwsKind(fn: () => unknown, kind: SandboxErrorKind): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof SandboxError, String(err));
    assert.equal(err.kind, kind, err.message);
    return true;
  });
}

describe('sandbox: Sandbox', () => {
  let tmp: string;
  let stateRoot: string;
  let store: StateStore;
  let native: FakeNative;
  let deps: SandboxDeps;
  let b: Bundle;
  const children: ChildProcess[] = [];

  beforeEach(() => {
    tmp = makeTempDir('burrow-sandbox-');
    stateRoot = path.join(tmp, 'state');
    store = new StateStore(stateRoot);
    native = new FakeNative();
    deps = { native, store, exits: new ExitRouter(native, silentLogger), logger: silentLogger };
    b = makeBundle(tmp);
  });

  afterEach(() => {
    for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    removeTempDir(tmp);
  });

  function opts(extra: Partial<CreateOptions> = {}): CreateOptions {
    return {
      id: 'c1',
      namespace: NS,
      bundle: b.bundle,
      rootfsMounts: OVERLAY,
      stdio: { stdin: '', stdout: '', stderr: '', terminal: false },
      ...extra,
    };
  }

  function stateFile(id = 'c1'): string {
    return path.join(stateRoot, NS, id, 'state.json');
  }

  function persisted(id = 'c1'): SandboxRecord {
    return JSON.parse(fs.readFileSync(stateFile(id), 'utf8')) as SandboxRecord;
  }

  function fifo(name: string): string {
    const p = path.join(tmp, name);
    execFileSync('mkfifo', ['-m', '0600', p]);
    return p;
  }

  describe('lifecycle', () => {
    it('create leaves a created init, with its state persisted', async () => {
      const sb = await Sandbox.create(deps, opts());
      assert.equal(native.spawned.length, 1);
      const proc = native.last;
      assert.equal(sb.id, 'c1');
      assert.equal(sb.pid, proc.pid);
      assert.equal(sb.record.status, 'created');
      assert.equal(proc.releaseCalls, 0, 'the program must not run before Start');

      const rec = persisted();
      assert.equal(rec.status, 'created');
      assert.equal(rec.pid, proc.pid);
      assert.equal(rec.id, 'c1');
      assert.equal(rec.namespace, NS);
      assert.equal(rec.bundle, b.bundle);
      assert.equal(rec.rootfs, b.rootfs);
      assert.equal(rec.rootfsMounted, true);
      assert.equal(rec.privatePidNamespace, true);
      assert.deepEqual(rec.stdio, opts().stdio);

      // The rootfs is mounted before the init is cloned, and the plan points at it.
      assert.deepEqual(native.mountTable, [b.rootfs]);
      assert.equal(native.mountCalls[0].fstype, 'overlay');
      assert.equal(native.mountCalls[0].data, 'index=off,lowerdir=/snap/2/fs:/snap/1/fs,upperdir=/snap/3/fs,workdir=/snap/3/work');
      assert.equal(proc.plan.id, 'c1');
      assert.equal(proc.plan.rootfs, b.rootfs);
      assert.deepEqual(proc.plan.args, ['sleep', '300']);
      assert.deepEqual(proc.plan.stdio, [-1, -1, -1]);
      assert.equal(proc.plan.waitForStart, true);
    });

    it('persists the pid before the init is ready, in state creating', async () => {
      native.autoReady = false;
      const creating = Sandbox.create(deps, opts());
      await waitUntil(() => native.spawned.length === 1, 'spawn');
      await settle();
      const rec = persisted();
      assert.equal(rec.status, 'creating');
      assert.equal(rec.pid, native.last.pid);
      native.last.resolveReady();
      const sb = await creating;
      assert.equal(sb.record.status, 'created');
      assert.equal(persisted().status, 'created');
    });

    it('uses the bundle rootfs directory as is when containerd sends no mounts', async () => {
      const sb = await Sandbox.create(deps, opts({ rootfsMounts: [] }));
      assert.deepEqual(native.mountCalls, []);
      assert.equal(sb.record.rootfsMounted, false);
      await sb.destroy();
      assert.deepEqual(native.unmountCalls, [], 'nothing of ours to unmount');
    });

    it('start releases the init and makes it running', async () => {
      const sb = await Sandbox.create(deps, opts());
      assert.equal(await sb.start(), native.last.pid);
      assert.equal(native.last.releaseCalls, 1);
      assert.equal(sb.record.status, 'running');
      assert.equal(persisted().status, 'running');
      await rejectsWithKind(sb.start(), 'failed-precondition', 'c1', 'running');
      assert.equal(native.last.releaseCalls, 1);
    });

    it('a failed release is a failed-precondition naming the container', async () => {
      native.autoRelease = false;
      const sb = await Sandbox.create(deps, opts());
      const starting = sb.start();
      native.last.rejectRelease(new NativeError('execve "/bin/nope": No such file or directory', 'ENOENT', 2));
      // As the real child does right after reporting (start() waits up to 2 s for that exit).
      native.exit(native.last.pid, 127);
      await rejectsWithKind(starting, 'failed-precondition', 'container c1', 'execve');
    });

    it('an exit makes it stopped with its exit status', async () => {
      const sb = await Sandbox.create(deps, opts());
      await sb.start();
      const before = Date.now() / 1000;
      native.exit(sb.pid, 3);
      const info = await sb.wait();
      assert.equal(info.pid, sb.pid);
      assert.equal(info.exitStatus, 3);
      assert.ok(Math.abs(info.exitedAt.seconds - before) < 5, JSON.stringify(info.exitedAt));
      assert.ok(info.exitedAt.nanos >= 0 && info.exitedAt.nanos < 1e9);
      const rec = persisted();
      assert.equal(rec.status, 'stopped');
      assert.equal(rec.exitStatus, 3);
      assert.deepEqual(rec.exitedAt, info.exitedAt);
      assert.equal(sb.record.status, 'stopped');
    });

    it('an exit while start is in progress leaves it stopped, not running', async () => {
      native.autoRelease = false;
      const sb = await Sandbox.create(deps, opts());
      const starting = sb.start();
      native.exit(sb.pid, 0);
      await sb.wait();
      native.last.resolveRelease();
      assert.equal(await starting, sb.pid);
      assert.equal(sb.record.status, 'stopped');
      assert.equal(persisted().status, 'stopped');
    });

    it('wait resolves for every caller, before and after the exit', async () => {
      const sb = await Sandbox.create(deps, opts());
      await sb.start();
      let settled = false;
      const early = [sb.wait(), sb.wait(), sb.wait()];
      void Promise.all(early).then(() => (settled = true));
      await settle();
      assert.equal(settled, false, 'wait must block until the exit');
      native.exit(sb.pid, 42);
      const results = await Promise.all(early);
      const late = await sb.wait();
      for (const r of [...results, late]) assert.deepEqual(r, results[0]);
      assert.equal(late.exitStatus, 42);
    });

    it('wait works in created state (before Start)', async () => {
      const sb = await Sandbox.create(deps, opts());
      const waiting = sb.wait();
      native.exit(sb.pid, 1);
      assert.equal((await waiting).exitStatus, 1);
    });

    it('signals the init while it lives, and is not-found after its exit', async () => {
      const sb = await Sandbox.create(deps, opts());
      await sb.start();
      sb.signal(15, false);
      assert.deepEqual(native.signals, [{ pid: sb.pid, signal: 15 }]);
      native.exit(sb.pid, 143);
      await sb.wait();
      throwsKind(() => sb.signal(15, false), 'not-found');
      throwsKind(() => sb.signal(9, true), 'not-found');
      assert.equal(native.signals.length, 1);
    });

    it('maps ESRCH from an already reaped init to not-found', async () => {
      const sb = await Sandbox.create(deps, opts());
      await sb.start();
      native.last.alive = false; // reaped, exit record still on its way
      throwsKind(() => sb.signal(15, false), 'not-found');
    });

    it('kill in created state kills the init, which then reports its exit', async () => {
      const sb = await Sandbox.create(deps, opts());
      sb.signal(9, true);
      const info = await sb.wait();
      assert.equal(info.exitStatus, 137);
      assert.equal(sb.record.status, 'stopped');
    });

    it('lists only the init as its pid without a pid namespace of its own', async () => {
      const own = makeBundle(tmp, 'shared-pidns', (s) => {
        s.linux!.namespaces = s.linux!.namespaces!.filter((n) => n.type !== 'pid');
      });
      const sb = await Sandbox.create(deps, opts({ bundle: own.bundle }));
      assert.equal(sb.record.privatePidNamespace, false);
      assert.deepEqual(sb.pids(), [sb.pid]);
      native.exit(sb.pid, 0);
      await sb.wait();
      assert.deepEqual(sb.pids(), []);
    });

    it('refuses to destroy a running init', async () => {
      const sb = await Sandbox.create(deps, opts());
      await sb.start();
      await rejectsWithKind(sb.destroy(), 'failed-precondition', 'c1', 'running');
      assert.ok(fs.existsSync(stateFile()), 'state kept');
      assert.deepEqual(native.mountTable, [b.rootfs], 'rootfs kept');
      assert.deepEqual(native.signals, []);
    });

    it('destroy of a created init kills it, unmounts the rootfs and forgets the state', async () => {
      const sb = await Sandbox.create(deps, opts());
      const proc = native.last;
      const info = await sb.destroy();
      assert.ok(proc.abandoned, 'the start pipe is dropped so it can never run the program');
      assert.deepEqual(native.signals, [{ pid: proc.pid, signal: 9 }]);
      assert.deepEqual(info, { pid: proc.pid, exitStatus: 137, exitedAt: info.exitedAt });
      assert.deepEqual(native.mountTable, []);
      assert.equal(fs.existsSync(path.join(stateRoot, NS, 'c1')), false);
      assert.deepEqual(native.live(), []);
      assert.deepEqual(store.list(NS), []);
    });

    it('destroy of a stopped init returns its exit and cleans up', async () => {
      const sb = await Sandbox.create(deps, opts());
      await sb.start();
      native.exit(sb.pid, 7);
      const exited = await sb.wait();
      const info = await sb.destroy();
      assert.deepEqual(info, exited);
      assert.deepEqual(native.signals, []);
      assert.deepEqual(native.mountTable, []);
      assert.equal(fs.existsSync(stateFile()), false);
    });

    it('never writes state again once destroyed', async () => {
      native.autoRelease = false;
      const sb = await Sandbox.create(deps, opts());
      await sb.destroy();
      assert.equal(fs.existsSync(path.join(stateRoot, NS, 'c1')), false);
      // A late start completion (or any other late event) must not resurrect the state dir.
      native.last.resolveRelease();
      await settle();
      assert.equal(fs.existsSync(path.join(stateRoot, NS)), false);
    });

    it('closes stdio on destroy', async () => {
      const out = fifo('out');
      const before = openFdCount();
      const sb = await Sandbox.create(deps, opts({ stdio: { stdin: '', stdout: out, stderr: out, terminal: false } }));
      assert.equal(openFdCount(), before + 1, 'only the keep-alive reader stays open after spawn');
      assert.equal(native.last.plan.stdio[1], native.last.plan.stdio[2]);
      assert.ok(native.last.plan.stdio[1] >= 0);
      await sb.destroy();
      assert.equal(openFdCount(), before);
    });
  });

  describe('duplicate ids', () => {
    it('refuses an id that exists, leaving the existing sandbox alone', async () => {
      const first = await Sandbox.create(deps, opts());
      const other = makeBundle(tmp, 'other');
      await rejectsWithKind(Sandbox.create(deps, opts({ bundle: other.bundle })), 'already-exists', 'c1', NS);
      assert.equal(native.spawned.length, 1);
      assert.deepEqual(native.mountTable, [b.rootfs]);
      const rec = persisted();
      assert.equal(rec.pid, first.pid);
      assert.equal(rec.bundle, b.bundle);
      assert.equal(rec.status, 'created');
    });

    it('accepts the same id in another namespace', async () => {
      await Sandbox.create(deps, opts());
      const other = makeBundle(tmp, 'other');
      const sb = await Sandbox.create(deps, opts({ namespace: 'k8s.io', bundle: other.bundle }));
      assert.equal(sb.record.namespace, 'k8s.io');
      assert.equal(native.spawned.length, 2);
    });

    it('rejects invalid ids and relative bundles before touching anything', async () => {
      await rejectsWithKind(Sandbox.create(deps, opts({ id: '../escape' })), 'invalid-argument', '"../escape"');
      await rejectsWithKind(Sandbox.create(deps, opts({ namespace: 'a/b' })), 'invalid-argument', 'namespace');
      await rejectsWithKind(Sandbox.create(deps, opts({ bundle: 'relative/bundle' })), 'invalid-argument', 'relative/bundle');
      assert.equal(fs.existsSync(stateRoot), false);
      assert.deepEqual(native.mountCalls, []);
    });
  });

  describe('a failed create leaves nothing behind', () => {
    let fdsBefore: number;

    beforeEach(() => {
      fdsBefore = openFdCount();
    });

    function assertNothingLeft(id = 'c1'): void {
      assert.equal(fs.existsSync(path.join(stateRoot, NS, id)), false, 'state dir removed');
      assert.deepEqual(store.list(NS), []);
      assert.deepEqual(native.mountTable, [], 'rootfs unmounted');
      assert.deepEqual(native.live(), [], 'no process left');
      assert.equal(openFdCount(), fdsBefore, 'no fd left open');
    }

    function stdioWithFifos(): CreateOptions['stdio'] {
      return { stdin: fifo('in'), stdout: fifo('out'), stderr: fifo('err'), terminal: false };
    }

    it('bad spec', async () => {
      const bad = makeBundle(tmp, 'bad', (s) => delete s.process!.args);
      await rejectsWithKind(Sandbox.create(deps, opts({ bundle: bad.bundle })), 'invalid-argument', 'process.args', path.join(bad.bundle, 'config.json'));
      assert.deepEqual(native.mountCalls, []);
      assertNothingLeft();
    });

    it('rootfs mount fails', async () => {
      native.mountFailure = (_m, i) => (i === 1 ? new NativeError('mount tmpfs "tmpfs" on "x": No such device', 'ENODEV', 19) : undefined);
      const mounts: RootfsMount[] = [...OVERLAY, { type: 'tmpfs', source: 'tmpfs', target: 'run', options: [] }];
      await rejectsWithKind(Sandbox.create(deps, opts({ rootfsMounts: mounts })), 'invalid-argument', 'container c1', b.rootfs, 'No such device');
      assert.equal(native.mountCalls.length, 2);
      assert.deepEqual(native.spawned, []);
      assertNothingLeft();
    });

    it('stdio open fails', async () => {
      const missing = path.join(tmp, 'no-such-fifo');
      const stdio = { ...stdioWithFifos(), stderr: missing };
      await rejectsWithKind(Sandbox.create(deps, opts({ stdio })), 'invalid-argument', missing);
      assert.equal(native.mountCalls.length, 1, 'the rootfs was mounted first');
      assert.deepEqual(native.spawned, []);
      assertNothingLeft();
    });

    it('the launch plan is refused', async () => {
      const bad = makeBundle(tmp, 'seccomp', (s) => (s.linux!.seccomp = { defaultAction: 'SCMP_ACT_BOGUS' }));
      await rejectsWithKind(Sandbox.create(deps, opts({ bundle: bad.bundle, stdio: stdioWithFifos() })), 'invalid-argument', 'linux.seccomp');
      assert.deepEqual(native.spawned, []);
      assertNothingLeft();
    });

    it('spawn throws', async () => {
      native.spawnError = new NativeError('clone3: Operation not permitted', 'EPERM', 1);
      await assert.rejects(Sandbox.create(deps, opts({ stdio: stdioWithFifos() })), /clone3: Operation not permitted/);
      assertNothingLeft();
    });

    it('ready rejects', async () => {
      native.autoReady = false;
      const creating = Sandbox.create(deps, opts({ stdio: stdioWithFifos() }));
      await waitUntil(() => native.spawned.length === 1, 'spawn');
      const proc = native.last;
      proc.rejectReady(new NativeError('pivot_root: Invalid argument', 'EINVAL', 22));
      await assert.rejects(creating, /pivot_root: Invalid argument/);
      assert.ok(proc.abandoned);
      assert.deepEqual(native.signals, [{ pid: proc.pid, signal: 9 }]);
      assertNothingLeft();
    });

    it('ready rejects after the init already died on its own', async () => {
      native.autoReady = false;
      const creating = Sandbox.create(deps, opts({ stdio: stdioWithFifos() }));
      await waitUntil(() => native.spawned.length === 1, 'spawn');
      const proc = native.last;
      native.exit(proc.pid, 1);
      proc.rejectReady(new NativeError('execve: Permission denied', 'EACCES', 13));
      await assert.rejects(creating, /Permission denied/);
      assertNothingLeft();
    });

    it('the id is free again afterwards', async () => {
      native.spawnError = new NativeError('clone3: Resource temporarily unavailable', 'EAGAIN', 11);
      await assert.rejects(Sandbox.create(deps, opts()));
      const sb = await Sandbox.create(deps, opts());
      assert.equal(sb.record.status, 'created');
      await sb.destroy();
    });
  });

  describe('load and list', () => {
    function save(id: string, extra: Partial<SandboxRecord>): void {
      store.claim(NS, id);
      store.save({
        id,
        namespace: NS,
        bundle: b.bundle,
        rootfs: b.rootfs,
        rootfsMounted: false,
        pid: DEAD_PID,
        privatePidNamespace: true,
        status: 'running',
        createdAt: new Date().toISOString(),
        stdio: { stdin: '', stdout: '', stderr: '', terminal: false },
        ...extra,
      });
    }

    it('marks a created or running record whose init is gone as stopped, and persists that', () => {
      save('dead-running', { status: 'running' });
      save('dead-created', { status: 'created' });
      assert.equal(Sandbox.load(store, NS, 'dead-running')!.status, 'stopped');
      assert.equal(store.load(NS, 'dead-running')!.status, 'stopped');
      const listed = Sandbox.list(store, NS);
      assert.deepEqual(listed.map((r) => [r.id, r.status]).sort(), [
        ['dead-created', 'stopped'],
        ['dead-running', 'stopped'],
      ]);
      assert.equal(store.load(NS, 'dead-created')!.status, 'stopped');
    });

    it('keeps a record whose init is alive', () => {
      save('alive', { pid: process.pid, pidStartTime: processStartTime(process.pid) });
      assert.equal(Sandbox.load(store, NS, 'alive')!.status, 'running');
    });

    it('treats a recycled pid (other start time) as dead', () => {
      save('recycled', { pid: process.pid, pidStartTime: '1' });
      assert.equal(Sandbox.load(store, NS, 'recycled')!.status, 'stopped');
    });

    it('leaves stopped records as they are', () => {
      save('done', { status: 'stopped', exitStatus: 5 });
      const rec = Sandbox.load(store, NS, 'done')!;
      assert.equal(rec.status, 'stopped');
      assert.equal(rec.exitStatus, 5);
    });

    it('is undefined / empty for unknown sandboxes', () => {
      assert.equal(Sandbox.load(store, NS, 'nope'), undefined);
      assert.deepEqual(Sandbox.list(store, NS), []);
    });
  });

  describe('forceCleanup', () => {
    function saveRecord(extra: Partial<SandboxRecord>): void {
      store.claim(NS, 'c1');
      store.save({
        id: 'c1',
        namespace: NS,
        bundle: b.bundle,
        rootfs: b.rootfs,
        rootfsMounted: true,
        pid: DEAD_PID,
        privatePidNamespace: true,
        status: 'running',
        createdAt: new Date().toISOString(),
        stdio: { stdin: '', stdout: '', stderr: '', terminal: false },
        ...extra,
      });
    }

    function mountRootfsTwice(): void {
      for (let i = 0; i < 2; i++) native.mount({ source: 'overlay', target: b.rootfs, fstype: 'overlay', flags: 0, data: '' });
    }

    it('unmounts, forgets the state and is idempotent', async () => {
      saveRecord({});
      mountRootfsTwice();
      assert.equal(await forceCleanup(native, store, NS, 'c1', b.bundle), DEAD_PID);
      assert.deepEqual(native.mountTable, []);
      assert.equal(fs.existsSync(path.join(stateRoot, NS, 'c1')), false);
      assert.equal(await forceCleanup(native, store, NS, 'c1', b.bundle), 0);
      assert.equal(await forceCleanup(native, store, NS, 'c1', b.bundle), 0);
      assert.deepEqual(native.mountTable, []);
    });

    it('without a record unmounts <bundle>/rootfs', async () => {
      native.mount({ source: 'overlay', target: path.join(b.bundle, 'rootfs'), fstype: 'overlay', flags: 0, data: '' });
      assert.equal(await forceCleanup(native, store, NS, 'c1', b.bundle), 0);
      assert.deepEqual(native.mountTable, []);
    });

    it('uses the recorded rootfs path', async () => {
      const elsewhere = path.join(tmp, 'elsewhere');
      native.mount({ source: 'overlay', target: elsewhere, fstype: 'overlay', flags: 0, data: '' });
      saveRecord({ rootfs: elsewhere });
      await forceCleanup(native, store, NS, 'c1', b.bundle);
      assert.deepEqual(native.mountTable, []);
    });

    function sleeper(): Promise<ChildProcess> {
      const child = spawn('sleep', ['30'], { stdio: 'ignore' });
      children.push(child);
      return new Promise((resolve, reject) => {
        child.once('spawn', () => resolve(child));
        child.once('error', reject);
      });
    }

    it('kills a container init that is still alive', async () => {
      const child = await sleeper();
      const exited = new Promise<NodeJS.Signals | null>((r) => child.once('exit', (_c, sig) => r(sig)));
      saveRecord({ pid: child.pid!, pidStartTime: processStartTime(child.pid!) });
      assert.equal(await forceCleanup(native, store, NS, 'c1', b.bundle), child.pid);
      assert.equal(await exited, 'SIGKILL');
    });

    it('never kills a process that merely reuses the pid', async () => {
      const child = await sleeper();
      saveRecord({ pid: child.pid!, pidStartTime: '1' });
      await forceCleanup(native, store, NS, 'c1', b.bundle);
      await new Promise((r) => setTimeout(r, 50));
      assert.equal(child.exitCode, null);
      assert.equal(child.signalCode, null);
    });

    it('rejects an invalid id', async () => {
      await rejectsWithKind(forceCleanup(native, store, NS, '../x', b.bundle), 'invalid-argument');
    });
  });
});
