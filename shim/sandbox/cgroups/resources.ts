// linux.resources of the OCI spec, checked and typed: every field Burrow knows, with its type
// and range checked; anything else is refused by name (linux.resources.<field>), never dropped.
// Which of these a cgroup version can honour is decided by v1-files.ts / v2-files.ts.

import { invalidArgument } from '../errors';

/** type a (all), b, c; major/minor -1 = any (runc's Wildcard); access ⊆ "rwm". */
export interface DeviceRule {
  allow: boolean;
  type: 'a' | 'b' | 'c';
  major: number;
  minor: number;
  access: string;
}

export interface WeightDevice {
  major: number;
  minor: number;
  weight?: number;
  leafWeight?: number;
}

export interface ThrottleDevice {
  major: number;
  minor: number;
  rate: number;
}

export interface MemoryResources {
  limit?: number;
  reservation?: number;
  swap?: number;
  kernel?: number;
  kernelTCP?: number;
  swappiness?: number;
  disableOOMKiller?: boolean;
  useHierarchy?: boolean;
  checkBeforeUpdate?: boolean;
}

export interface CpuResources {
  shares?: number;
  quota?: number;
  burst?: number;
  period?: number;
  realtimeRuntime?: number;
  realtimePeriod?: number;
  cpus?: string;
  mems?: string;
  idle?: number;
}

export interface BlockIOResources {
  weight?: number;
  leafWeight?: number;
  weightDevice?: WeightDevice[];
  throttleReadBpsDevice?: ThrottleDevice[];
  throttleWriteBpsDevice?: ThrottleDevice[];
  throttleReadIOPSDevice?: ThrottleDevice[];
  throttleWriteIOPSDevice?: ThrottleDevice[];
}

export interface CgroupResources {
  /** The spec's rules in order; runc's defaults are added by device-rules.ts. */
  devices: DeviceRule[];
  memory?: MemoryResources;
  cpu?: CpuResources;
  pids?: { limit?: number };
  blockIO?: BlockIOResources;
  hugepageLimits?: Array<{ pageSize: string; limit: number }>;
  network?: { classID?: number; priorities?: Array<{ name: string; priority: number }> };
  rdma?: Record<string, { hcaHandles?: number; hcaObjects?: number }>;
  unified?: Record<string, string>;
}

const F = 'linux.resources';

type Obj = Record<string, unknown>;

function isObject(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The object at `field`, with every key outside `known` refused by name. */
function object(v: unknown, field: string, known: readonly string[]): Obj {
  if (!isObject(v)) throw invalidArgument(`${field} must be an object`);
  for (const k of Object.keys(v)) {
    if (!known.includes(k) && v[k] !== undefined && v[k] !== null) {
      throw invalidArgument(`${field}.${k}: not supported by Burrow`);
    }
  }
  return v;
}

function present(o: Obj, k: string): boolean {
  return o[k] !== undefined && o[k] !== null;
}

/** An integer JavaScript holds exactly, within [min, max]. */
function int(o: Obj, k: string, field: string, min: number, max = Number.MAX_SAFE_INTEGER): number | undefined {
  if (!present(o, k)) return undefined;
  const v = o[k];
  if (typeof v !== 'number' || !Number.isSafeInteger(v)) {
    throw invalidArgument(`${field}.${k}: ${JSON.stringify(v)} is not an integer Burrow can represent exactly`);
  }
  if (v < min || v > max) throw invalidArgument(`${field}.${k}: ${v} is out of range [${min}, ${max}]`);
  return v;
}

function bool(o: Obj, k: string, field: string): boolean | undefined {
  if (!present(o, k)) return undefined;
  if (typeof o[k] !== 'boolean') throw invalidArgument(`${field}.${k} must be a boolean`);
  return o[k] as boolean;
}

function str(o: Obj, k: string, field: string): string | undefined {
  if (!present(o, k)) return undefined;
  if (typeof o[k] !== 'string') throw invalidArgument(`${field}.${k} must be a string`);
  return o[k] as string;
}

function list(o: Obj, k: string, field: string): unknown[] {
  if (!present(o, k)) return [];
  if (!Array.isArray(o[k])) throw invalidArgument(`${field}.${k} must be an array`);
  return o[k] as unknown[];
}

/** Drops keys whose value is undefined, so "set" always means present. */
function compact<T extends object>(o: T): T | undefined {
  const entries = Object.entries(o).filter(([, v]) => v !== undefined);
  return entries.length === 0 ? undefined : (Object.fromEntries(entries) as T);
}

const U16 = 0xffff;
const U32 = 0xffffffff;

function deviceRule(v: unknown, i: number): DeviceRule {
  const field = `${F}.devices[${i}]`;
  const d = object(v, field, ['allow', 'type', 'major', 'minor', 'access']);
  if (typeof d.allow !== 'boolean') throw invalidArgument(`${field}.allow must be a boolean`);
  const type = str(d, 'type', field) || 'a';
  if (type !== 'a' && type !== 'b' && type !== 'c') {
    throw invalidArgument(`${field}.type: invalid cgroup device type ${JSON.stringify(type)} (a, b or c)`);
  }
  const access = str(d, 'access', field) ?? '';
  // runc refuses an empty access: the rule would mean nothing, or everything.
  if (access === '' || !/^[rwm]+$/.test(access)) {
    throw invalidArgument(`${field}.access: ${JSON.stringify(access)} must be a non-empty combination of r, w and m`);
  }
  return {
    allow: d.allow,
    type,
    major: int(d, 'major', field, -1) ?? -1,
    minor: int(d, 'minor', field, -1) ?? -1,
    access: [...new Set(access)].sort((a, b) => 'rwm'.indexOf(a) - 'rwm'.indexOf(b)).join(''),
  };
}

function memory(v: unknown): MemoryResources | undefined {
  const field = `${F}.memory`;
  const m = object(v, field, [
    'limit', 'reservation', 'swap', 'kernel', 'kernelTCP', 'swappiness', 'disableOOMKiller', 'useHierarchy', 'checkBeforeUpdate',
  ]);
  const swappiness = present(m, 'swappiness') ? int(m, 'swappiness', field, -1) : undefined;
  // runc: -1 (how some clients spell "unset") leaves the kernel's value; above 100 is an error.
  if (swappiness !== undefined && swappiness > 100) {
    throw invalidArgument(`${field}.swappiness: invalid value ${swappiness} (valid range is 0-100)`);
  }
  const out = compact<MemoryResources>({
    limit: int(m, 'limit', field, -1),
    reservation: int(m, 'reservation', field, -1),
    swap: int(m, 'swap', field, -1),
    kernel: int(m, 'kernel', field, -1),
    kernelTCP: int(m, 'kernelTCP', field, -1),
    swappiness: swappiness === -1 ? undefined : swappiness,
    disableOOMKiller: bool(m, 'disableOOMKiller', field),
    useHierarchy: bool(m, 'useHierarchy', field),
    checkBeforeUpdate: bool(m, 'checkBeforeUpdate', field),
  });
  if (out?.limit !== undefined && out.limit > 0 && out.swap !== undefined && out.swap > 0 && out.swap < out.limit) {
    throw invalidArgument(`${field}.swap: ${out.swap} is below memory.limit ${out.limit}: memory+swap must be >= memory`);
  }
  return out;
}

function cpu(v: unknown): CpuResources | undefined {
  const field = `${F}.cpu`;
  const c = object(v, field, ['shares', 'quota', 'burst', 'period', 'realtimeRuntime', 'realtimePeriod', 'cpus', 'mems', 'idle']);
  return compact<CpuResources>({
    shares: int(c, 'shares', field, 0),
    quota: int(c, 'quota', field, -1),
    burst: int(c, 'burst', field, 0),
    period: int(c, 'period', field, 0),
    realtimeRuntime: int(c, 'realtimeRuntime', field, -1),
    realtimePeriod: int(c, 'realtimePeriod', field, 0),
    cpus: str(c, 'cpus', field) || undefined,
    mems: str(c, 'mems', field) || undefined,
    idle: int(c, 'idle', field, 0, 1),
  });
}

function throttle(o: Obj, k: string, field: string): ThrottleDevice[] | undefined {
  const out = list(o, k, field).map((v, i) => {
    const f = `${field}.${k}[${i}]`;
    const t = object(v, f, ['major', 'minor', 'rate']);
    const major = int(t, 'major', f, 0);
    const minor = int(t, 'minor', f, 0);
    if (major === undefined || minor === undefined) throw invalidArgument(`${f}: major and minor are required`);
    return { major, minor, rate: int(t, 'rate', f, 0) ?? 0 };
  });
  return out.length > 0 ? out : undefined;
}

function blockIO(v: unknown): BlockIOResources | undefined {
  const field = `${F}.blockIO`;
  const b = object(v, field, [
    'weight', 'leafWeight', 'weightDevice',
    'throttleReadBpsDevice', 'throttleWriteBpsDevice', 'throttleReadIOPSDevice', 'throttleWriteIOPSDevice',
  ]);
  const weightDevice = list(b, 'weightDevice', field).map((v, i) => {
    const f = `${field}.weightDevice[${i}]`;
    const w = object(v, f, ['major', 'minor', 'weight', 'leafWeight']);
    const major = int(w, 'major', f, 0);
    const minor = int(w, 'minor', f, 0);
    if (major === undefined || minor === undefined) throw invalidArgument(`${f}: major and minor are required`);
    return compact<WeightDevice>({ major, minor, weight: int(w, 'weight', f, 0, U16), leafWeight: int(w, 'leafWeight', f, 0, U16) })!;
  });
  return compact<BlockIOResources>({
    weight: int(b, 'weight', field, 0, U16),
    leafWeight: int(b, 'leafWeight', field, 0, U16),
    weightDevice: weightDevice.length > 0 ? weightDevice : undefined,
    throttleReadBpsDevice: throttle(b, 'throttleReadBpsDevice', field),
    throttleWriteBpsDevice: throttle(b, 'throttleWriteBpsDevice', field),
    throttleReadIOPSDevice: throttle(b, 'throttleReadIOPSDevice', field),
    throttleWriteIOPSDevice: throttle(b, 'throttleWriteIOPSDevice', field),
  });
}

/** Checks and types `linux.resources`; undefined or null is "no resources". */
export function parseResources(raw: unknown): CgroupResources {
  if (raw === undefined || raw === null) return { devices: [] };
  const r = object(raw, F, ['devices', 'memory', 'cpu', 'pids', 'blockIO', 'hugepageLimits', 'network', 'rdma', 'unified']);
  const out: CgroupResources = { devices: list(r, 'devices', F).map(deviceRule) };
  if (present(r, 'memory')) out.memory = memory(r.memory);
  if (present(r, 'cpu')) out.cpu = cpu(r.cpu);
  if (present(r, 'pids')) {
    const p = object(r.pids, `${F}.pids`, ['limit']);
    out.pids = compact({ limit: int(p, 'limit', `${F}.pids`, Number.MIN_SAFE_INTEGER) });
  }
  if (present(r, 'blockIO')) out.blockIO = blockIO(r.blockIO);
  const huge = list(r, 'hugepageLimits', F).map((v, i) => {
    const f = `${F}.hugepageLimits[${i}]`;
    const h = object(v, f, ['pageSize', 'limit']);
    const pageSize = str(h, 'pageSize', f);
    // The size is part of a file name: nothing but "<number><unit>B".
    if (!pageSize || !/^[0-9]+[KMGTPE]?B$/.test(pageSize)) {
      throw invalidArgument(`${f}.pageSize: ${JSON.stringify(pageSize)} is not a page size like "2MB"`);
    }
    return { pageSize, limit: int(h, 'limit', f, 0) ?? 0 };
  });
  if (huge.length > 0) out.hugepageLimits = huge;
  if (present(r, 'network')) {
    const f = `${F}.network`;
    const n = object(r.network, f, ['classID', 'priorities']);
    const priorities = list(n, 'priorities', f).map((v, i) => {
      const pf = `${f}.priorities[${i}]`;
      const p = object(v, pf, ['name', 'priority']);
      const name = str(p, 'name', pf);
      if (!name || /\s/.test(name)) throw invalidArgument(`${pf}.name: ${JSON.stringify(name)} is not an interface name`);
      return { name, priority: int(p, 'priority', pf, 0, U32) ?? 0 };
    });
    out.network = compact({ classID: int(n, 'classID', f, 0, U32), priorities: priorities.length > 0 ? priorities : undefined });
  }
  if (present(r, 'rdma')) {
    if (!isObject(r.rdma)) throw invalidArgument(`${F}.rdma must be an object`);
    const rdma: NonNullable<CgroupResources['rdma']> = {};
    for (const [dev, v] of Object.entries(r.rdma)) {
      const f = `${F}.rdma.${dev}`;
      if (!/^[^\s/]+$/.test(dev)) throw invalidArgument(`${f}: ${JSON.stringify(dev)} is not an RDMA device name`);
      const d = object(v, f, ['hcaHandles', 'hcaObjects']);
      rdma[dev] = { hcaHandles: int(d, 'hcaHandles', f, 0, U32), hcaObjects: int(d, 'hcaObjects', f, 0, U32) };
    }
    if (Object.keys(rdma).length > 0) out.rdma = rdma;
  }
  if (present(r, 'unified')) {
    if (!isObject(r.unified)) throw invalidArgument(`${F}.unified must be an object`);
    const unified: Record<string, string> = {};
    for (const [k, v] of Object.entries(r.unified)) {
      // A file of the container's own cgroup directory, CONTROLLER.PARAMETER (runc's rules).
      if (k.includes('/') || k.indexOf('.') <= 0) {
        throw invalidArgument(`${F}.unified: ${JSON.stringify(k)} must be a file name of the form CONTROLLER.PARAMETER`);
      }
      if (typeof v !== 'string') throw invalidArgument(`${F}.unified.${k} must be a string`);
      unified[k] = v;
    }
    if (Object.keys(unified).length > 0) out.unified = unified;
  }
  for (const k of ['memory', 'cpu', 'pids', 'blockIO', 'network'] as const) if (out[k] === undefined) delete out[k];
  return out;
}
