import { invalidArgument } from './errors';

// RLIMIT_* names → resource numbers (asm-generic/resource.h; x86_64 and aarch64 agree).

const RLIMITS: Record<string, number> = {
  RLIMIT_CPU: 0, RLIMIT_FSIZE: 1, RLIMIT_DATA: 2, RLIMIT_STACK: 3, RLIMIT_CORE: 4, RLIMIT_RSS: 5,
  RLIMIT_NPROC: 6, RLIMIT_NOFILE: 7, RLIMIT_MEMLOCK: 8, RLIMIT_AS: 9, RLIMIT_LOCKS: 10,
  RLIMIT_SIGPENDING: 11, RLIMIT_MSGQUEUE: 12, RLIMIT_NICE: 13, RLIMIT_RTPRIO: 14, RLIMIT_RTTIME: 15,
};

export function rlimitNumber(name: string, field: string): number {
  const n = RLIMITS[name.toUpperCase()];
  if (n === undefined) throw invalidArgument(`${field}: unknown rlimit ${JSON.stringify(name)}`);
  return n;
}
