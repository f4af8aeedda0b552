// What the sandbox needs from a container's cgroup, whatever the cgroup version: the
// CgroupManager interface, the driver that makes one per container from linux.cgroupsPath, and
// the write loop both versions share.

import { SandboxError, invalidArgument } from '../errors';
import type { CgroupDeviceFilter } from '../native-api';
import type { OciDevice } from '../oci-spec';
import { cgroupFileExists, CgroupFileError, readCgroupFile, writeCgroupFile } from './cgroupfs';
import type { CgroupWrite } from './cgroup-write';
import type { CgroupResources } from './resources';

export interface CgroupManager {
  readonly version: 1 | 2;
  /** Every directory of this cgroup: one per v1 hierarchy (and the hybrid unified one), or the v2 one. */
  readonly paths: string[];
  /**
   * Makes the directories. Refuses a cgroup that already has processes (it is someone else's)
   * without touching it; on failure removes what it made.
   */
  create(): void;
  /** Writes the limits; anything this host cannot honour is an invalid-argument error by field. */
  apply(resources: CgroupResources, linuxDevices?: OciDevice[]): void;
  /**
   * Moves a process (and its threads) into the cgroup, in every hierarchy. A process that has
   * already exited (ESRCH) is no error: it can run nothing any more, and its own report (a
   * failed setup) says why it is gone.
   */
  addProcess(pid: number): void;
  /** Every process in the cgroup and its sub-cgroups. */
  pids(): number[];
  /** Signals every process in the cgroup but `skip`; returns how many were signalled. */
  kill(signal: number, skip?: number): number;
  /** Kills what is left and removes the directories (only those create() made or adopted). */
  destroy(): Promise<void>;
  /**
   * New limits for the running container (Update), refused by field like apply()'s. Device
   * rules: v2 replaces its device program with the update's; v1 does not rewrite them (the
   * sandbox refuses an update that asks for other ones there).
   */
  update(resources: CgroupResources): void;
  /** Freezes every process of the cgroup (Pause); resolves once the kernel reports it frozen. */
  freeze(): Promise<void>;
  /** Thaws the cgroup (Resume); resolves once the kernel reports it thawed. */
  thaw(): Promise<void>;
  /** The cgroup's metrics for Stats; a not-found error when the cgroup does not exist. */
  stats(): CgroupStats;
  /** The directory with the container's memory.* files (OOM watching); undefined without the memory controller. */
  memoryDir(): string | undefined;
}

/** Stats: the metrics message and its type name (the Any's type_url). */
export interface CgroupStats {
  typeName: 'io.containerd.cgroups.v1.Metrics' | 'io.containerd.cgroups.v2.Metrics';
  metrics: object;
}

export interface CgroupRequest {
  id: string;
  namespace: string;
  /** linux.cgroupsPath as in the spec (empty or absent: the container id, below the shim's cgroup). */
  cgroupsPath?: string;
  /** Attaches cgroup v2 device programs (the native layer); v1 managers do not need it. */
  deviceFilter?: CgroupDeviceFilter;
}

/** Makes the manager of one container's cgroup; nothing is created before create(). */
export interface CgroupDriver {
  forContainer(req: CgroupRequest): CgroupManager;
}

/**
 * Writes one planned value into `dir`: the first existing file of its choices. No file at all
 * means this kernel or mount cannot take the setting: refused, unless the write is optional.
 */
export function applyWrite(id: string, dir: string, w: CgroupWrite): void {
  const field = `linux.resources.${w.field}`;
  const choice = w.choices.find((c) => cgroupFileExists(dir, c.file));
  if (!choice) {
    if (w.optional) return;
    const files = w.choices.map((c) => c.file).join(' or ');
    throw invalidArgument(`container ${id}: ${field}: ${dir} has no ${files}: this host's ${w.controller} controller cannot set it`);
  }
  try {
    writeCgroupFile(dir, choice.file, choice.value);
  } catch (err) {
    const e = err as CgroupFileError;
    throw invalidArgument(`container ${id}: ${field}: ${e.message}`);
  }
  if (w.check) {
    const problem = w.check(readCgroupFile(dir, choice.file));
    if (problem) throw invalidArgument(`container ${id}: ${field}: ${choice.value} in ${dir}/${choice.file}: ${problem}`);
  }
}

/** Errors that are not about the spec: the id and the path, as an internal error. */
export function cgroupError(id: string, what: string, err: unknown): Error {
  if (err instanceof SandboxError) return err;
  return new Error(`container ${id}: ${what}: ${(err as Error).message}`);
}

/**
 * memory.checkBeforeUpdate (runc, cgroup v2; honoured on both here): a new memory limit below
 * what the cgroup uses now is refused instead of making the kernel reclaim or OOM-kill.
 */
export function checkMemoryBeforeUpdate(id: string, resources: CgroupResources, dir: string | undefined, usageFile: string): void {
  const limit = resources.memory?.limit;
  if (!resources.memory?.checkBeforeUpdate || limit === undefined || limit <= 0 || !dir) return;
  const usage = Number(readCgroupFile(dir, usageFile).trim());
  if (limit < usage) {
    throw invalidArgument(
      `container ${id}: linux.resources.memory.limit: rejecting memory limit ${limit} below usage ${usage} ` +
        `(${dir}/${usageFile}; memory.checkBeforeUpdate is set)`,
    );
  }
}
