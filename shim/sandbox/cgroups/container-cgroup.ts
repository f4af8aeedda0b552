// The glue between a sandbox and its cgroup: opening it at create, killing what a dead init
// leaves behind, and removing recorded cgroup directories when only the state file is left
// (the `delete` helper after the shim died).

import type { CgroupDeviceFilter } from '../native-api';
import type { Logger } from '../../log/logger';
import type { OciSpec } from '../oci-spec';
import { removeCgroupDir, signalAll } from './cgroupfs';
import type { CgroupDriver, CgroupManager } from './manager';

const SIGKILL = 9;

/**
 * The container's cgroup, created (directories made, nothing applied yet, no process in it).
 * The shim always has a driver (cli/serve.ts); only the sandbox's unit tests, whose fake native
 * runtime has no real processes to put in a cgroup, run without one.
 */
export function openCgroup(
  driver: CgroupDriver | undefined,
  id: string,
  namespace: string,
  spec: OciSpec,
  deviceFilter?: CgroupDeviceFilter,
): CgroupManager | undefined {
  if (!driver) return undefined;
  const cgroup = driver.forContainer({ id, namespace, cgroupsPath: spec.linux?.cgroupsPath, deviceFilter });
  cgroup.create();
  return cgroup;
}

/**
 * After an init without a pid namespace of its own exited: its processes outlive it, so they
 * are SIGKILLed through the cgroup (containerd's runc shim does the same with `runc kill --all`).
 */
export function killLeftovers(cgroup: CgroupManager | undefined, id: string, logger: Logger): void {
  if (!cgroup) return;
  try {
    const n = cgroup.kill(SIGKILL);
    if (n > 0) logger.debug('killed processes left in the cgroup of an exited init', { id, count: n });
  } catch (err) {
    logger.warn('could not kill the processes left in the container\'s cgroup', { id, error: (err as Error).message });
  }
}

/** SIGKILLs whatever is in the recorded directories and removes them; throws naming every one left. */
export async function removeCgroupDirs(id: string, dirs: readonly string[]): Promise<void> {
  const failures: string[] = [];
  for (const dir of dirs) {
    try {
      signalAll(dir, SIGKILL);
      await removeCgroupDir(dir);
    } catch (err) {
      failures.push((err as Error).message);
    }
  }
  if (failures.length > 0) throw new Error(`container ${id}: remove cgroup: ${failures.join('; ')}`);
}
