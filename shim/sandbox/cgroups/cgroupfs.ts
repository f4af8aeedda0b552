// File-level cgroupfs operations shared by the v1 and v2 managers: interface files written
// with one write(2) each, cgroup.procs read (recursively), every process signalled, and
// directories removed the way runc removes them (sub-cgroups first, retrying while EBUSY).

import * as fs from 'fs';
import * as path from 'path';

const errCode = (err: unknown) => (err as NodeJS.ErrnoException).code ?? (err as Error).message;

export class CgroupFileError extends Error {
  constructor(
    message: string,
    readonly code: string,
    readonly file: string,
  ) {
    super(message);
    this.name = 'CgroupFileError';
  }
}

/**
 * One write(2) of `value` to an existing interface file (no O_CREAT: a file the kernel does
 * not have is ENOENT, not a confusing EACCES; no O_RDONLY: several files are write-only).
 */
export function writeCgroupFile(dir: string, file: string, value: string): void {
  const p = path.join(dir, file);
  let fd: number;
  try {
    fd = fs.openSync(p, fs.constants.O_WRONLY);
  } catch (err) {
    throw new CgroupFileError(`open ${p}: ${errCode(err)}`, errCode(err), p);
  }
  try {
    fs.writeSync(fd, value);
  } catch (err) {
    throw new CgroupFileError(`write ${JSON.stringify(value)} to ${p}: ${errCode(err)}`, errCode(err), p);
  } finally {
    fs.closeSync(fd);
  }
}

export function readCgroupFile(dir: string, file: string): string {
  return fs.readFileSync(path.join(dir, file), 'utf8');
}

export function cgroupFileExists(dir: string, file: string): boolean {
  return fs.existsSync(path.join(dir, file));
}

function subCgroups(dir: string): string[] {
  try {
    return fs
      .readdirSync(dir, { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => path.join(dir, e.name));
  } catch {
    return [];
  }
}

/** Pids in cgroup.procs of `dir` and, recursively, of its sub-cgroups; [] once it is gone. */
export function readProcs(dir: string, recursive = true): number[] {
  let text: string;
  try {
    text = readCgroupFile(dir, 'cgroup.procs');
  } catch (err) {
    if (errCode(err) === 'ENOENT') return [];
    throw new CgroupFileError(`read ${path.join(dir, 'cgroup.procs')}: ${errCode(err)}`, errCode(err), dir);
  }
  const own = text.split('\n').filter(Boolean).map(Number);
  return recursive ? [...own, ...subCgroups(dir).flatMap((d) => readProcs(d, true))] : own;
}

// A killed process cannot fork, but one that forked before the kill shows up in the next read.
const MAX_KILL_ROUNDS = 1000;

/**
 * Sends `signal` to every process in `dir`, reading cgroup.procs again until no process
 * appears that was not signalled yet (runc freezes the cgroup instead; for SIGKILL the end is
 * the same, since a killed process cannot fork any more). `skip` is left alone (the init,
 * which the caller signals itself). Returns how many processes were signalled.
 */
export function signalAll(dir: string, signal: number, skip?: number): number {
  const done = new Set<number>();
  for (let round = 0; round < MAX_KILL_ROUNDS; round++) {
    const fresh = readProcs(dir).filter((p) => p !== skip && !done.has(p));
    if (fresh.length === 0) break;
    for (const p of fresh) {
      done.add(p);
      try {
        process.kill(p, signal);
      } catch {
        // Exited meanwhile.
      }
    }
  }
  return done.size;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Best-effort thaw of whatever freezer file `dir` has (freezer.state on v1, cgroup.freeze on
 * v2): on cgroup v1 a frozen process does not die of SIGKILL until thawed, so a cgroup left
 * frozen (a paused container being removed) could never be emptied.
 */
export function thawQuietly(dir: string): void {
  for (const [file, value] of [['freezer.state', 'THAWED'], ['cgroup.freeze', '0']]) {
    try {
      writeCgroupFile(dir, file, value);
    } catch {
      // Not a freezer directory, or gone: nothing to thaw.
    }
  }
}

/**
 * Removes a cgroup directory and its sub-cgroups (runc's RemovePath). A cgroup whose last
 * processes are still exiting is EBUSY for a moment: retried, thawing it and SIGKILLing
 * anything still in it, until `timeoutMs`. Gone already is success.
 */
export async function removeCgroupDir(dir: string, timeoutMs = 5_000): Promise<void> {
  // First, so that the processes of frozen sub-cgroups (frozen through this one) can die too.
  thawQuietly(dir);
  for (const sub of subCgroups(dir)) await removeCgroupDir(sub, timeoutMs);
  const deadline = Date.now() + timeoutMs;
  let delay = 5;
  for (;;) {
    try {
      fs.rmdirSync(dir);
      return;
    } catch (err) {
      const code = errCode(err);
      if (code === 'ENOENT') return;
      if (code !== 'EBUSY' || Date.now() >= deadline) {
        const left = readProcs(dir);
        const detail = left.length > 0 ? ` (processes still in it: ${left.join(' ')})` : '';
        throw new CgroupFileError(`rmdir ${dir}: ${code}${detail}`, code, dir);
      }
    }
    thawQuietly(dir);
    signalAll(dir, 9);
    await sleep(delay);
    delay = Math.min(delay * 2, 200);
  }
}

/**
 * Makes each missing directory of `levels` (parents first), calling `onLevel` for every level
 * (new or not). On any failure removes what it made, deepest first, and rethrows: a failed
 * create never leaves a half-made cgroup behind.
 */
export function makeLevels(levels: readonly string[], onLevel: (dir: string) => void = () => undefined): void {
  const made: string[] = [];
  try {
    for (const level of levels) {
      if (!fs.existsSync(level)) {
        fs.mkdirSync(level, { mode: 0o755 });
        made.push(level);
      }
      onLevel(level);
    }
  } catch (err) {
    for (const dir of made.reverse()) {
      try {
        fs.rmdirSync(dir);
      } catch {
        // Best effort: the error that matters is the one rethrown below.
      }
    }
    throw err;
  }
}
