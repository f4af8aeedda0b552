// linux.resources → cgroup v2 interface files and values, converted from the v1-shaped OCI
// fields as runc's fs2 driver does (opencontainers/cgroups fs2/*.go, utils.go). Pure. What v2
// has no file for is refused here, by field, instead of being dropped as runc drops some.

import { invalidArgument } from '../errors';
import { CgroupWrite, write } from './cgroup-write';
import type { CgroupResources, ThrottleDevice } from './resources';
import { pidsMax, rdmaLines } from './v1-files';

const F = 'linux.resources';
const dev = (d: { major: number; minor: number }) => `${d.major}:${d.minor}`;

/**
 * cpu.shares [2, 262144] (default 1024) → cpu.weight [1, 10000] (default 100): the quadratic
 * fit through min, default and max that runc (and Kubernetes) use since runc 1.3.2 / 1.4.
 * 0 means unset.
 */
export function cpuWeightFromShares(shares: number): number {
  if (shares === 0) return 0;
  if (shares <= 2) return 1;
  if (shares >= 262144) return 10000;
  const l = Math.log2(shares);
  const exponent = (l * l + 125 * l) / 612.0 - 7.0 / 34.0;
  return Math.ceil(Math.pow(10, exponent));
}

/** blkio weight [10, 1000] → io.weight [1, 10000], linearly (runc's ConvertBlkIOToIOWeightValue). */
export function ioWeightFromBlkioWeight(weight: number): number {
  if (weight === 0) return 0;
  return 1 + Math.floor(((weight - 10) * 9999) / 990);
}

/**
 * OCI memory.swap is memory+swap; memory.swap.max is swap alone (runc's
 * ConvertMemorySwapToCgroupV2Value). -1 is "max", 0 "unset".
 */
export function swapMaxFromSpec(swap: number, memory: number): number {
  if (memory === -1 && swap === 0) return -1;
  if (swap === -1 || swap === 0) return swap;
  if (memory === -1) return swap;
  if (memory === 0) throw invalidArgument(`${F}.memory.swap: a swap limit needs a memory limit on cgroup v2`);
  if (memory < 0) throw invalidArgument(`${F}.memory.limit: invalid value ${memory}`);
  if (swap < memory) throw invalidArgument(`${F}.memory.swap: memory+swap limit should be >= memory limit`);
  return swap - memory;
}

const numToStr = (v: number) => (v === 0 ? '' : v === -1 ? 'max' : String(v));

function memoryWrites(m: NonNullable<CgroupResources['memory']>): CgroupWrite[] {
  if (m.kernel !== undefined || m.kernelTCP !== undefined) {
    const k = m.kernel !== undefined ? 'kernel' : 'kernelTCP';
    throw invalidArgument(`${F}.memory.${k}: cgroup v2 has no kernel memory limit (kernel memory counts in memory.max)`);
  }
  if (m.swappiness !== undefined) {
    throw invalidArgument(`${F}.memory.swappiness: cgroup v2 has no per-cgroup swappiness`);
  }
  if (m.disableOOMKiller === true) {
    throw invalidArgument(`${F}.memory.disableOOMKiller: cgroup v2 cannot disable the OOM killer for a cgroup`);
  }
  if (m.useHierarchy === false) {
    throw invalidArgument(`${F}.memory.useHierarchy: cgroup v2 accounting is always hierarchical`);
  }
  const limit = m.limit ?? 0;
  const swapSpec = m.swap ?? 0;
  const reservation = m.reservation ?? 0;
  if (limit === 0 && swapSpec === 0 && reservation === 0) return [];
  const out: CgroupWrite[] = [];
  const swap = swapMaxFromSpec(swapSpec, limit);
  let swapStr = numToStr(swap);
  if (swapStr === '' && swap === 0 && swapSpec > 0) swapStr = '0';
  if (swapStr !== '') {
    // Without swap accounting there is no memory.swap.max: "no swap" and "unlimited" are then true anyway.
    out.push(write('memory.swap', 'memory', 'memory.swap.max', swapStr, { optional: swapStr === 'max' || swapStr === '0' }));
  }
  if (numToStr(limit) !== '') out.push(write('memory.limit', 'memory', 'memory.max', numToStr(limit)));
  if (numToStr(reservation) !== '') out.push(write('memory.reservation', 'memory', 'memory.low', numToStr(reservation)));
  return out;
}

/** How writes for a running container (Update) differ from those for a new cgroup. */
export interface V2UpdateOptions {
  /** cpu.max now ("quota period"): a new period alone keeps the current quota. */
  cpuMaxNow?: string;
}

/** cpu.max for an update: what is not given stays as it is (the kernel keeps the period when only a quota is written). */
function cpuMaxUpdate(c: NonNullable<CgroupResources['cpu']>, cpuMaxNow: string | undefined): string {
  const quota = c.quota ? (c.quota > 0 ? String(c.quota) : 'max') : undefined;
  if (!c.period) return quota!;
  return `${quota ?? (cpuMaxNow?.trim().split(/\s+/)[0] || 'max')} ${c.period}`;
}

function cpuWrites(c: NonNullable<CgroupResources['cpu']>, update?: V2UpdateOptions): CgroupWrite[] {
  if (c.realtimeRuntime || c.realtimePeriod) {
    const k = c.realtimeRuntime ? 'realtimeRuntime' : 'realtimePeriod';
    throw invalidArgument(`${F}.cpu.${k}: cgroup v2 has no realtime group scheduling (cpu.rt_*)`);
  }
  const out: CgroupWrite[] = [];
  if (c.idle !== undefined) out.push(write('cpu.idle', 'cpu', 'cpu.idle', c.idle));
  if (c.shares) out.push(write('cpu.shares', 'cpu', 'cpu.weight', cpuWeightFromShares(c.shares)));
  if (c.quota || c.period) {
    const quota = c.quota && c.quota > 0 ? String(c.quota) : 'max';
    const value = update ? cpuMaxUpdate(c, update.cpuMaxNow) : `${quota} ${c.period || 100000}`;
    out.push(write(c.quota ? 'cpu.quota' : 'cpu.period', 'cpu', 'cpu.max', value));
  }
  // After cpu.max: the burst may not exceed the quota.
  if (c.burst !== undefined) out.push(write('cpu.burst', 'cpu', 'cpu.max.burst', c.burst));
  return out;
}

function throttleWrites(list: ThrottleDevice[] | undefined, field: string, key: string): CgroupWrite[] {
  return (list ?? []).map((t, i) => write(`blockIO.${field}[${i}]`, 'io', 'io.max', `${dev(t)} ${key}=${t.rate}`));
}

function ioWrites(b: NonNullable<CgroupResources['blockIO']>): CgroupWrite[] {
  if (b.leafWeight) throw invalidArgument(`${F}.blockIO.leafWeight: cgroup v2 has no leaf weights (CFQ only)`);
  const out: CgroupWrite[] = [];
  // BFQ takes the blkio weight as is; io.weight (io.cost) on its own scale.
  if (b.weight) {
    out.push({
      field: 'blockIO.weight',
      controller: 'io',
      choices: [
        { file: 'io.bfq.weight', value: String(b.weight) },
        { file: 'io.weight', value: String(ioWeightFromBlkioWeight(b.weight)) },
      ],
    });
  }
  for (const [i, wd] of (b.weightDevice ?? []).entries()) {
    if (wd.leafWeight) throw invalidArgument(`${F}.blockIO.weightDevice[${i}].leafWeight: cgroup v2 has no leaf weights (CFQ only)`);
    // Per-device weights exist with BFQ only (io.bfq.weight "MAJ:MIN WEIGHT").
    if (wd.weight) out.push(write(`blockIO.weightDevice[${i}].weight`, 'io', 'io.bfq.weight', `${dev(wd)} ${wd.weight}`));
  }
  out.push(
    ...throttleWrites(b.throttleReadBpsDevice, 'throttleReadBpsDevice', 'rbps'),
    ...throttleWrites(b.throttleWriteBpsDevice, 'throttleWriteBpsDevice', 'wbps'),
    ...throttleWrites(b.throttleReadIOPSDevice, 'throttleReadIOPSDevice', 'riops'),
    ...throttleWrites(b.throttleWriteIOPSDevice, 'throttleWriteIOPSDevice', 'wiops'),
  );
  return out;
}

/** Every write for a new v2 cgroup, in runc's fs2 order (pids, memory, io, cpu, cpuset, hugetlb, rdma, unified). */
export function v2Writes(res: CgroupResources, update?: V2UpdateOptions): CgroupWrite[] {
  // Device rules are not files on cgroup v2: the manager attaches them as an eBPF program.
  if (res.network?.classID !== undefined || res.network?.priorities) {
    throw invalidArgument(`${F}.network: net_cls and net_prio do not exist on cgroup v2`);
  }
  const out: CgroupWrite[] = [];
  if (res.pids?.limit !== undefined) out.push(write('pids.limit', 'pids', 'pids.max', pidsMax(res.pids.limit)));
  if (res.memory) out.push(...memoryWrites(res.memory));
  if (res.blockIO) out.push(...ioWrites(res.blockIO));
  if (res.cpu) out.push(...cpuWrites(res.cpu, update));
  if (res.cpu?.cpus) out.push(write('cpu.cpus', 'cpuset', 'cpuset.cpus', res.cpu.cpus));
  if (res.cpu?.mems) out.push(write('cpu.mems', 'cpuset', 'cpuset.mems', res.cpu.mems));
  for (const [i, h] of (res.hugepageLimits ?? []).entries()) {
    const field = `hugepageLimits[${i}]`;
    out.push(write(field, 'hugetlb', `hugetlb.${h.pageSize}.max`, h.limit));
    out.push(write(field, 'hugetlb', `hugetlb.${h.pageSize}.rsvd.max`, h.limit, { optional: true }));
  }
  for (const l of rdmaLines(res.rdma ?? {})) out.push(write(l.field, 'rdma', 'rdma.max', l.value));
  for (const [key, value] of Object.entries(res.unified ?? {})) {
    const controller = key.slice(0, key.indexOf('.'));
    // One write per line, as runc's WriteFileByLine: the kernel parses one entry per write.
    for (const line of value.split('\n').filter((l) => l !== '')) out.push(write(`unified.${key}`, controller, key, line));
  }
  return out;
}
