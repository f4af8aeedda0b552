// The cgroup hierarchies of this host, from /proc/self/mountinfo, and where the shim itself is
// in them, from /proc/self/cgroup: how a CgroupLocation becomes one directory per hierarchy.
// The parsers are pure (unit-tested with captured text); the readers are thin.

import * as fs from 'fs';
import * as path from 'path';
import type { CgroupLocation } from './cgroups-path';

export const CGROUP_ROOT = '/sys/fs/cgroup';
export const HYBRID_UNIFIED = '/sys/fs/cgroup/unified';

export interface CgroupMount {
  mountPoint: string;
  /** The cgroup the mount shows as its root (not "/" inside a cgroup namespace). */
  root: string;
  version: 1 | 2;
  /** v1: controllers and `name=` of the hierarchy, sorted; v2: empty. */
  controllers: string[];
}

/** v1: every hierarchy (one per controller set); hybrid: plus the unified one; v2: one. */
export type CgroupMode = 'v1' | 'hybrid' | 'v2';

// Super options of a cgroup v1 mount that are not controllers.
const NOT_CONTROLLERS = new Set(['rw', 'ro', 'noprefix', 'clone_children', 'xattr', 'cpuset_v2_mode', 'none', 'favordynmods']);

/** mountinfo escapes space, tab, newline and backslash as \ooo. */
function unescape(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** Every cgroup and cgroup2 mount in mountinfo text, in order. */
export function parseCgroupMounts(mountinfo: string): CgroupMount[] {
  const out: CgroupMount[] = [];
  for (const line of mountinfo.split('\n')) {
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const left = line.slice(0, sep).split(' ');
    const [fstype, , superOpts = ''] = line.slice(sep + 3).split(' ');
    if (fstype !== 'cgroup' && fstype !== 'cgroup2') continue;
    const mount = { root: unescape(left[3]), mountPoint: unescape(left[4]) };
    if (fstype === 'cgroup2') {
      out.push({ ...mount, version: 2, controllers: [] });
      continue;
    }
    const controllers = superOpts
      .split(',')
      .filter((o) => o.startsWith('name=') || (/^[a-z_]+$/.test(o) && !NOT_CONTROLLERS.has(o)))
      .sort();
    out.push({ ...mount, version: 1, controllers });
  }
  return out;
}

/**
 * The mode runc would see: v2 when /sys/fs/cgroup itself is a cgroup2 mount, hybrid when v1
 * hierarchies sit next to a cgroup2 mount at /sys/fs/cgroup/unified, else v1.
 */
export function cgroupMode(mounts: CgroupMount[]): CgroupMode {
  if (mounts.some((m) => m.version === 2 && m.mountPoint === CGROUP_ROOT)) return 'v2';
  if (!mounts.some((m) => m.version === 1)) {
    throw new Error(`no cgroup hierarchy is mounted (neither cgroup2 on ${CGROUP_ROOT} nor cgroup v1 hierarchies)`);
  }
  return mounts.some((m) => m.version === 2 && m.mountPoint === HYBRID_UNIFIED) ? 'hybrid' : 'v1';
}

/**
 * The v1 hierarchies, one mount each (a hierarchy mounted twice counts once: the mount under
 * /sys/fs/cgroup wins, else the first, as runc's FindCgroupMountpoint).
 */
export function v1Hierarchies(mounts: CgroupMount[]): CgroupMount[] {
  const byKey = new Map<string, CgroupMount>();
  for (const m of mounts) {
    if (m.version !== 1 || m.controllers.length === 0) continue;
    const key = m.controllers.join(',');
    const seen = byKey.get(key);
    if (!seen || (path.posix.dirname(m.mountPoint) === CGROUP_ROOT && path.posix.dirname(seen.mountPoint) !== CGROUP_ROOT)) {
      byKey.set(key, m);
    }
  }
  return [...byKey.values()];
}

/**
 * /proc/<pid>/cgroup: hierarchy key (sorted controllers joined by ",", "" for cgroup v2) →
 * the process's cgroup in it.
 */
export function parseProcCgroup(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^\d+:([^:]*):(.*)$/.exec(line);
    if (!m) continue;
    const key = m[1] === '' ? '' : m[1].split(',').sort().join(',');
    out.set(key, m[2]);
  }
  return out;
}

/** One directory of a container's cgroup: the hierarchy it is in and the path on the host. */
export interface CgroupDir {
  /** v1: the hierarchy's controllers ("cpu,cpuacct", "name=systemd"); "" for cgroup v2. */
  key: string;
  controllers: string[];
  mount: CgroupMount;
  dir: string;
}

/**
 * The directory of `loc` in `mount`. Relative locations go below the process's own cgroup
 * (`own`, from /proc/self/cgroup) as seen through this mount; for cgroup v2 below its parent
 * (runc's fs2 defaultDirPath), except in the hybrid unified hierarchy, which runc's v1 driver
 * treats like any v1 one.
 */
export function dirIn(mount: CgroupMount, loc: CgroupLocation, own: string | undefined, v2Parent: boolean): string {
  if (loc.kind === 'absolute') return path.posix.join(mount.mountPoint, loc.path);
  if (own === undefined) {
    throw new Error(`the shim's own cgroup in the hierarchy mounted on ${mount.mountPoint} is unknown (/proc/self/cgroup)`);
  }
  const base = v2Parent ? path.posix.dirname(own) : own;
  const rel = path.posix.relative(mount.root, base);
  if (rel.startsWith('..')) {
    throw new Error(`the shim's own cgroup ${own} is outside the hierarchy mounted on ${mount.mountPoint} (root ${mount.root})`);
  }
  return path.posix.join(mount.mountPoint, rel, loc.path);
}

/** The host's cgroup layout, as read now. */
export interface HostCgroups {
  mounts: CgroupMount[];
  own: Map<string, string>;
}

export function readHostCgroups(): HostCgroups {
  return {
    mounts: parseCgroupMounts(fs.readFileSync('/proc/self/mountinfo', 'utf8')),
    own: parseProcCgroup(fs.readFileSync('/proc/self/cgroup', 'utf8')),
  };
}
