// What the v1 and v2 metrics readers share: uint64 values read exactly (BigInt) and handed to
// protobufjs as numbers, or as decimal strings above 2^53 (an unlimited v1 memory limit is
// 9223372036854771712), the "key value" files of cgroupfs, and the host facts both need (huge
// page sizes). Parsing follows containerd/cgroups, whose output `ctr task metrics` and CRI read.

import * as fs from 'fs';
import * as path from 'path';

/** A uint64 for protobufjs: a number when exact, else its decimal string. */
export type U64 = number | string;

export const MAX_U64 = (1n << 64n) - 1n;
export const MAX_U32 = 0xffffffff;

export function u64(v: bigint): U64 {
  return v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v.toString();
}

/** A file of a stats reader could not be parsed: the path and the text say which. */
export class StatParseError extends Error {
  constructor(file: string, why: string) {
    super(`${file}: ${why}`);
    this.name = 'StatParseError';
  }
}

/**
 * containerd's parseUint: a decimal uint64; a negative integer (memory.soft_limit_in_bytes
 * can read -1 on some kernels) counts as 0; anything else is an error.
 */
export function parseUint(text: string, file: string): bigint {
  if (/^\d+$/.test(text)) {
    const v = BigInt(text);
    if (v > MAX_U64) throw new StatParseError(file, `${text} is out of the uint64 range`);
    return v;
  }
  if (/^-\d+$/.test(text)) return 0n;
  throw new StatParseError(file, `${JSON.stringify(text)} is not an unsigned integer`);
}

/** The contents of `dir/file`; throws the fs error (ENOENT included) with the path in it. */
export function readStatFile(dir: string, file: string): string {
  return fs.readFileSync(path.join(dir, file), 'utf8');
}

/** A file holding one number: "max" (where allowed) is 2^64-1, as containerd reports it. */
export function readUint(dir: string, file: string, maxAllowed = false): bigint {
  const text = readStatFile(dir, file).trim();
  if (maxAllowed && text === 'max') return MAX_U64;
  return parseUint(text, path.join(dir, file));
}

/** "key value" lines (memory.stat, cpu.stat, memory.events…) into a map; a malformed line is an error. */
export function parseKeyValues(text: string, file: string): Map<string, bigint> {
  const out = new Map<string, bigint>();
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const parts = line.trim().split(/\s+/);
    if (parts.length !== 2) throw new StatParseError(file, `line ${JSON.stringify(line)} is not "key value"`);
    out.set(parts[0], parseUint(parts[1], file));
  }
  return out;
}

export function readKeyValues(dir: string, file: string): Map<string, bigint> {
  return parseKeyValues(readStatFile(dir, file), path.join(dir, file));
}

export function isNotFound(err: unknown): boolean {
  return (err as NodeJS.ErrnoException)?.code === 'ENOENT';
}

const SIZE_UNITS = ['B', 'KB', 'MB', 'GB', 'TB', 'PB'];

/**
 * "hugepages-2048kB" (a /sys/kernel/mm/hugepages entry) → "2MB", the page size as cgroup file
 * names spell it (containerd's hugePageSizes: RAMInBytes, then CustomSize with base 1024).
 */
export function hugePageSizeName(entry: string): string {
  const m = /^hugepages-(\d+)([kKmMgG]?)[bB]?$/.exec(entry);
  if (!m) throw new Error(`unexpected huge page size entry ${JSON.stringify(entry)} in /sys/kernel/mm/hugepages`);
  const mult = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[m[2].toLowerCase() as '' | 'k' | 'm' | 'g'];
  let size = Number(m[1]) * mult;
  let unit = 0;
  while (size >= 1024 && unit < SIZE_UNITS.length - 1) {
    size /= 1024;
    unit++;
  }
  return `${size}${SIZE_UNITS[unit]}`;
}

/** The host's huge page sizes ("2MB", "1GB"), in directory order; none without hugetlbfs support. */
export function hostHugePageSizes(sysRoot = '/sys'): string[] {
  let entries: string[];
  try {
    entries = fs.readdirSync(path.join(sysRoot, 'kernel', 'mm', 'hugepages')).sort();
  } catch (err) {
    if (isNotFound(err)) return [];
    throw err;
  }
  return entries.map(hugePageSizeName);
}
