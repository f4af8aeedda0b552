// A `cgroup`/`cgroup2` mount in the spec (CRI puts one at /sys/fs/cgroup in every container)
// becomes, as in runc (1.1.5 and since): on a v1 or hybrid host, a tmpfs (left read-write, as
// runc does) with each v1 hierarchy under its name — the container's own cgroup directory bound
// there, or, in a cgroup namespace of its own, a cgroup mount of that hierarchy (rooted at the
// container's cgroup by the namespace) — read-only when asked; co-mounted controllers get
// symlinks. The cgroup2 hierarchy of a hybrid host is left out (runc mounts v1 ones only). On a
// v2 host, a cgroup2 mount inside a cgroup namespace of its own, else a bind of the container's
// cgroup directory.

import * as path from 'path';
import { invalidArgument } from './errors';
import * as L from './linux';
import type { MountOp, SymlinkOp } from './launch-plan';

const CGROUP_ROOT = '/sys/fs/cgroup';
/** Where a hybrid host mounts its cgroup2 hierarchy (the cgroup managers' name for it too). */
const HYBRID_V2_HIERARCHY = 'unified';

export interface CgroupMountInput {
  field: string;
  target: string;
  /** MS_* flags of the spec mount (ro, nosuid, nodev, noexec, …). */
  flags: number;
  /** Host directories of the container's cgroup, one per hierarchy (the manager's paths). */
  cgroupDirs: readonly string[];
  newCgroupNamespace: boolean;
}

export interface CgroupMountPlan {
  mounts: MountOp[];
  symlinks: SymlinkOp[];
}

function op(source: string, target: string, fstype: string, flags: number, data = '', remountFlags = 0): MountOp {
  return { source, target, fstype, flags, data, remountFlags, propagation: [], fileTarget: false };
}

/** The hierarchy a host cgroup directory belongs to: "memory", "cpu,cpuacct", "unified"… */
function hierarchyOf(dir: string): string {
  return path.relative(CGROUP_ROOT, dir).split('/')[0];
}

export function cgroupMountPlan(input: CgroupMountInput): CgroupMountPlan {
  const { field, target, flags, cgroupDirs } = input;
  if (cgroupDirs.length === 0) {
    throw invalidArgument(`${field}: a cgroup mount at ${target} needs the container's cgroup (linux.cgroupsPath)`);
  }
  const lockFlags = flags & (L.MS_NOSUID | L.MS_NODEV | L.MS_NOEXEC | L.MS_RELATIME | L.MS_RDONLY);
  const isV2 = cgroupDirs.length === 1 && hierarchyOf(cgroupDirs[0]) === '';
  if (isV2) {
    return {
      mounts: input.newCgroupNamespace
        ? [op('cgroup', target, 'cgroup2', lockFlags)]
        : [op(cgroupDirs[0], target, 'bind', L.MS_BIND | L.MS_REC, '', lockFlags)],
      symlinks: [],
    };
  }
  const mounts: MountOp[] = [op('tmpfs', target, 'tmpfs', L.MS_NOSUID | L.MS_NODEV | L.MS_NOEXEC, 'mode=755')];
  const symlinks: SymlinkOp[] = [];
  for (const dir of cgroupDirs) {
    const name = hierarchyOf(dir);
    if (!name || name.startsWith('..')) throw invalidArgument(`${field}: cgroup directory ${JSON.stringify(dir)} is not under ${CGROUP_ROOT}`);
    if (name === HYBRID_V2_HIERARCHY) continue;
    const at = path.posix.join(target, name);
    if (input.newCgroupNamespace) {
      const [source, data] = name === 'systemd' ? ['systemd', 'name=systemd'] : ['cgroup', name];
      mounts.push(op(source, at, 'cgroup', L.MS_NOSUID | L.MS_NODEV | L.MS_NOEXEC | (flags & L.MS_RDONLY), data));
    } else {
      mounts.push(op(dir, at, 'bind', L.MS_BIND | L.MS_REC, '', lockFlags || L.MS_NOSUID));
    }
    // cpu,cpuacct is reached as cpu and cpuacct too, as on the host.
    const parts = name.split(',');
    if (parts.length > 1) for (const p of parts) symlinks.push({ target: name, path: path.posix.join(target, p) });
  }
  return { mounts, symlinks };
}
