// A container's cgroup on the cgroup v2 (unified) hierarchy: one directory, the controllers
// its limits need enabled in cgroup.subtree_control of every ancestor.

import * as fs from 'fs';
import * as path from 'path';
import { failedPrecondition, invalidArgument, notFound } from '../errors';
import type { CgroupDeviceFilter } from '../native-api';
import type { OciDevice } from '../oci-spec';
import { cgroupFileExists, CgroupFileError, readCgroupFile, readProcs, makeLevels, removeCgroupDir, signalAll, writeCgroupFile } from './cgroupfs';
import type { CgroupWrite } from './cgroup-write';
import { allowsAll, DeviceState, deviceFilterRules, deviceState, effectiveDeviceRules } from './device-rules';
import { freezeV2, thawV2 } from './freezer';
import type { CgroupMount } from './hierarchies';
import { applyWrite, cgroupError, CgroupManager, CgroupStats, checkMemoryBeforeUpdate } from './manager';
import type { CgroupResources } from './resources';
import { hostHugePageSizes } from './stat-files';
import { levelsBelow } from './v1-manager';
import { v2Writes } from './v2-files';
import { readV2Metrics } from './v2-stats';

// Controllers that cannot work in a threaded subtree (cgroups(7)).
const DOMAIN_CONTROLLERS = new Set(['memory', 'io', 'hugetlb', 'rdma', 'misc']);

const SIGKILL = 9;

export class V2CgroupManager implements CgroupManager {
  readonly version = 2 as const;
  private owned = false;
  /** linux.devices of the spec (they replace runc's default rule for their path), from apply(). */
  private linuxDevices: OciDevice[] = [];
  /** Id of the device program attached last. */
  private deviceProgram?: number;

  /**
   * `hugePageSizes`: the host's, for Stats (replaceable for tests). `deviceFilter` attaches the
   * eBPF program that enforces device rules on v2 (the native layer; without it only rules that
   * allow every device can be accepted).
   */
  constructor(
    readonly id: string,
    readonly mount: CgroupMount,
    readonly dir: string,
    private readonly hugePageSizes: () => string[] = hostHugePageSizes,
    private readonly deviceFilter?: CgroupDeviceFilter,
  ) {}

  /** Id of the eBPF device program attached to the cgroup, once apply() attached one. */
  get deviceProgramId(): number | undefined {
    return this.deviceProgram;
  }

  get paths(): string[] {
    return [this.dir];
  }

  /** What the hierarchy offers: cgroup.controllers of its root. */
  availableControllers(): string[] {
    return readCgroupFile(this.mount.mountPoint, 'cgroup.controllers').split(/\s+/).filter(Boolean);
  }

  create(): void {
    const procs = readProcs(this.dir, false);
    if (procs.length > 0) {
      throw failedPrecondition(`container ${this.id}: cgroup ${this.dir} already has processes (${procs.join(' ')}): it is not this container's`);
    }
    try {
      makeLevels(levelsBelow(this.mount.mountPoint, this.dir));
    } catch (err) {
      throw cgroupError(this.id, 'create cgroup', err);
    }
    this.owned = true;
    this.enableAvailableControllers();
  }

  /**
   * Every controller the hierarchy offers, enabled down to the container's cgroup as runc's
   * CreateCgroupPath does, so that Stats and OOM watching have their files (memory.stat,
   * memory.events, io.stat…) even without a limit. Best effort, as in runc: a controller that
   * cannot be enabled here is refused by name only when a limit needs it (apply()).
   */
  private enableAvailableControllers(): void {
    let available: string[];
    try {
      available = this.availableControllers();
    } catch {
      return;
    }
    for (const level of [this.mount.mountPoint, ...levelsBelow(this.mount.mountPoint, path.dirname(this.dir))]) {
      let enabled: string[];
      try {
        enabled = readCgroupFile(level, 'cgroup.subtree_control').split(/\s+/).filter(Boolean);
      } catch {
        return;
      }
      for (const c of available.filter((x) => !enabled.includes(x))) {
        try {
          writeCgroupFile(level, 'cgroup.subtree_control', `+${c}`);
        } catch {
          // Threaded subtree, processes of its own, or not delegated: see the doc comment.
        }
      }
    }
  }

  apply(resources: CgroupResources, linuxDevices: OciDevice[] = []): void {
    // Checked (and refused, by rule) before anything is written.
    const devices = deviceState(effectiveDeviceRules(resources.devices, linuxDevices));
    this.linuxDevices = linuxDevices;
    this.writeAll(v2Writes(resources));
    this.applyDevices(devices);
  }

  /** Rules in an update replace the container's (the program is replaced, as runc's fs2 does). */
  update(resources: CgroupResources): void {
    let cpuMaxNow: string | undefined;
    if (resources.cpu?.period && !resources.cpu.quota && cgroupFileExists(this.dir, 'cpu.max')) {
      cpuMaxNow = readCgroupFile(this.dir, 'cpu.max');
    }
    const writes = v2Writes(resources, { cpuMaxNow });
    const devices = resources.devices.length > 0 ? deviceState(effectiveDeviceRules(resources.devices, this.linuxDevices)) : undefined;
    checkMemoryBeforeUpdate(this.id, resources, cgroupFileExists(this.dir, 'memory.current') ? this.dir : undefined, 'memory.current');
    this.writeAll(writes);
    if (devices) this.applyDevices(devices);
  }

  /**
   * cgroup v2 has no devices.allow: the rules (runc's defaults included) become an eBPF program
   * attached to the cgroup, replacing the one before, as runc's fs2 manager does — also when
   * they allow everything (a program that allows all).
   */
  private applyDevices(state: DeviceState): void {
    if (!this.deviceFilter) {
      if (allowsAll(state)) return;
      throw invalidArgument(
        `container ${this.id}: linux.resources.devices: on cgroup v2 device rules need an eBPF device program, and ` +
          `this manager of ${this.dir} was made without the native layer that attaches one`,
      );
    }
    try {
      this.deviceProgram = this.deviceFilter.attachDeviceFilter(this.dir, deviceFilterRules(state));
    } catch (err) {
      throw cgroupError(this.id, 'linux.resources.devices', err);
    }
  }

  async freeze(): Promise<void> {
    this.requireFreezer('pause');
    try {
      await freezeV2(this.dir);
    } catch (err) {
      throw cgroupError(this.id, 'pause', err);
    }
  }

  async thaw(): Promise<void> {
    this.requireFreezer('resume');
    try {
      await thawV2(this.dir);
    } catch (err) {
      throw cgroupError(this.id, 'resume', err);
    }
  }

  /** cgroup.freeze exists in every non-root cgroup since Linux 5.2. */
  private requireFreezer(what: string): void {
    if (!cgroupFileExists(this.dir, 'cgroup.freeze')) {
      throw failedPrecondition(`container ${this.id}: ${what}: ${this.dir} has no cgroup.freeze (the cgroup v2 freezer needs Linux 5.2)`);
    }
  }

  stats(): CgroupStats {
    if (!fs.existsSync(this.dir)) throw notFound(`container ${this.id}: cgroup does not exist (${this.dir})`);
    try {
      return { typeName: 'io.containerd.cgroups.v2.Metrics', metrics: readV2Metrics(this.dir, this.hugePageSizes()) };
    } catch (err) {
      throw cgroupError(this.id, 'stats', err);
    }
  }

  memoryDir(): string | undefined {
    return cgroupFileExists(this.dir, 'memory.events') ? this.dir : undefined;
  }

  private writeAll(writes: CgroupWrite[]): void {
    const needed = [...new Set(writes.map((w) => w.controller).filter((c) => c !== 'cgroup'))];
    const available = this.availableControllers();
    for (const w of writes) {
      if (w.controller !== 'cgroup' && !available.includes(w.controller)) {
        throw invalidArgument(
          `container ${this.id}: linux.resources.${w.field}: the ${w.controller} controller is not available in the ` +
            `cgroup v2 hierarchy on ${this.mount.mountPoint} (its cgroup.controllers: "${available.join(' ')}")`,
        );
      }
    }
    this.enableControllers(needed);
    for (const w of writes) applyWrite(this.id, this.dir, w);
  }

  /**
   * Enables `controllers` in cgroup.subtree_control from the hierarchy's root down to the
   * container's parent, so that the container's directory gets their interface files. A
   * threaded or invalid subtree cannot take domain controllers (runc's CreateCgroupPath check).
   */
  private enableControllers(controllers: string[]): void {
    if (controllers.length === 0) return;
    const parents = [this.mount.mountPoint, ...levelsBelow(this.mount.mountPoint, path.dirname(this.dir))];
    for (const level of [...parents.slice(1), this.dir]) {
      const type = cgroupFileExists(level, 'cgroup.type') ? readCgroupFile(level, 'cgroup.type').trim() : 'domain';
      const domain = controllers.filter((c) => DOMAIN_CONTROLLERS.has(c));
      if (type !== 'domain' && domain.length > 0) {
        throw invalidArgument(
          `container ${this.id}: linux.resources: cgroup ${level} is "${type}": it cannot have the ${domain.join(', ')} controller(s)`,
        );
      }
    }
    for (const level of parents) {
      const enabled = readCgroupFile(level, 'cgroup.subtree_control').split(/\s+/).filter(Boolean);
      const missing = controllers.filter((c) => !enabled.includes(c));
      if (missing.length === 0) continue;
      try {
        writeCgroupFile(level, 'cgroup.subtree_control', missing.map((c) => `+${c}`).join(' '));
      } catch (err) {
        // EBUSY: the cgroup has processes of its own ("no internal processes" rule).
        throw cgroupError(this.id, `enable ${missing.join(' ')} in ${level}/cgroup.subtree_control`, err);
      }
    }
  }

  addProcess(pid: number): void {
    try {
      writeCgroupFile(this.dir, 'cgroup.procs', String(pid));
    } catch (err) {
      if ((err as CgroupFileError).code === 'ESRCH') return;
      throw cgroupError(this.id, `add process ${pid} to cgroup ${this.dir}`, err);
    }
  }

  pids(): number[] {
    return readProcs(this.dir);
  }

  kill(signal: number, skip?: number): number {
    const count = readProcs(this.dir).filter((p) => p !== skip).length;
    // cgroup.kill (Linux 5.14) kills the whole subtree at once, forks in flight included.
    if (signal === SIGKILL && skip === undefined && cgroupFileExists(this.dir, 'cgroup.kill')) {
      writeCgroupFile(this.dir, 'cgroup.kill', '1');
      return count;
    }
    return signalAll(this.dir, signal, skip);
  }

  async destroy(): Promise<void> {
    if (!this.owned) return;
    try {
      if (fs.existsSync(this.dir)) this.kill(SIGKILL);
      await removeCgroupDir(this.dir);
    } catch (err) {
      throw cgroupError(this.id, 'remove cgroup', err);
    }
    this.owned = false;
  }
}
