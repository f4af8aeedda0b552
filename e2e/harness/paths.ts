// Locations shared by the harness modules. Everything the harness builds or
// keeps for later inspection lives under <repo>/.e2e (gitignored).
import * as fs from 'node:fs';
import * as path from 'node:path';

let cachedRepoRoot: string | undefined;

/** Nearest ancestor of this file holding package.json (works from e2e/ and dist/e2e/). */
export function repoRoot(): string {
  if (cachedRepoRoot) return cachedRepoRoot;
  let dir = __dirname;
  for (;;) {
    if (fs.existsSync(path.join(dir, 'package.json'))) {
      cachedRepoRoot = dir;
      return dir;
    }
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`no package.json above ${__dirname}`);
    dir = parent;
  }
}

/** <repo>/.e2e/<sub>, created on demand. */
export function buildDir(sub: string): string {
  const dir = path.join(repoRoot(), '.e2e', sub);
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}

/** True when `p` is `dir` itself or inside it (plain string test; both absolute). */
export function isUnder(p: string, dir: string): boolean {
  const d = dir.endsWith('/') ? dir.slice(0, -1) : dir;
  return p === d || p.startsWith(d + '/');
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
