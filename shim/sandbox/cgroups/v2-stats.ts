// io.containerd.cgroups.v2.Metrics of a container's cgroup v2 directory, read as
// containerd/cgroups reads it (cgroup2 Stat of v3, the superset of v1.0.4's: older decoders skip
// the fields they do not know). Single-value files that are missing read as 0 and "max" as
// 2^64-1; a malformed "key value" file is an error naming it.

import * as fs from 'fs';
import * as path from 'path';
import { isNotFound, MAX_U32, MAX_U64, parseUint, readKeyValues, readStatFile, U64, u64 } from './stat-files';

export interface PsiData {
  avg10: number;
  avg60: number;
  avg300: number;
  total: U64;
}

export interface PsiStats {
  some?: PsiData;
  full?: PsiData;
}

export interface V2IOEntry {
  major: U64;
  minor: U64;
  rbytes: U64;
  wbytes: U64;
  rios: U64;
  wios: U64;
}

export interface V2RdmaEntry {
  device: string;
  hca_handles: number;
  hca_objects: number;
}

export interface V2Metrics {
  pids: { current: U64; limit: U64 };
  cpu: Record<string, U64 | PsiStats>;
  memory: Record<string, U64 | PsiStats>;
  memory_events?: Record<string, U64>;
  io: { usage: V2IOEntry[]; psi?: PsiStats };
  rdma: { current: V2RdmaEntry[]; limit: V2RdmaEntry[] };
  hugetlb: Array<{ current: U64; max: U64; pagesize: string; failcnt: U64 }>;
}

// cpu.stat keys → CPUStat fields.
const CPU_KEYS = ['usage_usec', 'user_usec', 'system_usec', 'nr_periods', 'nr_throttled', 'throttled_usec', 'nr_bursts', 'burst_usec'];

// memory.stat keys, named as the MemoryStat fields (1–31).
const MEMORY_KEYS = [
  'anon', 'file', 'kernel_stack', 'slab', 'sock', 'shmem', 'file_mapped', 'file_dirty', 'file_writeback', 'anon_thp',
  'inactive_anon', 'active_anon', 'inactive_file', 'active_file', 'unevictable', 'slab_reclaimable', 'slab_unreclaimable',
  'pgfault', 'pgmajfault', 'workingset_refault', 'workingset_activate', 'workingset_nodereclaim', 'pgrefill', 'pgscan',
  'pgsteal', 'pgactivate', 'pgdeactivate', 'pglazyfree', 'pglazyfreed', 'thp_fault_alloc', 'thp_collapse_alloc',
];

// Files with one value → MemoryStat fields 32–37.
const MEMORY_FILES: Array<[string, string]> = [
  ['usage', 'memory.current'], ['usage_limit', 'memory.max'], ['max_usage', 'memory.peak'],
  ['swap_usage', 'memory.swap.current'], ['swap_limit', 'memory.swap.max'], ['swap_max_usage', 'memory.swap.peak'],
];

const MEMORY_EVENTS = ['low', 'high', 'max', 'oom', 'oom_kill', 'oom_group_kill'];

/** One value; 0 when the file is missing or unreadable as a number (containerd's getStatFileContentUint64). */
function singleValue(dir: string, file: string): bigint {
  let text: string;
  try {
    text = readStatFile(dir, file).trim();
  } catch (err) {
    if (isNotFound(err)) return 0n;
    throw err;
  }
  if (text === 'max') return MAX_U64;
  try {
    return parseUint(text, path.join(dir, file));
  } catch {
    return 0n;
  }
}

function keyValuesOrEmpty(dir: string, file: string): Map<string, bigint> {
  try {
    return readKeyValues(dir, file);
  } catch (err) {
    if (isNotFound(err)) return new Map();
    throw err;
  }
}

/** "some avg10=0.12 avg60=0.05 avg300=0.01 total=12345" lines; undefined when the kernel has no PSI. */
export function parsePsi(text: string, file: string): PsiStats {
  const out: PsiStats = {};
  for (const line of text.split('\n')) {
    const [kind, ...fields] = line.trim().split(/\s+/);
    if (kind !== 'some' && kind !== 'full') continue;
    const data: PsiData = { avg10: 0, avg60: 0, avg300: 0, total: 0 };
    for (const f of fields) {
      const [k, v] = f.split('=');
      if (k === 'total') data.total = u64(parseUint(v, file));
      else if (k === 'avg10' || k === 'avg60' || k === 'avg300') {
        const n = Number(v);
        if (!Number.isFinite(n)) throw new Error(`${file}: ${JSON.stringify(f)} is not a number`);
        data[k] = n;
      }
    }
    out[kind] = data;
  }
  return out;
}

function psi(dir: string, file: string): PsiStats | undefined {
  try {
    return parsePsi(readStatFile(dir, file), path.join(dir, file));
  } catch (err) {
    // No file, or PSI disabled (reads fail with EOPNOTSUPP): no pressure data, as containerd.
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'EOPNOTSUPP' || code === 'ENOTSUP') return undefined;
    throw err;
  }
}

/** io.stat: "8:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0" per device. */
export function parseIoStat(text: string): V2IOEntry[] {
  const out: V2IOEntry[] = [];
  for (const line of text.split('\n')) {
    const parts = line.trim().split(' ');
    if (parts.length < 2) continue;
    const mm = /^(\d+):(\d+)$/.exec(parts[0]);
    if (!mm) continue;
    const e: V2IOEntry = { major: u64(BigInt(mm[1])), minor: u64(BigInt(mm[2])), rbytes: 0, wbytes: 0, rios: 0, wios: 0 };
    for (const kv of parts.slice(1)) {
      const [k, v] = kv.split('=');
      if (v === undefined || !/^\d+$/.test(v)) continue;
      if (k === 'rbytes' || k === 'wbytes' || k === 'rios' || k === 'wios') e[k] = u64(BigInt(v));
    }
    out.push(e);
  }
  return out;
}

function rdmaEntries(dir: string, file: string): V2RdmaEntry[] {
  let text: string;
  try {
    text = readStatFile(dir, file);
  } catch (err) {
    if (isNotFound(err)) return [];
    throw err;
  }
  const out: V2RdmaEntry[] = [];
  for (const line of text.split('\n')) {
    const parts = line.trim().split(/\s+/);
    if (parts.length !== 3) continue;
    const e: V2RdmaEntry = { device: parts[0], hca_handles: 0, hca_objects: 0 };
    for (const kv of parts.slice(1)) {
      const [k, v] = kv.split('=');
      const n = v === 'max' ? MAX_U32 : v !== undefined && /^\d+$/.test(v) && Number(v) <= MAX_U32 ? Number(v) : undefined;
      if (n === undefined) continue;
      if (k === 'hca_handle') e.hca_handles = n;
      else if (k === 'hca_object') e.hca_objects = n;
    }
    out.push(e);
  }
  return out;
}

/** The metrics of the cgroup v2 directory `dir`; `hugePageSizes` are the host's ("2MB", "1GB"). */
export function readV2Metrics(dir: string, hugePageSizes: string[]): V2Metrics {
  const cpuStat = keyValuesOrEmpty(dir, 'cpu.stat');
  const cpu: V2Metrics['cpu'] = {};
  for (const k of CPU_KEYS) cpu[k] = u64(cpuStat.get(k) ?? 0n);
  const cpuPsi = psi(dir, 'cpu.pressure');
  if (cpuPsi) cpu.psi = cpuPsi;

  const memStat = keyValuesOrEmpty(dir, 'memory.stat');
  const memory: V2Metrics['memory'] = {};
  for (const k of MEMORY_KEYS) memory[k] = u64(memStat.get(k) ?? 0n);
  for (const [field, file] of MEMORY_FILES) memory[field] = u64(singleValue(dir, file));
  const memPsi = psi(dir, 'memory.pressure');
  if (memPsi) memory.psi = memPsi;

  const m: V2Metrics = {
    pids: { current: u64(singleValue(dir, 'pids.current')), limit: u64(singleValue(dir, 'pids.max')) },
    cpu,
    memory,
    io: { usage: parseIoStat(readOr(dir, 'io.stat')) },
    rdma: { current: rdmaEntries(dir, 'rdma.current'), limit: rdmaEntries(dir, 'rdma.max') },
    hugetlb: [],
  };
  const ioPsi = psi(dir, 'io.pressure');
  if (ioPsi) m.io.psi = ioPsi;

  const events = keyValuesOrEmpty(dir, 'memory.events');
  if (events.size > 0) {
    m.memory_events = {};
    for (const k of MEMORY_EVENTS) m.memory_events[k] = u64(events.get(k) ?? 0n);
  }

  // Only sizes the cgroup has files for (the hugetlb controller may not be enabled for it).
  for (const size of hugePageSizes) {
    if (!fs.existsSync(path.join(dir, `hugetlb.${size}.current`))) continue;
    m.hugetlb.push({
      current: u64(singleValue(dir, `hugetlb.${size}.current`)),
      max: u64(singleValue(dir, `hugetlb.${size}.max`)),
      pagesize: size,
      failcnt: u64(keyValuesOrEmpty(dir, `hugetlb.${size}.events`).get('max') ?? 0n),
    });
  }
  return m;
}

/** The file's text, or "" when it does not exist. */
function readOr(dir: string, file: string): string {
  try {
    return readStatFile(dir, file);
  } catch (err) {
    if (isNotFound(err)) return '';
    throw err;
  }
}
