// Cgroups end to end: the same containers under containerd's runc shim (io.containerd.runc.v2,
// runc 1.1.5) and under Burrow, on one private containerd, compared by what the container sees
// (its own cgroup's files, read through a read-only bind of /sys/fs/cgroup) and by what the host
// sees (the cgroup directories, the processes in them, their removal).
//
// Then the cgroup v2 manager, against a private cgroup2 mount made here: on this kind of hybrid
// host the v2 hierarchy is the one at /sys/fs/cgroup/unified, where most controllers are bound
// to v1 hierarchies; what it cannot do there, it must say by field and controller. Device rules
// are an eBPF program (BPF_PROG_TYPE_CGROUP_DEVICE) there, which works whatever controllers the
// hierarchy has: processes in the cgroup are held to it.

import { strict as assert } from 'assert';
import { ChildProcess, execFileSync, spawn } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { FfiNativeRuntime } from '../shim/native/ffi-native';
import { SandboxError } from '../shim/sandbox/errors';
import { hostHugePageSizes } from '../shim/sandbox/cgroups/stat-files';
import { parseCgroupMounts, v1Hierarchies } from '../shim/sandbox/cgroups/hierarchies';
import { parseResources } from '../shim/sandbox/cgroups/resources';
import { V2CgroupManager } from '../shim/sandbox/cgroups/v2-manager';
import {
  buildDir,
  BUSYBOX_REF,
  cgroupDirsFor,
  ensureHostTools,
  findBusybox,
  importImage,
  isAlive,
  leakCheckEachCase,
  populateRootfs,
  PrivateContainerd,
  Result,
  RUNTIME_NAMES,
  RuntimeName,
  RUNTIMES,
  sleep,
} from './harness';

const NS = 'default';
/** The host's cgroup hierarchies, bound read-only into containers so they can read their own. */
const CG_BIND = 'type=bind,src=/sys/fs/cgroup,dst=/cg,options=rbind:ro';
const MiB = 1024 * 1024;

type Spec = Record<string, any>;

/** `sh -c` text printing file `file` of the container's own cgroup in `controller`'s hierarchy. */
function ownCgroupFile(controller: string, file: string): string {
  return `p=$(grep -E '^[0-9]+:([^:]*,)?${controller}(,[^:]*)?:' /proc/self/cgroup | cut -d: -f3); ` +
    `d=$(ls -d /cg/*${controller}* | head -n1); cat "$d$p/${file}"`;
}

function isV1Host(): boolean {
  return !fs.existsSync('/sys/fs/cgroup/cgroup.controllers');
}

describe('cgroups: linux.resources and linux.cgroupsPath under runc and Burrow', function () {
  this.timeout(180_000);
  let c: PrivateContainerd;
  let specDir: string;
  let n = 0;
  const uid = () => `cg${process.pid % 1000}x${++n}`;

  /** containerd's default spec (the fixture captured from runc) on a shared rootfs, with `edit`. */
  function specFile(id: string, edit: (s: Spec) => void): string {
    const spec = JSON.parse(fs.readFileSync(path.join(__dirname, '../../e2e/fixtures/runc-default-config.json'), 'utf8'));
    spec.root = { path: path.join(specDir, 'rootfs'), readonly: true };
    spec.process.terminal = false;
    spec.linux.cgroupsPath = `/${NS}/${id}`;
    spec.mounts.push({ destination: '/cg', type: 'bind', source: '/sys/fs/cgroup', options: ['rbind', 'ro'] });
    edit(spec);
    const file = path.join(specDir, `${id}.json`);
    fs.writeFileSync(file, JSON.stringify(spec));
    return file;
  }

  const runImage = (rt: RuntimeName, id: string, flags: string[], args: string[]): Promise<Result> =>
    c.ctr(['run', '--rm', '--runtime', RUNTIMES[rt], ...flags, BUSYBOX_REF, id, ...args], { timeoutSec: 90 });

  const runSpec = (rt: RuntimeName, id: string, edit: (s: Spec) => void): Promise<Result> =>
    c.ctr(['run', '--rm', '--runtime', RUNTIMES[rt], '--config', specFile(id, edit), id], { timeoutSec: 90 });

  async function waitForStatus(id: string, status: string): Promise<number> {
    for (let i = 0; i < 150; i++) {
      const m = new RegExp(`^${id}\\s+(\\d+)\\s+${status}`, 'm').exec((await c.ctr(['task', 'ls'])).stdout);
      if (m) return Number(m[1]);
      await sleep(100);
    }
    assert.fail(`task ${id} never reached ${status}:\n${(await c.ctr(['task', 'ls'])).stdout}`);
  }

  /** Kills and removes a detached container whatever state it is in. */
  async function remove(id: string): Promise<void> {
    const rm = await c.ctr(['task', 'rm', '-f', id]);
    assert.equal(rm.code, 0, `task rm -f ${id}: ${rm.stderr}`);
    const crm = await c.ctr(['container', 'rm', id]);
    assert.equal(crm.code, 0, `container rm ${id}: ${crm.stderr}`);
  }

  /** The same check under both runtimes, each with a fresh container id. */
  async function both<T>(fn: (rt: RuntimeName, id: string) => Promise<T>): Promise<Record<RuntimeName, T>> {
    const out = {} as Record<RuntimeName, T>;
    for (const rt of RUNTIME_NAMES) out[rt] = await fn(rt, `${uid()}${rt}`);
    return out;
  }

  before(async function () {
    ensureHostTools();
    c = await PrivateContainerd.start({ name: 'cgroups' });
    await importImage(c);
    specDir = buildDir('cgroups-specs');
    fs.rmSync(specDir, { recursive: true, force: true });
    fs.mkdirSync(path.join(specDir, 'rootfs'), { recursive: true });
    await populateRootfs(path.join(specDir, 'rootfs'), findBusybox());
    fs.mkdirSync(path.join(specDir, 'rootfs', 'cg'), { recursive: true });
  });

  after(async function () {
    if (c) await c.stop();
  });

  leakCheckEachCase(() => c);

  it('ctr run --memory-limit: the container sees it as its memory limit', async function () {
    const file = isV1Host() ? 'memory.limit_in_bytes' : 'memory.max';
    const r = await both((rt, id) => runImage(rt, id, ['--memory-limit', String(64 * MiB), '--mount', CG_BIND], ['sh', '-c', ownCgroupFile('memory', file)]));
    for (const rt of RUNTIME_NAMES) assert.equal(r[rt].code, 0, `${rt}: ${r[rt].stderr}`);
    assert.equal(r.runc.stdout, `${64 * MiB}\n`);
    assert.equal(r.burrow.stdout, r.runc.stdout);
  });

  it('ctr run --cpus 0.5: the container sees a CFS quota of half its period', async function () {
    const cmd = isV1Host() ? `${ownCgroupFile('cpu', 'cpu.cfs_quota_us')}; ${ownCgroupFile('cpu', 'cpu.cfs_period_us')}` : ownCgroupFile('cpu', 'cpu.max');
    const r = await both((rt, id) => runImage(rt, id, ['--cpus', '0.5', '--mount', CG_BIND], ['sh', '-c', cmd]));
    for (const rt of RUNTIME_NAMES) assert.equal(r[rt].code, 0, `${rt}: ${r[rt].stderr}`);
    assert.equal(r.runc.stdout, isV1Host() ? '50000\n100000\n' : '50000 100000\n');
    assert.equal(r.burrow.stdout, r.runc.stdout);
  });

  it('linux.resources.pids.limit: the container sees it in pids.max', async function () {
    const r = await both((rt, id) => runSpec(rt, id, (s) => {
      s.linux.resources.pids = { limit: 32 };
      s.process.args = ['sh', '-c', ownCgroupFile('pids', 'pids.max')];
    }));
    for (const rt of RUNTIME_NAMES) assert.equal(r[rt].code, 0, `${rt}: ${r[rt].stderr}`);
    assert.equal(r.runc.stdout, '32\n');
    assert.equal(r.burrow.stdout, r.runc.stdout);
  });

  it('a container that allocates more than its memory limit is OOM-killed (exit status 137)', async function () {
    // dd's 200 MiB buffer is touched by read(2) from /dev/zero: far beyond the 32 MiB limit.
    const r = await both((rt, id) => runImage(rt, id, ['--memory-limit', String(32 * MiB)], ['dd', 'if=/dev/zero', 'of=/dev/null', 'bs=200M', 'count=1']));
    assert.equal(r.runc.code, 137, `runc: ${r.runc.stderr}`);
    assert.equal(r.burrow.code, 137, `burrow: ${r.burrow.stderr}`);
  });

  it('a fork bomb stops at its pids limit of 32 and the host keeps forking', async function () {
    const limit = 32;
    const observed = await both(async (rt, id) => {
      const running = runSpec(rt, id, (s) => {
        s.linux.resources.pids = { limit };
        // Every bomb process forks and then stays (sleep), so the count climbs to the limit and
        // stays there; the init itself needs no fork (exec), and the sleeps bound the bomb.
        s.process.args = ['sh', '-c', 'b() { b | b & sleep 60; }; b 2>/dev/null & exec sleep 60'];
      });
      await waitForStatus(id, 'RUNNING');
      const dir = isV1Host() ? `/sys/fs/cgroup/pids/${NS}/${id}` : `/sys/fs/cgroup/${NS}/${id}`;
      let max = 0;
      const deadline = Date.now() + 3_000;
      while (Date.now() < deadline) {
        max = Math.max(max, Number(fs.readFileSync(path.join(dir, 'pids.current'), 'utf8')));
        await sleep(50);
      }
      const refused = Number(/^max (\d+)/m.exec(fs.readFileSync(path.join(dir, 'pids.events'), 'utf8'))?.[1] ?? 0);
      // The host itself still forks.
      assert.equal(execFileSync('/bin/sh', ['-c', 'echo ok']).toString(), 'ok\n');
      const kill = await c.ctr(['task', 'kill', '-a', '-s', 'SIGKILL', id]);
      assert.equal(kill.code, 0, kill.stderr);
      const r = await running;
      return { max, refused, code: r.code };
    });
    for (const rt of RUNTIME_NAMES) {
      assert.ok(observed[rt].max <= limit, `${rt}: ${observed[rt].max} processes in a cgroup limited to ${limit}`);
      // Refused forks mean the count reached the limit (shells whose fork failed exit, so the
      // count sampled afterwards may be lower).
      assert.ok(observed[rt].refused > 0, `${rt}: no fork was refused (pids.events max 0), ${observed[rt].max} processes seen`);
      assert.equal(observed[rt].code, 137, rt);
    }
  });

  it('devices: a block device made with mknod cannot be opened (Operation not permitted)', async function () {
    // The host's first disk: without a devices cgroup, CAP_MKNOD would let the container read it.
    const disk = fs.readFileSync('/proc/partitions', 'utf8').split('\n').slice(2).map((l) => l.trim().split(/\s+/)).find((f) => f.length === 4)!;
    const [major, minor] = disk;
    const cmd = `mknod /tmp/blk b ${major} ${minor} && echo made && head -c1 /tmp/blk`;
    const r = await both((rt, id) => runImage(rt, id, [], ['sh', '-c', cmd]));
    for (const rt of RUNTIME_NAMES) {
      assert.notEqual(r[rt].code, 0, `${rt}: reading ${major}:${minor} succeeded`);
      assert.equal(r[rt].stdout, 'made\n', `${rt}: mknod itself is allowed (runc's "b *:* m" rule): ${r[rt].stderr}`);
      assert.match(r[rt].stderr, /Operation not permitted/, rt);
    }
  });

  it('the cgroup directories exist in the same hierarchies as runc\'s, hold the init, and go with the container', async function () {
    const seen = await both(async (rt, id) => {
      const r = await c.ctr(['run', '-d', '--runtime', RUNTIMES[rt], BUSYBOX_REF, id, 'sleep', '600']);
      assert.equal(r.code, 0, r.stderr);
      try {
        const pid = await waitForStatus(id, 'RUNNING');
        const dirs = cgroupDirsFor(NS, id);
        for (const d of dirs) {
          const procs = fs.readFileSync(path.join(d, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
          assert.deepEqual(procs, [pid], `${rt}: ${d}/cgroup.procs`);
        }
        return { id, hierarchies: dirs.map((d) => path.dirname(path.dirname(d))).sort() };
      } finally {
        await remove(id);
      }
    });
    assert.ok(seen.runc.hierarchies.length > 0);
    assert.deepEqual(seen.burrow.hierarchies, seen.runc.hierarchies);
    for (const rt of RUNTIME_NAMES) assert.deepEqual(cgroupDirsFor(NS, seen[rt].id), [], `${rt}: cgroup left after the container was removed`);
  });

  it('ctr task ps lists every process of the container (sh execs its last sleep: two)', async function () {
    const listed = await both(async (rt, id) => {
      const r = await c.ctr(['run', '-d', '--runtime', RUNTIMES[rt], BUSYBOX_REF, id, 'sh', '-c', 'sleep 100 & sleep 100']);
      assert.equal(r.code, 0, r.stderr);
      try {
        await waitForStatus(id, 'RUNNING');
        let pids: string[] = [];
        for (let i = 0; i < 50 && pids.length < 2; i++) {
          await sleep(100);
          pids = (await c.ctr(['task', 'ps', id])).stdout.split('\n').slice(1).filter((l) => /^\s*\d+/.test(l));
        }
        return pids.length;
      } finally {
        await remove(id);
      }
    });
    assert.equal(listed.runc, 2);
    assert.equal(listed.burrow, listed.runc);
  });

  it('without a pid namespace: task ps lists the cgroup, and what the init leaves is killed when it exits', async function () {
    const seen = await both(async (rt, id) => {
      const running = runSpec(rt, id, (s) => {
        s.linux.namespaces = s.linux.namespaces.filter((ns: { type: string }) => ns.type !== 'pid');
        // The background sleep survives its shell (which execs the last sleep): only the cgroup
        // knows it is the container's.
        s.process.args = ['sh', '-c', 'sleep 100 & echo $!; sleep 3'];
      });
      await waitForStatus(id, 'RUNNING');
      let ps: string[] = [];
      for (let i = 0; i < 20 && ps.length < 2; i++) {
        await sleep(100);
        ps = (await c.ctr(['task', 'ps', id])).stdout.split('\n').slice(1).filter((l) => /^\s*\d+/.test(l));
      }
      const r = await running;
      assert.equal(r.code, 0, `${rt}: ${r.stderr}`);
      const orphan = Number(r.stdout.trim().split('\n')[0]);
      for (let i = 0; i < 50 && isAlive(orphan); i++) await sleep(100);
      return { listed: ps.length, orphanAlive: isAlive(orphan) };
    });
    for (const rt of RUNTIME_NAMES) {
      assert.equal(seen[rt].listed, 2, `${rt}: task ps listed ${seen[rt].listed} processes (both sleeps)`);
      assert.equal(seen[rt].orphanAlive, false, `${rt}: the init's background process outlived the container`);
    }
  });

  it('an exec joins the container\'s cgroup', async function () {
    const seen = await both(async (rt, id) => {
      const r = await c.ctr(['run', '-d', '--runtime', RUNTIMES[rt], BUSYBOX_REF, id, 'sleep', '600']);
      assert.equal(r.code, 0, r.stderr);
      try {
        const pid = await waitForStatus(id, 'RUNNING');
        const x = await c.ctr(['task', 'exec', '--exec-id', 'cg', id, 'cat', '/proc/self/cgroup']);
        assert.equal(x.code, 0, x.stderr);
        return { exec: x.stdout, init: fs.readFileSync(`/proc/${pid}/cgroup`, 'utf8') };
      } finally {
        await remove(id);
      }
    });
    for (const rt of RUNTIME_NAMES) assert.equal(seen[rt].exec, seen[rt].init, rt);
    assert.equal(seen.burrow.exec.replace(/cg\w+burrow/g, 'ID'), seen.runc.exec.replace(/cg\w+runc/g, 'ID'));
  });

  it('a new cgroup namespace is rooted at the container\'s cgroup, as with runc', async function () {
    const r = await both((rt, id) => runSpec(rt, id, (s) => {
      s.linux.namespaces.push({ type: 'cgroup' });
      s.process.args = ['cat', '/proc/self/cgroup'];
    }));
    for (const rt of RUNTIME_NAMES) assert.equal(r[rt].code, 0, `${rt}: ${r[rt].stderr}`);
    assert.ok(r.runc.stdout.split('\n').filter(Boolean).every((l) => l.endsWith(':/')), r.runc.stdout);
    assert.equal(r.burrow.stdout, r.runc.stdout);
  });

  it('limits this host cannot honour are refused by field, and nothing is left behind', async function () {
    const id = `${uid()}burrow`;
    const hugetlbMounted = v1Hierarchies(parseCgroupMounts(fs.readFileSync('/proc/self/mountinfo', 'utf8'))).some((m) => m.controllers.includes('hugetlb'));
    const r = await runSpec('burrow', id, (s) => {
      s.linux.resources.hugepageLimits = [{ pageSize: '2MB', limit: 4 * 2 * MiB }];
      s.process.args = ['sh', '-c', ownCgroupFile('hugetlb', 'hugetlb.2MB.limit_in_bytes')];
    });
    if (isV1Host() && !hugetlbMounted) {
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /linux\.resources\.hugepageLimits\[0\]: the hugetlb cgroup controller is not mounted on this host.*: invalid argument/);
    } else {
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, `${8 * MiB}\n`);
    }
    assert.deepEqual(cgroupDirsFor(NS, id), []);

    const bad = await runSpec('burrow', `${uid()}burrow`, (s) => {
      s.linux.resources.memory = { limit: 64 * MiB, swap: 32 * MiB };
    });
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /linux\.resources\.memory\.swap: .* memory\+swap must be >= memory: invalid argument/);
    // (Unknown fields cannot be sent through ctr, which parses the spec into Go structs and
    // drops them: the unit tests cover their refusal.)
  });
});

describe('cgroups: the v2 manager on a private cgroup2 mount', function () {
  this.timeout(60_000);
  const MOUNT = '/run/burrow-e2e/cg2';
  const PARENT = 'burrow-e2e-v2';
  const mount = { mountPoint: MOUNT, root: '/', version: 2 as const, controllers: [] };
  let rootSubtree: string[] = [];
  const children: ChildProcess[] = [];
  let m: V2CgroupManager;
  const allowAll = [{ allow: true, access: 'rwm' }];

  function sleeper(): Promise<number> {
    const child = spawn('sleep', ['600'], { stdio: 'ignore' });
    children.push(child);
    return new Promise((resolve, reject) => {
      child.once('spawn', () => resolve(child.pid!));
      child.once('error', reject);
    });
  }

  function rejectsWith(fn: () => unknown, pattern: RegExp): void {
    assert.throws(fn, (err: unknown) => {
      assert.ok(err instanceof SandboxError, String(err));
      assert.equal(err.kind, 'invalid-argument', err.message);
      assert.match(err.message, pattern);
      return true;
    });
  }

  before(function () {
    fs.mkdirSync(MOUNT, { recursive: true });
    execFileSync('mount', ['-t', 'cgroup2', 'none', MOUNT]);
    rootSubtree = fs.readFileSync(path.join(MOUNT, 'cgroup.subtree_control'), 'utf8').split(/\s+/).filter(Boolean);
  });

  after(async function () {
    for (const ch of children) if (ch.exitCode === null && ch.signalCode === null) ch.kill('SIGKILL');
    await sleep(100);
    for (const dir of [path.join(MOUNT, PARENT, 'c1'), path.join(MOUNT, PARENT)]) {
      try {
        fs.rmdirSync(dir);
      } catch {
        // Already gone (the cases remove their cgroup themselves).
      }
    }
    // Controllers this suite enabled at the (shared) root go back to how they were.
    const now = fs.readFileSync(path.join(MOUNT, 'cgroup.subtree_control'), 'utf8').split(/\s+/).filter(Boolean);
    for (const ctl of now.filter((x) => !rootSubtree.includes(x))) {
      fs.writeFileSync(path.join(MOUNT, 'cgroup.subtree_control'), `-${ctl}`);
    }
    execFileSync('umount', [MOUNT]);
    fs.rmdirSync(MOUNT);
  });

  beforeEach(function () {
    m = new V2CgroupManager('v2-e2e', mount, path.join(MOUNT, PARENT, 'c1'));
  });

  afterEach(async function () {
    for (const ch of children) if (ch.exitCode === null && ch.signalCode === null) ch.kill('SIGKILL');
    await m.destroy();
  });

  it('creates the cgroup, takes a process, lists, signals it, and removes the cgroup', async function () {
    m.create();
    assert.ok(fs.statSync(path.join(MOUNT, PARENT, 'c1')).isDirectory());
    m.apply(parseResources({ devices: allowAll }));
    const pid = await sleeper();
    m.addProcess(pid);
    assert.deepEqual(m.pids(), [pid]);
    assert.match(fs.readFileSync(`/proc/${pid}/cgroup`, 'utf8'), new RegExp(`^0::/${PARENT}/c1$`, 'm'));
    const exited = new Promise((r) => children[children.length - 1].once('exit', (_code, sig) => r(sig)));
    assert.equal(m.kill(15), 1);
    assert.equal(await exited, 'SIGTERM');
    const a = await sleeper();
    const b = await sleeper();
    m.addProcess(a);
    m.addProcess(b);
    assert.deepEqual(m.pids().sort(), [a, b].sort());
    // SIGKILL of the whole cgroup: cgroup.kill where the kernel has it (5.14+).
    assert.equal(m.kill(9), 2);
    for (let i = 0; i < 50 && m.pids().length > 0; i++) await sleep(20);
    assert.deepEqual(m.pids(), []);
    await m.destroy();
    assert.equal(fs.existsSync(path.join(MOUNT, PARENT, 'c1')), false);
  });

  it('destroy removes a cgroup whose processes are still running, killing them', async function () {
    m.create();
    const pid = await sleeper();
    m.addProcess(pid);
    await m.destroy();
    assert.equal(fs.existsSync(path.join(MOUNT, PARENT, 'c1')), false);
    for (let i = 0; i < 50 && isAlive(pid); i++) await sleep(20);
    assert.equal(isAlive(pid), false);
  });

  describe('device rules: an eBPF device program on the cgroup', function () {
    let native: FfiNativeRuntime;
    const DIR = path.join(MOUNT, PARENT, 'c1');
    // linux.devices with /dev/null replaces runc's default rule for it (as runc's specconv does).
    const NULL_DEVICE = [{ path: '/dev/null', type: 'c', major: 1, minor: 3 }];
    const denyAll = { allow: false, access: 'rwm' };

    before(function () {
      native = new FfiNativeRuntime();
    });

    beforeEach(function () {
      m = new V2CgroupManager('v2-e2e', mount, DIR, hostHugePageSizes, native);
    });

    /** A shell moved into the cgroup first, then opening /dev/null and /dev/zero. */
    async function probeDevices(): Promise<string> {
      const child = spawn('/bin/sh', ['-c', 'read go; cat /dev/null 2>&1 && echo null-ok; head -c 3 /dev/zero 2>&1 | wc -c'], {
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      children.push(child);
      let out = '';
      child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
      child.stderr!.on('data', (b: Buffer) => (out += b.toString()));
      await new Promise((resolve, reject) => {
        child.once('spawn', resolve);
        child.once('error', reject);
      });
      m.addProcess(child.pid!);
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.stdin!.end('go\n');
      await exited;
      return out.trim();
    }

    async function gone(id: number): Promise<boolean> {
      // Freed once the last reference goes, which the kernel may do a little later.
      for (let i = 0; i < 100 && native.bpfProgramExists(id); i++) await sleep(50);
      return !native.bpfProgramExists(id);
    }

    it('a deny rule for /dev/null (c 1:3 rw) makes opening it fail with EPERM; an allowed device opens', async function () {
      m.create();
      m.apply(parseResources({ devices: [denyAll, { allow: true, type: 'c', major: 1, minor: 5, access: 'rwm' }] }), NULL_DEVICE as never);
      const id = m.deviceProgramId!;
      assert.deepEqual(native.devicePrograms(DIR), [id]);
      const out = await probeDevices();
      assert.match(out, /cat: \/dev\/null: Operation not permitted/);
      assert.ok(!out.includes('null-ok'), out);
      assert.match(out, /^3$/m, `/dev/zero stays readable: ${out}`);
      await m.destroy();
      assert.ok(await gone(id), `program ${id} still exists after the cgroup was removed`);
    });

    it('access is checked per kind: a read-only rule lets /dev/null be read, not written', async function () {
      m.create();
      m.apply(parseResources({ devices: [denyAll, { allow: true, type: 'c', major: 1, minor: 3, access: 'r' }] }), NULL_DEVICE as never);
      const child = spawn('/bin/sh', ['-c', 'read go; cat /dev/null && echo read-ok; echo x 2>&1 > /dev/null || echo write-denied'], { stdio: ['pipe', 'pipe', 'pipe'] });
      children.push(child);
      let out = '';
      child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
      child.stderr!.on('data', (b: Buffer) => (out += b.toString()));
      await new Promise((resolve) => child.once('spawn', resolve));
      m.addProcess(child.pid!);
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.stdin!.end('go\n');
      await exited;
      assert.match(out, /read-ok/);
      assert.match(out, /write-denied/);
      assert.match(out, /Operation not permitted/);
    });

    it('an update replaces the rules: one program attached, the old one gone', async function () {
      m.create();
      m.apply(parseResources({ devices: [denyAll] }), NULL_DEVICE as never);
      const first = m.deviceProgramId!;
      assert.match(await probeDevices(), /cat: \/dev\/null: Operation not permitted/);
      m.update(parseResources({ devices: [denyAll, { allow: true, type: 'c', major: 1, minor: 3, access: 'rwm' }] }));
      const second = m.deviceProgramId!;
      assert.notEqual(second, first);
      assert.deepEqual(native.devicePrograms(DIR), [second]);
      assert.ok(await gone(first), `the replaced program ${first} still exists`);
      assert.match(await probeDevices(), /^null-ok\n3$/);
      // Allow-all is a program too (as runc's): still exactly one.
      m.update(parseResources({ devices: [{ allow: true, access: 'rwm' }] }));
      assert.deepEqual(native.devicePrograms(DIR), [m.deviceProgramId!]);
      assert.ok(await gone(second));
      await m.destroy();
    });

    it('bad rules are refused by field before anything is attached; a missing cgroup is named', async function () {
      m.create();
      rejectsWith(
        () => m.apply(parseResources({ devices: [{ allow: true, type: 'c', major: 1, minor: -1, access: 'rwm' }, { allow: false, type: 'c', major: 1, minor: 3, access: 'r' }] })),
        /linux\.resources\.devices\[1\]: rule "c 1:3 r" cannot take access away from the wildcard rule/,
      );
      assert.deepEqual(native.devicePrograms(DIR), []);
      await m.destroy();
      const missing = new V2CgroupManager('v2-missing', mount, path.join(MOUNT, PARENT, 'nope'), hostHugePageSizes, native);
      assert.throws(() => missing.apply(parseResources({})), /container v2-missing: linux\.resources\.devices: .*open cgroup .*\/nope: No such file or directory/);
    });
  });

  // Each limit is either written (controller available in this hierarchy) or refused, naming
  // the field, the controller and what the hierarchy has: never silently skipped.
  const cases: Array<{ controller: string; resources: Record<string, unknown>; file: string | string[]; value: string }> = [
    { controller: 'memory', resources: { memory: { limit: 64 * MiB, reservation: 32 * MiB } }, file: 'memory.max', value: String(64 * MiB) },
    { controller: 'pids', resources: { pids: { limit: 32 } }, file: 'pids.max', value: '32' },
    { controller: 'cpu', resources: { cpu: { shares: 1024, quota: 50000, period: 100000 } }, file: 'cpu.max', value: '50000 100000' },
    { controller: 'cpuset', resources: { cpu: { cpus: '0', mems: '0' } }, file: 'cpuset.cpus', value: '0' },
    // BFQ takes the blkio weight as is, io.weight its conversion: whichever the kernel has.
    { controller: 'io', resources: { blockIO: { weight: 500 } }, file: ['io.bfq.weight', 'io.weight'], value: '' },
    { controller: 'hugetlb', resources: { hugepageLimits: [{ pageSize: '2MB', limit: 8 * MiB }] }, file: 'hugetlb.2MB.max', value: String(8 * MiB) },
  ];
  for (const tc of cases) {
    it(`${tc.controller}: written where the controller exists, refused by name where it does not`, async function () {
      const available = fs.readFileSync(path.join(MOUNT, 'cgroup.controllers'), 'utf8').split(/\s+/).filter(Boolean);
      m.create();
      try {
        const res = parseResources({ devices: allowAll, ...tc.resources });
        if (!available.includes(tc.controller)) {
          rejectsWith(
            () => m.apply(res),
            new RegExp(`container v2-e2e: linux\\.resources\\.\\S+: the ${tc.controller} controller is not available in the cgroup v2 hierarchy on ${MOUNT} \\(its cgroup\\.controllers: "${available.join(' ')}"\\)`),
          );
          return;
        }
        m.apply(res);
        const files = typeof tc.file === 'string' ? [tc.file] : tc.file;
        const file = files.find((f) => fs.existsSync(path.join(MOUNT, PARENT, 'c1', f)))!;
        const got = fs.readFileSync(path.join(MOUNT, PARENT, 'c1', file), 'utf8').trim();
        if (tc.value) assert.equal(got, tc.value);
        else assert.ok(got.length > 0);
        const enabled = fs.readFileSync(path.join(MOUNT, PARENT, 'cgroup.subtree_control'), 'utf8');
        assert.ok(enabled.split(/\s+/).includes(tc.controller), `${tc.controller} not enabled for ${PARENT}: ${enabled}`);
      } finally {
        await m.destroy();
        assert.equal(fs.existsSync(path.join(MOUNT, PARENT, 'c1')), false);
      }
    });
  }
});
