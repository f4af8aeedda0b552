// A container's cgroup on a cgroup v1 (or hybrid) host: one directory in every mounted
// hierarchy (plus the unified one in hybrid mode, as runc's fs driver joins it too).

import * as fs from 'fs';
import * as path from 'path';
import { failedPrecondition, invalidArgument } from '../errors';
import type { OciDevice } from '../oci-spec';
import { CgroupFileError, readCgroupFile, readProcs, removeCgroupDir, signalAll, writeCgroupFile } from './cgroupfs';
import { deviceState, effectiveDeviceRules, expectedDevicesList } from './device-rules';
import type { CgroupDir } from './hierarchies';
import { applyWrite, cgroupError, CgroupManager } from './manager';
import type { CgroupResources } from './resources';
import { v1Writes } from './v1-files';

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

  constructor(
    readonly id: string,
    readonly dirs: CgroupDir[],
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
    const made: string[] = [];
    try {
      for (const d of this.dirs) {
        for (const level of levelsBelow(d.mount.mountPoint, d.dir)) {
          if (!fs.existsSync(level)) {
            fs.mkdirSync(level, { mode: 0o755 });
            made.push(level);
          }
          // A new cpuset cgroup has no cpus and no mems: no process could join it. Inherit the
          // parent's (runc's cpusetEnsureParent); the spec's values are written by apply().
          if (d.controllers.includes('cpuset')) this.inheritCpuset(level);
        }
      }
    } catch (err) {
      for (const dir of made.reverse()) {
        try {
          fs.rmdirSync(dir);
        } catch {
          // Best effort: the error that matters is the one thrown below.
        }
      }
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

  apply(resources: CgroupResources, linuxDevices: OciDevice[] = []): void {
    const writes = v1Writes(resources, linuxDevices);
    // Device access is a security boundary: runc refuses to run without the devices controller.
    const hierarchies = this.dirs.map((d) => d.key || 'unified').join(' ');
    if (!this.dirOf('devices')) {
      throw invalidArgument(
        `container ${this.id}: linux.resources.devices: the devices cgroup controller is not mounted (hierarchies: ${hierarchies}): device access cannot be restricted`,
      );
    }
    for (const w of writes) {
      if (!this.dirOf(w.controller)) {
        throw invalidArgument(
          `container ${this.id}: linux.resources.${w.field}: the ${w.controller} cgroup controller is not mounted on this host (hierarchies: ${hierarchies})`,
        );
      }
    }
    for (const w of writes) applyWrite(this.id, this.dirOf(w.controller)!.dir, w);
    this.checkDevices(resources, linuxDevices);
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
