// The container's root filesystem: containerd's snapshot mounts, mounted in the shim's own
// mount namespace onto <bundle>/rootfs before the container is cloned.

import * as path from 'path';
import * as L from './linux';
import { parseMountOptions } from './mount-options';
import type { NativeRuntime } from './native-api';

export interface RootfsMount {
  type: string;
  source: string;
  target?: string;
  options: string[];
}

// mount(2) data must fit in one page; containerd leaves 512 bytes of slack for the kernel.
const MAX_MOUNT_DATA = 4096 - 512;

/** Mounts all of `mounts` onto `rootfs`, in order; on failure unmounts what it mounted. */
export function mountRootfs(native: NativeRuntime, mounts: readonly RootfsMount[], rootfs: string): void {
  const done: string[] = [];
  try {
    for (const m of mounts) {
      // containerd 2.x may set target (relative to the rootfs); 1.6 never does.
      const target = m.target ? path.join(rootfs, path.posix.normalize('/' + m.target)) : rootfs;
      mountOne(native, m, target);
      done.push(target);
    }
  } catch (err) {
    for (const target of done.reverse()) {
      try {
        native.unmount(target, L.MNT_DETACH);
      } catch {
        // Best effort: the error that matters is the one being thrown.
      }
    }
    throw err;
  }
}

function mountOne(native: NativeRuntime, m: RootfsMount, target: string): void {
  const opts = parseMountOptions(m.options);
  const isBind = m.type === 'bind' || (opts.flags & L.MS_BIND) !== 0;
  let data = opts.data;
  let chdir: string | undefined;
  if (m.type === 'overlay' && data.length > MAX_MOUNT_DATA) {
    ({ data, chdir } = compactLowerdirs(data));
  }
  native.mount({ source: m.source, target, fstype: isBind ? '' : m.type, flags: opts.flags, data, chdir });
  // A bind mount ignores most flags on the first call; ro and friends need a remount.
  const remount = opts.flags & ~(L.MS_BIND | L.MS_REC | L.MS_REMOUNT);
  if (isBind && remount !== 0) {
    native.mount({ source: '', target, fstype: '', flags: L.MS_BIND | L.MS_REMOUNT | remount, data: '' });
  }
  for (const p of opts.propagation) native.mount({ source: '', target, fstype: '', flags: p, data: '' });
}

/**
 * Rewrites lowerdir=… with paths relative to their common parent, to be mounted from there:
 * how containerd fits images with many layers into one page of mount data.
 */
export function compactLowerdirs(data: string): { data: string; chdir?: string } {
  const opts = data.split(',');
  const i = opts.findIndex((o) => o.startsWith('lowerdir='));
  if (i < 0) return { data };
  const dirs = opts[i].slice('lowerdir='.length).split(':');
  let common = path.dirname(dirs[0]);
  for (const d of dirs) {
    while (!(d + '/').startsWith(common.endsWith('/') ? common : common + '/')) {
      const up = path.dirname(common);
      if (up === common) return { data };
      common = up;
    }
  }
  if (common === '/' || common === '.') return { data };
  opts[i] = 'lowerdir=' + dirs.map((d) => path.relative(common, d)).join(':');
  return { data: opts.join(','), chdir: common };
}

/**
 * Unmounts everything stacked on `target` (repeated until nothing is mounted there: EINVAL),
 * retrying while busy, as containerd's UnmountAll does.
 */
export async function unmountAll(native: NativeRuntime, target: string): Promise<void> {
  for (let busy = 0; ; ) {
    try {
      native.unmount(target, 0);
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === 'EINVAL' || code === 'ENOENT') return;
      if (code === 'EBUSY' && busy++ < 50) {
        await new Promise((r) => setTimeout(r, 50));
        continue;
      }
      throw err;
    }
  }
}
