import * as fs from 'fs';
import * as path from 'path';

let cached: string | undefined;

/**
 * Fixes the root for a process whose code was not loaded from disk (the daemon's V8 startup
 * snapshot, which would otherwise keep the root of the tree it was built in).
 */
export function setPackageRoot(dir: string): void {
  cached = dir;
}

/** The directory holding package.json: the same from shim/*.ts and from dist/shim/*.js. */
export function packageRoot(): string {
  if (cached) return cached;
  let dir = __dirname;
  while (!fs.existsSync(path.join(dir, 'package.json'))) {
    const up = path.dirname(dir);
    if (up === dir) throw new Error(`no package.json above ${__dirname}`);
    dir = up;
  }
  cached = dir;
  return dir;
}
