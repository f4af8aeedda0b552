// io.containerd.cgroups.v1.Metrics of a container's cgroup v1 directories, read the way the
// runc shim reads them (containerd/cgroups v1.0.4, Stat with IgnoreNotExist): per controller,
// a file that does not exist ends that controller's part quietly, anything else is an error.
// Field names are the protobuf ones (snake_case), uint64s as stat-files.ts hands them over.

import * as fs from 'fs';
import * as path from 'path';
import { isNotFound, MAX_U32, parseUint, readKeyValues, readStatFile, readUint, U64, u64 } from './stat-files';

export interface V1MemoryEntry {
  limit: U64;
  usage: U64;
  max: U64;
  failcnt: U64;
}

export interface V1BlkIOEntry {
  op: string;
  device: string;
  major: U64;
  minor: U64;
  value: U64;
}

export interface V1RdmaEntry {
  device: string;
  hca_handles: number;
  hca_objects: number;
}

export interface V1Metrics {
  hugetlb?: Array<{ usage: U64; max: U64; failcnt: U64; pagesize: string }>;
  pids?: { current: U64; limit: U64 };
  cpu: {
    usage: { total: U64; kernel: U64; user: U64; per_cpu: U64[] };
    throttling: { periods: U64; throttled_periods: U64; throttled_time: U64 };
  };
  memory?: Record<string, U64 | V1MemoryEntry>;
  blkio?: Record<string, V1BlkIOEntry[]>;
  rdma?: { current: V1RdmaEntry[]; limit: V1RdmaEntry[] };
  memory_oom_control?: { oom_kill_disable: U64; under_oom: U64; oom_kill: U64 };
}

export interface V1StatsHost {
  /** Where `partitions` is read from (device names of blkio entries). */
  procRoot: string;
  /** The host's huge page sizes ("2MB", "1GB"): hugetlb has files per size. */
  hugePageSizes: string[];
}

// USER_HZ: cpuacct.stat counts in ticks, containerd converts them with a fixed 100.
const CLOCK_TICKS = 100n;
const NS_PER_SECOND = 1_000_000_000n;

// memory.stat key → MemoryStat field (fields 1–32); everything else in the file is not reported.
const MEMORY_STAT_KEYS: Array<[string, string]> = [
  ['cache', 'cache'], ['rss', 'rss'], ['rss_huge', 'rss_huge'], ['mapped_file', 'mapped_file'], ['dirty', 'dirty'],
  ['writeback', 'writeback'], ['pgpgin', 'pg_pg_in'], ['pgpgout', 'pg_pg_out'], ['pgfault', 'pg_fault'],
  ['pgmajfault', 'pg_maj_fault'], ['inactive_anon', 'inactive_anon'], ['active_anon', 'active_anon'],
  ['inactive_file', 'inactive_file'], ['active_file', 'active_file'], ['unevictable', 'unevictable'],
  ['hierarchical_memory_limit', 'hierarchical_memory_limit'], ['hierarchical_memsw_limit', 'hierarchical_swap_limit'],
  ['total_cache', 'total_cache'], ['total_rss', 'total_rss'], ['total_rss_huge', 'total_rss_huge'],
  ['total_mapped_file', 'total_mapped_file'], ['total_dirty', 'total_dirty'], ['total_writeback', 'total_writeback'],
  ['total_pgpgin', 'total_pg_pg_in'], ['total_pgpgout', 'total_pg_pg_out'], ['total_pgfault', 'total_pg_fault'],
  ['total_pgmajfault', 'total_pg_maj_fault'], ['total_inactive_anon', 'total_inactive_anon'],
  ['total_active_anon', 'total_active_anon'], ['total_inactive_file', 'total_inactive_file'],
  ['total_active_file', 'total_active_file'], ['total_unevictable', 'total_unevictable'],
];

// MemoryEntry fields and the memory.<module>.<file> they come from.
const MEMORY_ENTRIES: Array<[string, string]> = [['usage', ''], ['swap', 'memsw'], ['kernel', 'kmem'], ['kernel_tcp', 'kmem.tcp']];
const ENTRY_FILES: Array<[keyof V1MemoryEntry, string]> = [
  ['usage', 'usage_in_bytes'], ['max', 'max_usage_in_bytes'], ['failcnt', 'failcnt'], ['limit', 'limit_in_bytes'],
];

// blkio files with the CFQ scheduler's statistics, and the BlkIOStat field each fills.
const CFQ_FILES: Array<[string, string]> = [
  ['sectors_recursive', 'sectors_recursive'], ['io_service_bytes_recursive', 'io_service_bytes_recursive'],
  ['io_serviced_recursive', 'io_serviced_recursive'], ['io_queued_recursive', 'io_queued_recursive'],
  ['io_service_time_recursive', 'io_service_time_recursive'], ['io_wait_time_recursive', 'io_wait_time_recursive'],
  ['io_merged_recursive', 'io_merged_recursive'], ['time_recursive', 'io_time_recursive'],
];
// Without CFQ (blk-mq, BFQ…) the throttling layer's counters are all there is.
const THROTTLE_FILES: Array<[string, string]> = [
  ['throttle.io_serviced', 'io_serviced_recursive'], ['throttle.io_service_bytes', 'io_service_bytes_recursive'],
];

function hugetlbStat(dir: string, sizes: string[], m: V1Metrics): void {
  for (const size of sizes) {
    const stat = { usage: 0 as U64, max: 0 as U64, failcnt: 0 as U64, pagesize: size };
    stat.usage = u64(readUint(dir, `hugetlb.${size}.usage_in_bytes`));
    stat.max = u64(readUint(dir, `hugetlb.${size}.max_usage_in_bytes`));
    stat.failcnt = u64(readUint(dir, `hugetlb.${size}.failcnt`));
    (m.hugetlb ??= []).push(stat);
  }
}

function pidsStat(dir: string, m: V1Metrics): void {
  const current = readUint(dir, 'pids.current');
  const max = readStatFile(dir, 'pids.max').trim();
  // v1 reports no limit as 0 (v2 as 2^64-1): what containerd's v1 reader does.
  m.pids = { current: u64(current), limit: max === 'max' ? 0 : u64(parseUint(max, path.join(dir, 'pids.max'))) };
}

function cpuStat(dir: string, m: V1Metrics): void {
  const kv = readKeyValues(dir, 'cpu.stat');
  const t = m.cpu.throttling;
  if (kv.has('nr_periods')) t.periods = u64(kv.get('nr_periods')!);
  if (kv.has('nr_throttled')) t.throttled_periods = u64(kv.get('nr_throttled')!);
  if (kv.has('throttled_time')) t.throttled_time = u64(kv.get('throttled_time')!);
}

function cpuacctStat(dir: string, m: V1Metrics): void {
  const file = path.join(dir, 'cpuacct.stat');
  const fields = readStatFile(dir, 'cpuacct.stat').trim().split(/\s+/);
  if (fields.length !== 4 || fields[0] !== 'user' || fields[2] !== 'system') {
    throw new Error(`${file}: expected "user N system M", found ${JSON.stringify(fields.join(' '))}`);
  }
  const user = (parseUint(fields[1], file) * NS_PER_SECOND) / CLOCK_TICKS;
  const kernel = (parseUint(fields[3], file) * NS_PER_SECOND) / CLOCK_TICKS;
  const total = readUint(dir, 'cpuacct.usage');
  const perCpuFile = path.join(dir, 'cpuacct.usage_percpu');
  const perCpu = readStatFile(dir, 'cpuacct.usage_percpu').trim().split(/\s+/).filter(Boolean).map((v) => u64(parseUint(v, perCpuFile)));
  m.cpu.usage = { total: u64(total), kernel: u64(kernel), user: u64(user), per_cpu: perCpu };
}

function memoryStat(dir: string, m: V1Metrics): void {
  const raw = readKeyValues(dir, 'memory.stat');
  const mem: Record<string, U64 | V1MemoryEntry> = {};
  for (const [key, field] of MEMORY_STAT_KEYS) mem[field] = u64(raw.get(key) ?? 0n);
  const entries: Record<string, V1MemoryEntry> = {};
  for (const [field] of MEMORY_ENTRIES) {
    entries[field] = { limit: 0, usage: 0, max: 0, failcnt: 0 };
    mem[field] = entries[field];
  }
  m.memory = mem;
  const oom = readKeyValues(dir, 'memory.oom_control');
  m.memory_oom_control = {
    oom_kill_disable: u64(oom.get('oom_kill_disable') ?? 0n),
    under_oom: u64(oom.get('under_oom') ?? 0n),
    oom_kill: u64(oom.get('oom_kill') ?? 0n),
  };
  for (const [field, module] of MEMORY_ENTRIES) {
    for (const [key, file] of ENTRY_FILES) {
      const name = ['memory', module, file].filter(Boolean).join('.');
      try {
        entries[field][key] = u64(readUint(dir, name));
      } catch (err) {
        // Swap and kernel accounting are optional in the kernel: their files may be missing.
        if (module !== '' && isNotFound(err)) continue;
        throw err;
      }
    }
  }
}

/** /proc/partitions: "major:minor" → "/dev/<name>" (first name wins, as containerd's getDevices). */
export function parsePartitions(text: string): Map<string, string> {
  const out = new Map<string, string>();
  text.split('\n').slice(2).forEach((line) => {
    const f = line.trim().split(/\s+/);
    if (f.length < 4) return;
    const key = `${Number(f[0])}:${Number(f[1])}`;
    if (!out.has(key)) out.set(key, path.posix.join('/dev', f[3]));
  });
  return out;
}

function blkioEntries(dir: string, name: string, devices: Map<string, string>): V1BlkIOEntry[] {
  const file = path.join(dir, `blkio.${name}`);
  const out: V1BlkIOEntry[] = [];
  for (const line of readStatFile(dir, `blkio.${name}`).split('\n')) {
    // "8:0 Read 4096" or "8:0 4096"; "Total N" closes the list.
    const fields = line.split(/[ :]/).filter(Boolean);
    if (fields.length === 0) continue;
    if (fields.length < 3) {
      if (fields.length === 2 && fields[0] === 'Total') continue;
      throw new Error(`${file}: invalid line ${JSON.stringify(line)}`);
    }
    const major = parseUint(fields[0], file);
    const minor = parseUint(fields[1], file);
    const op = fields.length === 4 ? fields[2] : '';
    const value = parseUint(fields[fields.length === 4 ? 3 : 2], file);
    out.push({ op, device: devices.get(`${major}:${minor}`) ?? '', major: u64(major), minor: u64(minor), value: u64(value) });
  }
  return out;
}

function blkioStat(dir: string, host: V1StatsHost, m: V1Metrics): void {
  const blkio: Record<string, V1BlkIOEntry[]> = {};
  m.blkio = blkio;
  const cfq = fs.existsSync(path.join(dir, 'blkio.io_serviced_recursive'));
  const devices = parsePartitions(fs.readFileSync(path.join(host.procRoot, 'partitions'), 'utf8'));
  let size = 0;
  for (const [name, field] of cfq ? CFQ_FILES : []) {
    blkio[field] = blkioEntries(dir, name, devices);
    size += blkio[field].length;
  }
  if (size > 0) return;
  for (const [name, field] of THROTTLE_FILES) blkio[field] = blkioEntries(dir, name, devices);
}

/** Lines of rdma.current / rdma.max: "mlx4_0 hca_handle=2 hca_object=2000" ("max" is 2^32-1). */
export function parseRdma(text: string): V1RdmaEntry[] {
  const out: V1RdmaEntry[] = [];
  for (const line of text.split('\n')) {
    const parts = line.trim().split(/\s+/);
    if (parts.length !== 3) continue;
    const entry: V1RdmaEntry = { device: parts[0], hca_handles: 0, hca_objects: 0 };
    for (const kv of parts.slice(1)) {
      const [k, v] = kv.split('=');
      if (v === undefined) continue;
      const n = v === 'max' ? MAX_U32 : /^\d+$/.test(v) && Number(v) <= MAX_U32 ? Number(v) : undefined;
      if (n === undefined) continue;
      if (k === 'hca_handle') entry.hca_handles = n;
      else if (k === 'hca_object') entry.hca_objects = n;
    }
    out.push(entry);
  }
  return out;
}

function rdmaStat(dir: string, m: V1Metrics): void {
  const current = readStatFile(dir, 'rdma.current').split('\n');
  const max = readStatFile(dir, 'rdma.max').split('\n');
  // A device removed between the two reads: containerd reports nothing rather than a mismatch.
  if (current.length !== max.length) return;
  m.rdma = { current: parseRdma(current.join('\n')), limit: parseRdma(max.join('\n')) };
}

/**
 * The metrics of the cgroup whose directory in each hierarchy `dirOf(controller)` gives
 * (undefined: that controller is not mounted). A controller whose directory does not exist is
 * left out, like a missing file within it; other failures throw with the file's path.
 */
export function readV1Metrics(dirOf: (controller: string) => string | undefined, host: V1StatsHost): V1Metrics {
  const m: V1Metrics = {
    // containerd always reports cpu, zeros included, whichever of cpu/cpuacct exists.
    cpu: {
      usage: { total: 0, kernel: 0, user: 0, per_cpu: [] },
      throttling: { periods: 0, throttled_periods: 0, throttled_time: 0 },
    },
  };
  const readers: Array<[string, (dir: string) => void]> = [
    ['hugetlb', (d) => hugetlbStat(d, host.hugePageSizes, m)],
    ['pids', (d) => pidsStat(d, m)],
    ['cpu', (d) => cpuStat(d, m)],
    ['cpuacct', (d) => cpuacctStat(d, m)],
    ['memory', (d) => memoryStat(d, m)],
    ['blkio', (d) => blkioStat(d, host, m)],
    ['rdma', (d) => rdmaStat(d, m)],
  ];
  for (const [controller, read] of readers) {
    const dir = dirOf(controller);
    if (!dir || !fs.existsSync(dir)) continue;
    try {
      read(dir);
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }
  return m;
}
