// The cgroup-based Task methods end to end, each case under containerd's runc shim
// (io.containerd.runc.v2, runc 1.1.5) and under Burrow on one private containerd: Stats
// (`ctr task metrics`), Pause/Resume (`ctr task pause/resume`, with a counter on a bind mount to
// see that the frozen process makes no progress), Kill and Delete of a paused task, Update
// (ctr 1.6 has no `task update`: containerd's Tasks/Update over gRPC, as CRI's
// UpdateContainerResources ends up calling it) and an OOM kill under --memory-limit
// (`/tasks/oom` in `ctr events`, exit 137).
//
// Then the same mechanisms straight on the kernel, without containerd: the cgroup v2 freezer
// and stats on a real cgroup2 directory, and OOM notifications (the native eventfd monitor on
// cgroup v1, inotify on cgroup v2) with their fds released.

import { strict as assert } from 'assert';
import { ChildProcess, spawn } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import * as grpc from '@grpc/grpc-js';
import { silentLogger } from '../shim/log/logger';
import { FfiNativeRuntime } from '../shim/native/ffi-native';
import { encodeMessage } from '../shim/protocol/proto-registry';
import { removeCgroupDir, writeCgroupFile } from '../shim/sandbox/cgroups/cgroupfs';
import { v2Frozen } from '../shim/sandbox/cgroups/freezer';
import { OomWatcher } from '../shim/sandbox/cgroups/oom-watch';
import { V2CgroupManager } from '../shim/sandbox/cgroups/v2-manager';
import {
  buildDir,
  BUSYBOX_REF,
  containerdForSuite,
  ensureHostTools,
  leakCheckEachCase,
  PrivateContainerd,
  RUNTIME_NAMES,
  RuntimeName,
  RUNTIMES,
  sleep,
} from './harness';

const NS = 'default';
const MiB = 1024 * 1024;
/** The host's cgroup hierarchies, bound read-only into containers so they can read their own. */
const CG_BIND = 'type=bind,src=/sys/fs/cgroup,dst=/cg,options=rbind:ro';

function isV1Host(): boolean {
  return !fs.existsSync('/sys/fs/cgroup/cgroup.controllers');
}

/** `sh -c` text printing the container's own memory limit as its cgroup has it (through /cg). */
function ownMemoryLimitCmd(): string {
  if (!isV1Host()) return 'p=$(sed -n "s/^0:://p" /proc/self/cgroup); cat "/cg$p/memory.max"';
  return 'p=$(grep -E "^[0-9]+:([^:]*,)?memory(,[^:]*)?:" /proc/self/cgroup | cut -d: -f3); cat "/cg/memory$p/memory.limit_in_bytes"';
}

/** Every key path of a JSON value whose leaves are set (Go's omitempty leaves out zeros); arrays as one path. */
function keyPaths(v: unknown, prefix = ''): string[] {
  if (Array.isArray(v)) return v.length > 0 ? [prefix] : [];
  if (v === null || typeof v !== 'object') return prefix ? [prefix] : [];
  const entries = Object.entries(v as Record<string, unknown>);
  if (entries.length === 0) return prefix ? [prefix] : [];
  return entries.flatMap(([k, child]) => keyPaths(child, prefix ? `${prefix}.${k}` : k));
}

function at(obj: unknown, dotted: string): unknown {
  return dotted.split('.').reduce<unknown>((o, k) => (o as Record<string, unknown> | undefined)?.[k], obj);
}

/** How many eventfds process `pid` holds. */
function eventfdsOf(pid: number | 'self'): number {
  return fs.readdirSync(`/proc/${pid}/fd`).filter((fd) => {
    try {
      return fs.readlinkSync(`/proc/${pid}/fd/${fd}`) === 'anon_inode:[eventfd]';
    } catch {
      return false;
    }
  }).length;
}

/** `ctr events` in the background: every event line, parsed. */
class EventWatch {
  private readonly child: ChildProcess;
  private text = '';

  constructor(c: PrivateContainerd) {
    this.child = spawn('ctr', ['--address', c.address, 'events'], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stdout!.on('data', (b: Buffer) => (this.text += b.toString()));
  }

  /** [topic, event] of every event about container `id`, in order. */
  of(id: string): Array<[string, Record<string, unknown>]> {
    const out: Array<[string, Record<string, unknown>]> = [];
    for (const line of this.text.split('\n')) {
      const m = /^\S+ \S+ \S+ \S+ (\S+) (\S+) (\{.*\})$/.exec(line);
      if (!m) continue;
      const event = JSON.parse(m[3]) as Record<string, unknown>;
      if (event.container_id === id || event.id === id) out.push([m[2], event]);
    }
    return out;
  }

  async waitFor(id: string, topic: string, timeoutMs = 15_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.of(id).some(([t]) => t === topic)) {
      if (Date.now() > deadline) assert.fail(`no ${topic} event for ${id}; events:\n${this.text}`);
      await sleep(50);
    }
  }

  /** Waits a moment until containerd's `ctr events` subscription is in place. */
  async ready(): Promise<void> {
    await sleep(500);
  }

  stop(): void {
    this.child.kill('SIGKILL');
  }
}

/**
 * containerd's Tasks/Update (what `ctr` 1.6 cannot send). Its request has the same field
 * numbers and types as the shim's UpdateTaskRequest (container_id 1, resources 2, annotations
 * 3), so the shim's encoder makes the bytes. Resolves with the gRPC error, or undefined.
 */
async function updateTask(c: PrivateContainerd, id: string, resources: object): Promise<grpc.ServiceError | undefined> {
  const client = new grpc.Client(`unix://${c.address}`, grpc.credentials.createInsecure());
  const md = new grpc.Metadata();
  md.set('containerd-namespace', NS);
  const req = Buffer.from(encodeMessage('containerd.task.v2.UpdateTaskRequest', {
    id,
    resources: { type_url: 'types.containerd.io/opencontainers/runtime-spec/1/LinuxResources', value: Buffer.from(JSON.stringify(resources)) },
  }));
  try {
    return await new Promise((resolve) => {
      client.makeUnaryRequest(
        '/containerd.services.tasks.v1.Tasks/Update',
        (b: Buffer) => b,
        (b: Buffer) => b,
        req,
        md,
        { deadline: Date.now() + 30_000 },
        (err) => resolve(err ?? undefined),
      );
    });
  } finally {
    client.close();
  }
}

describe('cgroup operations through ctr: metrics, pause/resume, update, OOM under runc and Burrow', function () {
  this.timeout(300_000);
  const node = containerdForSuite({ name: 'cgroup-ops' });
  let shared: string;
  let n = 0;
  const uid = (rt: RuntimeName) => `cgop${++n}${rt}`;

  before(async function () {
    shared = buildDir('cgroup-ops');
    fs.rmSync(shared, { recursive: true, force: true });
    fs.mkdirSync(shared, { recursive: true });
  });

  leakCheckEachCase(() => node.c);

  async function runDetached(rt: RuntimeName, id: string, flags: string[], args: string[]): Promise<void> {
    const r = await node.c.ctr(['run', '-d', '--runtime', RUNTIMES[rt], ...flags, BUSYBOX_REF, id, ...args]);
    assert.equal(r.code, 0, `${rt}: ctr run ${id}: ${r.stderr}`);
  }

  async function taskStatus(id: string): Promise<string> {
    const m = new RegExp(`^${id}\\s+\\d+\\s+(\\S+)`, 'm').exec((await node.c.ctr(['task', 'ls'])).stdout);
    return m ? m[1] : 'NONE';
  }

  async function waitForStatus(id: string, status: string): Promise<void> {
    for (let i = 0; i < 150; i++) {
      if ((await taskStatus(id)) === status) return;
      await sleep(100);
    }
    assert.fail(`task ${id} never reached ${status}:\n${(await node.c.ctr(['task', 'ls'])).stdout}`);
  }

  /** Kills and removes a container whatever state it is in (rm -f works on paused tasks too). */
  async function remove(id: string): Promise<void> {
    const rm = await node.c.ctr(['task', 'rm', '-f', id]);
    assert.equal(rm.code, 0, `task rm -f ${id}: ${rm.stderr}`);
    const crm = await node.c.ctr(['container', 'rm', id]);
    assert.equal(crm.code, 0, `container rm ${id}: ${crm.stderr}`);
  }

  /** The JSON of `ctr task metrics`, once cpu and memory are visible (the kernel flushes memcg stats lazily). */
  async function busyMetrics(rt: RuntimeName, id: string): Promise<Record<string, unknown>> {
    let last = '';
    for (let i = 0; i < 50; i++) {
      const r = await node.c.ctr(['task', 'metrics', '--format', 'json', id]);
      assert.equal(r.code, 0, `${rt}: ctr task metrics: ${r.stderr}`);
      last = r.stdout;
      const m = JSON.parse(r.stdout) as Record<string, unknown>;
      const memory = isV1Host() ? ['memory.usage.usage', 'memory.total_rss', 'memory.total_pg_fault'] : ['memory.usage', 'memory.anon', 'memory.pgfault'];
      const cpu = isV1Host() ? ['cpu.usage.total', 'cpu.usage.user'] : ['cpu.usage_usec', 'cpu.user_usec'];
      if ([...memory, ...cpu].every((k) => Number(at(m, k)) > 0)) return m;
      await sleep(200);
    }
    assert.fail(`${rt}: cpu and memory metrics never became non-zero:\n${last}`);
  }

  const counterLoop = 'i=0; while :; do i=$((i+1)); echo $i > /shared/counter; usleep 20000; done';

  async function counterOf(file: string): Promise<number> {
    for (let i = 0; i < 100; i++) {
      const text = fs.existsSync(file) ? fs.readFileSync(file, 'utf8').trim() : '';
      if (text !== '') return Number(text);
      await sleep(20);
    }
    assert.fail(`${file} stayed empty`);
  }

  async function waitCounterAbove(file: string, value: number): Promise<number> {
    for (let i = 0; i < 200; i++) {
      const now = await counterOf(file);
      if (now > value) return now;
      await sleep(25);
    }
    assert.fail(`${file} never went above ${value}`);
  }

  it('ctr task metrics of a busy container: non-zero cpu and memory under both, the same fields', async function () {
    const json = {} as Record<RuntimeName, Record<string, unknown>>;
    const table = {} as Record<RuntimeName, string[]>;
    for (const rt of RUNTIME_NAMES) {
      const id = uid(rt);
      await runDetached(rt, id, ['--memory-limit', String(64 * MiB)], ['sh', '-c', 'while :; do :; done']);
      try {
        json[rt] = await busyMetrics(rt, id);
        const t = await node.c.ctr(['task', 'metrics', id]);
        assert.equal(t.code, 0, t.stderr);
        // The METRIC column of the table format.
        table[rt] = t.stdout.split('\n').slice(t.stdout.split('\n').findIndex((l) => l.startsWith('METRIC')) + 1)
          .map((l) => l.trim().split(/\s+/)[0]).filter(Boolean);
      } finally {
        await remove(id);
      }
    }
    assert.deepEqual(table.burrow, table.runc);
    assert.ok(table.runc.length >= 5, `table: ${table.runc.join(' ')}`);
    assert.deepEqual(Object.keys(json.burrow).sort(), Object.keys(json.runc).sort(), 'the same sections');
    // Fields whose zero-ness depends on timing or on how the runtime starts the process, not on
    // how the metrics are read (Go's omitempty leaves zeros out): page-cache, LRU and paging
    // counters (runc's own init runs, allocates and pages out inside the cgroup; Burrow's child
    // joins it right before execve), kernel CPU time, throttling, block I/O, failure counters.
    const volatile = new RegExp([
      '^memory\\.(total_)?(cache|rss_huge|mapped_file|dirty|writeback|pg_pg_in|pg_pg_out|pg_maj_fault|inactive_anon|active_anon|inactive_file|active_file|unevictable)$',
      '^memory\\.(usage|swap|kernel|kernel_tcp)\\.failcnt$',
      '^memory\\.(file\\w*|shmem|sock|slab\\w*|kernel_stack|anon_thp|pgmajfault|pg(refill|scan|steal|activate|deactivate|lazyfree|lazyfreed)|workingset_\\w+|thp_\\w+|max_usage|swap_max_usage|psi\\..*)$',
      '^cpu\\.usage\\.kernel$', '^cpu\\.throttling', '^cpu\\.(system_usec|nr_periods|nr_throttled|throttled_usec|nr_bursts|burst_usec|psi\\..*)$',
      '^blkio', '^io\\.', '^hugetlb', '^rdma', '^memory_oom_control', '^memory_events',
    ].join('|'));
    const runcKeys = keyPaths(json.runc).filter((k) => !volatile.test(k)).sort();
    const burrowKeys = keyPaths(json.burrow).filter((k) => !volatile.test(k)).sort();
    assert.deepEqual(burrowKeys, runcKeys);
    assert.ok(runcKeys.length >= 10, `compared fields: ${runcKeys.join(' ')}`);
    if (isV1Host()) {
      for (const rt of RUNTIME_NAMES) {
        assert.equal(at(json[rt], 'memory.usage.limit'), 64 * MiB, `${rt}: memory.usage.limit`);
        assert.equal(at(json[rt], 'memory.hierarchical_memory_limit'), 64 * MiB, `${rt}: hierarchical_memory_limit`);
        assert.ok((at(json[rt], 'cpu.usage.per_cpu') as number[]).length > 0, `${rt}: per_cpu`);
      }
    }
  });

  for (const rt of RUNTIME_NAMES) {
    it(`${rt}: ctr task pause stops the process (PAUSED, no progress), resume lets it go on (RUNNING), with events`, async function () {
      const id = uid(rt);
      const dir = path.join(shared, id);
      fs.mkdirSync(dir);
      const counter = path.join(dir, 'counter');
      const events = new EventWatch(node.c);
      await events.ready();
      try {
        await runDetached(rt, id, ['--mount', `type=bind,src=${dir},dst=/shared,options=rbind:rw`], ['sh', '-c', counterLoop]);
        await waitCounterAbove(counter, 3);
        const pause = await node.c.ctr(['task', 'pause', id]);
        assert.equal(pause.code, 0, pause.stderr);
        assert.equal(await taskStatus(id), 'PAUSED');
        const frozenAt = await counterOf(counter);
        await sleep(700);
        assert.equal(await counterOf(counter), frozenAt, 'the frozen process made no progress');
        const again = await node.c.ctr(['task', 'pause', id]);
        assert.notEqual(again.code, 0);
        assert.match(again.stderr, /cannot pause a paused container/);
        const resume = await node.c.ctr(['task', 'resume', id]);
        assert.equal(resume.code, 0, resume.stderr);
        assert.equal(await taskStatus(id), 'RUNNING');
        await waitCounterAbove(counter, frozenAt);
        const resumeAgain = await node.c.ctr(['task', 'resume', id]);
        assert.notEqual(resumeAgain.code, 0);
        assert.match(resumeAgain.stderr, /cannot resume a running process/);
        await events.waitFor(id, '/tasks/resumed');
        const topics = events.of(id).map(([t]) => t).filter((t) => t === '/tasks/paused' || t === '/tasks/resumed');
        assert.deepEqual(topics, ['/tasks/paused', '/tasks/resumed']);
      } finally {
        events.stop();
        await remove(id);
      }
    });

    it(`${rt}: a paused task cannot be deleted; SIGKILL ends it (thawed), and rm -f removes another paused one`, async function () {
      const a = uid(rt);
      const b = uid(rt);
      await runDetached(rt, a, [], ['sleep', '600']);
      await runDetached(rt, b, [], ['sleep', '600']);
      try {
        for (const id of [a, b]) assert.equal((await node.c.ctr(['task', 'pause', id])).code, 0);
        const rm = await node.c.ctr(['task', 'rm', a]);
        assert.notEqual(rm.code, 0);
        assert.match(rm.stderr, /task must be stopped before deletion: paused/);
        const kill = await node.c.ctr(['task', 'kill', '-s', 'SIGKILL', a]);
        assert.equal(kill.code, 0, kill.stderr);
        await waitForStatus(a, 'STOPPED');
        const rmStopped = await node.c.ctr(['task', 'rm', a]);
        assert.equal(rmStopped.code, 0, rmStopped.stderr);
        // containerd's WithProcessKill: SIGKILL to all, wait for the exit, delete.
        const rmForce = await node.c.ctr(['task', 'rm', '-f', b]);
        assert.equal(rmForce.code, 0, rmForce.stderr);
        assert.equal(await taskStatus(b), 'NONE');
      } finally {
        for (const id of [a, b]) {
          if ((await taskStatus(id)) !== 'NONE') await node.c.ctr(['task', 'rm', '-f', id]);
          await node.c.ctr(['container', 'rm', id]);
        }
      }
    });

    it(`${rt}: Update (containerd Tasks/Update) changes the memory limit the container sees; a stopped task refuses it`, async function () {
      const id = uid(rt);
      await runDetached(rt, id, ['--memory-limit', String(64 * MiB), '--mount', CG_BIND], ['sleep', '600']);
      const limit = async (execId: string) => {
        const r = await node.c.ctr(['task', 'exec', '--exec-id', execId, id, 'sh', '-c', ownMemoryLimitCmd()]);
        assert.equal(r.code, 0, `${rt}: ${r.stderr}`);
        return r.stdout.trim();
      };
      try {
        assert.equal(await limit('before'), String(64 * MiB));
        const err = await updateTask(node.c, id, { memory: { limit: 96 * MiB } });
        assert.equal(err, undefined, `${rt}: ${err?.details}`);
        assert.equal(await limit('after'), String(96 * MiB));
        assert.equal((await node.c.ctr(['task', 'kill', '-s', 'SIGKILL', id])).code, 0);
        await waitForStatus(id, 'STOPPED');
        const stopped = await updateTask(node.c, id, { memory: { limit: 128 * MiB } });
        assert.ok(stopped, `${rt}: the update of a stopped task succeeded`);
        assert.match(stopped.details, /cannot update a stopped container/);
      } finally {
        await remove(id);
      }
    });

    it(`${rt}: an OOM kill under --memory-limit publishes /tasks/oom and the task exits 137`, async function () {
      const id = uid(rt);
      const events = new EventWatch(node.c);
      await events.ready();
      try {
        // dd's 64 MiB buffer is filled from /dev/zero: far above the 32 MiB limit (no swap is charged to it).
        const r = await node.c.ctr(['run', '--rm', '--runtime', RUNTIMES[rt], '--memory-limit', String(32 * MiB), BUSYBOX_REF, id,
          'dd', 'if=/dev/zero', 'of=/dev/null', 'bs=64M', 'count=1'], { timeoutSec: 90 });
        assert.equal(r.code, 137, `${rt}: ${r.stderr}`);
        await events.waitFor(id, '/tasks/oom');
        await events.waitFor(id, '/tasks/exit');
        const topics = events.of(id).map(([t]) => t);
        assert.deepEqual(topics.filter((t) => t === '/tasks/oom').length, 1, topics.join(' '));
        if (rt === 'burrow') {
          // Burrow reports the OOM before the exit it caused (CRI then sees OOMKilled at once).
          assert.ok(topics.indexOf('/tasks/oom') < topics.indexOf('/tasks/exit'), topics.join(' '));
        }
        const exit = events.of(id).find(([t]) => t === '/tasks/exit')![1];
        assert.equal(exit.exit_status, 137);
      } finally {
        events.stop();
      }
    });
  }
});

/** The cgroup2 mount: /sys/fs/cgroup on a v2 host, /sys/fs/cgroup/unified on a hybrid one. */
function cgroup2Mount(): string {
  for (const m of ['/sys/fs/cgroup', '/sys/fs/cgroup/unified']) if (fs.existsSync(path.join(m, 'cgroup.controllers'))) return m;
  throw new Error('no cgroup2 hierarchy is mounted on /sys/fs/cgroup or /sys/fs/cgroup/unified');
}

const eventfds = () => eventfdsOf('self');

/** A process that joins cgroup `dir` (its cgroup.procs) before it execs `cmd`. */
function inCgroup(dir: string, cmd: string): ChildProcess {
  return spawn('sh', ['-c', `echo $$ > ${dir}/cgroup.procs && exec ${cmd}`], { stdio: 'ignore' });
}

const exitOf = (ch: ChildProcess) =>
  new Promise<string | number | null>((r) => {
    if (ch.exitCode !== null || ch.signalCode !== null) r(ch.signalCode ?? ch.exitCode);
    else ch.once('exit', (code, sig) => r(sig ?? code));
  });

describe('cgroup operations on the kernel, without containerd', function () {
  this.timeout(60_000);
  const children: ChildProcess[] = [];
  const dirs: string[] = [];

  before(function () {
    ensureHostTools();
  });

  afterEach(async function () {
    for (const ch of children.splice(0)) if (ch.exitCode === null && ch.signalCode === null) ch.kill('SIGKILL');
    for (const d of dirs.splice(0).reverse()) await removeCgroupDir(d);
  });

  it('cgroup v2: Stats reads a real cgroup, Pause freezes it (cgroup.events frozen 1, no progress), Resume thaws it', async function () {
    const parent = path.join(cgroup2Mount(), `burrow-e2e-cgops-${process.pid}`);
    fs.mkdirSync(parent);
    dirs.push(parent);
    const m = new V2CgroupManager('v2ops', { mountPoint: parent, root: '/', version: 2, controllers: [] }, path.join(parent, 'c1'));
    m.create();
    dirs.push(path.join(parent, 'c1'));
    const ch = inCgroup(m.dir, "sh -c 'while :; do :; done'");
    children.push(ch);
    // Progress is CPU time: cpu.stat's usage_usec (a core file of every cgroup2 directory).
    const usage = () => Number((m.stats().metrics as { cpu: { usage_usec: number | string } }).cpu.usage_usec);
    for (let i = 0; i < 100 && usage() < 50_000; i++) await sleep(20);
    const stats = m.stats();
    assert.equal(stats.typeName, 'io.containerd.cgroups.v2.Metrics');
    assert.ok(usage() >= 50_000, JSON.stringify(stats.metrics));
    await m.freeze();
    assert.equal(v2Frozen(m.dir), true);
    const frozenAt = usage();
    await sleep(500);
    assert.ok(usage() - frozenAt < 5_000, `no progress while frozen: ${frozenAt} → ${usage()} µs`);
    await m.thaw();
    assert.equal(v2Frozen(m.dir), false);
    await sleep(300);
    assert.ok(usage() - frozenAt > 50_000, `progress after the thaw: ${frozenAt} → ${usage()} µs`);
    await m.destroy();
    assert.equal(await exitOf(ch), 'SIGKILL', 'destroy killed it');
  });

  it('OOM notifications from the kernel reach the watcher; close and cgroup removal release them', async function () {
    const v1Memory = '/sys/fs/cgroup/memory';
    const native = new FfiNativeRuntime();
    let reports = 0;
    const start = (version: 1 | 2, dir: string) =>
      OomWatcher.start({ id: 'oom-e2e', version, dir, native, logger: silentLogger, onOom: () => reports++ });
    let dir: string;
    let version: 1 | 2;
    if (fs.existsSync(path.join(v1Memory, 'cgroup.event_control'))) {
      // cgroup v1 (this host kind): the native eventfd monitor.
      version = 1;
      dir = path.join(v1Memory, `burrow-e2e-oom-${process.pid}`);
      fs.mkdirSync(dir);
      dirs.push(dir);
      writeCgroupFile(dir, 'memory.limit_in_bytes', String(16 * MiB));
    } else {
      // cgroup v2: inotify on memory.events, the memory controller enabled for a cgroup of our own.
      version = 2;
      const mount = cgroup2Mount();
      writeCgroupFile(mount, 'cgroup.subtree_control', '+memory');
      dir = path.join(mount, `burrow-e2e-oom-${process.pid}`);
      fs.mkdirSync(dir);
      dirs.push(dir);
      writeCgroupFile(dir, 'memory.max', String(16 * MiB));
      if (fs.existsSync(path.join(dir, 'memory.swap.max'))) writeCgroupFile(dir, 'memory.swap.max', '0');
    }
    const fdsBefore = eventfds();
    const watcher = start(version, dir);
    if (version === 1) {
      assert.equal(eventfds(), fdsBefore + 1, 'one eventfd while watching');
      assert.equal(native.oomRegistrations(), 1);
    }
    const hog = inCgroup(dir, 'dd if=/dev/zero of=/dev/null bs=64M count=1');
    children.push(hog);
    assert.equal(await exitOf(hog), 'SIGKILL', 'the OOM killer killed it');
    for (let i = 0; i < 250 && reports === 0; i++) await sleep(20);
    // The watcher re-checks for up to 1.3 s after a notification: wait that long for a duplicate.
    await sleep(1500);
    assert.equal(reports, 1, 'one report for one OOM kill');
    watcher.close();
    if (version === 1) {
      assert.equal(native.oomRegistrations(), 0);
      assert.equal(eventfds(), fdsBefore, 'the eventfd is closed');
      // The kernel's notification of a removed cgroup ends a watch on its own.
      const gone = path.join(v1Memory, `burrow-e2e-oom-gone-${process.pid}`);
      fs.mkdirSync(gone);
      start(1, gone);
      assert.equal(native.oomRegistrations(), 1);
      fs.rmdirSync(gone);
      for (let i = 0; i < 100 && native.oomRegistrations() > 0; i++) await sleep(20);
      assert.equal(native.oomRegistrations(), 0);
      assert.equal(eventfds(), fdsBefore);
      assert.equal(reports, 1, 'the removal is no OOM');
    }
  });
});
