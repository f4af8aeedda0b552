// What /proc tells about processes: start times (to tell a pid from its recycled successor)
// and pid-namespace membership (to list a container's processes).

import * as fs from 'fs';

/** Field 22 of /proc/<pid>/stat, or undefined if the process is gone. */
export function processStartTime(pid: number): string | undefined {
  let stat: string;
  try {
    stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // comm (field 2) may contain spaces and parentheses: count from the last ')'.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return rest[19];
}

/** True if `pid` is alive and still the process that started at `startTime`. */
export function isSameProcess(pid: number, startTime: string | undefined): boolean {
  if (pid <= 0) return false;
  const now = processStartTime(pid);
  return now !== undefined && (startTime === undefined || now === startTime);
}

function pidNamespace(pid: number): string | undefined {
  try {
    return fs.readlinkSync(`/proc/${pid}/ns/pid`);
  } catch {
    return undefined;
  }
}

/** Host pids of every process in the pid namespace `pid` lives in, `pid` first. */
export function pidsInNamespaceOf(pid: number): number[] {
  const ns = pidNamespace(pid);
  if (!ns) return [];
  const pids = [pid];
  for (const name of fs.readdirSync('/proc')) {
    const p = Number(name);
    if (!Number.isInteger(p) || p === pid) continue;
    if (pidNamespace(p) === ns) pids.push(p);
  }
  return pids;
}
