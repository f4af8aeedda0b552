// Process-table reading straight from /proc: `ps` output is truncated and
// racy to parse, and we need environ/cwd to attribute shims to an instance.
import * as fs from 'node:fs';
import { sleep } from './paths';

export interface ProcInfo {
  pid: number;
  ppid: number;
  /** Clock ticks since boot; together with pid identifies a process across pid reuse. */
  startTime: string;
  argv: string[];
}

function readText(p: string): string | undefined {
  try {
    return fs.readFileSync(p, 'utf8');
  } catch {
    return undefined; // process exited meanwhile, or a kernel thread
  }
}

export function readProc(pid: number): ProcInfo | undefined {
  const stat = readText(`/proc/${pid}/stat`);
  if (stat === undefined) return undefined;
  // comm (field 2) may contain spaces and ')' — fields resume after the last ')'.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const cmdline = readText(`/proc/${pid}/cmdline`) ?? '';
  return {
    pid,
    ppid: Number(rest[1]),
    startTime: rest[19] ?? '',
    argv: cmdline.split('\0').filter((s, i, a) => !(s === '' && i === a.length - 1)),
  };
}

export function listProcesses(): ProcInfo[] {
  const out: ProcInfo[] = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const p = readProc(Number(name));
    if (p) out.push(p);
  }
  return out;
}

export function readEnviron(pid: number): Map<string, string> {
  const env = new Map<string, string>();
  for (const kv of (readText(`/proc/${pid}/environ`) ?? '').split('\0')) {
    const i = kv.indexOf('=');
    if (i > 0) env.set(kv.slice(0, i), kv.slice(i + 1));
  }
  return env;
}

export function readCwd(pid: number): string | undefined {
  try {
    return fs.readlinkSync(`/proc/${pid}/cwd`);
  } catch {
    return undefined;
  }
}

/** Targets of the process's open file descriptors (e.g. stdio FIFOs a shim holds). */
export function openFiles(pid: number): string[] {
  let fds: string[];
  try {
    fds = fs.readdirSync(`/proc/${pid}/fd`);
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const fd of fds) {
    try {
      out.push(fs.readlinkSync(`/proc/${pid}/fd/${fd}`));
    } catch {
      // closed meanwhile
    }
  }
  return out;
}

/** `roots` plus every process below them in the parent tree. */
export function withDescendants(roots: Iterable<number>, procs: ProcInfo[] = listProcesses()): Set<number> {
  const result = new Set<number>(roots);
  let grew = true;
  while (grew) {
    grew = false;
    for (const p of procs) {
      if (!result.has(p.pid) && result.has(p.ppid)) {
        result.add(p.pid);
        grew = true;
      }
    }
  }
  return result;
}

export function isAlive(pid: number): boolean {
  const stat = readText(`/proc/${pid}/stat`);
  if (stat === undefined) return false;
  // A zombie (Z) or dying (X) process still has an entry but is gone for our purposes.
  const state = stat.slice(stat.lastIndexOf(')') + 2)[0];
  return state !== 'Z' && state !== 'X';
}

/** SIGKILL the given pids and wait (bounded) until they are gone. Returns survivors. */
export async function killAndWait(pids: Iterable<number>, waitMs = 5_000): Promise<number[]> {
  const list = [...pids];
  for (const pid of list) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  const deadline = Date.now() + waitMs;
  let alive = list.filter(isAlive);
  while (alive.length > 0 && Date.now() < deadline) {
    await sleep(50);
    alive = alive.filter(isAlive);
  }
  return alive;
}

export function describeProc(p: ProcInfo): string {
  return `pid ${p.pid} (${p.argv.join(' ')})`;
}
