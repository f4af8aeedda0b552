// linux.resources → cgroup v1 interface files and values, as runc's fs driver writes them
// (opencontainers/cgroups fs/*.go). Pure; what the host lacks (a controller not mounted, a
// file this kernel does not have) is found when writing, and refused then.

import { invalidArgument } from '../errors';
import type { OciDevice } from '../oci-spec';
import { byteLimitCheck, CgroupWrite, write } from './cgroup-write';
import { deviceState, effectiveDeviceRules, v1DeviceWrites } from './device-rules';
import type { CgroupResources, ThrottleDevice } from './resources';

const dev = (d: { major: number; minor: number }) => `${d.major}:${d.minor}`;

/** How writes for a running container (Update) differ from those for a new cgroup. */
export interface V1UpdateOptions {
  /** memory.limit_in_bytes now: decides whether memory or memsw is written first. */
  memoryLimitNow: number;
}

function memoryWrites(m: NonNullable<CgroupResources['memory']>, memoryLimitNow = Infinity): CgroupWrite[] {
  const out: CgroupWrite[] = [];
  const limit = m.limit ?? 0;
  let swap = m.swap ?? 0;
  let swapOptional = false;
  // runc: unlimited memory without a swap value means unlimited swap too, where swap is accounted.
  if (limit === -1 && swap === 0) {
    swap = -1;
    swapOptional = true;
  }
  const mem = limit !== 0 ? write('memory.limit', 'memory', 'memory.limit_in_bytes', limit) : undefined;
  const sw = swap !== 0 ? write('memory.swap', 'memory', 'memory.memsw.limit_in_bytes', swap, { optional: swapOptional }) : undefined;
  // memsw may never be below the memory limit: the swap limit goes first when it is unlimited
  // or above the current memory limit, else the memory limit (runc's setMemoryAndSwap order; a
  // new cgroup's memory limit is unlimited).
  const swapFirst = swap === -1 || (limit !== 0 && swap !== 0 && memoryLimitNow < swap);
  out.push(...((swapFirst ? [sw, mem] : [mem, sw]).filter(Boolean) as CgroupWrite[]));
  if (m.reservation !== undefined && m.reservation !== 0) {
    out.push(write('memory.reservation', 'memory', 'memory.soft_limit_in_bytes', m.reservation));
  }
  // runc ignores kernel memory limits with a warning; Burrow writes them and checks that the
  // kernel kept them (kernels since 5.16 accept and ignore memory.kmem.limit_in_bytes).
  if (m.kernel !== undefined && m.kernel !== 0) {
    out.push(write('memory.kernel', 'memory', 'memory.kmem.limit_in_bytes', m.kernel, {
      check: byteLimitCheck(m.kernel, 'memory.kmem.limit_in_bytes'),
    }));
  }
  if (m.kernelTCP !== undefined && m.kernelTCP !== 0) {
    out.push(write('memory.kernelTCP', 'memory', 'memory.kmem.tcp.limit_in_bytes', m.kernelTCP, {
      check: byteLimitCheck(m.kernelTCP, 'memory.kmem.tcp.limit_in_bytes'),
    }));
  }
  // A new memory cgroup inherits oom_kill_disable from its parent: false is written too.
  if (m.disableOOMKiller !== undefined) {
    out.push(write('memory.disableOOMKiller', 'memory', 'memory.oom_control', m.disableOOMKiller ? 1 : 0));
  }
  if (m.swappiness !== undefined) out.push(write('memory.swappiness', 'memory', 'memory.swappiness', m.swappiness));
  if (m.useHierarchy !== undefined) {
    out.push(write('memory.useHierarchy', 'memory', 'memory.use_hierarchy', m.useHierarchy ? 1 : 0));
  }
  // checkBeforeUpdate only concerns updates of a running container's limit (the managers' update()).
  return out;
}

function cpuWrites(c: NonNullable<CgroupResources['cpu']>): CgroupWrite[] {
  const out: CgroupWrite[] = [];
  // Realtime bandwidth before any process joins (runc's CpuGroup.Apply): a SCHED_RR process
  // could not join a group without it.
  if (c.realtimePeriod) out.push(write('cpu.realtimePeriod', 'cpu', 'cpu.rt_period_us', c.realtimePeriod));
  if (c.realtimeRuntime) out.push(write('cpu.realtimeRuntime', 'cpu', 'cpu.rt_runtime_us', c.realtimeRuntime));
  if (c.shares) {
    const shares = c.shares;
    // The kernel clamps cpu.shares to [2, 262144]: like runc, a clamped value is an error.
    out.push(write('cpu.shares', 'cpu', 'cpu.shares', shares, {
      check: (readBack) => {
        const got = Number(readBack.trim());
        if (got === shares) return undefined;
        return shares > got ? `the maximum allowed cpu-shares is ${got}` : `the minimum allowed cpu-shares is ${got}`;
      },
    }));
  }
  if (c.period) out.push(write('cpu.period', 'cpu', 'cpu.cfs_period_us', c.period));
  if (c.quota) out.push(write('cpu.quota', 'cpu', 'cpu.cfs_quota_us', c.quota));
  if (c.burst !== undefined) out.push(write('cpu.burst', 'cpu', 'cpu.cfs_burst_us', c.burst));
  if (c.idle !== undefined) out.push(write('cpu.idle', 'cpu', 'cpu.idle', c.idle));
  return out;
}

/** "max" for no limit; 0 becomes 1 as in runc (systemd cannot say 0, the two drivers agree). */
export function pidsMax(limit: number): string {
  return limit > 0 ? String(limit) : limit === 0 ? '1' : 'max';
}

function throttleWrites(list: ThrottleDevice[] | undefined, field: string, file: string): CgroupWrite[] {
  return (list ?? []).map((t, i) => write(`blockIO.${field}[${i}]`, 'blkio', file, `${dev(t)} ${t.rate}`));
}

function blkioWrites(b: NonNullable<CgroupResources['blockIO']>): CgroupWrite[] {
  const out: CgroupWrite[] = [];
  // CFQ's files, or BFQ's on kernels without CFQ (runc's detectWeightFilenames).
  if (b.weight) {
    out.push({
      field: 'blockIO.weight',
      controller: 'blkio',
      choices: [{ file: 'blkio.weight', value: String(b.weight) }, { file: 'blkio.bfq.weight', value: String(b.weight) }],
    });
  }
  if (b.leafWeight) out.push(write('blockIO.leafWeight', 'blkio', 'blkio.leaf_weight', b.leafWeight));
  for (const [i, wd] of (b.weightDevice ?? []).entries()) {
    if (wd.weight) {
      const value = `${dev(wd)} ${wd.weight}`;
      out.push({
        field: `blockIO.weightDevice[${i}].weight`,
        controller: 'blkio',
        choices: [{ file: 'blkio.weight_device', value }, { file: 'blkio.bfq.weight_device', value }],
      });
    }
    if (wd.leafWeight) {
      out.push(write(`blockIO.weightDevice[${i}].leafWeight`, 'blkio', 'blkio.leaf_weight_device', `${dev(wd)} ${wd.leafWeight}`));
    }
  }
  out.push(
    ...throttleWrites(b.throttleReadBpsDevice, 'throttleReadBpsDevice', 'blkio.throttle.read_bps_device'),
    ...throttleWrites(b.throttleWriteBpsDevice, 'throttleWriteBpsDevice', 'blkio.throttle.write_bps_device'),
    ...throttleWrites(b.throttleReadIOPSDevice, 'throttleReadIOPSDevice', 'blkio.throttle.read_iops_device'),
    ...throttleWrites(b.throttleWriteIOPSDevice, 'throttleWriteIOPSDevice', 'blkio.throttle.write_iops_device'),
  );
  return out;
}

/** "mlx4_0 hca_handle=2 hca_object=2000": the limits given, the others stay as they are. */
export function rdmaLines(rdma: NonNullable<CgroupResources['rdma']>): Array<{ field: string; value: string }> {
  return Object.entries(rdma).flatMap(([device, l]) => {
    const parts = [
      l.hcaHandles !== undefined ? `hca_handle=${l.hcaHandles}` : '',
      l.hcaObjects !== undefined ? `hca_object=${l.hcaObjects}` : '',
    ].filter(Boolean);
    return parts.length > 0 ? [{ field: `rdma.${device}`, value: `${device} ${parts.join(' ')}` }] : [];
  });
}

/**
 * Every write for a new v1 cgroup, in runc's subsystem order (cpuset, devices, memory, cpu,
 * pids, blkio, hugetlb, net_cls, net_prio, rdma). `linuxDevices` is linux.devices: a spec
 * device replaces runc's default rule for the same path.
 */
export function v1Writes(res: CgroupResources, linuxDevices: OciDevice[] = [], update?: V1UpdateOptions): CgroupWrite[] {
  if (res.unified) {
    throw invalidArgument('linux.resources.unified: unified (cgroup v2) resources cannot be set on a cgroup v1 host');
  }
  const out: CgroupWrite[] = [];
  if (res.cpu?.cpus) out.push(write('cpu.cpus', 'cpuset', 'cpuset.cpus', res.cpu.cpus));
  if (res.cpu?.mems) out.push(write('cpu.mems', 'cpuset', 'cpuset.mems', res.cpu.mems));
  // An update leaves the device rules as they were set at create (the sandbox checks that an
  // update does not ask for others): rewriting them would deny every device for a moment.
  if (!update) {
    const devices = deviceState(effectiveDeviceRules(res.devices, linuxDevices));
    out.push(...v1DeviceWrites(devices).map((w) => write('devices', 'devices', w.file, w.value)));
  }
  if (res.memory) out.push(...memoryWrites(res.memory, update?.memoryLimitNow));
  if (res.cpu) out.push(...cpuWrites(res.cpu));
  if (res.pids?.limit !== undefined) out.push(write('pids.limit', 'pids', 'pids.max', pidsMax(res.pids.limit)));
  if (res.blockIO) out.push(...blkioWrites(res.blockIO));
  for (const [i, h] of (res.hugepageLimits ?? []).entries()) {
    const field = `hugepageLimits[${i}]`;
    out.push(write(field, 'hugetlb', `hugetlb.${h.pageSize}.limit_in_bytes`, h.limit));
    // Reservation limits too, on kernels that have them (runc).
    out.push(write(field, 'hugetlb', `hugetlb.${h.pageSize}.rsvd.limit_in_bytes`, h.limit, { optional: true }));
  }
  if (res.network?.classID !== undefined) out.push(write('network.classID', 'net_cls', 'net_cls.classid', res.network.classID));
  for (const [i, p] of (res.network?.priorities ?? []).entries()) {
    out.push(write(`network.priorities[${i}]`, 'net_prio', 'net_prio.ifpriomap', `${p.name} ${p.priority}`));
  }
  for (const l of rdmaLines(res.rdma ?? {})) out.push(write(l.field, 'rdma', 'rdma.max', l.value));
  return out;
}
