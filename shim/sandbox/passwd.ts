// HOME for a process whose environment has none: from the container's /etc/passwd, as runc
// does ("/" when the uid has no entry).

import * as fs from 'fs';
import * as path from 'path';

/**
 * The home directory of `uid` in the container whose root is `root` on the host. Symlinks on
 * the way are not followed: an image's /etc/passwd must not make the shim read a host file.
 */
export function homeDir(root: string, uid: number): string {
  const etc = path.join(root, 'etc');
  const file = path.join(etc, 'passwd');
  try {
    if (!fs.lstatSync(etc).isDirectory() || !fs.lstatSync(file).isFile()) return '/';
    for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
      const f = line.split(':');
      if (f.length >= 6 && Number(f[2]) === uid && f[2] !== '') return f[5] || '/';
    }
  } catch {
    // No passwd file: the default below.
  }
  return '/';
}

/** `env`, plus HOME when it has none. */
export function withHome(env: readonly string[], root: string, uid: number): string[] {
  return env.some((e) => e.startsWith('HOME=')) ? [...env] : [...env, `HOME=${homeDir(root, uid)}`];
}
