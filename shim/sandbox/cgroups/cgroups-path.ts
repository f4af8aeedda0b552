// linux.cgroupsPath → where the container's cgroup is, as runc computes it
// (libcontainer/specconv CreateCgroupConfig, cgroups/internal/path, cgroups/systemd).
// Pure: which hierarchies exist and where the shim itself is are applied later (hierarchies.ts).

import * as path from 'path';
import { invalidArgument } from '../errors';

/**
 * `absolute`: the same path below the root of every hierarchy.
 * `relative`: below the cgroup the shim itself is in (cgroup v1: in each hierarchy; cgroup v2:
 * below its parent, since the shim's own cgroup has a process in it and could not have
 * controllers enabled for a child).
 */
export type CgroupLocation = { kind: 'absolute' | 'relative'; path: string };

/** runc's utils.CleanPath: `..` can never climb above the start of a relative path. */
export function cleanPath(p: string): string {
  if (p === '') return '';
  if (path.posix.isAbsolute(p)) return path.posix.normalize(p).replace(/(.)\/$/, '$1');
  const rooted = path.posix.normalize(`/${p}`);
  return path.posix.relative('/', rooted) || '.';
}

/**
 * systemd's slice naming: `a-b-c.slice` lives in `/a.slice/a-b.slice/a-b-c.slice`
 * (runc's ExpandSlice, with its rejections). `-.slice` is the root slice.
 */
export function expandSlice(slice: string): string {
  const suffix = '.slice';
  if (slice.length < suffix.length || !slice.endsWith(suffix) || slice.includes('/')) {
    throw new Error(`invalid slice name ${JSON.stringify(slice)}`);
  }
  const name = slice.slice(0, -suffix.length);
  if (name === '-') return '/';
  let out = '';
  let prefix = '';
  for (const component of name.split('-')) {
    // test--a.slice and -test.slice are not slice names.
    if (component === '') throw new Error(`invalid slice name ${JSON.stringify(slice)}`);
    out += `/${prefix}${component}${suffix}`;
    prefix += `${component}-`;
  }
  return out;
}

/** True for the systemd driver's `slice:prefix:name` form (never an absolute path). */
export function isSystemdCgroupsPath(cgroupsPath: string): boolean {
  return !cgroupsPath.startsWith('/') && cgroupsPath.includes(':');
}

/**
 * `slice:prefix:name` → the cgroupfs path runc's systemd driver ends up with. There is no
 * systemd to ask, so the unit is not registered anywhere: only its directory is made.
 * `kubepods-besteffort-pod1.slice:cri-containerd:abc` →
 * `/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1.slice/cri-containerd-abc.scope`.
 */
export function systemdCgroupPath(cgroupsPath: string): string {
  const parts = cgroupsPath.split(':');
  if (parts.length !== 3) {
    throw invalidArgument(
      `linux.cgroupsPath ${JSON.stringify(cgroupsPath)}: expected "slice:prefix:name" for a systemd cgroup path`,
    );
  }
  const [slice, prefix, name] = parts;
  if (name === '' || name.includes('/') || prefix.includes('/')) {
    throw invalidArgument(`linux.cgroupsPath ${JSON.stringify(cgroupsPath)}: invalid unit name`);
  }
  let parent: string;
  try {
    // runc's default parent for system containers.
    parent = expandSlice(slice === '' ? 'system.slice' : slice);
  } catch (err) {
    throw invalidArgument(`linux.cgroupsPath ${JSON.stringify(cgroupsPath)}: ${(err as Error).message}`);
  }
  // A scope unless the name asks for a slice (runc's getUnitName).
  const unit = name.endsWith('.slice') ? name : `${prefix}-${name}.scope`;
  return path.posix.join(parent, unit);
}

/**
 * Where the container's cgroup is. Empty cgroupsPath: runc (cgroupfs driver) uses the container
 * id relative to its own cgroup, and so does Burrow. Relative paths are cleaned so that they
 * stay below the shim's cgroup; absolute ones are used from every hierarchy's root.
 */
export function cgroupLocation(cgroupsPath: string | undefined, id: string): CgroupLocation {
  const raw = cgroupsPath ?? '';
  if (typeof raw !== 'string') throw invalidArgument('linux.cgroupsPath must be a string');
  if (raw === '') return { kind: 'relative', path: cleanPath(id) };
  if (isSystemdCgroupsPath(raw)) return { kind: 'absolute', path: systemdCgroupPath(raw) };
  const cleaned = cleanPath(raw);
  // "/" or "." would make the hierarchy root, or the shim's own cgroup, the container's: its
  // removal at delete could never work, and its limits would apply to the host or the shim.
  if (cleaned === '/' || cleaned === '.') {
    throw invalidArgument(`linux.cgroupsPath ${JSON.stringify(raw)}: names no cgroup of the container's own`);
  }
  return { kind: path.posix.isAbsolute(cleaned) ? 'absolute' : 'relative', path: cleaned };
}
