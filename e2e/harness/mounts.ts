// Mount table access via /proc/self/mountinfo. The harness runs in the host
// mount namespace, where shims mount container rootfs, so this sees them.
import * as fs from 'node:fs';
import { run } from './command';
import { isUnder } from './paths';

export interface MountEntry {
  id: number;
  parentId: number;
  mountPoint: string;
  fsType: string;
  source: string;
  superOptions: string;
}

// mountinfo escapes space, tab, newline and backslash as \ooo octal.
function unescape(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

export function readMountInfo(): MountEntry[] {
  const out: MountEntry[] = [];
  for (const line of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    if (!line) continue;
    const [pre, post] = line.split(' - ');
    const f = pre.split(' ');
    const g = (post ?? '').split(' ');
    out.push({
      id: Number(f[0]),
      parentId: Number(f[1]),
      mountPoint: unescape(f[4]),
      fsType: g[0] ?? '',
      source: unescape(g[1] ?? ''),
      superOptions: g[2] ?? '',
    });
  }
  return out;
}

export function mountsUnder(dirs: readonly string[]): MountEntry[] {
  return readMountInfo().filter((m) => dirs.some((d) => isUnder(m.mountPoint, d)));
}

export function describeMount(m: MountEntry): string {
  return `${m.mountPoint} (${m.fsType} from ${m.source})`;
}

/**
 * Unmount everything at or below `dirs`, deepest (and most recently stacked)
 * first. Falls back to a lazy unmount for busy mounts. Returns what is left.
 */
export async function unmountUnder(dirs: readonly string[]): Promise<MountEntry[]> {
  for (let pass = 0; pass < 5; pass++) {
    const found = mountsUnder(dirs);
    if (found.length === 0) return [];
    found.sort((a, b) => b.mountPoint.split('/').length - a.mountPoint.split('/').length || b.id - a.id);
    for (const m of found) {
      const r = await run('umount', [m.mountPoint], { timeoutMs: 15_000 });
      if (r.code !== 0) await run('umount', ['-l', m.mountPoint], { timeoutMs: 15_000 });
    }
  }
  return mountsUnder(dirs);
}
