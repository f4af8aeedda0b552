// The cgroup-based Task methods through the service, without root: Pause/Resume (states,
// events, refusals in runc's words, Kill and Delete while paused), Update (JSON resources to
// the cgroup, refusals by field), Stats (the Any containerd unpacks) and TaskOOM (before the
// exit of the killed process, watch released at Delete). The cgroup is a recording fake whose
// directories are real temp dirs, so that freezer and OOM files can be watched and checked.

import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { silentLogger } from '../../shim/log/logger';
import { decodeMessage, unpackAny } from '../../shim/protocol/proto-registry';
import { Code } from '../../shim/protocol/status';
import type { UnaryHandler } from '../../shim/protocol/ttrpc-server';
import type { CgroupDriver, CgroupManager, CgroupRequest, CgroupStats } from '../../shim/sandbox/cgroups/manager';
import type { CgroupResources } from '../../shim/sandbox/cgroups/resources';
import { TaskService } from '../../shim/service/task-service';
import { FakeNative } from '../fakes/fake-native';
import { Bundle, makeBundle, makeTempDir, removeTempDir, settle } from '../fakes/fixtures';
import { callMethod, fakeSandboxDeps, RecordingSink, rejectsCode } from '../fakes/service-calls';

const NS = 'default';
const STATUS = { CREATED: 1, RUNNING: 2, STOPPED: 3, PAUSED: 4, PAUSING: 5 };
const RESOURCES_URL = 'types.containerd.io/opencontainers/runtime-spec/1/LinuxResources';
/** An exec's process spec as containerd sends it. */
const execSpec = (args: string[]) => ({
  type_url: 'types.containerd.io/opencontainers/runtime-spec/1/Process',
  value: Buffer.from(JSON.stringify({ args, cwd: '/', user: { uid: 0, gid: 0 }, env: ['PATH=/bin'] })),
});

/** A v1 cgroup whose directories are real (empty) dirs: memory/ has the OOM files. */
class FakeCgroup implements CgroupManager {
  readonly version = 1 as const;
  readonly calls: string[] = [];
  updates: CgroupResources[] = [];
  updateError?: Error;
  /** Set to hold freeze() until released, to observe PAUSING. */
  freezeGate?: Promise<void>;

  constructor(readonly root: string) {
    for (const d of this.paths) fs.mkdirSync(d, { recursive: true });
    fs.writeFileSync(path.join(this.memory, 'memory.oom_control'), 'oom_kill_disable 0\nunder_oom 0\noom_kill 0\n');
    fs.writeFileSync(path.join(this.memory, 'cgroup.event_control'), '');
    fs.writeFileSync(path.join(this.freezer, 'freezer.state'), 'THAWED');
  }

  get memory(): string {
    return path.join(this.root, 'memory');
  }

  get freezer(): string {
    return path.join(this.root, 'freezer');
  }

  get paths(): string[] {
    return [this.memory, this.freezer];
  }

  setOomKills(n: number): void {
    fs.writeFileSync(path.join(this.memory, 'memory.oom_control'), `oom_kill_disable 0\nunder_oom 0\noom_kill ${n}\n`);
  }

  freezerState(): string {
    return fs.readFileSync(path.join(this.freezer, 'freezer.state'), 'utf8');
  }

  create(): void {
    this.calls.push('create');
  }
  apply(): void {
    this.calls.push('apply');
  }
  addProcess(): void {}
  pids(): number[] {
    return [];
  }
  kill(): number {
    return 0;
  }
  async destroy(): Promise<void> {
    this.calls.push('destroy');
  }
  update(resources: CgroupResources): void {
    this.calls.push('update');
    if (this.updateError) throw this.updateError;
    this.updates.push(resources);
  }
  async freeze(): Promise<void> {
    this.calls.push('freeze');
    await this.freezeGate;
    fs.writeFileSync(path.join(this.freezer, 'freezer.state'), 'FROZEN');
  }
  async thaw(): Promise<void> {
    this.calls.push('thaw');
    fs.writeFileSync(path.join(this.freezer, 'freezer.state'), 'THAWED');
  }
  stats(): CgroupStats {
    return {
      typeName: 'io.containerd.cgroups.v1.Metrics',
      metrics: { pids: { current: 2, limit: 0 }, memory: { total_rss: 4096, usage: { limit: '9223372036854771712', usage: 8192 } } },
    };
  }
  memoryDir(): string | undefined {
    return this.memory;
  }
}

class FakeDriver implements CgroupDriver {
  readonly managers: FakeCgroup[] = [];
  constructor(private readonly root: string) {}
  forContainer(req: CgroupRequest): CgroupManager {
    const m = new FakeCgroup(path.join(this.root, req.id));
    this.managers.push(m);
    return m;
  }
}

describe('service: Pause, Resume, Update, Stats and TaskOOM', () => {
  let tmp: string;
  let b: Bundle;
  let native: FakeNative;
  let sink: RecordingSink;
  let driver: FakeDriver;
  let h: Record<string, UnaryHandler>;

  function service(withCgroups = true): Record<string, UnaryHandler> {
    return new TaskService({
      namespace: NS,
      sandboxDeps: fakeSandboxDeps(native, path.join(tmp, 'state'), { cgroups: withCgroups ? driver : undefined }),
      events: sink,
      logger: silentLogger,
      onShutdown: () => undefined,
    }).handlers();
  }

  beforeEach(() => {
    tmp = makeTempDir('burrow-task-cg-');
    b = makeBundle(tmp);
    native = new FakeNative();
    sink = new RecordingSink();
    driver = new FakeDriver(path.join(tmp, 'cg'));
    h = service();
  });

  afterEach(() => removeTempDir(tmp));

  const call = (method: string, req: Record<string, unknown>): Promise<any> => callMethod(h, 'containerd.task.v2.Task', NS, method, req);

  async function running(id = 'c1'): Promise<number> {
    const { pid } = await call('Create', { id, bundle: b.bundle, rootfs: [], stdin: '', stdout: '', stderr: '', terminal: false });
    await call('Start', { id });
    return pid;
  }

  const status = async (id = 'c1', execId = '') => (await call('State', { id, exec_id: execId })).status;
  const resources = (r: unknown) => ({ type_url: RESOURCES_URL, value: Buffer.from(JSON.stringify(r)) });

  describe('Pause and Resume', () => {
    it('freeze → PAUSED with TaskPaused; thaw → RUNNING with TaskResumed; wrong states refused in runc\'s words', async () => {
      await running();
      const cg = driver.managers[0];
      await call('Pause', { id: 'c1' });
      assert.equal(await status(), STATUS.PAUSED);
      assert.equal(cg.freezerState(), 'FROZEN');
      await rejectsCode(call('Pause', { id: 'c1' }), Code.FailedPrecondition, /container c1: cannot pause a paused container/);
      await call('Resume', { id: 'c1' });
      assert.equal(await status(), STATUS.RUNNING);
      assert.equal(cg.freezerState(), 'THAWED');
      await rejectsCode(call('Resume', { id: 'c1' }), Code.FailedPrecondition, /container c1: cannot resume a running process/);
      const paused = sink.events.filter((e) => e.topic === '/tasks/paused' || e.topic === '/tasks/resumed');
      assert.deepEqual(paused.map((e) => [e.topic, e.typeName, e.event]), [
        ['/tasks/paused', 'containerd.events.TaskPaused', { container_id: 'c1' }],
        ['/tasks/resumed', 'containerd.events.TaskResumed', { container_id: 'c1' }],
      ]);
    });

    it('a created or stopped task cannot be paused or resumed', async () => {
      const { pid } = await call('Create', { id: 'c1', bundle: b.bundle, rootfs: [] });
      await rejectsCode(call('Pause', { id: 'c1' }), Code.FailedPrecondition, /cannot pause task in created state/);
      await rejectsCode(call('Resume', { id: 'c1' }), Code.FailedPrecondition, /cannot resume task in created state/);
      await call('Start', { id: 'c1' });
      native.exit(pid, 0);
      await call('Wait', { id: 'c1' });
      await rejectsCode(call('Pause', { id: 'c1' }), Code.FailedPrecondition, /cannot pause a stopped container/);
      await rejectsCode(call('Resume', { id: 'c1' }), Code.FailedPrecondition, /cannot resume a stopped container/);
      assert.deepEqual(driver.managers[0].calls.filter((c) => c === 'freeze' || c === 'thaw'), []);
    });

    it('State says PAUSING while the freeze is under way, for the init and its execs; a Resume waits for it', async () => {
      await running();
      await call('Exec', {
        id: 'c1', exec_id: 'e1',
        spec: execSpec(['sleep', '9']),
      });
      const cg = driver.managers[0];
      let release!: () => void;
      cg.freezeGate = new Promise((r) => (release = r));
      const pausing = call('Pause', { id: 'c1' });
      await settle();
      assert.equal(await status(), STATUS.PAUSING);
      assert.equal(await status('c1', 'e1'), STATUS.PAUSING);
      const resuming = call('Resume', { id: 'c1' });
      await settle();
      assert.deepEqual(cg.calls.filter((c) => c === 'freeze' || c === 'thaw'), ['freeze'], 'Resume waits for the Pause');
      release();
      await pausing;
      await resuming;
      assert.equal(await status(), STATUS.RUNNING);
      assert.deepEqual(sink.topics.filter((t) => t === '/tasks/paused' || t === '/tasks/resumed'), ['/tasks/paused', '/tasks/resumed']);
    });

    it('while paused: execs show PAUSED, no exec starts, Delete is refused', async () => {
      await running();
      const spec = execSpec(['true']);
      await call('Exec', { id: 'c1', exec_id: 'e1', spec });
      await call('Pause', { id: 'c1' });
      assert.equal(await status('c1', 'e1'), STATUS.PAUSED);
      await rejectsCode(call('Start', { id: 'c1', exec_id: 'e1' }), Code.FailedPrecondition, /container c1: cannot exec in a paused container/);
      await rejectsCode(call('Exec', { id: 'c1', exec_id: 'e2', spec }), Code.FailedPrecondition, /container c1: cannot exec in a paused state/);
      await rejectsCode(call('Delete', { id: 'c1' }), Code.FailedPrecondition, /container c1: cannot delete a paused process/);
      assert.equal(await status(), STATUS.PAUSED);
    });

    it('Kill SIGKILL of a paused task thaws it after the signal (runc), which lets it die; other signals wait for Resume', async () => {
      const pid = await running();
      const cg = driver.managers[0];
      await call('Pause', { id: 'c1' });
      native.fatalSignals.clear();
      await call('Kill', { id: 'c1', signal: 15, all: false });
      assert.equal(cg.freezerState(), 'FROZEN', 'SIGTERM is queued until Resume');
      assert.equal(await status(), STATUS.PAUSED);
      await call('Kill', { id: 'c1', signal: 9, all: true });
      assert.deepEqual(native.signals.map((s) => s.signal), [15, 9]);
      assert.equal(cg.calls.at(-1), 'thaw');
      assert.equal(cg.freezerState(), 'THAWED');
      assert.equal(await status(), STATUS.PAUSED, 'paused until the exit is seen');
      native.exit(pid, 137);
      await call('Wait', { id: 'c1' });
      assert.equal(await status(), STATUS.STOPPED);
      const del = await call('Delete', { id: 'c1' });
      assert.equal(del.exit_status, 137);
    });

    it('an init that exits while paused leaves its cgroup thawed (runc resumes it)', async () => {
      const pid = await running();
      const cg = driver.managers[0];
      await call('Pause', { id: 'c1' });
      native.exit(pid, 0);
      await call('Wait', { id: 'c1' });
      assert.equal(await status(), STATUS.STOPPED);
      assert.equal(cg.freezerState(), 'THAWED');
    });

    it('without a cgroup Pause fails naming the container', async () => {
      h = service(false);
      await running();
      await rejectsCode(call('Pause', { id: 'c1' }), Code.FailedPrecondition, /container c1: pause: the container has no cgroup/);
    });
  });

  describe('Update', () => {
    it('applies JSON linux.resources through the cgroup, while created, running or paused', async () => {
      await call('Create', { id: 'c1', bundle: b.bundle, rootfs: [] });
      const cg = driver.managers[0];
      await call('Update', { id: 'c1', resources: resources({ memory: { limit: 1048576 } }), annotations: { a: 'b' } });
      await call('Start', { id: 'c1' });
      await call('Update', { id: 'c1', resources: resources({ cpu: { quota: 50000, period: 100000 }, pids: { limit: 7 } }) });
      await call('Pause', { id: 'c1' });
      await call('Update', { id: 'c1', resources: resources({ pids: { limit: 8 } }) });
      assert.deepEqual(cg.updates.map((u) => [u.memory, u.cpu, u.pids]), [
        [{ limit: 1048576 }, undefined, undefined],
        [undefined, { quota: 50000, period: 100000 }, { limit: 7 }],
        [undefined, undefined, { limit: 8 }],
      ]);
    });

    it('accepts the device rules the container has (CRI sends them all) and refuses others by field', async () => {
      await running();
      const cg = driver.managers[0];
      const spec = JSON.parse(fs.readFileSync(path.join(b.bundle, 'config.json'), 'utf8'));
      await call('Update', { id: 'c1', resources: resources({ ...spec.linux.resources, memory: { limit: 2097152 } }) });
      assert.equal(cg.updates.length, 1);
      await rejectsCode(call('Update', { id: 'c1', resources: resources({ devices: [{ allow: true, access: 'rwm' }] }) }),
        Code.InvalidArgument, /container c1: linux\.resources\.devices: the device rules of a created container cannot be changed by an update/);
      assert.equal(cg.updates.length, 1);
    });

    it('refuses what cannot be applied: unknown fields, bad JSON, no resources, a stopped task; cgroup refusals keep their code', async () => {
      const pid = await running();
      const cg = driver.managers[0];
      await rejectsCode(call('Update', { id: 'c1', resources: resources({ memory: { limit: 'x' } }) }),
        Code.InvalidArgument, /container c1: linux\.resources\.memory\.limit: "x" is not an integer/);
      await rejectsCode(call('Update', { id: 'c1', resources: resources({ intelRdt: {} }) }), Code.InvalidArgument, /container c1: linux\.resources\.intelRdt: not supported/);
      await rejectsCode(call('Update', { id: 'c1', resources: { type_url: RESOURCES_URL, value: Buffer.from('{') } }),
        Code.InvalidArgument, new RegExp(`container c1: update: resources \\(${RESOURCES_URL}\\) are not JSON`));
      await rejectsCode(call('Update', { id: 'c1' }), Code.InvalidArgument, /container c1: update: no resources given/);
      const { invalidArgument } = await import('../../shim/sandbox/errors');
      cg.updateError = invalidArgument('linux.resources.unified: unified (cgroup v2) resources cannot be set on a cgroup v1 host');
      await rejectsCode(call('Update', { id: 'c1', resources: resources({ unified: { 'memory.high': '1' } }) }),
        Code.InvalidArgument, /container c1: linux\.resources\.unified: unified \(cgroup v2\) resources cannot be set on a cgroup v1 host/);
      native.exit(pid, 0);
      await call('Wait', { id: 'c1' });
      await rejectsCode(call('Update', { id: 'c1', resources: resources({ pids: { limit: 1 } }) }),
        Code.FailedPrecondition, /container c1: cannot update a stopped container/);
    });
  });

  describe('Stats', () => {
    it('answers the cgroup\'s metrics as an Any containerd unpacks, uint64s above 2^53 exact', async () => {
      await running();
      const resp = await call('Stats', { id: 'c1' });
      assert.equal(resp.stats.type_url, 'io.containerd.cgroups.v1.Metrics');
      const m = unpackAny<any>(resp.stats);
      assert.equal(m.pids.current, 2);
      assert.equal(m.memory.total_rss, 4096);
      const exact = decodeMessage<any>('io.containerd.cgroups.v1.Metrics', resp.stats.value);
      assert.ok(exact.memory.usage.limit > 9.2e18);
    });

    it('is NotFound "cgroup does not exist" without a cgroup, NotFound for an unknown task', async () => {
      h = service(false);
      await running();
      await rejectsCode(call('Stats', { id: 'c1' }), Code.NotFound, /container c1: cgroup does not exist/);
      await rejectsCode(call('Stats', { id: 'nope' }), Code.NotFound, /container nope: container not created/);
    });

    it('Checkpoint stays Unimplemented', async () => {
      await running();
      await rejectsCode(call('Checkpoint', { id: 'c1', path: '/tmp/x' }), Code.Unimplemented, /Checkpoint/);
    });
  });

  describe('TaskOOM', () => {
    it('is published for each OOM kill the eventfd reports, from Create on', async () => {
      await call('Create', { id: 'c1', bundle: b.bundle, rootfs: [] });
      const cg = driver.managers[0];
      assert.ok(native.oomWatches.has(cg.memory), 'watching right after Create');
      cg.setOomKills(1);
      native.notifyOom(cg.memory);
      const oom = sink.events.filter((e) => e.topic === '/tasks/oom');
      assert.deepEqual(oom.map((e) => [e.typeName, e.event]), [['containerd.events.TaskOOM', { container_id: 'c1' }]]);
    });

    it('comes before the TaskExit of a killed init even when its notification is late, once', async () => {
      const pid = await running();
      const cg = driver.managers[0];
      cg.setOomKills(1);
      native.exit(pid, 137);
      await call('Wait', { id: 'c1' });
      await settle();
      native.notifyOom(cg.memory);
      const topics = sink.topics.filter((t) => t === '/tasks/oom' || t === '/tasks/exit');
      assert.deepEqual(topics, ['/tasks/oom', '/tasks/exit']);
    });

    it('comes before the TaskExit of a killed exec too', async () => {
      await running();
      const cg = driver.managers[0];
      const spec = execSpec(['x']);
      await call('Exec', { id: 'c1', exec_id: 'e1', spec });
      const { pid } = await call('Start', { id: 'c1', exec_id: 'e1' });
      cg.setOomKills(1);
      native.exit(pid, 137);
      await call('Wait', { id: 'c1', exec_id: 'e1' });
      await settle();
      const tail = sink.events.slice(-2).map((e) => [e.topic, e.event.id ?? e.event.container_id]);
      assert.deepEqual(tail, [['/tasks/oom', 'c1'], ['/tasks/exit', 'e1']]);
    });

    it('stops at Delete: the eventfd is released, nothing is published after', async () => {
      const pid = await running();
      const cg = driver.managers[0];
      native.exit(pid, 0);
      await call('Wait', { id: 'c1' });
      await call('Delete', { id: 'c1' });
      assert.equal(native.oomWatches.size, 0);
      assert.equal(sink.topics.includes('/tasks/oom'), false);
      assert.ok(cg.calls.includes('destroy'));
    });

    it('a cgroup that cannot be watched does not fail the Create (logged, as runc\'s shim)', async () => {
      native.oomWatchError = new Error('OOM notifications of memory cgroup x: write cgroup.event_control: Invalid argument');
      await running();
      assert.equal(native.oomWatches.size, 0);
      assert.equal(await status(), STATUS.RUNNING);
    });
  });
});
