import { strict as assert } from 'assert';
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { silentLogger } from '../../shim/log/logger';
import { lookupService, lookupType } from '../../shim/protocol/proto-registry';
import { Code, RpcError } from '../../shim/protocol/status';
import type { UnaryHandler } from '../../shim/protocol/ttrpc-server';
import { NativeError } from '../../shim/sandbox/native-api';
import { TaskService } from '../../shim/service/task-service';
import { FakeNative } from '../fakes/fake-native';
import { Bundle, makeBundle, makeTempDir, removeTempDir, settle, waitUntil } from '../fakes/fixtures';
import { callMethod, fakeSandboxDeps, RecordingSink, rejectsCode } from '../fakes/service-calls';

const NS = 'default';
const ZERO_TIME = { seconds: -62135596800, nanos: 0 };
const STATUS = { CREATED: 1, RUNNING: 2, STOPPED: 3 };
const ROOTFS = [
  { type: 'overlay', source: 'overlay', target: '', options: ['index=off', 'lowerdir=/s/1/fs', 'upperdir=/s/2/fs', 'workdir=/s/2/work'] },
];

/** Every key of `obj` is a field of the protobuf message `typeName` (so nothing is silently dropped). */
function assertFieldsOf(typeName: string, obj: object): void {
  const fields = Object.keys(lookupType(typeName).fields);
  for (const k of Object.keys(obj)) assert.ok(fields.includes(k), `${typeName} has no field ${k}`);
}

describe('service: TaskService', () => {
  let tmp: string;
  let b: Bundle;
  let native: FakeNative;
  let sink: RecordingSink;
  let service: TaskService;
  let h: Record<string, UnaryHandler>;
  let shutdowns: number;

  beforeEach(() => {
    tmp = makeTempDir('burrow-task-');
    b = makeBundle(tmp);
    native = new FakeNative();
    sink = new RecordingSink();
    shutdowns = 0;
    service = new TaskService({
      namespace: NS,
      sandboxDeps: fakeSandboxDeps(native, path.join(tmp, 'state')),
      events: sink,
      logger: silentLogger,
      onShutdown: () => shutdowns++,
    });
    h = service.handlers();
  });

  afterEach(() => removeTempDir(tmp));

  const call = (method: string, req: Record<string, unknown>): Promise<any> => callMethod(h, 'containerd.task.v2.Task', NS, method, req);

  function createReq(id = 'c1', extra: Record<string, unknown> = {}): Record<string, unknown> {
    return { id, bundle: b.bundle, rootfs: ROOTFS, terminal: false, stdin: '', stdout: '', stderr: '', checkpoint: '', parent_checkpoint: '', ...extra };
  }

  async function create(id = 'c1', extra: Record<string, unknown> = {}): Promise<number> {
    const resp = await call('Create', createReq(id, extra));
    return resp.pid as number;
  }

  it('serves every method of the Task service', () => {
    const methods = lookupService('containerd.task.v2.Task').methodsArray.map((m) => m.name).sort();
    assert.deepEqual(Object.keys(h).sort(), methods);
  });

  describe('lifecycle', () => {
    it('create → start → kill → exit → wait → delete, with the events in order', async () => {
      const pid = await create();
      assert.equal(pid, native.last.pid);
      assert.equal(service.containerCount, 1);
      assert.deepEqual(sink.topics, ['/tasks/create']);
      const created = sink.events[0];
      assert.equal(created.typeName, 'containerd.events.TaskCreate');
      assert.equal(created.event.container_id, 'c1');
      assert.equal(created.event.bundle, b.bundle);
      assert.equal(created.event.pid, pid);
      assert.deepEqual(created.event.rootfs, ROOTFS);

      const state = await call('State', { id: 'c1', exec_id: '' });
      assert.deepEqual(state, {
        id: 'c1',
        bundle: b.bundle,
        pid,
        status: STATUS.CREATED,
        stdin: '',
        stdout: '',
        stderr: '',
        terminal: false,
        exit_status: 0,
        exited_at: ZERO_TIME,
        exec_id: '',
      });

      assert.deepEqual(await call('Start', { id: 'c1', exec_id: '' }), { pid });
      assert.deepEqual(sink.topics, ['/tasks/create', '/tasks/start']);
      assert.deepEqual(sink.events[1].event, { container_id: 'c1', pid });
      assert.equal((await call('State', { id: 'c1' })).status, STATUS.RUNNING);
      assert.deepEqual((await call('State', { id: 'c1' })).exited_at, ZERO_TIME);

      assert.equal(await call('Kill', { id: 'c1', exec_id: '', signal: 15, all: false }), undefined);
      assert.deepEqual(native.signals, [{ pid, signal: 15 }]);
      native.exit(pid, 143);

      const waited = await call('Wait', { id: 'c1', exec_id: '' });
      assert.equal(waited.exit_status, 143);
      assert.notDeepEqual(waited.exited_at, ZERO_TIME);
      const stopped = await call('State', { id: 'c1' });
      assert.equal(stopped.status, STATUS.STOPPED);
      assert.equal(stopped.exit_status, 143);
      assert.deepEqual(stopped.exited_at, waited.exited_at);

      await waitUntil(() => sink.events.length === 3, 'TaskExit');
      assert.deepEqual(sink.events[2].event, { container_id: 'c1', id: 'c1', pid, exit_status: 143, exited_at: waited.exited_at });

      const deleted = await call('Delete', { id: 'c1', exec_id: '' });
      assert.deepEqual(deleted, { pid, exit_status: 143, exited_at: waited.exited_at });
      assert.deepEqual(sink.topics, ['/tasks/create', '/tasks/start', '/tasks/exit', '/tasks/delete']);
      assert.deepEqual(sink.events[3].event, { container_id: 'c1', pid, exit_status: 143, exited_at: waited.exited_at, id: '' });
      assert.equal(service.containerCount, 0);
      assert.deepEqual(native.mountTable, [], 'rootfs unmounted by Delete');

      await rejectsCode(call('State', { id: 'c1' }), Code.NotFound);
      await rejectsCode(call('Delete', { id: 'c1' }), Code.NotFound);
    });

    it('uses field names of the protobuf messages in responses and events', async () => {
      const pid = await create();
      assertFieldsOf('containerd.task.v2.CreateTaskResponse', { pid });
      assertFieldsOf('containerd.task.v2.StateResponse', await call('State', { id: 'c1' }));
      assertFieldsOf('containerd.task.v2.StartResponse', await call('Start', { id: 'c1' }));
      assertFieldsOf('containerd.task.v2.PidsResponse', await call('Pids', { id: 'c1' }));
      assertFieldsOf('containerd.task.v2.ConnectResponse', await call('Connect', { id: 'c1' }));
      native.exit(pid, 0);
      assertFieldsOf('containerd.task.v2.WaitResponse', await call('Wait', { id: 'c1' }));
      assertFieldsOf('containerd.task.v2.DeleteResponse', await call('Delete', { id: 'c1' }));
      assert.equal(sink.events.length, 4);
      for (const e of sink.events) {
        assertFieldsOf(e.typeName, e.event);
        assert.ok(e.topic.startsWith('/tasks/'));
      }
      assertFieldsOf('containerd.events.TaskIO', sink.events[0].event.io);
    });

    it('echoes the stdio paths in State and TaskCreate', async () => {
      const out = path.join(tmp, 'c1-stdout');
      execFileSync('mkfifo', [out]);
      await create('c1', { stdout: out, stderr: out });
      const state = await call('State', { id: 'c1' });
      assert.equal(state.stdout, out);
      assert.equal(state.stderr, out);
      assert.equal(state.stdin, '');
      assert.deepEqual(sink.events[0].event.io, { stdin: '', stdout: out, stderr: out, terminal: false });
      await call('Delete', { id: 'c1' });
    });

    it('publishes TaskExit after TaskStart even when the exit arrives while Start is in progress', async () => {
      native.autoRelease = false;
      const pid = await create();
      const starting = call('Start', { id: 'c1' });
      await settle();
      native.exit(pid, 0); // the program ran and exited before execve was even reported
      const waited = await call('Wait', { id: 'c1' });
      assert.equal(waited.exit_status, 0);
      await settle(10);
      assert.deepEqual(sink.topics, ['/tasks/create'], 'no TaskExit before TaskStart');
      native.last.resolveRelease();
      assert.deepEqual(await starting, { pid });
      await waitUntil(() => sink.events.length === 3, 'TaskExit');
      assert.deepEqual(sink.topics, ['/tasks/create', '/tasks/start', '/tasks/exit']);
      await call('Delete', { id: 'c1' });
      assert.deepEqual(sink.topics, ['/tasks/create', '/tasks/start', '/tasks/exit', '/tasks/delete']);
    });

    it('still publishes TaskExit when Start fails', async () => {
      native.autoRelease = false;
      const pid = await create();
      const starting = call('Start', { id: 'c1' });
      await settle();
      native.exit(pid, 127);
      native.last.rejectRelease(new NativeError('execve "sleep": No such file or directory', 'ENOENT', 2));
      await rejectsCode(starting, Code.FailedPrecondition, /container c1/);
      await waitUntil(() => sink.events.length === 2, 'TaskExit');
      assert.deepEqual(sink.topics, ['/tasks/create', '/tasks/exit']);
      assert.equal(sink.events[1].event.exit_status, 127);
    });

    it('kill of a created task: exit then delete, no start', async () => {
      const pid = await create();
      await call('Kill', { id: 'c1', signal: 9, all: true });
      assert.equal((await call('Wait', { id: 'c1' })).exit_status, 137);
      const deleted = await call('Delete', { id: 'c1' });
      assert.equal(deleted.pid, pid);
      assert.equal(deleted.exit_status, 137);
      assert.deepEqual(sink.topics, ['/tasks/create', '/tasks/exit', '/tasks/delete']);
    });

    it('delete of a created task kills it and publishes TaskExit before TaskDelete', async () => {
      const pid = await create();
      const deleted = await call('Delete', { id: 'c1', exec_id: '' });
      assert.deepEqual(native.signals, [{ pid, signal: 9 }]);
      assert.equal(deleted.exit_status, 137);
      assert.deepEqual(sink.topics, ['/tasks/create', '/tasks/exit', '/tasks/delete']);
      assert.deepEqual(sink.events[1].event.exited_at, deleted.exited_at);
      assert.deepEqual(sink.events[2].event.exited_at, deleted.exited_at);
      assert.deepEqual(native.live(), []);
    });

    it('Wait before Start, from several callers, all get the same exit', async () => {
      const pid = await create();
      const waits = [call('Wait', { id: 'c1' }), call('Wait', { id: 'c1' }), call('Wait', { id: 'c1' })];
      let done = false;
      void Promise.all(waits).then(() => (done = true));
      await settle();
      assert.equal(done, false);
      await call('Start', { id: 'c1' });
      native.exit(pid, 9);
      const results = await Promise.all(waits);
      for (const r of results) assert.deepEqual(r, results[0]);
      assert.deepEqual(await call('Wait', { id: 'c1' }), results[0]);
    });

    it('Kill after the exit is NotFound', async () => {
      const pid = await create();
      await call('Start', { id: 'c1' });
      native.exit(pid, 0);
      await call('Wait', { id: 'c1' });
      await rejectsCode(call('Kill', { id: 'c1', signal: 9, all: true }), Code.NotFound, /process already finished/);
    });

    it('Pids lists the init of a created or running task', async () => {
      const own = makeBundle(tmp, 'hostpid', (s) => {
        s.linux!.namespaces = s.linux!.namespaces!.filter((n) => n.type !== 'pid');
      });
      const pid = await create('c1', { bundle: own.bundle });
      assert.deepEqual(await call('Pids', { id: 'c1' }), { processes: [{ pid }] });
      await call('Start', { id: 'c1' });
      assert.deepEqual(await call('Pids', { id: 'c1' }), { processes: [{ pid }] });
      await rejectsCode(call('Pids', { id: 'nope' }), Code.NotFound);
    });

    it('CloseIO closes the shim\'s stdin writer', async () => {
      const stdin = path.join(tmp, 'c1-stdin');
      execFileSync('mkfifo', [stdin]);
      await create('c1', { stdin });
      const probe = fs.openSync(stdin, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
      try {
        const buf = Buffer.alloc(8);
        assert.throws(() => fs.readSync(probe, buf, 0, 8, null), /EAGAIN/, 'stdin open while the shim holds its writer');
        assert.equal(await call('CloseIO', { id: 'c1', exec_id: '', stdin: false }), undefined);
        assert.throws(() => fs.readSync(probe, buf, 0, 8, null), /EAGAIN/, 'stdin=false closes nothing');
        await call('CloseIO', { id: 'c1', exec_id: '', stdin: true });
        assert.equal(fs.readSync(probe, buf, 0, 8, null), 0, 'EOF once no writer is left');
      } finally {
        fs.closeSync(probe);
        await call('Delete', { id: 'c1' });
      }
    });

    it('ResizePty without a terminal is a no-op for a known task', async () => {
      await create();
      assert.equal(await call('ResizePty', { id: 'c1', exec_id: '', width: 80, height: 24 }), undefined);
      await rejectsCode(call('ResizePty', { id: 'nope', width: 80, height: 24 }), Code.NotFound);
    });
  });

  describe('errors', () => {
    it('State of an unknown id is NotFound', async () => {
      await rejectsCode(call('State', { id: 'nope', exec_id: '' }), Code.NotFound, /container not created/);
    });

    it('an exec id is NotFound "process does not exist" in every method that takes one', async () => {
      await create();
      for (const method of ['State', 'Start', 'Wait', 'Kill', 'Delete', 'CloseIO', 'ResizePty']) {
        await rejectsCode(call(method, { id: 'c1', exec_id: 'e1', signal: 9 }), Code.NotFound, /process does not exist e1/);
      }
      // Nothing happened to the init.
      assert.deepEqual(native.signals, []);
      assert.equal((await call('State', { id: 'c1' })).status, STATUS.CREATED);
    });

    it('a duplicate Create is AlreadyExists, also while the first is in progress', async () => {
      native.autoReady = false;
      const first = call('Create', createReq());
      await waitUntil(() => native.spawned.length === 1, 'spawn');
      await rejectsCode(call('Create', createReq()), Code.AlreadyExists, /c1/);
      native.last.resolveReady();
      await first;
      await rejectsCode(call('Create', createReq()), Code.AlreadyExists, /c1/);
      assert.equal(native.spawned.length, 1);
      assert.deepEqual(sink.topics, ['/tasks/create']);
    });

    it('an invalid id is InvalidArgument', async () => {
      for (const id of ['', '../x', 'a/b', 'x'.repeat(77)]) {
        await rejectsCode(call('Create', createReq(id)), Code.InvalidArgument);
      }
      assert.deepEqual(native.spawned, []);
      assert.deepEqual(sink.events, []);
    });

    it('a failed Create publishes nothing and frees the id', async () => {
      const bad = makeBundle(tmp, 'bad', (s) => ((s.linux as Record<string, unknown>).intelRdt = { closID: 'x' }));
      await rejectsCode(call('Create', createReq('c1', { bundle: bad.bundle })), Code.InvalidArgument, /linux\.intelRdt/);
      assert.equal(service.containerCount, 0);
      assert.deepEqual(sink.events, []);
      assert.deepEqual(native.mountTable, []);
      await create('c1');
      assert.deepEqual(sink.topics, ['/tasks/create']);
    });

    it('a plain runtime failure is Unknown', async () => {
      native.spawnError = new NativeError('clone3: Operation not permitted', 'EPERM', 1);
      await rejectsCode(call('Create', createReq()), Code.Unknown, /clone3/);
    });

    it('concurrent Deletes delete once: one TaskDelete, the other caller gets NotFound', async () => {
      const pid = await create();
      await call('Start', { id: 'c1' });
      native.exit(pid, 0);
      await call('Wait', { id: 'c1' });
      const results = await Promise.allSettled([call('Delete', { id: 'c1' }), call('Delete', { id: 'c1' })]);
      const ok = results.filter((r) => r.status === 'fulfilled');
      const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
      assert.equal(ok.length, 1, JSON.stringify(results));
      assert.equal(failed.length, 1);
      assert.ok(failed[0].reason instanceof RpcError);
      assert.equal(failed[0].reason.code, Code.NotFound);
      assert.deepEqual(sink.topics, ['/tasks/create', '/tasks/start', '/tasks/exit', '/tasks/delete']);
      assert.equal(service.containerCount, 0);
    });

    it('Delete of a running task is FailedPrecondition and keeps it', async () => {
      await create();
      await call('Start', { id: 'c1' });
      await rejectsCode(call('Delete', { id: 'c1', exec_id: '' }), Code.FailedPrecondition, /running/);
      assert.equal((await call('State', { id: 'c1' })).status, STATUS.RUNNING);
      assert.deepEqual(sink.topics, ['/tasks/create', '/tasks/start']);
      // Once it has stopped, Delete works.
      native.exit(native.last.pid, 0);
      await call('Wait', { id: 'c1' });
      assert.equal((await call('Delete', { id: 'c1' })).exit_status, 0);
      assert.deepEqual(sink.topics, ['/tasks/create', '/tasks/start', '/tasks/exit', '/tasks/delete']);
    });

    it('Start of a stopped task is FailedPrecondition', async () => {
      const pid = await create();
      native.exit(pid, 1);
      await call('Wait', { id: 'c1' });
      await rejectsCode(call('Start', { id: 'c1' }), Code.FailedPrecondition);
    });

    it('Checkpoint is Unimplemented; without a cgroup Stats is NotFound and Pause fails (test/service/task-cgroup-ops.test.ts has the rest)', async () => {
      await create();
      await rejectsCode(call('Checkpoint', { id: 'c1' }), Code.Unimplemented, /Checkpoint/);
      await rejectsCode(call('Stats', { id: 'c1' }), Code.NotFound, /container c1: cgroup does not exist/);
      await rejectsCode(call('Pause', { id: 'c1' }), Code.FailedPrecondition, /container c1: cannot pause task in created state/);
    });
  });

  describe('Exec', () => {
    const execSpec = (proc: Record<string, unknown>) => ({
      type_url: 'types.containerd.io/opencontainers/runtime-spec/1/Process',
      value: Buffer.from(JSON.stringify(proc)),
    });
    const proc = { args: ['sh', '-c', 'exit 4'], cwd: '/', user: { uid: 0, gid: 0 }, env: ['PATH=/bin'] };

    it('registers, starts in the init\'s namespaces, and reports exit before the init\'s', async () => {
      const initPid = await create();
      await call('Start', { id: 'c1' });
      await call('Exec', { id: 'c1', exec_id: 'e1', spec: execSpec(proc) });
      assert.equal((await call('State', { id: 'c1', exec_id: 'e1' })).status, STATUS.CREATED);
      const waiting = call('Wait', { id: 'c1', exec_id: 'e1' });
      const { pid } = await call('Start', { id: 'c1', exec_id: 'e1' });
      const plan = native.spawned[1].plan;
      assert.equal(plan.rootfs, null);
      assert.ok(plan.joinNamespaces.some((j: { path: string }) => j.path === `/proc/${initPid}/ns/mnt`));
      assert.equal(plan.joinNamespaces[plan.joinNamespaces.length - 1].path, `/proc/${initPid}/ns/mnt`);
      native.exit(pid, 4);
      assert.equal((await waiting).exit_status, 4);
      await rejectsCode(call('Kill', { id: 'c1', exec_id: 'e1', signal: 9 }), Code.NotFound, /already finished/);
      assert.equal((await call('Delete', { id: 'c1', exec_id: 'e1' })).exit_status, 4);
      await rejectsCode(call('State', { id: 'c1', exec_id: 'e1' }), Code.NotFound, /process does not exist e1/);
      assert.deepEqual(sink.topics, ['/tasks/create', '/tasks/start', '/tasks/exec-added', '/tasks/exec-started', '/tasks/exit']);
    });

    it('refuses a duplicate exec id, a bad process spec, and an exec before the init runs', async () => {
      await create();
      await call('Exec', { id: 'c1', exec_id: 'e1', spec: execSpec(proc) });
      await rejectsCode(call('Start', { id: 'c1', exec_id: 'e1' }), Code.FailedPrecondition, /init process is not running/);
      await call('Start', { id: 'c1' });
      await rejectsCode(call('Exec', { id: 'c1', exec_id: 'e1', spec: execSpec(proc) }), Code.AlreadyExists, /id e1: already exists/);
      await rejectsCode(call('Exec', { id: 'c1', exec_id: 'e2', spec: execSpec({ cwd: '/' }) }), Code.InvalidArgument, /args/);
      await rejectsCode(call('Kill', { id: 'c1', exec_id: 'e1', signal: 9 }), Code.FailedPrecondition, /not created/);
    });
  });

  describe('Connect and Shutdown', () => {
    it('Connect of an unknown id answers task_pid 0 without error', async () => {
      assert.deepEqual(await call('Connect', { id: 'nope' }), { shim_pid: process.pid, task_pid: 0, version: '' });
    });

    it('Connect of a task answers its init pid', async () => {
      const pid = await create();
      assert.deepEqual(await call('Connect', { id: 'c1' }), { shim_pid: process.pid, task_pid: pid, version: '' });
    });

    it('Shutdown with containers left does not stop the shim', async () => {
      await create();
      assert.equal(await call('Shutdown', { id: 'c1', now: false }), undefined);
      await settle();
      assert.equal(shutdowns, 0);
    });

    it('Shutdown while a Create is in progress does not stop the shim', async () => {
      native.autoReady = false;
      const creating = call('Create', createReq());
      await waitUntil(() => native.spawned.length === 1, 'spawn');
      await call('Shutdown', { id: 'c1' });
      await settle();
      assert.equal(shutdowns, 0);
      native.last.resolveReady();
      await creating;
    });

    it('Shutdown without containers stops the shim, after replying', async () => {
      assert.equal(await call('Shutdown', { id: 'c1', now: false }), undefined);
      assert.equal(shutdowns, 0, 'the reply goes out first');
      await settle();
      assert.equal(shutdowns, 1);
    });

    it('Shutdown after the last Delete stops the shim', async () => {
      await create();
      await call('Delete', { id: 'c1' });
      await call('Shutdown', { id: 'c1' });
      await settle();
      assert.equal(shutdowns, 1);
    });
  });
});
