// Leak detection: take a host snapshot before a test case, another after, and
// report what appeared and stayed. Diffing (rather than expecting an empty
// host) lets a case run while earlier containers are still legitimately alive.
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  cgroupHierarchies, CTR_FIFO_DIR, PrivateContainerd, RUNC_SHIM_ROOT, SANDBOX_PLUGIN_DIR, SHIM_SOCKET_DIR, TASK_PLUGIN_DIR,
} from './containerd';
import { criLeakEntries, podCgroupDirs } from './cri-host';
import { describeMount, readMountInfo } from './mounts';
import { isUnder, sleep } from './paths';
import { describeProc, listProcesses, readEnviron, withDescendants } from './procfs';

export const BURROW_SHIM_BINARY = 'containerd-shim-burrow-v2';

export type LeakCategory =
  | 'process' // shim processes and their descendants (containers)
  | 'mount' // under the instance root/state, or mentioning "burrow"
  | 'shim-socket' // /run/containerd/s/*
  | 'fifo' // /run/containerd/fifo/** and FIFOs under the instance state dir
  | 'burrow-state' // anything under c.burrowRoot
  | 'bundle' // <state>/io.containerd.runtime.v2.task/<ns>/<id>; 2.x also <state>/io.containerd.sandbox.controller.v1.shim/<ns>/<id>
  | 'work-dir' // <root>/io.containerd.runtime.v2.task/<ns>/<id>
  | 'runc-state' // /run/containerd/runc/<ns>/<id> (runc shim, or a shim that reuses runc's root)
  | 'cgroup' // <hierarchy>/<ns>/<id> (ctr's default cgroupsPath); CRI instances: pod cgroups under c.cri.cgroupRoot
  | 'netns' // CRI instances: pod network namespaces (/var/run/netns/cni-*) of this instance
  | 'cni'; // CRI instances: veths on the instance's bridge, IPAM reservations, libcni result cache files

export const LEAK_CATEGORIES: readonly LeakCategory[] = [
  'process', 'mount', 'shim-socket', 'fifo', 'burrow-state', 'bundle', 'work-dir', 'runc-state', 'cgroup',
  'netns', 'cni',
];

export interface SnapshotOptions {
  /** Shim binary names whose processes count; default [containerd-shim-burrow-v2]. */
  shimBinaries?: string[];
}

export interface HostSnapshot {
  instance: string;
  takenAt: Date;
  shimBinaries: string[];
  entries: Record<LeakCategory, string[]>;
}

const MAX_TREE_ENTRIES = 5_000;

export async function snapshotHost(c: PrivateContainerd, opts: SnapshotOptions = {}): Promise<HostSnapshot> {
  const shimBinaries = opts.shimBinaries ?? [BURROW_SHIM_BINARY];
  const mounts = readMountInfo();
  const mountPoints = new Set(mounts.map((m) => m.mountPoint));
  const namespaces = taskNamespaces(c);

  const procs = listProcesses();
  // A shim started through a wrapper (`exec node …`) may not show its binary
  // name in argv; every shim of this instance does inherit its TTRPC_ADDRESS.
  const shimPids = procs
    .filter(
      (p) =>
        shimBinaries.some((b) => p.argv.join(' ').includes(b)) ||
        readEnviron(p.pid).get('TTRPC_ADDRESS') === c.ttrpcAddress,
    )
    .map((p) => p.pid);
  const tree = withDescendants(shimPids, procs);
  // Include start time so a recycled pid is not mistaken for the old process.
  const processes = procs.filter((p) => tree.has(p.pid)).map((p) => `${describeProc(p)} [start ${p.startTime}]`);

  const mount = mounts
    .filter(
      (m) =>
        c.ownedDirs.some((d) => isUnder(m.mountPoint, d)) ||
        m.source.includes('burrow') ||
        m.mountPoint.includes('burrow'),
    )
    // The mount id distinguishes a fresh mount from an older one at the same path.
    .map((m) => `${describeMount(m)} [mount id ${m.id}]`);

  const fifo = [
    ...walk(CTR_FIFO_DIR, mountPoints).filter((e) => e.path !== CTR_FIFO_DIR).map((e) => `${e.path} (${e.kind})`),
    ...walk(c.state, mountPoints).filter((e) => e.kind === 'fifo').map((e) => e.path),
  ];

  const bundles = c.listBundles();
  const cri = await criLeakEntries(c.cri, bundles.map((b) => b.dir), bundles.map((b) => b.id));

  const entries: Record<LeakCategory, string[]> = {
    process: processes,
    mount,
    'shim-socket': childrenOf(SHIM_SOCKET_DIR),
    fifo,
    'burrow-state': walk(c.burrowRoot, mountPoints).filter((e) => e.path !== c.burrowRoot).map((e) => `${e.path} (${e.kind})`),
    bundle: [TASK_PLUGIN_DIR, SANDBOX_PLUGIN_DIR].flatMap((d) => grandChildren(path.join(c.state, d))),
    'work-dir': grandChildren(path.join(c.root, TASK_PLUGIN_DIR)),
    'runc-state': grandChildren(RUNC_SHIM_ROOT),
    cgroup: [
      ...cgroupHierarchies().flatMap((h) => namespaces.flatMap((ns) => childDirs(path.join(h, ns)))),
      ...(c.cri ? podCgroupDirs(c.cri, cgroupHierarchies()) : []),
    ],
    netns: cri.netns,
    cni: cri.cni,
  };
  return { instance: c.name, takenAt: new Date(), shimBinaries, entries };
}

/** Leak lines to tolerate: a substring, or a pattern tested against "<category>: <entry>". */
export type LeakFilter = string | RegExp;

/** Human-readable list of what is in `after` but not in `before`; empty = clean. */
export function diffSnapshots(before: HostSnapshot, after: HostSnapshot, ignore: readonly LeakFilter[] = []): string[] {
  const leaks: string[] = [];
  for (const cat of LEAK_CATEGORIES) {
    const old = new Set(before.entries[cat]);
    for (const e of after.entries[cat]) if (!old.has(e)) leaks.push(`${cat}: ${e}`);
  }
  return leaks.filter((l) => !ignore.some((f) => (typeof f === 'string' ? l.includes(f) : f.test(l))));
}

/**
 * Poll until nothing leaked relative to `before` (cleanup by containerd and
 * shims is asynchronous: the shim exits after Shutdown, bundles are removed
 * after the delete helper); throw the list if leaks persist past settleMs.
 */
export async function assertNoLeaks(
  c: PrivateContainerd,
  before: HostSnapshot,
  opts: { settleMs?: number; pollMs?: number; ignore?: readonly LeakFilter[] } = {},
): Promise<void> {
  const settleMs = opts.settleMs ?? 5_000;
  const deadline = Date.now() + settleMs;
  let leaks: string[];
  for (;;) {
    leaks = diffSnapshots(before, await snapshotHost(c, { shimBinaries: before.shimBinaries }), opts.ignore);
    if (leaks.length === 0) return;
    if (Date.now() >= deadline) break;
    await sleep(opts.pollMs ?? 200);
  }
  throw new Error(
    `host leaks in containerd instance "${c.name}" still present ${settleMs} ms after the case ` +
      `(snapshot taken ${before.takenAt.toISOString()}):\n  - ${leaks.join('\n  - ')}\n` +
      `containerd log: ${c.logFile}`,
  );
}

/** Namespaces whose cgroups to watch: the instance default, CRI's, and any with task dirs. */
function taskNamespaces(c: PrivateContainerd): string[] {
  const ns = new Set([c.namespace, 'default', 'k8s.io']);
  for (const base of [path.join(c.state, TASK_PLUGIN_DIR), path.join(c.state, SANDBOX_PLUGIN_DIR), path.join(c.root, TASK_PLUGIN_DIR)]) {
    for (const n of childNames(base)) ns.add(n);
  }
  return [...ns];
}

function childNames(dir: string): string[] {
  try {
    return fs.readdirSync(dir).sort();
  } catch {
    return [];
  }
}

function childrenOf(dir: string): string[] {
  return childNames(dir).map((n) => path.join(dir, n));
}

function childDirs(dir: string): string[] {
  return childrenOf(dir).filter((p) => {
    try {
      return fs.lstatSync(p).isDirectory();
    } catch {
      return false;
    }
  });
}

/** `<dir>/<a>/<b>` entries (namespace/id layouts), including `.`-prefixed half-deleted ones. */
function grandChildren(dir: string): string[] {
  return childDirs(dir).flatMap(childrenOf);
}

type Kind = 'dir' | 'file' | 'fifo' | 'socket' | 'symlink' | 'other';

/** Recursive listing that does not descend into mount points (container rootfs). */
function walk(root: string, mountPoints: Set<string>): { path: string; kind: Kind }[] {
  const out: { path: string; kind: Kind }[] = [];
  const stack = [root];
  while (stack.length > 0 && out.length < MAX_TREE_ENTRIES) {
    const p = stack.pop() as string;
    let st: fs.Stats;
    try {
      st = fs.lstatSync(p);
    } catch {
      continue;
    }
    const kind: Kind = st.isDirectory() ? 'dir' : st.isFIFO() ? 'fifo' : st.isSocket() ? 'socket'
      : st.isSymbolicLink() ? 'symlink' : st.isFile() ? 'file' : 'other';
    out.push({ path: p, kind });
    if (kind === 'dir' && (p === root || !mountPoints.has(p))) {
      for (const n of childNames(p)) stack.push(path.join(p, n));
    }
  }
  return out.sort((a, b) => a.path.localeCompare(b.path));
}
