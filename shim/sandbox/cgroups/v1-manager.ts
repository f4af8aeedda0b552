// A container's cgroup on a cgroup v1 (or hybrid) host: one directory in every mounted
// hierarchy (plus the unified one in hybrid mode, as runc's fs driver joins it too).

import * as fs from 'fs';
import * as path from 'path';
import { failedPrecondition, invalidArgument, notFound } from '../errors';
import type { OciDevice } from '../oci-spec';
import { CgroupFileError, readCgroupFile, readProcs, makeLevels, removeCgroupDir, signalAll, writeCgroupFile } from './cgroupfs';
import type { CgroupWrite } from './cgroup-write';
import { deviceState, effectiveDeviceRules, expectedDevicesList } from './device-rules';
import { freezeV1, thawV1 } from './freezer';
import type { CgroupDir } from './hierarchies';
import { applyWrite, cgroupError, CgroupManager, CgroupStats, checkMemoryBeforeUpdate } from './manager';
import type { CgroupResources } from './resources';
import { hostHugePageSizes } from './stat-files';
import { v1Writes } from './v1-files';
import { readV1Metrics, V1StatsHost } from './v1-stats';

/** The directories from `dir` up to (not including) `top`, topmost first. */
export function levelsBelow(top: string, dir: string): string[] {
  const rel = path.posix.relative(top, dir);
  if (rel === '' || rel.startsWith('..')) return [];
  const parts = rel.split('/');
  return parts.map((_, i) => path.posix.join(top, ...parts.slice(0, i + 1)));
}

export class V1CgroupManager implements CgroupManager {
  readonly version = 1 as const;
  /** Set once create() made or adopted the directories: only then may destroy() remove them. */
  private owned = false;

  /** `statsHost`: where Stats finds /proc/partitions and the huge page sizes (replaceable for tests). */
  constructor(
    readonly id: string,
    readonly dirs: CgroupDir[],
    private readonly statsHost: () => V1StatsHost = () => ({ procRoot: '/proc', hugePageSizes: hostHugePageSizes() }),
  ) {}

  get paths(): string[] {
    return this.dirs.map((d) => d.dir);
  }

  private dirOf(controller: string): CgroupDir | undefined {
    return this.dirs.find((d) => d.controllers.includes(controller));
  }

  /** Where processes are listed: devices (as runc's GetAllPids), else any hierarchy. */
  private listing(): string {
    return (this.dirOf('devices') ?? this.dirOf('pids') ?? this.dirs[0]).dir;
  }

  create(): void {
    if (this.dirs.length === 0) throw new Error(`container ${this.id}: no cgroup v1 hierarchy is mounted`);
    for (const d of this.dirs) {
      const procs = readProcs(d.dir, false);
      if (procs.length > 0) {
        throw failedPrecondition(`container ${this.id}: cgroup ${d.dir} already has processes (${procs.join(' ')}): it is not this container's`);
      }
    }
    try {
      // One list over every hierarchy, so that a failure in any removes all that was made.
      const levels = this.dirs.flatMap((d) => levelsBelow(d.mount.mountPoint, d.dir).map((dir) => ({ dir, d })));
      const cpusetLevels = new Set(levels.filter((l) => l.d.controllers.includes('cpuset')).map((l) => l.dir));
      // A new cpuset cgroup has no cpus and no mems: no process could join it. Inherit the
      // parent's (runc's cpusetEnsureParent); the spec's values are written by apply().
      makeLevels(levels.map((l) => l.dir), (level) => {
        if (cpusetLevels.has(level)) this.inheritCpuset(level);
      });
    } catch (err) {
      throw cgroupError(this.id, 'create cgroup', err);
    }
    this.owned = true;
  }

  private inheritCpuset(dir: string): void {
    const parent = path.dirname(dir);
    for (const file of ['cpuset.cpus', 'cpuset.mems']) {
      if (readCgroupFile(dir, file).trim() === '') writeCgroupFile(dir, file, readCgroupFile(parent, file).trim());
    }
  }

  private get hierarchies(): string {
    return this.dirs.map((d) => d.key || 'unified').join(' ');
  }

  apply(resources: CgroupResources, linuxDevices: OciDevice[] = []): void {
    const writes = v1Writes(resources, linuxDevices);
    // Device access is a security boundary: runc refuses to run without the devices controller.
    if (!this.dirOf('devices')) {
      throw invalidArgument(
        `container ${this.id}: linux.resources.devices: the devices cgroup controller is not mounted (hierarchies: ${this.hierarchies}): device access cannot be restricted`,
      );
    }
    this.writeAll(writes);
    this.checkDevices(resources, linuxDevices);
  }

  /** Checks that every write has its controller, then writes them in order. */
  private writeAll(writes: CgroupWrite[]): void {
    for (const w of writes) {
      if (!this.dirOf(w.controller)) {
        throw invalidArgument(
          `container ${this.id}: linux.resources.${w.field}: the ${w.controller} cgroup controller is not mounted on this host (hierarchies: ${this.hierarchies})`,
        );
      }
    }
    for (const w of writes) applyWrite(this.id, this.dirOf(w.controller)!.dir, w);
  }

  update(resources: CgroupResources): void {
    const memory = this.dirOf('memory')?.dir;
    let limitNow = Infinity;
    if (memory && resources.memory) {
      try {
        limitNow = Number(readCgroupFile(memory, 'memory.limit_in_bytes').trim());
      } catch (err) {
        throw cgroupError(this.id, 'update: read the current memory limit', err);
      }
    }
    const writes = v1Writes(resources, [], { memoryLimitNow: limitNow });
    checkMemoryBeforeUpdate(this.id, resources, memory, 'memory.usage_in_bytes');
    this.writeAll(writes);
  }

  private freezerDir(what: string): string {
    const d = this.dirOf('freezer');
    if (!d) {
      throw failedPrecondition(
        `container ${this.id}: ${what}: the freezer cgroup controller is not mounted on this host (hierarchies: ${this.hierarchies})`,
      );
    }
    return d.dir;
  }

  async freeze(): Promise<void> {
    const dir = this.freezerDir('pause');
    try {
      await freezeV1(dir);
    } catch (err) {
      throw cgroupError(this.id, 'pause', err);
    }
  }

  async thaw(): Promise<void> {
    const dir = this.freezerDir('resume');
    try {
      await thawV1(dir);
    } catch (err) {
      throw cgroupError(this.id, 'resume', err);
    }
  }

  stats(): CgroupStats {
    if (!this.dirs.some((d) => fs.existsSync(d.dir))) {
      throw notFound(`container ${this.id}: cgroup does not exist (${this.paths.join(', ')})`);
    }
    try {
      return { typeName: 'io.containerd.cgroups.v1.Metrics', metrics: readV1Metrics((c) => this.dirOf(c)?.dir, this.statsHost()) };
    } catch (err) {
      throw cgroupError(this.id, 'stats', err);
    }
  }

  memoryDir(): string | undefined {
    return this.dirOf('memory')?.dir;
  }

  /** The kernel's devices.list must say what the rules meant (runc's final safety check). */
  private checkDevices(resources: CgroupResources, linuxDevices: OciDevice[]): void {
    const dir = this.dirOf('devices')!.dir;
    const want = expectedDevicesList(deviceState(effectiveDeviceRules(resources.devices, linuxDevices)));
    const have = readCgroupFile(dir, 'devices.list').split('\n').filter(Boolean).sort();
    if (JSON.stringify(have) !== JSON.stringify([...want].sort())) {
      throw new Error(
        `container ${this.id}: ${dir}/devices.list does not match the device rules: want [${want.join(', ')}], have [${have.join(', ')}]`,
      );
    }
  }

  addProcess(pid: number): void {
    for (const d of this.dirs) {
      try {
        writeCgroupFile(d.dir, 'cgroup.procs', String(pid));
      } catch (err) {
        if ((err as CgroupFileError).code === 'ESRCH') return;
        throw cgroupError(this.id, `add process ${pid} to cgroup ${d.dir}`, err);
      }
    }
  }

  pids(): number[] {
    return [...new Set(readProcs(this.listing()))];
  }

  kill(signal: number, skip?: number): number {
    return signalAll(this.listing(), signal, skip);
  }

  async destroy(): Promise<void> {
    if (!this.owned) return;
    // Everything in any hierarchy (a process may have been moved out of some of them).
    for (const d of this.dirs) signalAll(d.dir, 9);
    const failures: string[] = [];
    for (const d of this.dirs) {
      try {
        await removeCgroupDir(d.dir);
      } catch (err) {
        failures.push((err as Error).message);
      }
    }
    if (failures.length > 0) throw new Error(`container ${this.id}: remove cgroup: ${failures.join('; ')}`);
    this.owned = false;
  }
}
