// The cgroupfs driver: picks the v1 or v2 manager from what is mounted now (v2 when
// /sys/fs/cgroup is a cgroup2 mount), with the container's directories resolved from
// linux.cgroupsPath. There is no systemd on the hosts Burrow targets: systemd-style paths are
// mapped to the directories runc's systemd driver would use, and made directly.

import { cgroupLocation } from './cgroups-path';
import { CGROUP_ROOT, cgroupMode, CgroupDir, dirIn, HostCgroups, HYBRID_UNIFIED, readHostCgroups, v1Hierarchies } from './hierarchies';
import type { CgroupDriver, CgroupManager, CgroupRequest } from './manager';
import { V1CgroupManager } from './v1-manager';
import { V2CgroupManager } from './v2-manager';

export class CgroupfsDriver implements CgroupDriver {
  /** `host` reads the mounts and the shim's own cgroups (replaceable for tests). */
  constructor(private readonly host: () => HostCgroups = readHostCgroups) {}

  forContainer(req: CgroupRequest): CgroupManager {
    const host = this.host();
    const loc = cgroupLocation(req.cgroupsPath, req.id);
    const mode = cgroupMode(host.mounts);
    if (mode === 'v2') {
      const mount = host.mounts.find((m) => m.version === 2 && m.mountPoint === CGROUP_ROOT)!;
      return new V2CgroupManager(req.id, mount, dirIn(mount, loc, host.own.get(''), true), undefined, req.deviceFilter);
    }
    const dirs: CgroupDir[] = v1Hierarchies(host.mounts).map((mount) => {
      const key = mount.controllers.join(',');
      return { key, controllers: mount.controllers, mount, dir: dirIn(mount, loc, host.own.get(key), false) };
    });
    if (mode === 'hybrid') {
      // runc's v1 driver puts the container in the unified hierarchy too (no controllers there).
      const mount = host.mounts.find((m) => m.version === 2 && m.mountPoint === HYBRID_UNIFIED)!;
      dirs.push({ key: '', controllers: [], mount, dir: dirIn(mount, loc, host.own.get(''), false) });
    }
    return new V1CgroupManager(req.id, dirs);
  }
}
