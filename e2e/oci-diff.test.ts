// The same OCI bundles under containerd's runc shim (io.containerd.runc.v2, runc 1.1.5) and
// under Burrow (io.containerd.burrow.v2), on one private containerd, compared.
//
// Every bundle is a config.json built here from containerd's default spec (the fixture captured
// from runc), on one shared busybox rootfs that no container writes to (mount points are made
// once, up front; containers that write get a tmpfs). Each bundle runs a busybox sh probe that
// prints what the container sees; the test runs it under runc, then under Burrow, and compares
// exit codes and the normalized output (mount ids, device numbers, peer group ids, timestamps
// and the rootfs' source device are normalized away). The only difference between the two
// config.json files of a bundle is linux.cgroupsPath, /default/<container id>, so that leak
// checks can tell the two containers' cgroups apart.
//
// Known, explained differences are named where they apply (comment and assertion message),
// and Burrow's own expected output is still asserted:
//   - runc 1.1.5 ignores linux.personality (added in runc 1.2); Burrow applies it (LINUX32:
//     `uname -m` prints i686).
//   - runc 1.1.5 ignores domainname; Burrow sets it.
//   - runc 1.1.5 runs the poststart hooks inside `runc create` (opencontainers/runc#1710, moved
//     to `runc start` only by runc#5186): out of order with startContainer and the process, with
//     state "created", and a failing poststart hook fails the create. Burrow runs startContainer
//     strictly before the user process, poststart after it (state "running"), and only logs a
//     failing poststart hook (runtime-spec 1.0.2, the spec's ociVersion). The set of hooks that
//     ran is compared; Burrow's order is asserted.
//   - runc 1.1.5 leaves the container's "/" private whatever linux.rootfsPropagation says
//     (opencontainers/runc#1755, fixed in runc 1.2.7/1.3 by runc#4724): Burrow applies shared
//     and unbindable to the new "/" after pivot_root, as runc now does.
//   - runc 1.1.5 chmods a tmpfs mounted over an existing directory back to that directory's mode,
//     overriding mode= (opencontainers/runc#3911, fixed in runc 1.1.8); Burrow honours mode=.
//
// Other differences found are Burrow bugs: their cases compare strictly and fail until fixed.
//
// ctr 1.6.20 has no `ctr run --user` (containerd 1.7 added it): process.user is covered by bundles.

import { strict as assert } from 'assert';
import { ChildProcess, spawn } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import {
  assertNoLeaks,
  BOTH_SHIMS,
  buildDir,
  BUSYBOX_REF,
  ensureHostTools,
  findBusybox,
  importImage,
  populateRootfs,
  PrivateContainerd,
  Result,
  run,
  RuntimeName,
  RUNTIMES,
  sleep,
  snapshotHost,
} from './harness';

type Spec = Record<string, any>;

// ---------------------------------------------------------------------------------------------
// Normalization and comparison
// ---------------------------------------------------------------------------------------------

const PSEUDO_SOURCES = new Set(['proc', 'tmpfs', 'shm', 'sysfs', 'devpts', 'mqueue', 'cgroup', 'cgroup2', 'none']);

/**
 * One /proc/self/mountinfo line without what differs from container to container: mount and
 * parent ids, device numbers, peer group numbers (shared:N → shared), and the source of real
 * filesystems (the rootfs' device or overlay). Kept: root, mount point, per-mount options,
 * propagation kinds, fs type, pseudo-fs sources and super options.
 */
function normalizeMountinfoLine(line: string): string {
  const m = /^\d+ \d+ \d+:\d+ (\S+) (\S+) (\S+)((?: \S+)*?) - (\S+) (\S+) (\S*)$/.exec(line);
  if (!m) return line;
  const [, root, mountPoint, opts, optional, fstype, source, superOpts] = m;
  const prop = optional.trim().split(' ').filter(Boolean).map((f) => f.replace(/:\d+$/, '')).join(',');
  const src = PSEUDO_SOURCES.has(source) ? source : '<src>';
  return `${mountPoint} root=${root} ${opts} [${prop}] ${fstype} ${src} ${superOpts}`;
}

const MOUNTINFO_LINE = /^\d+ \d+ \d+:\d+ \S+ \S+ \S+/;
// busybox `ls -l`: mode, links, owner, group, size or "major, minor", date (3 fields), name.
const LS_LINE = /^([-dlcbps][rwxsStT-]{9}\S*\s+\d+\s+\S+\s+\S+\s+(?:\d+,\s+)?\d+) \w{3}\s+\d+\s+(?:\d\d:\d\d|\d{4}) (.*)$/;

/**
 * Normalizes a probe's whole output: mountinfo lines as above, and sorted within each block of
 * consecutive mountinfo lines (runc makes readonlyPaths before maskedPaths, Burrow the other way
 * round: the same mounts, another order); `ls -l` timestamps; `total` lines of ls; trailing
 * blanks.
 */
function normalizeOutput(out: string): string {
  const lines = out.replace(/\s+$/, '').split('\n').map((l) => l.replace(/\s+$/, ''));
  const result: string[] = [];
  let block: string[] = [];
  const flush = (): void => {
    result.push(...block.sort());
    block = [];
  };
  for (const l of lines) {
    if (MOUNTINFO_LINE.test(l)) {
      block.push(normalizeMountinfoLine(l));
      continue;
    }
    flush();
    if (/^total \d+$/.test(l)) continue;
    const ls = LS_LINE.exec(l);
    result.push(ls ? `${ls[1]} <time> ${ls[2]}` : l.replace(/\b(shared|master|propagate_from):\d+/g, '$1'));
  }
  flush();
  return result.join('\n');
}

/** A line diff (longest common subsequence): "  " both, "- " runc only, "+ " Burrow only. */
function lineDiff(a: string, b: string): string {
  const x = a.split('\n');
  const y = b.split('\n');
  const lcs: number[][] = Array.from({ length: x.length + 1 }, () => new Array<number>(y.length + 1).fill(0));
  for (let i = x.length - 1; i >= 0; i--) {
    for (let j = y.length - 1; j >= 0; j--) {
      lcs[i][j] = x[i] === y[j] ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
    }
  }
  const out: string[] = [];
  let i = 0;
  let j = 0;
  while (i < x.length || j < y.length) {
    if (i < x.length && j < y.length && x[i] === y[j]) {
      out.push(`  ${x[i++]}`);
      j++;
    } else if (j < y.length && (i === x.length || lcs[i][j + 1] >= lcs[i + 1][j])) {
      out.push(`+ ${y[j++]}`);
    } else {
      out.push(`- ${x[i++]}`);
    }
  }
  return out.join('\n');
}

interface Pair {
  runc: Result;
  burrow: Result;
}

/** Same exit code and same normalized output under both runtimes; else both, as a diff. */
function assertSame(name: string, p: Pair, normalize: (s: string) => string = normalizeOutput): void {
  const a = normalize(p.runc.stdout);
  const b = normalize(p.burrow.stdout);
  if (p.runc.code === p.burrow.code && a === b) return;
  assert.fail(
    `${name}: runc and Burrow differ\n` +
      `exit code: runc ${p.runc.code}, Burrow ${p.burrow.code}\n` +
      `normalized output (- runc, + Burrow):\n${lineDiff(a, b)}\n` +
      `runc stderr: ${p.runc.stderr.trim()}\nBurrow stderr: ${p.burrow.stderr.trim()}`,
  );
}

function assertBothFail(name: string, p: Pair): void {
  assert.notEqual(p.runc.code, 0, `${name}: runc should fail; stdout: ${p.runc.stdout}`);
  assert.notEqual(p.burrow.code, 0, `${name}: Burrow should fail; stdout: ${p.burrow.stdout}`);
}

// ---------------------------------------------------------------------------------------------
// Probes (busybox sh)
// ---------------------------------------------------------------------------------------------

const P = {
  ids: 'id; id -G',
  umask: 'umask',
  caps: "grep -E '^(Cap|NoNewPrivs|Seccomp)' /proc/self/status",
  limits: 'cat /proc/self/limits',
  mountinfo: 'cat /proc/self/mountinfo',
  // Mount point and propagation fields (shared:N, master:N…) of every mount, sorted.
  propagation: 'awk \'{ s = $5; for (i = 7; $i != "-"; i++) s = s " " $i; print s }\' /proc/self/mountinfo | sort',
  mountsAt: (...points: string[]) => `grep -E ' (${points.join('|')}) ' /proc/self/mountinfo`,
  devices: 'ls -ln /dev',
  oom: 'cat /proc/self/oom_score_adj',
  env: 'env | sort',
  pid: 'echo $$',
  nets: 'ls /sys/class/net',
  // `$?` of the command before, so an error's exit status is part of the output.
  rc: 'echo "rc=$?"',
};

const probe = (...parts: string[]): string => parts.join('\n');

/** containerd's default /sys/fs/cgroup mount (what CRI gives every container). */
const CGROUP_MOUNT = { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['nosuid', 'noexec', 'nodev', 'relatime', 'ro'] };
/** The mountinfo lines of /sys/fs/cgroup and everything under it. */
const CGROUP_MOUNTS = "grep -E ' /sys/fs/cgroup(/| )' /proc/self/mountinfo";

/** Every /proc/self/cgroup line of the output says "/": the cgroup namespace's root is the container's cgroup. */
function assertOwnCgroupRoot(out: string): void {
  const lines = out.split('\n').filter((l) => /^\d+:[^:]*:/.test(l));
  assert.ok(lines.length > 0, `no /proc/self/cgroup lines in:\n${out}`);
  for (const l of lines) assert.match(l, /:\/$/, `the container should be at the root of its cgroup namespace:\n${out}`);
}

/** The fixture's default capabilities (containerd's default set). */
const DEFAULT_CAPS = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FSETID', 'CAP_FOWNER', 'CAP_MKNOD', 'CAP_NET_RAW', 'CAP_SETGID',
  'CAP_SETUID', 'CAP_SETFCAP', 'CAP_SETPCAP', 'CAP_NET_BIND_SERVICE', 'CAP_SYS_CHROOT', 'CAP_KILL',
  'CAP_AUDIT_WRITE',
];

const capSets = (sets: Partial<Record<'bounding' | 'effective' | 'inheritable' | 'permitted' | 'ambient', string[]>>) =>
  (s: Spec): void => {
    s.process.capabilities = sets;
  };

function setCapsField(status: string, field: string): bigint {
  const m = new RegExp(`^${field}:\\s*([0-9a-f]+)$`, 'm').exec(status);
  assert.ok(m, `no ${field} in ${status}`);
  return BigInt(`0x${m[1]}`);
}

// ---------------------------------------------------------------------------------------------
// The suite
// ---------------------------------------------------------------------------------------------

/** What a bundle may need from the host, made before its two runs and removed after. */
interface Fixture {
  values: Record<string, string>;
  cleanup(): Promise<void>;
}

interface Ctx {
  runtime: RuntimeName;
  id: string;
  fx?: Fixture;
  /** The hook log (<hook dir>/log) right after this run, for bundles with hooks. */
  hookLog?: string[];
}

interface BundleCase {
  name: string;
  /** What the bundle covers (the table in the report). */
  covers: string;
  edit?: (spec: Spec, ctx: Ctx) => void;
  probe: string;
  /** A tmpfs at /tmp, for probes that write. */
  tmp?: boolean;
  prepare?: () => Promise<Fixture>;
  /** One fixture per run rather than one for both (a joined mount namespace is pivoted). */
  fixturePerRun?: boolean;
  /** Runs before each of the two runs (e.g. clears a marker dir). */
  beforeRun?: (ctx: Ctx) => void;
  /**
   * The comparison; default: same exit code and normalized output. `check` gets both results
   * and asserts what Burrow itself must show (and is also where named differences are handled).
   */
  compare?: (p: Pair, ctxs: Record<RuntimeName, Ctx>) => void | Promise<void>;
  check?: (p: Pair, ctxs: Record<RuntimeName, Ctx>) => void | Promise<void>;
}

describe('oci-diff: the same bundles under runc and Burrow', function () {
  this.timeout(240_000);
  let c: PrivateContainerd;
  let specDir: string;
  let rootfs: string;
  let hostDir: string; // bind-mounted into containers
  let rbindDir: string; // has a submount: rbind shows it, bind does not
  let hookDir: string; // hook markers; bind-mounted at /mnt/hooks
  let boundFile: string;
  let rootfsListing: string;

  function listTree(dir: string): string {
    const out: string[] = [];
    const walk = (d: string): void => {
      for (const n of fs.readdirSync(d).sort()) {
        const p = path.join(d, n);
        const st = fs.lstatSync(p);
        out.push(`${path.relative(dir, p)} ${st.mode.toString(8)} ${st.uid}:${st.gid} ${st.isFile() ? st.size : ''} ${st.mtimeMs}`);
        if (st.isDirectory()) walk(p);
      }
    };
    walk(dir);
    return out.join('\n');
  }

  function buildSpec(b: BundleCase, ctx: Ctx): Spec {
    const spec = JSON.parse(fs.readFileSync(path.join(__dirname, '../../e2e/fixtures/runc-default-config.json'), 'utf8'));
    spec.root = { path: rootfs };
    spec.process.terminal = false;
    // Errors (touch, cat of a masked path…) are part of what the container sees.
    spec.process.args = ['sh', '-c', `exec 2>&1\n${b.probe}`];
    spec.linux.cgroupsPath = `/default/${ctx.id}`;
    if (b.tmp) {
      spec.mounts.push({ destination: '/tmp', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'mode=1777', 'size=16m'] });
    }
    b.edit?.(spec, ctx);
    return spec;
  }

  async function runBundle(b: BundleCase, ctx: Ctx): Promise<Result> {
    const file = path.join(specDir, `${ctx.id}.json`);
    fs.writeFileSync(file, JSON.stringify(buildSpec(b, ctx), null, 2));
    return c.ctr(['run', '--rm', '--config', file, '--runtime', RUNTIMES[ctx.runtime], ctx.id], { timeoutSec: 60 });
  }

  const runImage = (runtime: RuntimeName, id: string, flags: string[], script: string): Promise<Result> =>
    c.ctr(['run', '--rm', '--runtime', RUNTIMES[runtime], ...flags, BUSYBOX_REF, id, 'sh', '-c', `exec 2>&1\n${script}`], {
      timeoutSec: 60,
    });

  // --- host fixtures -------------------------------------------------------------------------

  let netnsCounter = 0;
  async function netnsFixture(): Promise<Fixture> {
    const name = `burrow-diff-${process.pid}-${netnsCounter++}`;
    const add = await run('ip', ['netns', 'add', name]);
    assert.equal(add.code, 0, `ip netns add ${name}: ${add.stderr}`);
    // Loopback up: what tells the joined namespace from a new one inside the container.
    const up = await run('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
    assert.equal(up.code, 0, up.stderr);
    const nsPath = `/run/netns/${name}`;
    return {
      values: { path: nsPath, inode: String(fs.statSync(nsPath).ino) },
      async cleanup() {
        const del = await run('ip', ['netns', 'del', name]);
        assert.equal(del.code, 0, `ip netns del ${name}: ${del.stderr}`);
      },
    };
  }

  /**
   * A host process in its own pid, ipc, uts and cgroup namespaces (`unshare`), whose namespaces
   * bundles join by path. Its pid 1 is `sleep`, its hostname diff-joined.
   */
  async function unshareFixture(): Promise<Fixture> {
    const child: ChildProcess = spawn(
      'unshare',
      ['--pid', '--ipc', '--uts', '--cgroup', '--kill-child', 'sh', '-c', 'hostname diff-joined && exec sleep 300'],
      { stdio: 'ignore', detached: true },
    );
    const upid = child.pid!;
    let inner = 0;
    for (let i = 0; i < 100 && !inner; i++) {
      await sleep(50);
      try {
        const kids = fs.readFileSync(`/proc/${upid}/task/${upid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
        if (kids.length > 0 && fs.readFileSync(`/proc/${kids[0]}/comm`, 'utf8').trim() === 'sleep') inner = Number(kids[0]);
      } catch {
        // not there yet
      }
    }
    assert.ok(inner > 0, 'the unshare helper never reached its sleep');
    const ino = (t: string): string => fs.readlinkSync(`/proc/${inner}/ns/${t}`);
    return {
      values: { pid: String(inner), pidNs: ino('pid'), ipcNs: ino('ipc'), utsNs: ino('uts'), cgroupNs: ino('cgroup') },
      async cleanup() {
        try {
          process.kill(-upid, 'SIGKILL');
        } catch {
          // gone
        }
        for (let i = 0; i < 100 && fs.existsSync(`/proc/${upid}`) && !/^State:\s+Z/m.test(readStatus(upid)); i++) {
          await sleep(20);
        }
      },
    };
  }

  /**
   * The shared rootfs bind-mounted onto itself and made shared on the host, so that the
   * container's propagation (rslave: master:N, rprivate: none) shows in its mountinfo.
   */
  async function sharedRootfsFixture(): Promise<Fixture> {
    for (const args of [['--bind', rootfs, rootfs], ['--make-shared', rootfs]]) {
      const r = await run('mount', args);
      assert.equal(r.code, 0, `mount ${args.join(' ')}: ${r.stderr}`);
    }
    return {
      values: {},
      async cleanup() {
        const r = await run('umount', [rootfs]);
        assert.equal(r.code, 0, `umount ${rootfs}: ${r.stderr}`);
      },
    };
  }

  /** A host process in a user namespace of its own, mapped 0:100000:65536 (uid and gid). */
  async function userNsFixture(): Promise<Fixture> {
    const child: ChildProcess = spawn('unshare', ['--user', 'sleep', '300'], { stdio: 'ignore', detached: true });
    const pid = child.pid!;
    for (let i = 0; i < 100 && fs.readlinkSync(`/proc/${pid}/exe`) !== '/usr/bin/sleep'; i++) await sleep(20);
    for (const f of ['uid_map', 'gid_map']) fs.writeFileSync(`/proc/${pid}/${f}`, '0 100000 65536\n');
    return {
      values: { path: `/proc/${pid}/ns/user`, userNs: fs.readlinkSync(`/proc/${pid}/ns/user`) },
      async cleanup() {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone
        }
        for (let i = 0; i < 100 && !/^State:\s+Z/m.test(readStatus(pid)); i++) await sleep(20);
      },
    };
  }

  /**
   * A host process in a mount namespace of its own (`unshare --mount`, a private copy of the
   * host's mounts, so the rootfs and bundle paths resolve there); with `user`, in a user
   * namespace of its own too, mapped 0:100000:65536, that owns the mount namespace.
   */
  async function mountNsFixture(user: boolean): Promise<Fixture> {
    const args = user ? ['--user', '--mount', 'sleep', '300'] : ['--mount', 'sleep', '300'];
    const child: ChildProcess = spawn('unshare', args, { stdio: 'ignore', detached: true });
    const pid = child.pid!;
    for (let i = 0; i < 100 && fs.readlinkSync(`/proc/${pid}/exe`) !== '/usr/bin/sleep'; i++) await sleep(20);
    assert.equal(fs.readlinkSync(`/proc/${pid}/exe`), '/usr/bin/sleep', 'the unshare helper never reached its sleep');
    if (user) for (const f of ['uid_map', 'gid_map']) fs.writeFileSync(`/proc/${pid}/${f}`, '0 100000 65536\n');
    return {
      values: {
        path: `/proc/${pid}/ns/mnt`,
        mntNs: fs.readlinkSync(`/proc/${pid}/ns/mnt`),
        userPath: `/proc/${pid}/ns/user`,
        userNs: fs.readlinkSync(`/proc/${pid}/ns/user`),
      },
      async cleanup() {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone
        }
        for (let i = 0; i < 100 && !/^State:\s+Z/m.test(readStatus(pid)); i++) await sleep(20);
      },
    };
  }

  function readStatus(pid: number): string {
    try {
      return fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    } catch {
      return 'State: Z';
    }
  }

  // --- hooks ---------------------------------------------------------------------------------

  const HOOK_KINDS = ['prestart', 'createRuntime', 'createContainer', 'startContainer', 'poststart', 'poststop'] as const;
  type HookKind = (typeof HOOK_KINDS)[number];
  /** In the container: the hook dir's mount point. */
  const HOOKS_IN = '/mnt/hooks';
  const HOOK_ENV = ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'];

  /**
   * A hook: appends "<kind> <status of the state JSON on stdin> <id-ok|id-bad>" to <dir>/log.
   * createContainer runs before pivot_root (host paths), startContainer after it (container
   * paths); all others run in the runtime's namespaces (host paths).
   */
  function hook(kind: HookKind, ctx: Ctx, extra: { fail?: boolean; sleep?: number; timeout?: number } = {}): Record<string, unknown> {
    const inContainer = kind === 'startContainer';
    const dir = inContainer ? HOOKS_IN : hookDir;
    const args = ['hook.sh', kind, dir, ctx.id];
    if (extra.fail) args.push('fail');
    if (extra.sleep) args.push(`sleep=${extra.sleep}`);
    return {
      path: path.join(dir, 'hook.sh'),
      args,
      env: HOOK_ENV,
      ...(extra.timeout ? { timeout: extra.timeout } : {}),
    };
  }

  const hookMount = (): Record<string, unknown> => ({
    destination: HOOKS_IN,
    type: 'bind',
    source: hookDir,
    options: ['rbind', 'rw'],
  });

  function hookLog(): string[] {
    const f = path.join(hookDir, 'log');
    return fs.existsSync(f) ? fs.readFileSync(f, 'utf8').trim().split('\n').filter(Boolean) : [];
  }

  function clearHookLog(): void {
    fs.rmSync(path.join(hookDir, 'log'), { force: true });
  }

  const EXPECTED_STATUS: Record<HookKind, string> = {
    prestart: 'creating',
    createRuntime: 'creating',
    createContainer: 'creating',
    startContainer: 'created',
    poststart: 'running',
    poststop: 'stopped',
  };

  /** A bundle with one failing hook of `kind`: `ctr run` fails for both, the process never runs. */
  function failingHook(kind: HookKind, extra: { timeout?: number; sleep?: number } = {}): BundleCase {
    const timeout = extra.timeout !== undefined;
    return {
      name: timeout ? `hook-timeout-${kind}` : `hook-fail-${kind}`,
      covers: timeout
        ? `a ${kind} hook that outlives its timeout (${extra.timeout}s) fails ctr run`
        : `a failing ${kind} hook fails ctr run, the process never runs`,
      probe: `echo process >> ${HOOKS_IN}/log`,
      beforeRun: clearHookLog,
      edit: (s, ctx) => {
        s.mounts.push(hookMount());
        s.hooks = { [kind]: [hook(kind, ctx, timeout ? { sleep: extra.sleep, timeout: extra.timeout } : { fail: true })] };
      },
      compare: (p) => assertBothFail(`failing ${kind} hook`, p),
      check: (p, ctxs) => {
        assert.match(p.burrow.stderr, new RegExp(`${kind} hook .*hook\\.sh.*${timeout ? 'timed out' : 'exited with status 1'}`),
          `Burrow's error should name the ${kind} hook: ${p.burrow.stderr}`);
        for (const rt of ['runc', 'burrow'] as const) {
          const log = ctxs[rt].hookLog!;
          assert.deepEqual(log.map((l) => l.split(' ')[0]), [kind], `${rt}: only the ${kind} hook ran, not the process: ${log.join(', ')}`);
        }
      },
    };
  }

  /**
   * A failing poststart/poststop hook is only logged (runtime-spec 1.0.2, the spec's ociVersion):
   * `ctr run` succeeds. Known difference for poststart: runc 1.1.5 runs poststart inside
   * `runc create` and fails the create when it fails (opencontainers/runc#1710).
   */
  function loggedHookFailure(kind: 'poststart' | 'poststop'): BundleCase {
    const runcFailsIt = kind === 'poststart';
    return {
      name: `hook-fail-${kind}`,
      covers: `a failing ${kind} hook does not fail ctr run; the process runs${runcFailsIt ? ' (known difference: runc 1.1.5 fails the create)' : ''}`,
      probe: 'echo ran',
      beforeRun: clearHookLog,
      edit: (s, ctx) => {
        s.mounts.push(hookMount());
        s.hooks = { [kind]: [hook(kind, ctx, { fail: true })] };
      },
      compare: runcFailsIt
        ? (p, ctxs) => {
          const why = 'known difference: runc 1.1.5 runs poststart during create and fails the create (runc#1710)';
          assert.notEqual(p.runc.code, 0, `runc: ${why}`);
          assert.match(p.runc.stderr, /runc create failed: error running hook #0/, why);
          assert.equal(p.runc.stdout, '', `${why}: the process must not have run`);
          assert.deepEqual(ctxs.runc.hookLog, ['poststart created id-ok'], why);
        }
        : undefined,
      check: (p, ctxs) => {
        const why = runcFailsIt ? ' (known difference: runc 1.1.5 fails the create instead, runc#1710)' : '';
        assert.equal(p.burrow.code, 0, `Burrow: a failing ${kind} hook is only logged${why}: ${p.burrow.stderr}`);
        assert.equal(p.burrow.stdout, 'ran\n');
        for (const rt of runcFailsIt ? (['burrow'] as const) : (['runc', 'burrow'] as const)) {
          assert.deepEqual(ctxs[rt].hookLog, [`${kind} ${EXPECTED_STATUS[kind]} id-ok`], `${rt}: the ${kind} hook ran once`);
        }
      },
    };
  }

  // --- the table -----------------------------------------------------------------------------

  const BUNDLES: BundleCase[] = [
    // process.user
    {
      name: 'user-default',
      covers: 'process.user root with additionalGids [0]; default umask 0022; cwd /; pid 1',
      probe: probe(P.ids, P.umask, 'pwd', P.pid),
      check: (p) => assert.equal(p.burrow.stdout, 'uid=0(root) gid=0(root) groups=0(root)\n0\n0022\n/\n1\n'),
    },
    {
      name: 'env-default',
      covers: 'process.env of the default spec (PATH only): what the process gets on top of it',
      probe: P.env,
    },
    {
      name: 'user-uid-gid-groups-umask',
      covers: 'process.user uid 1000, gid 1000, additionalGids [10, 20, 65534], umask 0027',
      tmp: true,
      probe: probe(P.ids, P.umask, 'touch /tmp/f && mkdir /tmp/d && ls -ln /tmp'),
      edit: (s) => {
        s.process.user = { uid: 1000, gid: 1000, additionalGids: [10, 20, 65534], umask: 0o027 };
      },
      check: (p) => assert.match(p.burrow.stdout, /^uid=1000 gid=1000 groups=10,20,65534\(nobody\)\n1000 10 20 65534\n0027\n/),
    },
    {
      name: 'user-umask-077-no-groups',
      covers: 'process.user umask 0077, no additionalGids (root keeps no supplementary group)',
      tmp: true,
      probe: probe(P.ids, P.umask, 'touch /tmp/f && mkdir /tmp/d && ls -ln /tmp'),
      edit: (s) => {
        s.process.user = { uid: 0, gid: 0, umask: 0o077 };
      },
      check: (p) => assert.match(p.burrow.stdout, /^0077$/m),
    },
    // capabilities
    {
      name: 'caps-default',
      covers: 'capabilities: containerd default set; noNewPrivileges true; no seccomp',
      probe: P.caps,
      check: (p) => assert.match(p.burrow.stdout, /^CapEff:\s+00000000a80425fb$/m),
    },
    {
      name: 'caps-minimal',
      covers: 'capabilities: minimal set (CAP_CHOWN, CAP_NET_BIND_SERVICE) in bounding/effective/permitted',
      probe: P.caps,
      edit: capSets({
        bounding: ['CAP_CHOWN', 'CAP_NET_BIND_SERVICE'],
        effective: ['CAP_CHOWN', 'CAP_NET_BIND_SERVICE'],
        permitted: ['CAP_CHOWN', 'CAP_NET_BIND_SERVICE'],
      }),
      check: (p) => assert.match(p.burrow.stdout, /^CapBnd:\s+0000000000000401$/m),
    },
    {
      name: 'caps-empty',
      covers: 'capabilities: all five sets empty',
      probe: P.caps,
      edit: capSets({ bounding: [], effective: [], inheritable: [], permitted: [], ambient: [] }),
      check: (p) => assert.match(p.burrow.stdout, /^CapEff:\s+0000000000000000$/m),
    },
    {
      name: 'caps-mixed-sets',
      covers: 'capabilities: distinct bounding, effective, permitted, inheritable sets for root',
      probe: P.caps,
      edit: capSets({
        bounding: ['CAP_CHOWN', 'CAP_KILL', 'CAP_SETUID', 'CAP_SETGID', 'CAP_NET_RAW'],
        effective: ['CAP_CHOWN'],
        permitted: ['CAP_CHOWN', 'CAP_KILL', 'CAP_SETUID'],
        inheritable: ['CAP_KILL', 'CAP_NET_RAW'],
      }),
    },
    {
      name: 'caps-nonroot-ambient',
      covers: 'capabilities: non-root (1000:1000) with CAP_NET_BIND_SERVICE ambient (and in every set)',
      probe: probe(P.ids, P.caps),
      edit: (s) => {
        s.process.user = { uid: 1000, gid: 1000 };
        const set = ['CAP_NET_BIND_SERVICE'];
        s.process.capabilities = { bounding: set, effective: set, permitted: set, inheritable: set, ambient: set };
      },
      check: (p) => {
        assert.match(p.burrow.stdout, /^CapAmb:\s+0000000000000400$/m);
        assert.match(p.burrow.stdout, /^CapEff:\s+0000000000000400$/m);
      },
    },
    {
      name: 'caps-nonroot-no-ambient',
      covers: 'capabilities: non-root with effective/permitted but no ambient: lost at execve',
      probe: probe(P.ids, P.caps),
      edit: (s) => {
        s.process.user = { uid: 1000, gid: 1000 };
        s.process.capabilities = { bounding: DEFAULT_CAPS, effective: DEFAULT_CAPS, permitted: DEFAULT_CAPS };
      },
      check: (p) => assert.match(p.burrow.stdout, /^CapEff:\s+0000000000000000$/m),
    },
    // rlimits, noNewPrivileges, oomScoreAdj
    {
      name: 'rlimits',
      covers: 'rlimits NOFILE, NPROC, CORE, STACK, MEMLOCK, MSGQUEUE, NICE, CPU, FSIZE (ulimit -a and /proc/self/limits)',
      probe: probe('ulimit -a', P.limits),
      edit: (s) => {
        s.process.rlimits = [
          { type: 'RLIMIT_NOFILE', soft: 256, hard: 512 },
          { type: 'RLIMIT_NPROC', soft: 4096, hard: 8192 },
          { type: 'RLIMIT_CORE', soft: 0, hard: 4096 },
          { type: 'RLIMIT_STACK', soft: 4194304, hard: 8388608 },
          { type: 'RLIMIT_MEMLOCK', soft: 65536, hard: 65536 },
          { type: 'RLIMIT_MSGQUEUE', soft: 4096, hard: 8192 },
          { type: 'RLIMIT_NICE', soft: 0, hard: 0 },
          { type: 'RLIMIT_CPU', soft: 100, hard: 200 },
          { type: 'RLIMIT_FSIZE', soft: 1048576, hard: 2097152 },
        ];
      },
      check: (p) => assert.match(p.burrow.stdout, /^Max open files\s+256\s+512\s+files/m),
    },
    {
      name: 'no-new-privileges-false',
      covers: 'noNewPrivileges false (NoNewPrivs 0)',
      probe: P.caps,
      edit: (s) => {
        s.process.noNewPrivileges = false;
      },
      check: (p) => assert.match(p.burrow.stdout, /^NoNewPrivs:\s+0$/m),
    },
    {
      name: 'oom-score-adj-unset',
      covers: 'no oomScoreAdj: the process inherits its shim\'s oom_score_adj',
      probe: P.oom,
    },
    {
      name: 'oom-score-adj-raised',
      covers: 'oomScoreAdj 500 (raised)',
      probe: P.oom,
      edit: (s) => {
        s.process.oomScoreAdj = 500;
      },
      check: (p) => assert.equal(p.burrow.stdout, '500\n'),
    },
    {
      name: 'oom-score-adj-lowered',
      covers: 'oomScoreAdj -500 (lowered): fails for both here (no CAP_SYS_RESOURCE on this machine)',
      probe: P.oom,
      edit: (s) => {
        s.process.oomScoreAdj = -500;
      },
      compare: (p) => assertBothFail('oomScoreAdj -500', p),
      check: (p) => assert.match(p.burrow.stderr, /oom_score_adj/, `Burrow's error should name oom_score_adj: ${p.burrow.stderr}`),
    },
    // cwd, env
    {
      name: 'cwd-env',
      covers: 'process.cwd /usr/bin; process.env with empty, "="-containing and HOME values',
      probe: probe('pwd', P.env),
      edit: (s) => {
        s.process.cwd = '/usr/bin';
        s.process.env = [...s.process.env, 'FOO=bar', 'EMPTY=', 'WITH_EQ=a=b=c', 'HOME=/home/diff', 'SPACES=a b'];
      },
      check: (p) => assert.match(p.burrow.stdout, /^\/usr\/bin\n/),
    },
    // namespaces
    {
      name: 'ns-new-all',
      covers: 'new pid, network, mount, ipc, uts, cgroup namespaces: pid 1, only lo, own hostname, cgroup root',
      // The processes the container sees, counted by the shell's own glob: a pipeline's count
      // would depend on whether its second process was forked before the first read /proc.
      probe: probe(P.pid, P.nets, 'hostname', 'cat /proc/self/cgroup', 'set -- /proc/[0-9]*; echo "$# $*"'),
      edit: (s) => {
        s.hostname = 'diff-new';
        s.linux.namespaces.push({ type: 'cgroup' });
      },
      check: (p) => {
        assert.match(p.burrow.stdout, /^1\nlo\ndiff-new\n/);
        assert.match(p.burrow.stdout, /\n1 \/proc\/1\n$/, 'only the container\'s own process is visible');
      },
    },
    {
      name: 'ns-host',
      covers: 'only a new mount namespace: host pid, network, ipc, uts, cgroup namespaces',
      probe: 'for t in pid net ipc uts cgroup; do readlink /proc/self/ns/$t; done; ls /sys/class/net | sort',
      edit: (s) => {
        s.linux.namespaces = [{ type: 'mount' }];
      },
      check: (p) => {
        for (const t of ['pid', 'net', 'ipc', 'uts', 'cgroup']) {
          assert.ok(p.burrow.stdout.includes(fs.readlinkSync(`/proc/self/ns/${t}`)), `Burrow should be in the host ${t} namespace`);
        }
      },
    },
    {
      name: 'ns-join-network',
      covers: 'network namespace joined by path (ip netns add burrow-diff-<n>, lo up there)',
      prepare: netnsFixture,
      probe: probe('ip -o link | cut -d" " -f2,3', P.nets, 'readlink /proc/self/ns/net'),
      edit: (s, ctx) => {
        s.linux.namespaces = s.linux.namespaces.map((n: { type: string }) =>
          n.type === 'network' ? { type: 'network', path: ctx.fx!.values.path } : n);
      },
      check: (p, ctxs) => {
        assert.ok(p.burrow.stdout.includes(`net:[${ctxs.burrow.fx!.values.inode}]`), p.burrow.stdout);
        assert.match(p.burrow.stdout, /lo: <LOOPBACK,UP,LOWER_UP>/);
      },
    },
    {
      name: 'ns-join-pid-ipc-uts-cgroup',
      covers: 'pid, ipc, uts and cgroup namespaces joined by path (an unshare helper; its sleep is pid 1)',
      prepare: unshareFixture,
      probe: probe(
        'for t in pid ipc uts cgroup; do readlink /proc/self/ns/$t; done',
        'hostname',
        "tr '\\0' ' ' < /proc/1/cmdline; echo",
      ),
      edit: (s, ctx) => {
        const pid = ctx.fx!.values.pid;
        const files: Record<string, string> = { pid: 'pid', ipc: 'ipc', uts: 'uts', cgroup: 'cgroup' };
        s.linux.namespaces = s.linux.namespaces
          .filter((n: { type: string }) => !(n.type in files))
          .concat(Object.entries(files).map(([type, f]) => ({ type, path: `/proc/${pid}/ns/${f}` })));
      },
      check: (p, ctxs) => {
        const v = ctxs.burrow.fx!.values;
        assert.equal(p.burrow.stdout, `${v.pidNs}\n${v.ipcNs}\n${v.utsNs}\n${v.cgroupNs}\ndiff-joined\nsleep 300 \n`);
      },
    },
    {
      name: 'ns-join-user',
      covers: 'user namespace joined by path (an unshare helper, mapped 0:100000:65536), with matching mappings in the spec',
      prepare: userNsFixture,
      probe: probe(P.ids, 'cat /proc/self/uid_map /proc/self/gid_map', 'readlink /proc/self/ns/user'),
      edit: (s, ctx) => {
        s.root.readonly = true;
        s.linux.namespaces.push({ type: 'user', path: ctx.fx!.values.path });
        // runc 1.1.5 needs the mappings of a joined user namespace in the spec too.
        s.linux.uidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
        s.linux.gidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
      },
      check: (p, ctxs) => {
        assert.equal(p.burrow.code, 0, p.burrow.stderr);
        assert.match(p.burrow.stdout, /^uid=0\(root\) gid=0\(root\)/);
        assert.match(p.burrow.stdout, /^\s+0\s+100000\s+65536$/m);
        assert.ok(p.burrow.stdout.includes(ctxs.burrow.fx!.values.userNs), p.burrow.stdout);
      },
    },
    {
      name: 'ns-join-user-new-others',
      covers: 'user namespace joined by path with new pid, ipc, uts, network, mount namespaces owned by it (pid 1, /dev/mqueue, devices)',
      prepare: userNsFixture,
      probe: probe(P.ids, P.pid, 'hostname', P.nets, P.caps, 'ls -ln /dev /dev/mqueue', P.mountsAt('/', '/proc', '/dev/mqueue', '/sys'),
        'readlink /proc/self/ns/user | grep -cF "$USERNS"'),
      edit: (s, ctx) => {
        s.root.readonly = true;
        s.hostname = 'diff-joined-user';
        s.process.env.push(`USERNS=${ctx.fx!.values.userNs}`);
        s.linux.namespaces.push({ type: 'user', path: ctx.fx!.values.path });
        s.linux.uidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
        s.linux.gidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
      },
      check: (p) => assert.match(p.burrow.stdout, /^uid=0\(root\) gid=0\(root\) groups=0\(root\)\n0\n1\ndiff-joined-user\nlo\n/),
    },
    {
      name: 'ns-cgroup-user',
      covers: 'new cgroup and user namespaces (Kubernetes hostUsers: false): the cgroup namespace is rooted at the container\'s cgroup and owned by its user namespace; /sys/fs/cgroup as runc',
      probe: probe(P.ids, 'cat /proc/self/cgroup', CGROUP_MOUNTS, 'ls /sys/fs/cgroup', 'cat /sys/fs/cgroup/pids/pids.max'),
      edit: (s) => {
        s.linux.namespaces.push({ type: 'cgroup' }, { type: 'user' });
        s.linux.uidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
        s.linux.gidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
        s.linux.resources = { ...s.linux.resources, pids: { limit: 77 } };
        s.mounts.push(CGROUP_MOUNT);
      },
      check: (p) => {
        assert.match(p.burrow.stdout, /^uid=0\(root\) gid=0\(root\)/);
        assertOwnCgroupRoot(p.burrow.stdout);
        assert.match(p.burrow.stdout, /\n77\n$/);
      },
    },
    {
      name: 'ns-cgroup-join-user',
      covers: 'new cgroup namespace with a user namespace joined by path (an unshare helper, mapped 0:100000:65536)',
      prepare: userNsFixture,
      probe: probe(P.ids, 'cat /proc/self/cgroup', CGROUP_MOUNTS, 'readlink /proc/self/ns/user | grep -cF "$USERNS"'),
      edit: (s, ctx) => {
        s.process.env.push(`USERNS=${ctx.fx!.values.userNs}`);
        s.linux.namespaces.push({ type: 'cgroup' }, { type: 'user', path: ctx.fx!.values.path });
        s.linux.uidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
        s.linux.gidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
        s.mounts.push(CGROUP_MOUNT);
      },
      check: (p) => {
        assertOwnCgroupRoot(p.burrow.stdout);
        assert.match(p.burrow.stdout, /\n1\n$/);
      },
    },
    {
      name: 'cgroup-mount-v1',
      covers: 'cgroup mount at /sys/fs/cgroup without a cgroup namespace: the container\'s own cgroup of each hierarchy, read-only',
      probe: probe('cat /proc/self/cgroup', CGROUP_MOUNTS, 'ls /sys/fs/cgroup', 'cat /sys/fs/cgroup/pids/pids.max', 'touch /sys/fs/cgroup/x', P.rc),
      edit: (s) => {
        s.linux.resources = { ...s.linux.resources, pids: { limit: 77 } };
        s.mounts.push(CGROUP_MOUNT);
      },
      // The containers' cgroups are /default/<id>, and the ids differ by runtime.
      compare: (p, ctxs) => {
        const sameIds = (out: string, id: string) => normalizeOutput(out.split(id).join('<id>'));
        assertSame('cgroup-mount-v1', p, (out) => sameIds(sameIds(out, ctxs.runc.id), ctxs.burrow.id));
      },
      check: (p) => assert.match(p.burrow.stdout, /\n77\n/),
    },
    {
      name: 'ns-cgroup',
      covers: 'new cgroup namespace without a user namespace, with /sys/fs/cgroup mounted',
      probe: probe('cat /proc/self/cgroup', CGROUP_MOUNTS),
      edit: (s) => {
        s.linux.namespaces.push({ type: 'cgroup' });
        s.mounts.push(CGROUP_MOUNT);
      },
      check: (p) => assertOwnCgroupRoot(p.burrow.stdout),
    },
    {
      name: 'ns-join-mount',
      covers: 'mount namespace joined by path (an unshare --mount helper): the rootfs is set up and pivoted there',
      prepare: () => mountNsFixture(false),
      fixturePerRun: true,
      probe: probe(P.ids, P.mountsAt('/', '/proc', '/dev', '/dev/pts', '/sys'), 'readlink /proc/self/ns/mnt | grep -cF "$MNTNS"'),
      edit: (s, ctx) => {
        s.process.env.push(`MNTNS=${ctx.fx!.values.mntNs}`);
        s.linux.namespaces = s.linux.namespaces.map((n: { type: string }) =>
          n.type === 'mount' ? { type: 'mount', path: ctx.fx!.values.path } : n);
      },
      check: (p) => assert.match(p.burrow.stdout, /\n1\n$/),
    },
    {
      name: 'ns-join-user-mount',
      covers: 'user and mount namespaces joined by path (unshare --user --mount, mapped 0:100000:65536), new pid/ipc/uts/network',
      prepare: () => mountNsFixture(true),
      fixturePerRun: true,
      probe: probe(P.ids, P.pid, 'cat /proc/self/uid_map', P.mountsAt('/', '/proc', '/dev', '/dev/mqueue'), 'ls -ln /dev',
        'readlink /proc/self/ns/mnt | grep -cF "$MNTNS"', 'readlink /proc/self/ns/user | grep -cF "$USERNS"'),
      edit: (s, ctx) => {
        s.root.readonly = true;
        s.process.env.push(`MNTNS=${ctx.fx!.values.mntNs}`, `USERNS=${ctx.fx!.values.userNs}`);
        s.linux.namespaces = s.linux.namespaces.map((n: { type: string }) =>
          n.type === 'mount' ? { type: 'mount', path: ctx.fx!.values.path } : n);
        s.linux.namespaces.push({ type: 'user', path: ctx.fx!.values.userPath });
        s.linux.uidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
        s.linux.gidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
      },
      check: (p) => {
        assert.match(p.burrow.stdout, /^uid=0\(root\) gid=0\(root\) groups=0\(root\)\n0\n1\n/);
        assert.match(p.burrow.stdout, /\n1\n1\n$/);
      },
    },
    {
      name: 'ns-user',
      covers: 'new user namespace, uidMappings/gidMappings 0:100000:65536, shared rootfs read-only as mapped root',
      probe: probe(P.ids, 'cat /proc/self/uid_map /proc/self/gid_map', 'stat -c "%u:%g %a %n" / /bin/busybox /etc/passwd',
        P.caps, 'ls -ln /dev', 'touch /x', P.rc),
      edit: (s) => {
        s.root.readonly = true;
        s.linux.namespaces.push({ type: 'user' });
        s.linux.uidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
        s.linux.gidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
      },
      // /dev/mqueue is owned by whoever created the ipc namespace: as runc, Burrow unshares it
      // after setresuid(0) in the new user namespace and before setresgid(0), so it shows
      // 0:65534 (strictly compared, with ls -ln /dev).
      check: (p) => {
        assert.match(p.burrow.stdout, /^uid=0\(root\) gid=0\(root\)/);
        assert.match(p.burrow.stdout, /^\s+0\s+100000\s+65536$/m);
        assert.match(p.burrow.stdout, /^65534:65534 755 \/bin\/busybox$/m);
      },
    },
    // root
    {
      name: 'root-readonly',
      covers: 'root.readonly: / mounted ro, writes fail with EROFS; /dev, /proc stay as mounted',
      probe: probe('touch /x', P.rc, 'mkdir /etc/newdir', P.rc, P.mountsAt('/', '/dev', '/proc')),
      edit: (s) => {
        s.root.readonly = true;
      },
      check: (p) => assert.match(p.burrow.stdout, /touch: \/x: Read-only file system\nrc=1/),
    },
    {
      name: 'rootfs-propagation-rprivate',
      covers: 'rootfsPropagation rprivate, the rootfs being a shared mount on the host: no peer groups in the container',
      prepare: sharedRootfsFixture,
      probe: P.propagation,
      edit: (s) => {
        s.linux.rootfsPropagation = 'rprivate';
      },
      check: (p) => assert.ok(!/shared|master/.test(p.burrow.stdout), p.burrow.stdout),
    },
    {
      name: 'rootfs-propagation-rslave',
      covers: 'rootfsPropagation rslave, the rootfs being a shared mount on the host: / is its slave',
      prepare: sharedRootfsFixture,
      probe: P.propagation,
      edit: (s) => {
        s.linux.rootfsPropagation = 'rslave';
      },
      check: (p) => assert.match(p.burrow.stdout, /^\/ master:\d+$/m),
    },
    ...(['slave', 'private'] as const).map((value): BundleCase => ({
      name: `rootfs-propagation-${value}`,
      covers: `rootfsPropagation ${value}, the rootfs being a shared mount on the host (made private before the bind, as runc)`,
      prepare: sharedRootfsFixture,
      probe: P.propagation,
      edit: (s) => {
        s.linux.rootfsPropagation = value;
      },
      check: (p) => assert.match(p.burrow.stdout, /^\/$/m),
    })),
    // Known difference: runc 1.1.5 leaves the container's "/" private whatever rootfsPropagation
    // says (runc#1755): it applies the value to the host's "/" copy before binding the rootfs,
    // whose parent it then makes private for pivot_root. runc 1.2.7/1.3 (runc#4724) applies
    // shared and unbindable again to the new "/" after pivot_root; Burrow does the same. The
    // rest of the propagation table must be runc's exactly.
    ...([
      ['shared', true, /^\/ shared:\d+$/m],
      ['rshared', true, /^\/ shared:\d+$/m],
      ['rshared', false, /^\/ shared:\d+$/m],
      ['unbindable', true, /^\/ unbindable$/m],
    ] as const).map(([value, sharedHost, want]): BundleCase => ({
      name: `rootfs-propagation-${value}${sharedHost ? '' : '-plain'}`,
      covers: `rootfsPropagation ${value}, the rootfs ${sharedHost ? 'a shared mount on the host' : 'a plain directory'}` +
        ' (known difference: runc 1.1.5 leaves / private, runc#1755)',
      prepare: sharedHost ? sharedRootfsFixture : undefined,
      probe: P.propagation,
      edit: (s) => {
        s.linux.rootfsPropagation = value;
      },
      compare: (p) => {
        assert.equal(p.burrow.code, p.runc.code, p.burrow.stderr);
        assert.match(p.runc.stdout, /^\/$/m, 'runc 1.1.5 leaves / private');
        // Recursive values reach every mount; the rest only "/".
        const unflag = (out: string) => out.split('\n')
          .map((l) => (value.startsWith('r') || l.startsWith('/ ') ? l.replace(/ (shared:\d+|unbindable)$/, '') : l))
          .join('\n');
        assert.equal(unflag(p.burrow.stdout), p.runc.stdout, 'the same table, but for the requested propagation');
      },
      check: (p) => {
        assert.match(p.burrow.stdout, want);
        if (value.startsWith('r')) {
          const lines = p.burrow.stdout.trim().split('\n');
          assert.ok(lines.every((l) => / (shared:\d+|unbindable)$/.test(l)), `every mount ${value}: ${p.burrow.stdout}`);
        }
      },
    })),
    {
      name: 'rootfs-propagation-runbindable',
      covers: 'rootfsPropagation runbindable: the rootfs cannot be bound onto itself any more, the create fails for both',
      probe: P.propagation,
      edit: (s) => {
        s.linux.rootfsPropagation = 'runbindable';
      },
      compare: (p) => {
        assert.notEqual(p.runc.code, 0, 'runc fails the create too');
        assert.notEqual(p.burrow.code, 0, p.burrow.stdout);
        assert.equal(p.burrow.stdout, '');
      },
      check: (p) => assert.match(p.burrow.stderr, /bind mount rootfs .*: invalid argument/),
    },
    // mounts
    {
      name: 'mounts-bind-ro-rw',
      covers: 'bind mounts of a host dir: ro and rw (write through, write refused)',
      probe: probe(
        'cat /mnt/ro/hello.txt /mnt/rw/hello.txt',
        'touch /mnt/ro/new', P.rc,
        'echo written > /mnt/rw/written.txt && cat /mnt/rw/written.txt', P.rc,
        P.mountsAt('/mnt/ro', '/mnt/rw'),
      ),
      beforeRun: () => fs.rmSync(path.join(hostDir, 'written.txt'), { force: true }),
      edit: (s) => {
        s.mounts.push({ destination: '/mnt/ro', type: 'bind', source: hostDir, options: ['bind', 'ro'] });
        s.mounts.push({ destination: '/mnt/rw', type: 'bind', source: hostDir, options: ['bind', 'rw'] });
      },
      check: (p) => {
        assert.match(p.burrow.stdout, /touch: \/mnt\/ro\/new: Read-only file system/);
        assert.equal(fs.readFileSync(path.join(hostDir, 'written.txt'), 'utf8'), 'written\n');
      },
    },
    {
      name: 'mounts-rbind-vs-bind',
      covers: 'rbind carries the host dir\'s submount, bind does not',
      probe: probe('ls /mnt/rbind/sub', 'ls /mnt/bind/sub | wc -l', P.mountsAt('/mnt/rbind', '/mnt/rbind/sub', '/mnt/bind')),
      edit: (s) => {
        s.mounts.push({ destination: '/mnt/rbind', type: 'bind', source: rbindDir, options: ['rbind', 'ro'] });
        s.mounts.push({ destination: '/mnt/bind', type: 'bind', source: rbindDir, options: ['bind', 'ro'] });
      },
      check: (p) => assert.match(p.burrow.stdout, /^in-submount\n0\n/),
    },
    {
      name: 'mounts-nosuid-nodev-noexec',
      covers: 'bind mount with nosuid,nodev,noexec: exec refused; same flags in mountinfo',
      probe: probe('/mnt/opts/script.sh', P.rc, 'sh /mnt/opts/script.sh', P.rc, P.mountsAt('/mnt/opts')),
      edit: (s) => {
        s.mounts.push({ destination: '/mnt/opts', type: 'bind', source: hostDir, options: ['rbind', 'nosuid', 'nodev', 'noexec'] });
      },
      check: (p) => assert.match(p.burrow.stdout, /Permission denied\nrc=126\nscript ran\nrc=0/),
    },
    {
      name: 'mounts-file-bind',
      covers: 'a file bind mount (host file over /etc/bound-file), read-only',
      probe: probe('cat /etc/bound-file', 'echo x > /etc/bound-file', P.rc, P.mountsAt('/etc/bound-file')),
      edit: (s) => {
        s.mounts.push({ destination: '/etc/bound-file', type: 'bind', source: boundFile, options: ['bind', 'ro'] });
      },
      check: (p) => assert.match(p.burrow.stdout, /^bound file content\n/),
    },
    {
      name: 'mounts-tmpfs-size-mode',
      covers: 'tmpfs with size=2m, mode=1770, uid/gid, nosuid/nodev/noexec (known difference: runc 1.1.5 overrides mode=, runc#3911)',
      probe: probe('stat -c "%a %u:%g" /mnt/tmpfs', "df -k /mnt/tmpfs | tail -n1 | awk '{print $2}'", P.mountsAt('/mnt/tmpfs')),
      edit: (s) => {
        s.mounts.push({
          destination: '/mnt/tmpfs', type: 'tmpfs', source: 'tmpfs',
          options: ['nosuid', 'nodev', 'noexec', 'size=2m', 'mode=1770', 'uid=1000', 'gid=1000'],
        });
      },
      compare: (p) => {
        // Known difference: runc 1.1.5 chmods a tmpfs mounted over an existing directory back to
        // that directory's mode, overriding mode= (opencontainers/runc#3911, fixed in runc 1.1.8
        // by #3916). /mnt/tmpfs exists (0755) in the shared rootfs. Everything else is the same.
        const why = 'known difference: runc 1.1.5 overrides a tmpfs mode= with the existing mount point\'s mode (runc#3911)';
        assert.equal(p.runc.code, 0, p.runc.stderr);
        assert.match(p.runc.stdout, /^755 1000:1000\n/, why);
        assertSame('tmpfs size/mode (mode line aside)', p, (out) => normalizeOutput(out).split('\n').slice(1).join('\n'));
      },
      check: (p) => assert.match(p.burrow.stdout, /^1770 1000:1000\n2048\n/,
        'Burrow honours mode=1770 (known difference: runc 1.1.5 overrides it with the mount point\'s mode, runc#3911)'),
    },
    {
      name: 'mounts-tmpfs-no-mode',
      covers: 'tmpfs without mode= over an existing directory (0755 in the rootfs)',
      probe: probe('stat -c "%a %u:%g" /mnt/tmpfs', P.mountsAt('/mnt/tmpfs')),
      edit: (s) => {
        s.mounts.push({ destination: '/mnt/tmpfs', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'size=1m'] });
      },
    },
    {
      name: 'mounts-proc-sysfs-devpts-mqueue',
      covers: 'extra proc, sysfs (ro), devpts (newinstance), mqueue mounts',
      probe: probe(P.mountsAt('/mnt/proc', '/mnt/sys', '/mnt/pts', '/mnt/mqueue'), 'ls /mnt/pts', 'cat /mnt/proc/self/comm'),
      edit: (s) => {
        s.mounts.push({ destination: '/mnt/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] });
        s.mounts.push({ destination: '/mnt/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] });
        s.mounts.push({
          destination: '/mnt/pts', type: 'devpts', source: 'devpts',
          options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620'],
        });
        s.mounts.push({ destination: '/mnt/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] });
      },
    },
    {
      name: 'mounts-all-default',
      covers: 'the default spec\'s mounts as the container sees them (whole mountinfo)',
      probe: P.mountinfo,
    },
    // masked and readonly paths
    {
      name: 'masked-readonly-default',
      covers: 'default maskedPaths (kcore, keys, timer_list, sched_debug, acpi, scsi, /sys/firmware) and readonlyPaths',
      probe: probe(
        // Some kernels (this machine's) have no /proc/kcore at all: nothing to mask then.
        'if [ -e /proc/kcore ]; then cat /proc/kcore | head -c1 | wc -c; else echo no-kcore; fi',
        'for f in /proc/keys /proc/timer_list /proc/sched_debug /proc/latency_stats; do [ -e $f ] && echo "$f $(cat $f | wc -c)"; done',
        'for d in /proc/acpi /proc/scsi /proc/asound /sys/firmware; do [ -e $d ] && echo "$d $(ls $d | wc -l)"; done',
        'echo x > /proc/sys/kernel/domainname', P.rc,
        'touch /proc/sysrq-trigger', P.rc,
        P.mountsAt('/proc/[a-z_/]+', '/sys/firmware'),
      ),
      check: (p) => {
        assert.match(p.burrow.stdout, fs.existsSync('/proc/kcore') ? /^0\n/ : /^no-kcore\n/);
        assert.match(p.burrow.stdout, /can't create \/proc\/sys\/kernel\/domainname: Read-only file system\nrc=1/);
      },
    },
    {
      name: 'masked-readonly-custom',
      covers: 'custom maskedPaths (a file, a dir, a missing path) and readonlyPaths (a proc dir, a tmpfs, a missing path)',
      tmp: true,
      probe: probe(
        'cat /proc/cpuinfo | wc -c', 'ls /proc/sys/kernel | wc -l', 'ls /sys/kernel | wc -l',
        'touch /tmp/x', P.rc, 'echo 1 > /proc/sys/net/ipv4/ip_forward', P.rc,
        'ls /proc/keys', P.rc,
        P.mountsAt('/proc/[a-z_/]+', '/sys/kernel', '/tmp'),
      ),
      edit: (s) => {
        s.linux.maskedPaths = ['/proc/cpuinfo', '/proc/sys/kernel', '/sys/kernel', '/no/such/path'];
        s.linux.readonlyPaths = ['/proc/sys', '/tmp', '/no/such/dir'];
      },
      check: (p) => {
        assert.match(p.burrow.stdout, /^0\n0\n0\ntouch: \/tmp\/x: Read-only file system\nrc=1\n/);
        assert.match(p.burrow.stdout, /^\/proc\/keys\nrc=0$/m, '/proc/keys is not masked with a custom list');
      },
    },
    // devices and /dev
    {
      name: 'dev-default',
      covers: 'default devices, /dev/shm, /dev/pts, /dev/mqueue, /dev/fd and stdin/out/err, ptmx, core symlinks',
      probe: probe(
        P.devices, 'ls -ln /dev/pts /dev/shm /dev/mqueue',
        'for l in fd stdin stdout stderr ptmx core; do echo "$l -> $(readlink /dev/$l)"; done',
        'echo shm > /dev/shm/x && cat /dev/shm/x', 'ls /dev/fd/', 'head -c4 /dev/zero | wc -c', 'echo discard > /dev/null', P.rc,
        P.mountsAt('/dev', '/dev/pts', '/dev/shm', '/dev/mqueue'),
      ),
    },
    {
      name: 'dev-extra-devices',
      covers: 'linux.devices: extra char devices with fileMode/uid/gid (one in a subdirectory) plus the defaults',
      probe: probe(P.devices, 'ls -ln /dev/sub', 'echo ok > /dev/diffnull', P.rc, 'head -c3 /dev/sub/diffzero | wc -c'),
      edit: (s) => {
        s.linux.devices = [
          { path: '/dev/diffnull', type: 'c', major: 1, minor: 3, fileMode: 0o640, uid: 1000, gid: 1000 },
          { path: '/dev/sub/diffzero', type: 'c', major: 1, minor: 5, fileMode: 0o600, uid: 0, gid: 5 },
        ];
      },
      check: (p) => {
        assert.match(p.burrow.stdout, /^crw-r-----\s+1 1000\s+1000\s+1,\s+3 .* diffnull$/m);
        assert.match(p.burrow.stdout, /^crw-------\s+1 0\s+5\s+1,\s+5 .* diffzero$/m);
      },
    },
    // sysctl
    {
      name: 'sysctl',
      covers: 'linux.sysctl net.ipv4.ip_forward, kernel.shm_rmid_forced, kernel.msgmax',
      probe: 'cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shm_rmid_forced /proc/sys/kernel/msgmax',
      edit: (s) => {
        s.linux.sysctl = { 'net.ipv4.ip_forward': '1', 'kernel.shm_rmid_forced': '1', 'kernel.msgmax': '4096' };
      },
      check: (p) => assert.equal(p.burrow.stdout, '1\n1\n4096\n'),
    },
    {
      name: 'hostname-domainname',
      covers: 'hostname and domainname in a new uts namespace (known difference: runc 1.1.5 ignores domainname)',
      probe: probe('hostname', 'cat /proc/sys/kernel/hostname /proc/sys/kernel/domainname'),
      edit: (s) => {
        s.hostname = 'diff-host';
        s.domainname = 'diff.example';
      },
      compare: (p) => {
        // Known difference: runc 1.1.5 ignores the domainname field (the kernel default
        // "(none)" stays); Burrow sets it. The hostname is the same.
        assert.equal(p.runc.code, 0, p.runc.stderr);
        assert.equal(p.runc.stdout, 'diff-host\ndiff-host\n(none)\n', 'known difference: runc 1.1.5 ignores domainname');
      },
      check: (p) => assert.equal(p.burrow.stdout, 'diff-host\ndiff-host\ndiff.example\n',
        'Burrow sets domainname (known difference: runc 1.1.5 ignores it)'),
    },
    {
      name: 'personality-linux32',
      covers: 'linux.personality LINUX32 (known difference: runc 1.1.5 ignores it)',
      probe: 'uname -m',
      edit: (s) => {
        s.linux.personality = { domain: 'LINUX32' };
      },
      compare: (p) => {
        // Known difference: runc 1.1.5 has no linux.personality support (it came with runc 1.2)
        // and runs the process with the host's personality; Burrow applies LINUX32.
        assert.equal(p.runc.code, 0, p.runc.stderr);
        assert.equal(p.runc.stdout, `${hostMachine}\n`, 'known difference: runc 1.1.5 ignores linux.personality');
      },
      check: (p) => {
        assert.equal(p.burrow.code, 0, p.burrow.stderr);
        assert.equal(p.burrow.stdout, 'i686\n', 'known difference: Burrow applies linux.personality LINUX32 (runc 1.1.5 ignores it)');
      },
    },
    // hooks
    {
      name: 'hooks-all',
      covers: 'hooks prestart, createRuntime, createContainer, startContainer, poststart, poststop with their state status (known difference: runc 1.1.5 runs poststart during create)',
      probe: probe(`cat ${HOOKS_IN}/log | cut -d" " -f1-2 | grep -v poststart`),
      beforeRun: clearHookLog,
      edit: (s, ctx) => {
        s.mounts.push(hookMount());
        s.hooks = Object.fromEntries(HOOK_KINDS.map((k) => [k, [hook(k, ctx)]]));
      },
      check: (p, ctxs) => {
        const expected = HOOK_KINDS.map((k) => `${k} ${EXPECTED_STATUS[k]} id-ok`);
        // Known difference: runc 1.1.5 runs poststart out of order relative to startContainer
        // and the process: inside `runc create` (opencontainers/runc#1710, moved to `runc start`
        // only by runc#5186), so its state says "created", not "running". Compare the set of
        // hooks (and their states, poststart's aside) for runc; assert Burrow's order.
        const why = 'known difference: runc 1.1.5 runs poststart during create (runc#1710), out of order with startContainer';
        const kinds = (log: string[]) => log.map((l) => l.replace(/^poststart \S+/, 'poststart <status>')).sort();
        assert.deepEqual(kinds(ctxs.runc.hookLog!), kinds(expected), `runc ran another set of hooks (${why})`);
        assert.ok(ctxs.runc.hookLog!.includes('poststart created id-ok'), `${why}: ${ctxs.runc.hookLog!.join(', ')}`);
        assert.deepEqual(ctxs.burrow.hookLog, expected,
          'Burrow runs the hooks in lifecycle order, startContainer strictly before the process, poststart after it, ' +
            `with the state of each step (${why})`);
      },
    },
    failingHook('prestart'),
    failingHook('createRuntime'),
    failingHook('createContainer'),
    failingHook('startContainer'),
    loggedHookFailure('poststart'),
    loggedHookFailure('poststop'),
    failingHook('createRuntime', { timeout: 1, sleep: 30 }),
    {
      name: 'hooks-output',
      covers: 'what createContainer and startContainer hooks print goes to the runtime, not to the container\'s stdout/stderr',
      probe: 'echo process',
      beforeRun: clearHookLog,
      edit: (s, ctx) => {
        s.mounts.push(hookMount());
        s.hooks = Object.fromEntries((['createContainer', 'startContainer'] as const).map((k) => {
          const h = hook(k, ctx);
          return [k, [{ ...h, args: [...(h.args as string[]), 'echo'] }]];
        }));
      },
      // The container's stderr is ctr's stderr here: compare it too.
      compare: (p) => assertSame('hooks-output', {
        runc: { ...p.runc, stdout: `${p.runc.stdout}--- stderr ---\n${p.runc.stderr}` },
        burrow: { ...p.burrow, stdout: `${p.burrow.stdout}--- stderr ---\n${p.burrow.stderr}` },
      }),
      check: (p) => assert.equal(p.burrow.stdout, 'process\n'),
    },
  ];

  let hostMachine = '';

  before(async function () {
    ensureHostTools();
    hostMachine = (await run('uname', ['-m'])).stdout.trim();
    c = await PrivateContainerd.start({ name: 'oci-diff' });
    await importImage(c);
    specDir = buildDir('oci-diff');
    // What a crashed earlier run may have left mounted (umount fails harmlessly otherwise).
    await run('umount', [path.join(specDir, 'rbind', 'sub')]);
    await run('umount', [path.join(specDir, 'rootfs')]);
    fs.rmSync(specDir, { recursive: true, force: true });
    rootfs = path.join(specDir, 'rootfs');
    fs.mkdirSync(rootfs, { recursive: true });
    await populateRootfs(rootfs, findBusybox());
    // Every mount point the bundles use exists before any container runs: no container (and
    // no runtime making mount points) writes to the shared rootfs.
    for (const d of ['ro', 'rw', 'bind', 'rbind', 'opts', 'tmpfs', 'proc', 'sys', 'pts', 'mqueue', 'hooks']) {
      fs.mkdirSync(path.join(rootfs, 'mnt', d), { recursive: true });
    }
    fs.writeFileSync(path.join(rootfs, 'etc/bound-file'), '');

    hostDir = path.join(specDir, 'host');
    fs.mkdirSync(hostDir);
    fs.writeFileSync(path.join(hostDir, 'hello.txt'), 'hello from the host\n');
    fs.writeFileSync(path.join(hostDir, 'script.sh'), '#!/bin/sh\necho script ran\n', { mode: 0o755 });
    rbindDir = path.join(specDir, 'rbind');
    fs.mkdirSync(path.join(rbindDir, 'sub'), { recursive: true });
    const mnt = await run('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'diff-sub', path.join(rbindDir, 'sub')]);
    assert.equal(mnt.code, 0, mnt.stderr);
    fs.writeFileSync(path.join(rbindDir, 'sub', 'in-submount'), '');
    boundFile = path.join(specDir, 'bound-file');
    fs.writeFileSync(boundFile, 'bound file content\n');
    hookDir = path.join(specDir, 'hooks');
    fs.mkdirSync(hookDir);
    // dash on the host, busybox sh in the container (startContainer): POSIX sh only.
    fs.writeFileSync(
      path.join(hookDir, 'hook.sh'),
      [
        '#!/bin/sh',
        '# hook.sh <kind> <dir> <container id> [fail|sleep=N]: logs "<kind> <status> <id-ok|id-bad>" to <dir>/log',
        'state=$(cat)',
        'status=$(echo "$state" | sed -n \'s/.*"status":"\\([a-z]*\\)".*/\\1/p\')',
        'case "$state" in *"\\"id\\":\\"$3\\""*) idok=id-ok ;; *) idok=id-bad ;; esac',
        'echo "$1 $status $idok" >> "$2/log"',
        'case "$4" in echo) echo "hook $1 on stdout"; echo "hook $1 on stderr" >&2 ;; esac',
        'case "$4" in fail) echo "hook $1 fails on purpose" >&2; exit 1 ;; sleep=*) exec sleep "${4#sleep=}" ;; esac',
        'exit 0',
        '',
      ].join('\n'),
      { mode: 0o755 },
    );
    rootfsListing = listTree(rootfs);
  });

  after(async function () {
    if (c) await c.stop();
    if (rbindDir) await run('umount', [path.join(rbindDir, 'sub')]);
  });

  /**
   * Runs a case's body, then checks that it left nothing behind (both shims, runc's state,
   * cgroups). In the body rather than in afterEach: a failing afterEach would stop the whole
   * suite. A leak is cleaned up (task and container of `ids` removed) so later cases start clean.
   */
  async function withLeakCheck(ids: string[], body: () => Promise<void>): Promise<void> {
    const before = await snapshotHost(c, { shimBinaries: BOTH_SHIMS });
    let failure: Error | undefined;
    try {
      await body();
    } catch (err) {
      failure = err as Error;
    }
    try {
      await assertNoLeaks(c, before);
    } catch (leak) {
      for (const id of ids) {
        await c.ctr(['task', 'rm', '-f', id]);
        await c.ctr(['container', 'rm', id]);
      }
      if (!failure) throw leak;
      failure.message += `\n\nand the case leaked: ${(leak as Error).message}`;
    }
    if (failure) throw failure;
  }

  describe('bundles from the default spec', function () {
    for (const b of BUNDLES) {
      it(`${b.name}: ${b.covers}`, () => withLeakCheck([`${b.name}-runc`, `${b.name}-burrow`], async () => {
        const fixtures: Fixture[] = [];
        const fixture = async (): Promise<Fixture | undefined> => {
          if (!b.prepare) return undefined;
          const f = await b.prepare();
          fixtures.push(f);
          return f;
        };
        try {
          const fx = await fixture();
          const ctxs: Record<RuntimeName, Ctx> = {
            runc: { runtime: 'runc', id: `${b.name}-runc`, fx },
            burrow: { runtime: 'burrow', id: `${b.name}-burrow`, fx: b.fixturePerRun ? await fixture() : fx },
          };
          const results: Partial<Pair> = {};
          for (const rt of ['runc', 'burrow'] as const) {
            b.beforeRun?.(ctxs[rt]);
            results[rt] = await runBundle(b, ctxs[rt]);
            ctxs[rt].hookLog = hookLog();
          }
          const p = results as Pair;
          if (process.env.OCI_DIFF_VERBOSE) {
            for (const rt of ['runc', 'burrow'] as const) {
              console.log(`--- ${b.name} ${rt}: exit ${p[rt].code}\n${normalizeOutput(p[rt].stdout)}\n${p[rt].stderr.trim()}`);
            }
          }
          if (b.compare) await b.compare(p, ctxs);
          else assertSame(b.name, p);
          await b.check?.(p, ctxs);
        } finally {
          for (const f of fixtures) await f.cleanup();
        }
      }));
    }
  });

  describe('ctr run flags', function () {
    const hostMount = (): string => `type=bind,src=${hostDir},dst=/host,options=rbind:ro`;
    // ctr 1.6.20 has no --user flag (containerd 1.7 added it): process.user is covered by the
    // user-* and caps-nonroot-* bundles above.
    const FLAG_CASES: { name: string; flags: () => string[]; title?: string; probe: string; check?: (p: Pair) => void }[] = [
      {
        name: 'cap-add',
        flags: () => ['--cap-add', 'CAP_SYS_ADMIN'],
        probe: "grep -E '^Cap(Eff|Bnd)' /proc/self/status",
        check: (p) => assert.match(p.burrow.stdout, /^CapEff:\s+00000000a82425fb$/m),
      },
      {
        name: 'privileged',
        flags: () => ['--privileged'],
        probe: probe("grep -E '^CapEff' /proc/self/status", 'ls /dev | wc -l'),
        check: (p) => {
          const own = setCapsField(fs.readFileSync('/proc/self/status', 'utf8'), 'CapEff');
          assert.equal(setCapsField(p.burrow.stdout, 'CapEff'), own, 'privileged: every capability the host has');
        },
      },
      {
        name: 'read-only',
        flags: () => ['--read-only'],
        probe: probe('touch /x', P.rc),
        check: (p) => assert.match(p.burrow.stdout, /Read-only file system\nrc=1/),
      },
      {
        name: 'mount-rbind-ro',
        flags: () => ['--mount', hostMount()],
        title: '--mount type=bind,src=<host dir>,dst=/host,options=rbind:ro',
        probe: probe('cat /host/hello.txt', 'touch /host/new', P.rc, P.mountsAt('/host')),
        check: (p) => assert.match(p.burrow.stdout, /^hello from the host\ntouch: \/host\/new: Read-only file system\nrc=1/),
      },
      {
        name: 'env',
        flags: () => ['--env', 'FOO=bar'],
        probe: P.env,
        check: (p) => assert.match(p.burrow.stdout, /^FOO=bar$/m),
      },
      {
        name: 'cwd',
        flags: () => ['--cwd', '/tmp'],
        probe: 'pwd',
        check: (p) => assert.equal(p.burrow.stdout, '/tmp\n'),
      },
    ];
    for (const f of FLAG_CASES) {
      it(`ctr run ${f.title ?? f.flags().join(' ')}`, () => withLeakCheck([`flag-${f.name}-runc`, `flag-${f.name}-burrow`], async () => {
        const runc = await runImage('runc', `flag-${f.name}-runc`, f.flags(), f.probe);
        const burrow = await runImage('burrow', `flag-${f.name}-burrow`, f.flags(), f.probe);
        const p = { runc, burrow };
        assertSame(`ctr run ${f.flags().join(' ')}`, p);
        f.check?.(p);
      }));
    }
  });

  describe('namespaces joined by path: exec and errors', function () {
    /** A detached container from `b`'s spec (its probe is the init's script). */
    async function startDetached(b: BundleCase, ctx: Ctx): Promise<Result> {
      const file = path.join(specDir, `${ctx.id}.json`);
      fs.writeFileSync(file, JSON.stringify(buildSpec(b, ctx), null, 2));
      return c.ctr(['run', '-d', '--config', file, '--runtime', RUNTIMES[ctx.runtime], ctx.id], { timeoutSec: 60 });
    }

    async function remove(id: string): Promise<void> {
      const rm = await c.ctr(['task', 'rm', '-f', id]);
      assert.equal(rm.code, 0, `task rm -f ${id}: ${rm.stderr}`);
      const crm = await c.ctr(['container', 'rm', id]);
      assert.equal(crm.code, 0, `container rm ${id}: ${crm.stderr}`);
    }

    const joinedUserMount: BundleCase = {
      name: 'exec-joined',
      covers: 'an exec in a container whose init joined a user and a mount namespace by path',
      probe: 'exec sleep 120',
      edit: (s, ctx) => {
        s.process.env.push(`MNTNS=${ctx.fx!.values.mntNs}`, `USERNS=${ctx.fx!.values.userNs}`);
        s.linux.namespaces = s.linux.namespaces.map((n: { type: string }) =>
          n.type === 'mount' ? { type: 'mount', path: ctx.fx!.values.path } : n);
        s.linux.namespaces.push({ type: 'user', path: ctx.fx!.values.userPath });
        s.linux.uidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
        s.linux.gidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
      },
    };

    it('an exec joins the init\'s joined user and mount namespaces (the same as under runc)', () =>
      withLeakCheck(['exec-joined-runc', 'exec-joined-burrow'], async () => {
        const out = {} as Record<RuntimeName, Result>;
        for (const rt of ['runc', 'burrow'] as const) {
          const fx = await mountNsFixture(true);
          const ctx: Ctx = { runtime: rt, id: `exec-joined-${rt}`, fx };
          try {
            const started = await startDetached(joinedUserMount, ctx);
            assert.equal(started.code, 0, `${rt}: ctr run -d: ${started.stderr}`);
            // The pid the shim reports is the init itself (forked into its new pid namespace
            // by Burrow's setup process): pid 1 there, running the process, in the joined namespaces.
            const ls = (await c.ctr(['task', 'ls'])).stdout;
            const pid = Number(new RegExp(`^${ctx.id}\\s+(\\d+)\\s+RUNNING`, 'm').exec(ls)?.[1]);
            assert.ok(pid > 0, `${rt}: no running task in\n${ls}`);
            const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
            assert.match(status, /^NSpid:\s+\d+\s+1$/m, `${rt}: the reported pid ${pid} is not the init of the container's pid namespace`);
            assert.equal(fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8'), 'sleep\u0000120\u0000');
            assert.equal(fs.readlinkSync(`/proc/${pid}/ns/user`), fx.values.userNs);
            assert.equal(fs.readlinkSync(`/proc/${pid}/ns/mnt`), fx.values.mntNs);
            // Not the exec's pid: runc's exec goes through more processes (runc init) than Burrow's.
            const script = [P.ids, 'cat /proc/self/uid_map', 'readlink /proc/self/ns/mnt | grep -cF "$MNTNS"',
              'readlink /proc/self/ns/user | grep -cF "$USERNS"', "tr '\\0' ' ' < /proc/1/cmdline; echo"].join('\n');
            out[rt] = await c.ctr(['task', 'exec', '--exec-id', 'probe', ctx.id, 'sh', '-c', `exec 2>&1\n${script}`], { timeoutSec: 60 });
            await remove(ctx.id);
          } finally {
            await fx.cleanup();
          }
        }
        assertSame('exec in joined user and mount namespaces', out);
        assert.match(out.burrow.stdout, /^uid=0\(root\) gid=0\(root\) groups=0\(root\)\n0\n\s+0\s+100000\s+65536\n1\n1\nsleep 120 \n$/);
      }));

    const cgroupUserNs: BundleCase = {
      name: 'exec-cgroupns',
      covers: 'an exec in a container with new cgroup and user namespaces',
      probe: 'exec sleep 120',
      edit: (s) => {
        s.linux.namespaces.push({ type: 'cgroup' }, { type: 'user' });
        s.linux.uidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
        s.linux.gidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
        s.mounts.push(CGROUP_MOUNT);
      },
    };

    it('an exec lands in the cgroup namespace (and cgroup) of a container with new cgroup and user namespaces (the same as under runc)', () =>
      withLeakCheck(['exec-cgroupns-runc', 'exec-cgroupns-burrow'], async () => {
        const out = {} as Record<RuntimeName, Result>;
        for (const rt of ['runc', 'burrow'] as const) {
          const ctx: Ctx = { runtime: rt, id: `exec-cgroupns-${rt}` };
          const started = await startDetached(cgroupUserNs, ctx);
          assert.equal(started.code, 0, `${rt}: ctr run -d: ${started.stderr}`);
          const ls = (await c.ctr(['task', 'ls'])).stdout;
          const pid = Number(new RegExp(`^${ctx.id}\\s+(\\d+)\\s+RUNNING`, 'm').exec(ls)?.[1]);
          assert.ok(pid > 0, `${rt}: no running task in\n${ls}`);
          const initNs = fs.readlinkSync(`/proc/${pid}/ns/cgroup`);
          assert.notEqual(initNs, fs.readlinkSync('/proc/self/ns/cgroup'), `${rt}: the init should have a cgroup namespace of its own`);
          const script = [P.ids, 'cat /proc/self/cgroup', `readlink /proc/self/ns/cgroup | grep -cF '${initNs}'`, CGROUP_MOUNTS].join('\n');
          out[rt] = await c.ctr(['task', 'exec', '--exec-id', 'probe', ctx.id, 'sh', '-c', `exec 2>&1\n${script}`],
            { timeoutSec: 60 });
          await remove(ctx.id);
        }
        assertSame('exec in new cgroup and user namespaces', out);
        assert.match(out.burrow.stdout, /^uid=0\(root\) gid=0\(root\) groups=0\(root\)\n0\n/);
        assertOwnCgroupRoot(out.burrow.stdout);
        assert.match(out.burrow.stdout, /\n1\n/, 'the exec is in the init\'s cgroup namespace');
      }));

    /** `ctr run` of a spec joining `ns` for both runtimes: both must fail; Burrow's error names `want`. */
    async function bothFail(name: string, edit: (s: Spec, ctx: Ctx) => void, want: RegExp): Promise<void> {
      const b: BundleCase = { name, covers: name, probe: 'echo ran', edit };
      for (const rt of ['runc', 'burrow'] as const) {
        const r = await runBundle(b, { runtime: rt, id: `${name}-${rt}` });
        assert.notEqual(r.code, 0, `${rt} should refuse: ${r.stdout}`);
        assert.ok(!r.stdout.includes('ran'), `${rt}: the process must not run`);
        if (rt === 'burrow') assert.match(r.stderr, want);
        await c.ctr(['container', 'rm', `${name}-${rt}`]);
      }
    }

    it('a user namespace path that does not exist fails the create, naming the path', () =>
      withLeakCheck(['join-user-missing-runc', 'join-user-missing-burrow'], () =>
        bothFail('join-user-missing', (s) => {
          s.linux.namespaces.push({ type: 'user', path: '/run/burrow-e2e/no-such-userns' });
        }, /open namespace \/run\/burrow-e2e\/no-such-userns/)));

    it('a user namespace path that is another kind of namespace fails the create (setns EINVAL)', () =>
      withLeakCheck(['join-user-wrong-runc', 'join-user-wrong-burrow'], () =>
        bothFail('join-user-wrong', (s) => {
          s.linux.namespaces.push({ type: 'user', path: '/proc/self/ns/net' });
        }, /setns \/proc\/self\/ns\/net.*invalid argument/i)));

    it('a mount namespace path that is not a namespace fails the create, naming the path', () =>
      withLeakCheck(['join-mnt-file-runc', 'join-mnt-file-burrow'], () =>
        bothFail('join-mnt-file', (s) => {
          s.linux.namespaces = s.linux.namespaces.map((n: { type: string }) =>
            n.type === 'mount' ? { type: 'mount', path: '/etc/hostname' } : n);
        }, /setns \/etc\/hostname/)));
  });

  // Last (mocha runs a suite's own tests before its sub-suites).
  describe('afterwards', function () {
    it('no container wrote to the shared rootfs', function () {
      assert.equal(listTree(rootfs), rootfsListing);
    });
  });
});
