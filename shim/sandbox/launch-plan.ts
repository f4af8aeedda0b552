// OCI spec → LaunchPlan: every decision about how to build the container's process, as data
// for the native layer (native/src/plan.rs mirrors these types). Pure and unit-tested.

import * as fs from 'fs';
import * as path from 'path';
import { CAPABILITY_SETS, capabilityNumbers } from './capabilities';
import { cgroupLocation } from './cgroups/cgroups-path';
import { parseResources } from './cgroups/resources';
import { invalidArgument } from './errors';
import * as L from './linux';
import { BIND_REMOUNT_FLAGS, parseMountOptions, propagationFlags } from './mount-options';
import type { OciMount, OciProcess, OciSpec } from './oci-spec';
import { withHome } from './passwd';
import { rlimitNumber } from './rlimits';
import { SeccompPlan, seccompPlan } from './seccomp';
import { rejectUnknownFields } from './spec-fields';
import { cgroupMountPlan } from './cgroup-mounts';
import { SysctlOp, sysctlOps } from './sysctl';

export interface NamespaceJoin {
  flag: number;
  path: string;
}

export interface MountOp {
  source: string;
  target: string;
  fstype: string;
  flags: number;
  data: string;
  remountFlags: number;
  propagation: number[];
  fileTarget: boolean;
  /** After mounting, chmod the mount's root to the mode of the directory it covers. */
  keepMode?: boolean;
}

export interface DeviceOp {
  path: string;
  mode: number;
  major: number;
  minor: number;
  uid: number;
  gid: number;
}

export interface SymlinkOp {
  target: string;
  path: string;
}

/** Capability sets as lists of bit numbers. */
export type CapabilityPlan = Record<(typeof CAPABILITY_SETS)[number], number[]>;

export interface RlimitOp {
  resource: number;
  soft: number;
  hard: number;
}

export interface IdMapping {
  containerId: number;
  hostId: number;
  size: number;
}

/** A hook the container's init runs itself, inside the container's namespaces. */
export interface HookOp {
  path: string;
  args: string[];
  env: string[];
  timeout: number;
}

export interface LaunchPlan {
  id: string;
  cloneFlags: number;
  joinNamespaces: NamespaceJoin[];
  rootfs: string | null;
  /** Propagation of "/" before the rootfs is bound and pivoted to (default rslave, as runc). */
  rootPropagation: number;
  /** linux.rootfsPropagation again on the container's own "/" after pivot_root; 0 = none. */
  rootPropagationAfterPivot: number;
  readonlyRoot: boolean;
  mounts: MountOp[];
  devices: DeviceOp[];
  symlinks: SymlinkOp[];
  maskedPaths: string[];
  readonlyPaths: string[];
  hostname: string | null;
  domainname: string | null;
  cwd: string;
  args: string[];
  env: string[];
  uid: number;
  gid: number;
  additionalGids: number[];
  umask: number;
  capabilities: CapabilityPlan | null;
  rlimits: RlimitOp[];
  noNewPrivileges: boolean;
  oomScoreAdj: number | null;
  stdio: [number, number, number];
  /** A pty from the container's devpts as stdio and controlling terminal. */
  terminal: boolean;
  consoleRows: number;
  consoleCols: number;
  waitForStart: boolean;
  uidMappings: IdMapping[];
  gidMappings: IdMapping[];
  /**
   * With a new cgroup namespace: the container's cgroup directories, which the native layer puts
   * the child in before it unshares the namespace (so it is rooted there, as runc's init does).
   */
  cgroupNamespaceDirs: string[];
  sysctl: SysctlOp[];
  personality: number | null;
  /** Stop before pivot_root so the shim can run prestart and createRuntime hooks. */
  pauseBeforePivot: boolean;
  createContainerHooks: HookOp[];
  startContainerHooks: HookOp[];
  /** linux.seccomp (shim/sandbox/seccomp.ts); null = no filter. */
  seccomp: SeccompPlan | null;
}

const NAMESPACE_FLAGS: Record<string, number> = {
  pid: L.CLONE_NEWPID,
  network: L.CLONE_NEWNET,
  mount: L.CLONE_NEWNS,
  ipc: L.CLONE_NEWIPC,
  uts: L.CLONE_NEWUTS,
  user: L.CLONE_NEWUSER,
  cgroup: L.CLONE_NEWCGROUP,
};

// setns order: the user namespace grants the rights to join the others; mount goes last
// because joining it changes how the other namespace paths resolve.
const JOIN_ORDER = ['user', 'ipc', 'uts', 'network', 'pid', 'cgroup', 'mount'];

const DEFAULT_DEVICES: ReadonlyArray<[string, number, number]> = [
  ['/dev/null', 1, 3],
  ['/dev/zero', 1, 5],
  ['/dev/full', 1, 7],
  ['/dev/random', 1, 8],
  ['/dev/urandom', 1, 9],
  ['/dev/tty', 5, 0],
];

export interface InitPlanInput {
  id: string;
  bundle: string;
  spec: OciSpec;
  stdio: [number, number, number];
  /** Host directories of the container's cgroup (for cgroup mounts); none without cgroups. */
  cgroupDirs?: readonly string[];
}

interface NamespacePlan {
  cloneFlags: number;
  joins: NamespaceJoin[];
  created: Set<string>;
  joined: Set<string>;
  present: Set<string>;
}

function planNamespaces(spec: OciSpec): NamespacePlan {
  const plan: NamespacePlan = { cloneFlags: 0, joins: [], created: new Set(), joined: new Set(), present: new Set() };
  const joins = new Map<string, NamespaceJoin>();
  for (const [i, ns] of (spec.linux?.namespaces ?? []).entries()) {
    const flag = NAMESPACE_FLAGS[ns.type];
    if (flag === undefined) throw invalidArgument(`linux.namespaces[${i}]: unknown namespace type ${JSON.stringify(ns.type)}`);
    if (plan.present.has(ns.type)) throw invalidArgument(`linux.namespaces[${i}]: duplicate ${ns.type} namespace`);
    plan.present.add(ns.type);
    if (ns.path) {
      if (!path.isAbsolute(ns.path)) {
        throw invalidArgument(`linux.namespaces[${i}].path ${JSON.stringify(ns.path)} must be absolute`);
      }
      joins.set(ns.type, { flag, path: ns.path });
      plan.joined.add(ns.type);
    } else {
      plan.cloneFlags |= flag;
      plan.created.add(ns.type);
    }
  }
  const hasMappings = (spec.linux?.uidMappings?.length ?? 0) > 0 || (spec.linux?.gidMappings?.length ?? 0) > 0;
  if (plan.created.has('user') && !((spec.linux?.uidMappings?.length ?? 0) > 0 && (spec.linux?.gidMappings?.length ?? 0) > 0)) {
    throw invalidArgument('linux.uidMappings/gidMappings: a new user namespace needs both uid and gid mappings');
  }
  // A joined user namespace is mapped already; its mappings in the spec are accepted (runc
  // 1.1.5 requires them) and not written.
  if (hasMappings && !plan.present.has('user')) {
    throw invalidArgument('linux.uidMappings/gidMappings: mappings need a user namespace in linux.namespaces');
  }
  if (!plan.present.has('mount')) {
    // runc chroots without one; Burrow always pivots, in a new or joined mount namespace.
    throw invalidArgument('linux.namespaces: a mount namespace (new or joined by path) is required to set up the container rootfs');
  }
  plan.joins = JOIN_ORDER.filter((t) => joins.has(t)).map((t) => joins.get(t)!);
  return plan;
}

interface MountContext {
  bundle: string;
  rootfs: string;
  cgroupDirs: readonly string[];
  newCgroupNamespace: boolean;
}

/** One spec mount as mount operations (a cgroup mount is several), and symlinks it needs. */
function mountOps(m: OciMount, i: number, ctx: MountContext): { mounts: MountOp[]; symlinks: SymlinkOp[] } {
  const type = m.type ?? '';
  const opts = parseMountOptions(m.options);
  if ((type === 'cgroup' || type === 'cgroup2') && !(opts.flags & L.MS_BIND)) {
    if (!path.isAbsolute(m.destination)) {
      throw invalidArgument(`mounts[${i}].destination ${JSON.stringify(m.destination)} must be an absolute path`);
    }
    return cgroupMountPlan({
      field: `mounts[${i}]`,
      target: path.posix.resolve(m.destination),
      flags: opts.flags,
      cgroupDirs: ctx.cgroupDirs,
      newCgroupNamespace: ctx.newCgroupNamespace,
    });
  }
  return { mounts: [mountOp(m, i, ctx.bundle, ctx.rootfs)], symlinks: [] };
}

function mountOp(m: OciMount, i: number, bundle: string, rootfs: string): MountOp {
  const field = `mounts[${i}]`;
  if (!path.isAbsolute(m.destination)) {
    throw invalidArgument(`${field}.destination ${JSON.stringify(m.destination)} must be an absolute path`);
  }
  // Cleaned as runc cleans it (no trailing slash), so that "/dev/" counts as /dev below.
  const target = path.posix.resolve(m.destination);
  const type = m.type ?? '';
  const opts = parseMountOptions(m.options);
  const isBind = type === 'bind' || (opts.flags & L.MS_BIND) !== 0;
  if (isBind) {
    if (!m.source) throw invalidArgument(`${field}: bind mount at ${target} has no source`);
    const source = path.isAbsolute(m.source) ? m.source : path.join(bundle, m.source);
    let isDir: boolean;
    try {
      isDir = fs.statSync(source).isDirectory();
    } catch (err) {
      throw invalidArgument(`${field}: bind mount source ${JSON.stringify(source)}: ${(err as Error).message}`);
    }
    return {
      source,
      target,
      fstype: 'bind',
      flags: L.MS_BIND | (opts.flags & L.MS_REC),
      data: opts.data,
      remountFlags: opts.flags & BIND_REMOUNT_FLAGS,
      propagation: opts.propagation,
      fileTarget: !isDir,
    };
  }
  if (!type) throw invalidArgument(`${field}: mount at ${target} has no type`);
  return {
    source: m.source ?? type,
    target,
    fstype: type,
    flags: opts.flags,
    data: opts.data,
    // A tmpfs without mode= keeps the mode of the directory it covers: runc chmods the new
    // mount's root to it (so the mode shows in stat, not in the mount options).
    ...(type === 'tmpfs' && !/(^|,)mode=/.test(opts.data) ? { keepMode: true } : {}),
    remountFlags: 0,
    propagation: opts.propagation,
    fileTarget: false,
  };
}

function devicesFor(spec: OciSpec, devBound: boolean): DeviceOp[] {
  const devices = new Map<string, DeviceOp>();
  if (!devBound) {
    for (const [p, major, minor] of DEFAULT_DEVICES) {
      devices.set(p, { path: p, mode: L.S_IFCHR | 0o666, major, minor, uid: 0, gid: 0 });
    }
  }
  for (const [i, d] of (spec.linux?.devices ?? []).entries()) {
    const field = `linux.devices[${i}]`;
    const typeBits = d.type === 'c' || d.type === 'u' ? L.S_IFCHR : d.type === 'b' ? L.S_IFBLK : d.type === 'p' ? L.S_IFIFO : 0;
    if (!typeBits) throw invalidArgument(`${field}: unknown device type ${JSON.stringify(d.type)}`);
    if (!path.isAbsolute(d.path)) throw invalidArgument(`${field}.path ${JSON.stringify(d.path)} must be absolute`);
    if (typeBits !== L.S_IFIFO && (!Number.isInteger(d.major) || !Number.isInteger(d.minor))) {
      throw invalidArgument(`${field}: ${d.path} needs major and minor numbers`);
    }
    devices.set(d.path, {
      path: path.posix.normalize(d.path),
      mode: typeBits | ((d.fileMode ?? 0o666) & 0o7777),
      major: d.major ?? 0,
      minor: d.minor ?? 0,
      uid: d.uid ?? 0,
      gid: d.gid ?? 0,
    });
  }
  return [...devices.values()];
}

function devSymlinks(mounts: MountOp[]): SymlinkOp[] {
  const links: SymlinkOp[] = [
    { target: '/proc/self/fd', path: '/dev/fd' },
    { target: '/proc/self/fd/0', path: '/dev/stdin' },
    { target: '/proc/self/fd/1', path: '/dev/stdout' },
    { target: '/proc/self/fd/2', path: '/dev/stderr' },
  ];
  if (fs.existsSync('/proc/kcore')) links.push({ target: '/proc/kcore', path: '/dev/core' });
  if (mounts.some((m) => m.target === '/dev/pts' && m.fstype === 'devpts')) {
    links.push({ target: 'pts/ptmx', path: '/dev/ptmx' });
  }
  return links;
}

function capabilityPlan(proc: OciProcess): CapabilityPlan | null {
  if (!proc.capabilities) return null;
  const plan = {} as CapabilityPlan;
  for (const set of CAPABILITY_SETS) {
    plan[set] = capabilityNumbers(proc.capabilities[set] ?? [], `process.capabilities.${set}`);
  }
  return plan;
}

function rejectUnsupported(spec: OciSpec): void {
  const proc = spec.process!;
  if (proc.selinuxLabel) throw invalidArgument('process.selinuxLabel: SELinux is not supported by Burrow');
  if (spec.linux?.mountLabel) throw invalidArgument('linux.mountLabel: SELinux is not supported by Burrow');
}

function idMappings(list: unknown[] | undefined, field: string): IdMapping[] {
  return (list ?? []).map((m, i) => {
    const r = m as Record<string, unknown>;
    const [c, h, n] = [r.containerID, r.hostID, r.size];
    if (![c, h, n].every((v) => Number.isInteger(v) && (v as number) >= 0) || (n as number) === 0) {
      throw invalidArgument(`${field}[${i}]: containerID, hostID and size must be non-negative integers, size > 0`);
    }
    return { containerId: c as number, hostId: h as number, size: n as number };
  });
}

const PERSONALITIES: Record<string, number> = { LINUX: 0x0000, LINUX32: 0x0008 };

function personality(spec: OciSpec): number | null {
  const p = spec.linux?.personality as { domain?: string; flags?: string[] } | undefined;
  if (!p) return null;
  const domain = PERSONALITIES[p.domain ?? ''];
  if (domain === undefined) throw invalidArgument(`linux.personality.domain: unknown domain ${JSON.stringify(p.domain)}`);
  if (p.flags && p.flags.length > 0) throw invalidArgument('linux.personality.flags: personality flags are not supported');
  return domain;
}

interface OciHook {
  path: string;
  args?: string[];
  env?: string[];
  timeout?: number;
}

/** Validated hooks of one kind, as the native child runs them. */
export function hookOps(spec: OciSpec, kind: string): HookOp[] {
  const list = (spec.hooks?.[kind] ?? []) as OciHook[];
  if (!Array.isArray(list)) throw invalidArgument(`hooks.${kind} must be an array`);
  return list.map((h, i) => {
    const field = `hooks.${kind}[${i}]`;
    if (!h || typeof h.path !== 'string' || !path.isAbsolute(h.path)) {
      throw invalidArgument(`${field}.path must be an absolute path`);
    }
    if (h.timeout !== undefined && (!Number.isInteger(h.timeout) || h.timeout <= 0)) {
      throw invalidArgument(`${field}.timeout must be a positive integer`);
    }
    return { path: h.path, args: h.args ?? [h.path], env: h.env ?? [], timeout: h.timeout ?? 0 };
  });
}

const HOOK_KINDS = ['prestart', 'createRuntime', 'createContainer', 'startContainer', 'poststart', 'poststop'];

export function buildInitPlan(input: InitPlanInput): LaunchPlan {
  const { spec, bundle, id } = input;
  const proc = spec.process!;
  rejectUnsupported(spec);
  rejectUnknownFields(spec);
  // Checked here with every other field; the sandbox's cgroup manager applies them (cgroups/).
  parseResources(spec.linux?.resources);
  cgroupLocation(spec.linux?.cgroupsPath, id);
  // Every hook is checked at Create, also those that run later (poststart, poststop).
  for (const kind of Object.keys(spec.hooks ?? {})) {
    if (!HOOK_KINDS.includes(kind)) throw invalidArgument(`hooks.${kind}: unknown hook kind`);
    hookOps(spec, kind);
  }
  const ns = planNamespaces(spec);
  const hostname = spec.hostname ? spec.hostname : null;
  const domainname = spec.domainname ? spec.domainname : null;
  if (domainname && !ns.present.has('uts')) {
    throw invalidArgument('domainname: setting a domainname needs a uts namespace of the container\'s own');
  }
  if (hostname && !ns.present.has('uts')) {
    throw invalidArgument('hostname: setting a hostname needs a uts namespace of the container\'s own');
  }
  let rootPropagation = L.MS_SLAVE | L.MS_REC;
  let rootPropagationAfterPivot = 0;
  const rp = spec.linux?.rootfsPropagation;
  if (rp) {
    const flags = propagationFlags(rp);
    if (flags === undefined) throw invalidArgument(`linux.rootfsPropagation: unknown value ${JSON.stringify(rp)}`);
    rootPropagation = flags;
    // Before pivot_root the flags apply to the host's "/" copy, and the rootfs' bind is made
    // private for pivot_root: shared and unbindable are applied again to the new "/", as runc
    // does since 1.2.7/1.3 (runc#4724, fixing runc#1755; runc 1.1.5 leaves "/" private).
    if (flags & (L.MS_SHARED | L.MS_UNBINDABLE)) rootPropagationAfterPivot = flags;
  }
  const rootfs = path.isAbsolute(spec.root!.path) ? spec.root!.path : path.join(bundle, spec.root!.path);
  const planned = (spec.mounts ?? []).map((m, i) =>
    mountOps(m, i, { bundle, rootfs, cgroupDirs: input.cgroupDirs ?? [], newCgroupNamespace: ns.created.has('cgroup') }),
  );
  const mounts = planned.flatMap((p) => p.mounts);
  const mountSymlinks = planned.flatMap((p) => p.symlinks);
  const devBound = mounts.some((m) => m.target === '/dev' && m.fstype === 'bind');
  const rlimits = (proc.rlimits ?? []).map((r, i) => ({
    resource: rlimitNumber(r.type, `process.rlimits[${i}]`),
    soft: r.soft,
    hard: r.hard,
  }));
  // A process without PATH still gets its argv[0] looked up in the default PATH (native side),
  // but its environment stays exactly as the spec says.
  const env = withHome(proc.env ?? [], rootfs, proc.user.uid);
  return {
    id,
    cloneFlags: ns.cloneFlags,
    joinNamespaces: ns.joins,
    rootfs,
    rootPropagation,
    rootPropagationAfterPivot,
    readonlyRoot: spec.root!.readonly === true,
    mounts,
    devices: devicesFor(spec, devBound),
    symlinks: [...(devBound ? [] : devSymlinks(mounts)), ...mountSymlinks],
    maskedPaths: spec.linux?.maskedPaths ?? [],
    readonlyPaths: spec.linux?.readonlyPaths ?? [],
    hostname,
    domainname,
    cwd: proc.cwd,
    args: proc.args!,
    env,
    uid: proc.user.uid,
    gid: proc.user.gid,
    additionalGids: proc.user.additionalGids ?? [],
    umask: proc.user.umask ?? 0o022,
    capabilities: capabilityPlan(proc),
    rlimits,
    noNewPrivileges: proc.noNewPrivileges === true,
    oomScoreAdj: proc.oomScoreAdj ?? null,
    stdio: input.stdio,
    terminal: proc.terminal === true,
    consoleRows: proc.consoleSize?.height ?? 0,
    consoleCols: proc.consoleSize?.width ?? 0,
    waitForStart: true,
    uidMappings: ns.created.has('user') ? idMappings(spec.linux?.uidMappings, 'linux.uidMappings') : [],
    gidMappings: ns.created.has('user') ? idMappings(spec.linux?.gidMappings, 'linux.gidMappings') : [],
    cgroupNamespaceDirs: ns.created.has('cgroup') ? [...(input.cgroupDirs ?? [])] : [],
    sysctl: sysctlOps(spec.linux?.sysctl, ns.created, ns.joined),
    personality: personality(spec),
    pauseBeforePivot: ['prestart', 'createRuntime', 'createContainer'].some((k) => (spec.hooks?.[k]?.length ?? 0) > 0),
    createContainerHooks: hookOps(spec, 'createContainer'),
    startContainerHooks: hookOps(spec, 'startContainer'),
    seccomp: seccompPlan(spec.linux?.seccomp),
  };
}

// /proc/<pid>/ns/<file> for each OCI namespace type.
const NS_FILES: Record<string, string> = {
  pid: 'pid',
  network: 'net',
  mount: 'mnt',
  ipc: 'ipc',
  uts: 'uts',
  user: 'user',
  cgroup: 'cgroup',
};

export interface ExecPlanInput {
  id: string;
  execId: string;
  /** The container's spec: which namespaces to join, and its personality. */
  spec: OciSpec;
  /** The exec's own process (ExecProcessRequest.spec). */
  process: OciProcess;
  initPid: number;
  stdio: [number, number, number];
  /** ExecProcessRequest.terminal: it wins over the process spec's, as in runc's shim. */
  terminal: boolean;
}

/** Checks an exec's process object (it arrives as JSON in the request, unvalidated). */
export function validateExecProcess(p: unknown, execId: string): OciProcess {
  const field = `exec ${execId}: process`;
  if (typeof p !== 'object' || p === null) throw invalidArgument(`${field} must be an object`);
  const proc = p as Record<string, any>;
  if (!Array.isArray(proc.args) || proc.args.length === 0 || !proc.args.every((a: unknown) => typeof a === 'string')) {
    throw invalidArgument(`${field}.args must be a non-empty array of strings`);
  }
  if (typeof proc.cwd !== 'string' || !proc.cwd.startsWith('/')) throw invalidArgument(`${field}.cwd must be an absolute path`);
  if (!proc.user || !Number.isInteger(proc.user.uid) || !Number.isInteger(proc.user.gid)) {
    throw invalidArgument(`${field}.user.uid and .gid must be integers`);
  }
  if (proc.env !== undefined && (!Array.isArray(proc.env) || !proc.env.every((e: unknown) => typeof e === 'string'))) {
    throw invalidArgument(`${field}.env must be an array of strings`);
  }
  if (proc.selinuxLabel) throw invalidArgument(`${field}.selinuxLabel: SELinux is not supported by Burrow`);
  return proc as OciProcess;
}

/**
 * An exec: a new process in every namespace of the running container's init (found through
 * /proc/<init>/ns), with its own user, capabilities, rlimits and environment. It waits before
 * execve like an init does, so the shim can put it in the container's cgroup first.
 */
export function buildExecPlan(input: ExecPlanInput): LaunchPlan {
  const { spec, process: proc, initPid } = input;
  const types = new Set((spec.linux?.namespaces ?? []).map((n) => n.type));
  return {
    id: `${input.id} exec ${input.execId}`,
    cloneFlags: 0,
    joinNamespaces: JOIN_ORDER.filter((t) => types.has(t)).map((t) => ({
      flag: NAMESPACE_FLAGS[t],
      path: `/proc/${initPid}/ns/${NS_FILES[t]}`,
    })),
    rootfs: null,
    rootPropagation: 0,
    rootPropagationAfterPivot: 0,
    readonlyRoot: false,
    mounts: [],
    devices: [],
    symlinks: [],
    maskedPaths: [],
    readonlyPaths: [],
    hostname: null,
    domainname: null,
    cwd: proc.cwd,
    args: proc.args!,
    // The container's files, through the init's root: /etc/passwd as the container sees it.
    env: withHome(proc.env ?? [], `/proc/${initPid}/root`, proc.user.uid),
    uid: proc.user.uid,
    gid: proc.user.gid,
    additionalGids: proc.user.additionalGids ?? [],
    umask: proc.user.umask ?? 0o022,
    capabilities: capabilityPlan(proc),
    rlimits: (proc.rlimits ?? []).map((r, i) => ({
      resource: rlimitNumber(r.type, `exec ${input.execId}: process.rlimits[${i}]`),
      soft: r.soft,
      hard: r.hard,
    })),
    noNewPrivileges: proc.noNewPrivileges === true,
    oomScoreAdj: proc.oomScoreAdj ?? null,
    stdio: input.stdio,
    terminal: input.terminal,
    consoleRows: proc.consoleSize?.height ?? 0,
    consoleCols: proc.consoleSize?.width ?? 0,
    waitForStart: true,
    uidMappings: [],
    gidMappings: [],
    cgroupNamespaceDirs: [],
    sysctl: [],
    personality: personality(spec),
    pauseBeforePivot: false,
    createContainerHooks: [],
    startContainerHooks: [],
    // The container's filter applies to its execs too, as in runc.
    seccomp: seccompPlan(spec.linux?.seccomp),
  };
}
