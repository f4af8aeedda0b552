// Pause/Resume, Update and OOM watching below the sandbox, without root: the freezer loops
// against files standing in for freezer.state / cgroup.freeze + cgroup.events, the writes an
// update makes (and in which order), and the OOM watcher with the fake native runtime (v1
// eventfd notifications) and real inotify on a plain file (v2 memory.events).

import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { silentLogger } from '../../shim/log/logger';
import { removeCgroupDir, thawQuietly } from '../../shim/sandbox/cgroups/cgroupfs';
import { freezeV1, freezeV2, thawV1, thawV2, v2Frozen } from '../../shim/sandbox/cgroups/freezer';
import type { CgroupMount } from '../../shim/sandbox/cgroups/hierarchies';
import { OomWatcher } from '../../shim/sandbox/cgroups/oom-watch';
import { parseResources } from '../../shim/sandbox/cgroups/resources';
import { v1Writes } from '../../shim/sandbox/cgroups/v1-files';
import { V1CgroupManager } from '../../shim/sandbox/cgroups/v1-manager';
import { v2Writes } from '../../shim/sandbox/cgroups/v2-files';
import { V2CgroupManager } from '../../shim/sandbox/cgroups/v2-manager';
import { SandboxError } from '../../shim/sandbox/errors';
import { FakeNative } from '../fakes/fake-native';
import { makeTempDir, removeTempDir, waitUntil } from '../fakes/fixtures';

const MiB = 1024 * 1024;
const read = (dir: string, f: string) => fs.readFileSync(path.join(dir, f), 'utf8');
const put = (dir: string, f: string, text: string) => fs.writeFileSync(path.join(dir, f), text);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function rejectsKind(p: Promise<unknown>, kind: string, pattern: RegExp): Promise<void> {
  return assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof SandboxError, String(err));
    assert.equal(err.kind, kind, err.message);
    assert.match(err.message, pattern);
    return true;
  });
}

describe('cgroup ops: the freezer', () => {
  let tmp: string;

  beforeEach(() => {
    tmp = makeTempDir('burrow-freezer-');
  });

  afterEach(() => removeTempDir(tmp));

  it('v1: writes FROZEN until freezer.state says so, THAWED until it says so', async () => {
    put(tmp, 'freezer.state', 'THAWED\n');
    await freezeV1(tmp);
    assert.equal(read(tmp, 'freezer.state'), 'FROZEN\n');
    await thawV1(tmp);
    assert.equal(read(tmp, 'freezer.state'), 'THAWED\n');
  });

  it('v1: an unexpected state fails the freeze, naming the file, and leaves the cgroup thawed', async () => {
    // A directory stands in for a freezer.state that reads back neither FROZEN nor FREEZING.
    put(tmp, 'freezer.state', 'THAWED\n');
    const weird = path.join(tmp, 'weird');
    fs.mkdirSync(weird);
    put(weird, 'freezer.state', 'THAWEDXX\n');
    await assert.rejects(freezeV1(weird), new RegExp(`unexpected state FROZENXX in ${weird}/freezer\\.state while freezing`));
    assert.equal(read(weird, 'freezer.state'), 'THAWEDXX\n', 'thawed again after the failure');
  });

  it('v2: writes cgroup.freeze, then waits for cgroup.events to say frozen', async () => {
    put(tmp, 'cgroup.freeze', '0\n');
    put(tmp, 'cgroup.events', 'populated 1\nfrozen 0\n');
    // The "kernel": freezes a little later.
    const kernel = setTimeout(() => put(tmp, 'cgroup.events', 'populated 1\nfrozen 1\n'), 40);
    try {
      const started = Date.now();
      await freezeV2(tmp);
      assert.ok(Date.now() - started >= 30, 'resolved only once frozen');
      assert.equal(read(tmp, 'cgroup.freeze'), '1\n');
      assert.equal(v2Frozen(tmp), true);
      setTimeout(() => put(tmp, 'cgroup.events', 'populated 1\nfrozen 0\n'), 20);
      await thawV2(tmp);
      assert.equal(read(tmp, 'cgroup.freeze'), '0\n');
    } finally {
      clearTimeout(kernel);
    }
  });

  it('v2: cgroup.events without a frozen line means no freezer, and the freeze is undone', async () => {
    put(tmp, 'cgroup.freeze', '0\n');
    put(tmp, 'cgroup.events', 'populated 1\n');
    await assert.rejects(freezeV2(tmp), new RegExp(`${tmp}/cgroup\\.events has no "frozen" line`));
    assert.equal(read(tmp, 'cgroup.freeze'), '0\n');
  });

  it('thawQuietly and cgroup removal thaw whatever freezer file there is', async () => {
    const v1 = path.join(tmp, 'v1');
    fs.mkdirSync(v1);
    put(v1, 'freezer.state', 'FROZEN');
    thawQuietly(v1);
    assert.equal(read(v1, 'freezer.state'), 'THAWED');
    thawQuietly(path.join(tmp, 'gone'));
    const v2 = path.join(tmp, 'v2');
    fs.mkdirSync(v2);
    put(v2, 'cgroup.freeze', '1');
    // A plain directory with a file cannot be rmdir'ed: the thaw is what is checked here.
    await assert.rejects(removeCgroupDir(v2, 10), /rmdir .*ENOTEMPTY/);
    assert.equal(read(v2, 'cgroup.freeze'), '0');
  });

  it('managers refuse Pause without a freezer, naming the hierarchies or the file', async () => {
    const mount = (c: string): CgroupMount => ({ mountPoint: path.join(tmp, c), root: '/', version: 1, controllers: [c] });
    const v1 = new V1CgroupManager('c1', [{ key: 'memory', controllers: ['memory'], mount: mount('memory'), dir: path.join(tmp, 'memory', 'c1') }]);
    await rejectsKind(v1.freeze(), 'failed-precondition', /container c1: pause: the freezer cgroup controller is not mounted on this host \(hierarchies: memory\)/);
    await rejectsKind(v1.thaw(), 'failed-precondition', /container c1: resume: the freezer/);
    const dir = path.join(tmp, 'v2', 'c1');
    fs.mkdirSync(dir, { recursive: true });
    const v2 = new V2CgroupManager('c1', { mountPoint: path.join(tmp, 'v2'), root: '/', version: 2, controllers: [] }, dir);
    await rejectsKind(v2.freeze(), 'failed-precondition', new RegExp(`container c1: pause: ${dir} has no cgroup\\.freeze`));
  });

  it('a v1 manager freezes and thaws its freezer directory, errors naming the container', async () => {
    const mount: CgroupMount = { mountPoint: path.join(tmp, 'freezer'), root: '/', version: 1, controllers: ['freezer'] };
    const dir = path.join(tmp, 'freezer', 'c1');
    fs.mkdirSync(dir, { recursive: true });
    put(dir, 'freezer.state', 'THAWED\n');
    const m = new V1CgroupManager('c1', [{ key: 'freezer', controllers: ['freezer'], mount, dir }]);
    await m.freeze();
    assert.equal(read(dir, 'freezer.state'), 'FROZEN\n');
    await m.thaw();
    assert.equal(read(dir, 'freezer.state'), 'THAWED\n');
    fs.rmSync(path.join(dir, 'freezer.state'));
    await assert.rejects(m.freeze(), new RegExp(`container c1: pause: open ${dir}/freezer\\.state: ENOENT`));
  });
});

describe('cgroup ops: update writes', () => {
  const res = (r: unknown) => parseResources(r);
  const files = (ws: ReturnType<typeof v1Writes>) => ws.map((w) => [w.choices[0].file, w.choices[0].value]);

  it('v1: no device rules are written by an update', () => {
    const ws = v1Writes(res({ devices: [{ allow: false, access: 'rwm' }], pids: { limit: 10 } }), [], { memoryLimitNow: Infinity });
    assert.deepEqual(files(ws), [['pids.max', '10']]);
  });

  it('v1: memory and memsw are ordered against the current memory limit, as runc', () => {
    const both = { memory: { limit: 96 * MiB, swap: 192 * MiB } };
    // Raising above the current limit: memsw first (memory.limit may never exceed memsw).
    assert.deepEqual(files(v1Writes(res(both), [], { memoryLimitNow: 64 * MiB })), [
      ['memory.memsw.limit_in_bytes', String(192 * MiB)], ['memory.limit_in_bytes', String(96 * MiB)],
    ]);
    // Lowering below the current limit: memory first.
    assert.deepEqual(files(v1Writes(res(both), [], { memoryLimitNow: 256 * MiB })), [
      ['memory.limit_in_bytes', String(96 * MiB)], ['memory.memsw.limit_in_bytes', String(192 * MiB)],
    ]);
    // Unlimited swap always first.
    assert.deepEqual(files(v1Writes(res({ memory: { limit: 96 * MiB, swap: -1 } }), [], { memoryLimitNow: 1 })), [
      ['memory.memsw.limit_in_bytes', '-1'], ['memory.limit_in_bytes', String(96 * MiB)],
    ]);
  });

  it('v2: no device checks; a quota alone keeps the period, a period alone keeps the quota', () => {
    const upd = (r: unknown, cpuMaxNow?: string) => files(v2Writes(res(r), { cpuMaxNow }));
    assert.deepEqual(upd({ devices: [{ allow: false, access: 'rwm' }], cpu: { quota: 25000 } }), [['cpu.max', '25000']]);
    assert.deepEqual(upd({ cpu: { period: 50000 } }, '30000 100000\n'), [['cpu.max', '30000 50000']]);
    assert.deepEqual(upd({ cpu: { period: 50000 } }, 'max 100000\n'), [['cpu.max', 'max 50000']]);
    assert.deepEqual(upd({ cpu: { quota: -1, period: 200000 } }), [['cpu.max', 'max 200000']]);
  });

  it('managers: an update writes the running container\'s files, memory checked against usage when asked', () => {
    const tmp = makeTempDir('burrow-update-');
    try {
      const mount = (c: string): CgroupMount => ({ mountPoint: path.join(tmp, c), root: '/', version: 1, controllers: [c] });
      const dirs = ['memory', 'pids'].map((c) => {
        const dir = path.join(tmp, c, 'c1');
        fs.mkdirSync(dir, { recursive: true });
        return { key: c, controllers: [c], mount: mount(c), dir };
      });
      const [mem, pids] = dirs.map((d) => d.dir);
      put(mem, 'memory.limit_in_bytes', String(64 * MiB));
      put(mem, 'memory.memsw.limit_in_bytes', '9223372036854771712');
      put(mem, 'memory.usage_in_bytes', String(40 * MiB));
      // Plain files are not truncated by a cgroup write (as cgroupfs needs no truncation): start empty.
      put(pids, 'pids.max', '');
      const m = new V1CgroupManager('c1', dirs);
      m.update(res({ memory: { limit: 96 * MiB }, pids: { limit: 20 } }));
      assert.equal(read(mem, 'memory.limit_in_bytes'), String(96 * MiB));
      assert.equal(read(pids, 'pids.max'), '20');
      assert.throws(() => m.update(res({ memory: { limit: 32 * MiB, checkBeforeUpdate: true } })), (err: unknown) => {
        assert.ok(err instanceof SandboxError);
        assert.equal(err.kind, 'invalid-argument');
        assert.match(err.message, new RegExp(`container c1: linux\\.resources\\.memory\\.limit: rejecting memory limit ${32 * MiB} below usage ${40 * MiB}`));
        return true;
      });
      assert.equal(read(mem, 'memory.limit_in_bytes'), String(96 * MiB), 'nothing written');
      assert.throws(() => m.update(res({ hugepageLimits: [{ pageSize: '2MB', limit: MiB }] })),
        /container c1: linux\.resources\.hugepageLimits\[0\]: the hugetlb cgroup controller is not mounted on this host/);
    } finally {
      removeTempDir(tmp);
    }
  });
});

describe('cgroup ops: OOM watching', () => {
  let tmp: string;
  let native: FakeNative;
  let reports: number;
  let watcher: OomWatcher | undefined;
  const onOom = () => reports++;

  beforeEach(() => {
    tmp = makeTempDir('burrow-oom-');
    native = new FakeNative();
    reports = 0;
    watcher = undefined;
  });

  afterEach(() => {
    watcher?.close();
    removeTempDir(tmp);
  });

  const oomControl = (kills: number | undefined, underOom = 0, disabled = 0) =>
    put(tmp, 'memory.oom_control', `oom_kill_disable ${disabled}\nunder_oom ${underOom}\n${kills === undefined ? '' : `oom_kill ${kills}\n`}`);

  function v1(): OomWatcher {
    put(tmp, 'cgroup.event_control', '');
    watcher = OomWatcher.start({ id: 'c1', version: 1, dir: tmp, native, logger: silentLogger, onOom });
    return watcher;
  }

  it('v1: one report per oom_kill increase, whether the eventfd or an exit notices it first', () => {
    oomControl(0);
    const w = v1();
    assert.ok(native.oomWatches.has(tmp), 'an eventfd is registered for the memory cgroup');
    oomControl(1);
    native.notifyOom(tmp);
    assert.equal(reports, 1);
    native.notifyOom(tmp);
    assert.equal(reports, 1, 'no new kill, no new report');
    oomControl(2);
    w.check();
    assert.equal(reports, 2, 'check() before an exit reports the kill');
    native.notifyOom(tmp);
    assert.equal(reports, 2, 'the late notification of the same kill reports nothing');
  });

  it('v1: a notification that comes before the kill is counted (as the kernel sends it) is reported once the counter rises', async () => {
    oomControl(0);
    v1();
    native.notifyOom(tmp);
    assert.equal(reports, 0, 'no kill counted yet');
    await sleep(5);
    oomControl(1);
    await waitUntil(() => reports === 1, 'the re-check after the notification');
    await sleep(300);
    assert.equal(reports, 1, 'reported once');
  });

  it('v1: a kernel without the oom_kill counter reports every notification (as containerd)', () => {
    oomControl(undefined);
    v1();
    native.notifyOom(tmp);
    native.notifyOom(tmp);
    assert.equal(reports, 2);
  });

  it('v1: a cgroup stuck at its limit with the OOM killer disabled is reported once', () => {
    oomControl(0, 0, 1);
    v1();
    oomControl(0, 1, 1);
    native.notifyOom(tmp);
    native.notifyOom(tmp);
    assert.equal(reports, 1);
  });

  it('v1: the notification of the cgroup\'s removal ends the watch; close() releases the eventfd', () => {
    oomControl(0);
    v1();
    fs.rmSync(path.join(tmp, 'cgroup.event_control'));
    native.notifyOom(tmp);
    assert.equal(reports, 0);
    assert.equal(native.oomWatches.size, 0, 'closed');
    watcher!.close();
    oomControl(0);
    const w = v1();
    w.close();
    w.close();
    assert.equal(native.oomWatches.size, 0);
  });

  it('v1: a registration failure is an error with the id and the path', () => {
    assert.throws(() => OomWatcher.start({ id: 'c1', version: 1, dir: path.join(tmp, 'gone'), native, logger: silentLogger, onOom }),
      new RegExp(`container c1: watch for OOM kills: ${tmp}/gone/memory\\.oom_control does not exist`));
    oomControl(0);
    native.oomWatchError = new Error('OOM notifications of memory cgroup x: write cgroup.event_control: Invalid argument');
    assert.throws(() => v1(), /write cgroup\.event_control/);
  });

  it('v2: inotify on memory.events reports each increase of oom_kill, until close()', async () => {
    put(tmp, 'memory.events', 'low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\noom_group_kill 0\n');
    watcher = OomWatcher.start({ id: 'c1', version: 2, dir: tmp, native, logger: silentLogger, onOom });
    assert.equal(native.oomWatches.size, 0, 'no eventfd on v2');
    put(tmp, 'memory.events', 'low 0\nhigh 0\nmax 3\noom 1\noom_kill 0\noom_group_kill 0\n');
    await sleep(100);
    assert.equal(reports, 0, 'an OOM without a kill is no kill');
    put(tmp, 'memory.events', 'low 0\nhigh 0\nmax 4\noom 2\noom_kill 1\noom_group_kill 0\n');
    await waitUntil(() => reports === 1, 'the first OOM kill');
    watcher.close();
    put(tmp, 'memory.events', 'low 0\nhigh 0\nmax 5\noom 3\noom_kill 2\noom_group_kill 0\n');
    await sleep(100);
    assert.equal(reports, 1, 'nothing after close()');
  });
});
