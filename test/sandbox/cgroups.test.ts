// Cgroups without root: where a container's cgroup is (linux.cgroupsPath in every form), what
// linux.resources becomes on cgroup v1 and v2 (files and values), what is refused and how, and
// how the sandbox drives its cgroup (with a fake manager and the fake native runtime).

import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { silentLogger } from '../../shim/log/logger';
import { byteLimitCheck, CgroupWrite } from '../../shim/sandbox/cgroups/cgroup-write';
import { CgroupfsDriver } from '../../shim/sandbox/cgroups/cgroupfs-driver';
import { cgroupLocation, cleanPath, expandSlice, systemdCgroupPath } from '../../shim/sandbox/cgroups/cgroups-path';
import {
  allowsAll, deviceFilterRules, deviceState, effectiveDeviceRules, expectedDevicesList, RUNC_DEFAULT_DEVICE_RULES, v1DeviceWrites,
} from '../../shim/sandbox/cgroups/device-rules';
import {
  cgroupMode, CgroupMount, dirIn, HostCgroups, parseCgroupMounts, parseProcCgroup, v1Hierarchies,
} from '../../shim/sandbox/cgroups/hierarchies';
import type { CgroupDriver, CgroupManager, CgroupRequest, CgroupStats } from '../../shim/sandbox/cgroups/manager';
import { CgroupResources, parseResources } from '../../shim/sandbox/cgroups/resources';
import { pidsMax, v1Writes } from '../../shim/sandbox/cgroups/v1-files';
import { V1CgroupManager } from '../../shim/sandbox/cgroups/v1-manager';
import { cpuWeightFromShares, ioWeightFromBlkioWeight, swapMaxFromSpec, v2Writes } from '../../shim/sandbox/cgroups/v2-files';
import { V2CgroupManager } from '../../shim/sandbox/cgroups/v2-manager';
import { SandboxError, SandboxErrorKind } from '../../shim/sandbox/errors';
import { ExitRouter } from '../../shim/sandbox/exit-router';
import { buildInitPlan, LaunchPlan } from '../../shim/sandbox/launch-plan';
import * as L from '../../shim/sandbox/linux';
import type { OciSpec } from '../../shim/sandbox/oci-spec';
import { CreateOptions, forceCleanup, Sandbox, SandboxDeps } from '../../shim/sandbox/sandbox';
import { SandboxRecord, StateStore } from '../../shim/sandbox/state-store';
import { FakeNative } from '../fakes/fake-native';
import { defaultSpec, makeBundle, makeTempDir, removeTempDir, settle, waitUntil } from '../fakes/fixtures';

const MiB = 1024 * 1024;

function throwsKind(fn: () => unknown, kind: SandboxErrorKind, pattern: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof SandboxError, String(err));
    assert.equal(err.kind, kind, err.message);
    assert.match(err.message, pattern);
    return true;
  });
}

const invalid = (fn: () => unknown, pattern: RegExp) => throwsKind(fn, 'invalid-argument', pattern);

/** [file, value] of the first choice of each write, optionally of one controller only. */
function files(writes: CgroupWrite[], controller?: string): Array<[string, string]> {
  return writes.filter((w) => !controller || w.controller === controller).map((w) => [w.choices[0].file, w.choices[0].value]);
}

// /proc/self/mountinfo of a hybrid host (cgroup v1 hierarchies and cgroup2 at .../unified).
const HYBRID_MOUNTINFO = [
  '23 1 0:21 / /sys rw,nosuid,nodev,noexec,relatime - sysfs sysfs rw',
  '31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755',
  '32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:7 - cgroup cgroup rw,cpu,cpuacct',
  '34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset,clone_children',
  '35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory',
  '36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices',
  '39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids',
  '40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd,release_agent=/x',
  '41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw',
  // The memory hierarchy bound a second time elsewhere: the /sys/fs/cgroup mount wins.
  '90 1 0:32 / /mnt/mem\\040cg rw,relatime - cgroup cgroup rw,memory',
].join('\n');

const HYBRID_PROC_CGROUP = [
  '9:name=systemd:/',
  '8:pids:/',
  '5:devices:/',
  '4:memory:/process_api/6a19',
  '3:cpuset:/',
  '1:cpuacct,cpu:/',
  '0::/',
].join('\n');

const V2_MOUNTINFO = '30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot';

const hostOf = (mountinfo: string, procCgroup: string): (() => HostCgroups) => () => ({
  mounts: parseCgroupMounts(mountinfo),
  own: parseProcCgroup(procCgroup),
});

describe('cgroups: where a container\'s cgroup is (linux.cgroupsPath)', () => {
  it('cleans paths as runc does: .. never climbs above a relative path', () => {
    assert.equal(cleanPath('/a/../b/'), '/b');
    assert.equal(cleanPath('/default//c1'), '/default/c1');
    assert.equal(cleanPath('../../etc'), 'etc');
    assert.equal(cleanPath('a/../../b'), 'b');
    assert.equal(cleanPath('..'), '.');
    assert.equal(cleanPath(''), '');
  });

  it('an absolute path is used below every hierarchy\'s root', () => {
    assert.deepEqual(cgroupLocation('/default/c1', 'c1'), { kind: 'absolute', path: '/default/c1' });
    assert.deepEqual(cgroupLocation('/kubepods/besteffort/pod1234/abc', 'abc'), { kind: 'absolute', path: '/kubepods/besteffort/pod1234/abc' });
    assert.deepEqual(cgroupLocation('/a/../default/./c1/', 'c1'), { kind: 'absolute', path: '/default/c1' });
  });

  it('empty or absent: the container id below the shim\'s own cgroup (runc)', () => {
    assert.deepEqual(cgroupLocation('', 'c1'), { kind: 'relative', path: 'c1' });
    assert.deepEqual(cgroupLocation(undefined, 'c1'), { kind: 'relative', path: 'c1' });
  });

  it('a relative path stays below the shim\'s own cgroup', () => {
    assert.deepEqual(cgroupLocation('foo/bar', 'c1'), { kind: 'relative', path: 'foo/bar' });
    assert.deepEqual(cgroupLocation('../../etc/x', 'c1'), { kind: 'relative', path: 'etc/x' });
  });

  it('refuses paths naming a hierarchy root or the shim\'s own cgroup', () => {
    invalid(() => cgroupLocation('/', 'c1'), /linux\.cgroupsPath "\/": names no cgroup of the container's own/);
    invalid(() => cgroupLocation('/..', 'c1'), /linux\.cgroupsPath/);
    invalid(() => cgroupLocation('..', 'c1'), /linux\.cgroupsPath "\.\.": names no cgroup/);
  });

  it('expands systemd slices like runc\'s ExpandSlice', () => {
    assert.equal(expandSlice('test-a-b.slice'), '/test.slice/test-a.slice/test-a-b.slice');
    assert.equal(expandSlice('system.slice'), '/system.slice');
    assert.equal(expandSlice('-.slice'), '/');
    for (const bad of ['test--a.slice', '-test.slice', 'test.scope', '.slice', 'a/b.slice']) {
      assert.throws(() => expandSlice(bad), /invalid slice name/, bad);
    }
  });

  it('maps slice:prefix:name to the directory runc\'s systemd driver would use', () => {
    assert.deepEqual(cgroupLocation('kubepods-besteffort-pod1234.slice:cri-containerd:abc', 'abc'), {
      kind: 'absolute',
      path: '/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1234.slice/cri-containerd-abc.scope',
    });
    assert.equal(systemdCgroupPath(':docker:abc'), '/system.slice/docker-abc.scope');
    assert.equal(systemdCgroupPath('-.slice:p:n'), '/p-n.scope');
    // A name that is a slice is a slice of its own, not a scope.
    assert.equal(systemdCgroupPath('machine.slice:p:my.slice'), '/machine.slice/my.slice');
  });

  it('refuses malformed systemd paths by field', () => {
    invalid(() => cgroupLocation('system.slice:abc', 'c1'), /linux\.cgroupsPath "system\.slice:abc": expected "slice:prefix:name"/);
    invalid(() => cgroupLocation('a:b:c:d', 'c1'), /expected "slice:prefix:name"/);
    invalid(() => cgroupLocation('bad--x.slice:p:n', 'c1'), /invalid slice name "bad--x\.slice"/);
    invalid(() => cgroupLocation('notaslice:p:n', 'c1'), /invalid slice name "notaslice"/);
    invalid(() => cgroupLocation('system.slice:p:', 'c1'), /invalid unit name/);
  });

  it('is checked at launch-plan time with the rest of the spec', () => {
    const spec = defaultSpec();
    spec.root = { path: '/tmp' };
    spec.linux!.cgroupsPath = 'system.slice:oops';
    invalid(() => buildInitPlan({ id: 'c1', bundle: '/tmp', spec, stdio: [-1, -1, -1] }), /linux\.cgroupsPath/);
  });
});

describe('cgroups: the host\'s hierarchies', () => {
  it('parses cgroup mounts from mountinfo, controllers sorted, escapes decoded', () => {
    const mounts = parseCgroupMounts(HYBRID_MOUNTINFO);
    assert.deepEqual(mounts.map((m) => [m.mountPoint, m.version, m.controllers.join(',')]), [
      ['/sys/fs/cgroup/cpu,cpuacct', 1, 'cpu,cpuacct'],
      ['/sys/fs/cgroup/cpuset', 1, 'cpuset'],
      ['/sys/fs/cgroup/memory', 1, 'memory'],
      ['/sys/fs/cgroup/devices', 1, 'devices'],
      ['/sys/fs/cgroup/pids', 1, 'pids'],
      ['/sys/fs/cgroup/systemd', 1, 'name=systemd'],
      ['/sys/fs/cgroup/unified', 2, ''],
      ['/mnt/mem cg', 1, 'memory'],
    ]);
  });

  it('tells v1, hybrid and v2 apart as runc does', () => {
    assert.equal(cgroupMode(parseCgroupMounts(HYBRID_MOUNTINFO)), 'hybrid');
    assert.equal(cgroupMode(parseCgroupMounts(HYBRID_MOUNTINFO.split('\n').filter((l) => !l.includes('unified')).join('\n'))), 'v1');
    assert.equal(cgroupMode(parseCgroupMounts(V2_MOUNTINFO)), 'v2');
    assert.throws(() => cgroupMode([]), /no cgroup hierarchy is mounted/);
  });

  it('counts a hierarchy mounted twice once, preferring the mount under /sys/fs/cgroup', () => {
    const h = v1Hierarchies(parseCgroupMounts(HYBRID_MOUNTINFO));
    assert.deepEqual(h.map((m) => m.mountPoint), [
      '/sys/fs/cgroup/cpu,cpuacct', '/sys/fs/cgroup/cpuset', '/sys/fs/cgroup/memory', '/sys/fs/cgroup/devices',
      '/sys/fs/cgroup/pids', '/sys/fs/cgroup/systemd',
    ]);
  });

  it('reads /proc/<pid>/cgroup keyed by sorted controllers ("" for v2)', () => {
    const own = parseProcCgroup(HYBRID_PROC_CGROUP);
    assert.equal(own.get('cpu,cpuacct'), '/');
    assert.equal(own.get('memory'), '/process_api/6a19');
    assert.equal(own.get('name=systemd'), '/');
    assert.equal(own.get(''), '/');
  });

  it('resolves absolute and relative locations in a mount', () => {
    const mem: CgroupMount = { mountPoint: '/sys/fs/cgroup/memory', root: '/', version: 1, controllers: ['memory'] };
    assert.equal(dirIn(mem, { kind: 'absolute', path: '/default/c1' }, '/x', false), '/sys/fs/cgroup/memory/default/c1');
    assert.equal(dirIn(mem, { kind: 'relative', path: 'c1' }, '/process_api/6a19', false), '/sys/fs/cgroup/memory/process_api/6a19/c1');
    const v2: CgroupMount = { mountPoint: '/sys/fs/cgroup', root: '/', version: 2, controllers: [] };
    // cgroup v2: below the parent of the shim's own cgroup, which has the shim in it (runc's fs2).
    assert.equal(dirIn(v2, { kind: 'relative', path: 'c1' }, '/system.slice/containerd.service', true), '/sys/fs/cgroup/system.slice/c1');
    // Inside a cgroup namespace the mount's root is not "/".
    const nested: CgroupMount = { ...mem, root: '/docker/abc' };
    assert.equal(dirIn(nested, { kind: 'relative', path: 'c1' }, '/docker/abc/shim', false), '/sys/fs/cgroup/memory/shim/c1');
    assert.throws(() => dirIn(nested, { kind: 'relative', path: 'c1' }, '/elsewhere', false), /outside the hierarchy/);
    assert.throws(() => dirIn(mem, { kind: 'relative', path: 'c1' }, undefined, false), /own cgroup .* is unknown/);
  });

  it('the cgroupfs driver: one directory per v1 hierarchy plus unified on a hybrid host', () => {
    const driver = new CgroupfsDriver(hostOf(HYBRID_MOUNTINFO, HYBRID_PROC_CGROUP));
    const m = driver.forContainer({ id: 'c1', namespace: 'default', cgroupsPath: '/default/c1' });
    assert.ok(m instanceof V1CgroupManager);
    assert.deepEqual(m.paths, [
      '/sys/fs/cgroup/cpu,cpuacct/default/c1', '/sys/fs/cgroup/cpuset/default/c1', '/sys/fs/cgroup/memory/default/c1',
      '/sys/fs/cgroup/devices/default/c1', '/sys/fs/cgroup/pids/default/c1', '/sys/fs/cgroup/systemd/default/c1',
      '/sys/fs/cgroup/unified/default/c1',
    ]);
    const rel = driver.forContainer({ id: 'c1', namespace: 'default' });
    assert.ok(rel.paths.includes('/sys/fs/cgroup/memory/process_api/6a19/c1'));
    assert.ok(rel.paths.includes('/sys/fs/cgroup/pids/c1'));
    const sd = driver.forContainer({ id: 'abc', namespace: 'k8s.io', cgroupsPath: 'kubepods-burstable-pod1.slice:cri-containerd:abc' });
    assert.ok(sd.paths.includes('/sys/fs/cgroup/memory/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice/cri-containerd-abc.scope'));
  });

  it('the cgroupfs driver: the v2 directory when /sys/fs/cgroup is cgroup2', () => {
    const driver = new CgroupfsDriver(hostOf(V2_MOUNTINFO, '0::/system.slice/containerd.service'));
    const m = driver.forContainer({ id: 'c1', namespace: 'default', cgroupsPath: '/default/c1' });
    assert.ok(m instanceof V2CgroupManager);
    assert.deepEqual(m.paths, ['/sys/fs/cgroup/default/c1']);
    assert.deepEqual(driver.forContainer({ id: 'c1', namespace: 'default', cgroupsPath: '' }).paths, ['/sys/fs/cgroup/system.slice/c1']);
  });
});

describe('cgroups: linux.resources checked and typed', () => {
  it('parses the resources containerd sends by default', () => {
    const r = parseResources(defaultSpec().linux!.resources);
    assert.equal(r.devices.length, 10);
    assert.deepEqual(r.devices[0], { allow: false, type: 'a', major: -1, minor: -1, access: 'rwm' });
    assert.deepEqual(r.devices[8], { allow: true, type: 'c', major: 136, minor: -1, access: 'rwm' });
    assert.deepEqual(r.cpu, { shares: 1024 });
  });

  it('refuses unknown fields by name, at every level', () => {
    invalid(() => parseResources({ bogus: 1 }), /^linux\.resources\.bogus: not supported by Burrow$/);
    invalid(() => parseResources({ memory: { limit: 1, bogus: 1 } }), /^linux\.resources\.memory\.bogus: not supported by Burrow$/);
    invalid(() => parseResources({ cpu: { cpuz: '0' } }), /linux\.resources\.cpu\.cpuz/);
    invalid(() => parseResources({ devices: [{ allow: true, access: 'rwm', path: '/dev/x' }] }), /linux\.resources\.devices\[0\]\.path/);
    invalid(() => parseResources({ blockIO: { weightDevice: [{ major: 8, minor: 0, weight: 10, extra: 1 }] } }), /weightDevice\[0\]\.extra/);
  });

  it('refuses wrong types and ranges by field', () => {
    invalid(() => parseResources({ memory: { limit: '64m' } }), /linux\.resources\.memory\.limit: "64m" is not an integer/);
    invalid(() => parseResources({ memory: { limit: 1.5 } }), /memory\.limit: 1\.5 is not an integer/);
    invalid(() => parseResources({ memory: { limit: 2 ** 63 } }), /memory\.limit: .* is not an integer Burrow can represent exactly/);
    invalid(() => parseResources({ memory: { swappiness: 101 } }), /memory\.swappiness: invalid value 101 \(valid range is 0-100\)/);
    invalid(() => parseResources({ memory: { limit: 64 * MiB, swap: 32 * MiB } }), /memory\.swap: .* memory\+swap must be >= memory/);
    invalid(() => parseResources({ cpu: { idle: 2 } }), /cpu\.idle: 2 is out of range \[0, 1\]/);
    invalid(() => parseResources({ blockIO: { weight: 70000 } }), /blockIO\.weight: 70000 is out of range/);
    invalid(() => parseResources({ devices: [{ allow: true, type: 'x', access: 'rwm' }] }), /devices\[0\]\.type: invalid cgroup device type "x"/);
    invalid(() => parseResources({ devices: [{ allow: true, type: 'c', access: '' }] }), /devices\[0\]\.access: "" must be a non-empty combination/);
    invalid(() => parseResources({ devices: [{ allow: true, access: 'rwx' }] }), /devices\[0\]\.access/);
    invalid(() => parseResources({ devices: [{ access: 'rwm' }] }), /devices\[0\]\.allow must be a boolean/);
    invalid(() => parseResources({ hugepageLimits: [{ pageSize: '../2MB', limit: 1 }] }), /hugepageLimits\[0\]\.pageSize/);
    invalid(() => parseResources({ unified: { 'memory/../x': '1' } }), /unified: "memory\/\.\.\/x" must be a file name/);
    invalid(() => parseResources({ unified: { memory: '1' } }), /CONTROLLER\.PARAMETER/);
    invalid(() => parseResources({ blockIO: { throttleReadBpsDevice: [{ major: 8, rate: 1 }] } }), /throttleReadBpsDevice\[0\]: major and minor are required/);
  });

  it('keeps swappiness -1 as unset and normalizes device access', () => {
    assert.equal(parseResources({ memory: { swappiness: -1, limit: 5 } }).memory!.swappiness, undefined);
    assert.equal(parseResources({ devices: [{ allow: true, type: 'c', major: 1, minor: 3, access: 'mwr' }] }).devices[0].access, 'rwm');
  });

  it('is checked at launch-plan time with the rest of the spec', () => {
    const spec = defaultSpec();
    spec.root = { path: '/tmp' };
    spec.linux!.resources = { ...spec.linux!.resources, memory: { limit: 1, bogus: true } };
    invalid(() => buildInitPlan({ id: 'c1', bundle: '/tmp', spec, stdio: [-1, -1, -1] }), /linux\.resources\.memory\.bogus/);
  });
});

describe('cgroups: device rules', () => {
  const ctrDefault = () => parseResources(defaultSpec().linux!.resources).devices;

  it('appends runc\'s default rules, dropping those a linux.devices entry replaces', () => {
    const all = effectiveDeviceRules([], []);
    assert.equal(all.length, RUNC_DEFAULT_DEVICE_RULES.length);
    const withNull = effectiveDeviceRules([], [{ path: '/dev/null', type: 'c', major: 1, minor: 3 }]);
    assert.equal(withNull.length, RUNC_DEFAULT_DEVICE_RULES.length - 1);
    assert.ok(!withNull.some((r) => r.major === 1 && r.minor === 3));
  });

  it('ctr\'s default list becomes a whitelist of the standard devices, ptys, tun and mknod', () => {
    const state = deviceState(effectiveDeviceRules(ctrDefault()));
    assert.equal(state.defaultAllow, false);
    assert.deepEqual(state.exceptions, [
      'b *:* m', 'c *:* m', 'c 10:200 rwm', 'c 136:* rwm', 'c 1:3 rwm', 'c 1:5 rwm', 'c 1:7 rwm', 'c 1:8 rwm',
      'c 1:9 rwm', 'c 5:0 rwm', 'c 5:1 rwm', 'c 5:2 rwm',
    ]);
    assert.equal(allowsAll(state), false);
    const writes = v1DeviceWrites(state);
    assert.deepEqual(writes[0], { file: 'devices.deny', value: 'a *:* rwm' });
    assert.deepEqual(writes.slice(1).map((w) => w.file), Array(12).fill('devices.allow'));
    assert.deepEqual(expectedDevicesList(state), state.exceptions);
  });

  it('no rules in the spec: runc\'s defaults on a deny-all base', () => {
    const state = deviceState(effectiveDeviceRules([]));
    assert.equal(state.defaultAllow, false);
    assert.ok(state.exceptions.includes('c 1:3 rwm'));
    assert.ok(!state.exceptions.some((e) => e.startsWith('b 254')));
  });

  it('an allow-all rule (privileged) allows everything, deny exceptions stay', () => {
    assert.equal(allowsAll(deviceState(effectiveDeviceRules([{ allow: true, type: 'a', major: -1, minor: -1, access: 'rwm' }]))), true);
    const state = deviceState(effectiveDeviceRules([
      { allow: true, type: 'a', major: -1, minor: -1, access: 'rwm' },
      { allow: false, type: 'b', major: 8, minor: 0, access: 'rwm' },
    ]));
    assert.deepEqual(state, { defaultAllow: true, exceptions: ['b 8:0 rwm'] });
    assert.deepEqual(v1DeviceWrites(state), [
      { file: 'devices.allow', value: 'a *:* rwm' },
      { file: 'devices.deny', value: 'b 8:0 rwm' },
    ]);
    assert.deepEqual(expectedDevicesList(state), ['a *:* rwm']);
  });

  it('later rules take access away from the same device; merged access is sorted', () => {
    const state = deviceState([
      { allow: false, type: 'a', major: -1, minor: -1, access: 'rwm' },
      { allow: true, type: 'c', major: 1, minor: 3, access: 'r' },
      { allow: true, type: 'c', major: 1, minor: 3, access: 'mw' },
      { allow: true, type: 'c', major: 4, minor: 1, access: 'rwm' },
      { allow: false, type: 'c', major: 4, minor: 1, access: 'w' },
    ]);
    assert.deepEqual(state.exceptions, ['c 1:3 rwm', 'c 4:1 rm']);
  });

  it('refuses a rule that would punch a hole into a wildcard rule (cgroup v1 would ignore it)', () => {
    invalid(
      () => deviceState([
        { allow: false, type: 'a', major: -1, minor: -1, access: 'rwm' },
        { allow: true, type: 'c', major: 136, minor: -1, access: 'rwm' },
        { allow: false, type: 'c', major: 136, minor: 3, access: 'r' },
      ]),
      /linux\.resources\.devices\[2\]: rule "c 136:3 r" cannot take access away from the wildcard rule "c 136:\* rwm"/,
    );
  });
});

describe('cgroups: linux.resources → cgroup v1 files', () => {
  const res = (r: Record<string, unknown>): CgroupResources => parseResources(r);

  it('devices first, then memory: limit before memsw, soft limit, oom_control, swappiness', () => {
    const w = v1Writes(res({ memory: { limit: 64 * MiB, swap: 128 * MiB, reservation: 32 * MiB, swappiness: 10, disableOOMKiller: true } }));
    assert.equal(w[0].controller, 'devices');
    assert.deepEqual(files(w, 'memory'), [
      ['memory.limit_in_bytes', String(64 * MiB)],
      ['memory.memsw.limit_in_bytes', String(128 * MiB)],
      ['memory.soft_limit_in_bytes', String(32 * MiB)],
      ['memory.oom_control', '1'],
      ['memory.swappiness', '10'],
    ]);
    assert.equal(w.find((x) => x.choices[0].file === 'memory.memsw.limit_in_bytes')!.field, 'memory.swap');
  });

  it('unlimited memory without a swap value: unlimited memsw too, where swap is accounted', () => {
    const w = v1Writes(res({ memory: { limit: -1 } })).filter((x) => x.controller === 'memory');
    assert.deepEqual(files(w), [['memory.memsw.limit_in_bytes', '-1'], ['memory.limit_in_bytes', '-1']]);
    assert.equal(w[0].optional, true);
    assert.equal(w[1].optional, undefined);
  });

  it('unlimited swap goes before the memory limit; oom killer enabled is written too (it is inherited)', () => {
    const w = v1Writes(res({ memory: { limit: 64 * MiB, swap: -1, disableOOMKiller: false, useHierarchy: true } }));
    assert.deepEqual(files(w, 'memory'), [
      ['memory.memsw.limit_in_bytes', '-1'],
      ['memory.limit_in_bytes', String(64 * MiB)],
      ['memory.oom_control', '0'],
      ['memory.use_hierarchy', '1'],
    ]);
  });

  it('kernel memory limits are written and checked: a kernel that ignores them is refused', () => {
    const w = v1Writes(res({ memory: { kernel: 100000000, kernelTCP: 50 * MiB } })).filter((x) => x.controller === 'memory');
    assert.deepEqual(files(w), [['memory.kmem.limit_in_bytes', '100000000'], ['memory.kmem.tcp.limit_in_bytes', String(50 * MiB)]]);
    // Linux ≥ 5.16 accepts the write and keeps "unlimited".
    assert.match(w[0].check!('9223372036854771712\n')!, /the kernel did not apply it: memory\.kmem\.limit_in_bytes still reads 9223372036854771712/);
    assert.equal(w[0].check!('99999744\n'), undefined, 'rounded down to a page is applied');
    assert.equal(byteLimitCheck(-1, 'f')('9223372036854771712'), undefined);
  });

  it('cpu: cpuset first, realtime before shares, period before quota, then burst and idle', () => {
    const w = v1Writes(res({ cpu: { shares: 512, quota: 50000, period: 100000, burst: 1000, realtimePeriod: 1000000, realtimeRuntime: 950000, cpus: '0-1', mems: '0', idle: 1 } }))
      .filter((x) => x.controller !== 'devices');
    assert.deepEqual(files(w), [
      ['cpuset.cpus', '0-1'], ['cpuset.mems', '0'],
      ['cpu.rt_period_us', '1000000'], ['cpu.rt_runtime_us', '950000'], ['cpu.shares', '512'],
      ['cpu.cfs_period_us', '100000'], ['cpu.cfs_quota_us', '50000'], ['cpu.cfs_burst_us', '1000'], ['cpu.idle', '1'],
    ]);
    assert.deepEqual(w.slice(0, 2).map((x) => x.controller), ['cpuset', 'cpuset']);
  });

  it('cpu.shares the kernel clamped is an error, as in runc', () => {
    const high = v1Writes(res({ cpu: { shares: 300000 } })).find((x) => x.choices[0].file === 'cpu.shares')!;
    assert.equal(high.check!('262144\n'), 'the maximum allowed cpu-shares is 262144');
    const low = v1Writes(res({ cpu: { shares: 1 } })).find((x) => x.choices[0].file === 'cpu.shares')!;
    assert.equal(low.check!('2\n'), 'the minimum allowed cpu-shares is 2');
    assert.equal(low.check!('1\n'), undefined);
  });

  it('pids.max: the limit, "max" for negative, 1 for 0 (runc)', () => {
    assert.deepEqual(files(v1Writes(res({ pids: { limit: 32 } })), 'pids'), [['pids.max', '32']]);
    assert.equal(pidsMax(-1), 'max');
    assert.equal(pidsMax(0), '1');
  });

  it('blkio: CFQ files or their BFQ counterparts, per-device lines, throttles', () => {
    const w = v1Writes(res({
      blockIO: {
        weight: 500, leafWeight: 300,
        weightDevice: [{ major: 8, minor: 0, weight: 600, leafWeight: 100 }],
        throttleReadBpsDevice: [{ major: 8, minor: 0, rate: MiB }],
        throttleWriteIOPSDevice: [{ major: 8, minor: 16, rate: 100 }],
      },
    })).filter((x) => x.controller === 'blkio');
    assert.deepEqual(w[0].choices, [{ file: 'blkio.weight', value: '500' }, { file: 'blkio.bfq.weight', value: '500' }]);
    assert.deepEqual(files(w.slice(1)), [
      ['blkio.leaf_weight', '300'],
      ['blkio.weight_device', '8:0 600'],
      ['blkio.leaf_weight_device', '8:0 100'],
      ['blkio.throttle.read_bps_device', `8:0 ${MiB}`],
      ['blkio.throttle.write_iops_device', '8:16 100'],
    ]);
    assert.deepEqual(w[2].choices.map((c) => c.file), ['blkio.weight_device', 'blkio.bfq.weight_device']);
  });

  it('hugetlb (with optional reservation limits), net_cls, net_prio, rdma', () => {
    const w = v1Writes(res({
      hugepageLimits: [{ pageSize: '2MB', limit: 8 * MiB }],
      network: { classID: 0x100001, priorities: [{ name: 'eth0', priority: 5 }] },
      rdma: { mlx4_0: { hcaHandles: 2, hcaObjects: 2000 }, mlx5_1: { hcaHandles: 3 } },
    })).filter((x) => x.controller !== 'devices');
    assert.deepEqual(files(w), [
      ['hugetlb.2MB.limit_in_bytes', String(8 * MiB)],
      ['hugetlb.2MB.rsvd.limit_in_bytes', String(8 * MiB)],
      ['net_cls.classid', String(0x100001)],
      ['net_prio.ifpriomap', 'eth0 5'],
      ['rdma.max', 'mlx4_0 hca_handle=2 hca_object=2000'],
      ['rdma.max', 'mlx5_1 hca_handle=3'],
    ]);
    assert.deepEqual(w.map((x) => !!x.optional), [false, true, false, false, false, false]);
  });

  it('refuses unified (cgroup v2) resources', () => {
    invalid(() => v1Writes(res({ unified: { 'memory.high': '1' } })), /linux\.resources\.unified: unified \(cgroup v2\) resources cannot be set on a cgroup v1 host/);
  });
});

describe('cgroups: linux.resources → cgroup v2 files', () => {
  const allowAll = [{ allow: true, access: 'rwm' }];
  const res = (r: Record<string, unknown>): CgroupResources => parseResources({ devices: allowAll, ...r });

  it('converts cpu shares to cpu.weight with runc\'s quadratic fit', () => {
    assert.deepEqual([0, 2, 512, 1024, 2048, 262144, 300000].map(cpuWeightFromShares), [0, 1, 59, 100, 174, 10000, 10000]);
  });

  it('converts the blkio weight to io.weight linearly', () => {
    assert.deepEqual([0, 10, 500, 1000].map(ioWeightFromBlkioWeight), [0, 1, 4950, 10000]);
  });

  it('converts memory+swap to swap alone', () => {
    assert.equal(swapMaxFromSpec(128 * MiB, 64 * MiB), 64 * MiB);
    assert.equal(swapMaxFromSpec(0, -1), -1);
    assert.equal(swapMaxFromSpec(-1, 64 * MiB), -1);
    assert.equal(swapMaxFromSpec(0, 64 * MiB), 0);
    assert.equal(swapMaxFromSpec(128 * MiB, -1), 128 * MiB);
    invalid(() => swapMaxFromSpec(64 * MiB, 0), /memory\.swap: a swap limit needs a memory limit on cgroup v2/);
    invalid(() => swapMaxFromSpec(32 * MiB, 64 * MiB), /memory\+swap limit should be >= memory limit/);
  });

  it('memory: memory.swap.max, memory.max, memory.low', () => {
    assert.deepEqual(files(v2Writes(res({ memory: { limit: 64 * MiB, swap: 128 * MiB, reservation: 32 * MiB } }))), [
      ['memory.swap.max', String(64 * MiB)], ['memory.max', String(64 * MiB)], ['memory.low', String(32 * MiB)],
    ]);
    const unlimited = v2Writes(res({ memory: { limit: -1 } }));
    assert.deepEqual(files(unlimited), [['memory.swap.max', 'max'], ['memory.max', 'max']]);
    assert.equal(unlimited[0].optional, true, 'without swap accounting "max" swap holds anyway');
    const noSwap = v2Writes(res({ memory: { limit: 64 * MiB, swap: 64 * MiB } }));
    assert.deepEqual(files(noSwap), [['memory.swap.max', '0'], ['memory.max', String(64 * MiB)]]);
    assert.deepEqual(files(v2Writes(res({ memory: { limit: 64 * MiB, useHierarchy: true, checkBeforeUpdate: true } }))), [['memory.max', String(64 * MiB)]]);
  });

  it('cpu: idle, weight, cpu.max "quota period" ("max" without a quota), burst after it', () => {
    assert.deepEqual(files(v2Writes(res({ cpu: { idle: 0, shares: 1024, quota: 50000, period: 100000, burst: 1000 } }))), [
      ['cpu.idle', '0'], ['cpu.weight', '100'], ['cpu.max', '50000 100000'], ['cpu.max.burst', '1000'],
    ]);
    assert.deepEqual(files(v2Writes(res({ cpu: { quota: 25000 } }))), [['cpu.max', '25000 100000']]);
    assert.deepEqual(files(v2Writes(res({ cpu: { quota: -1, period: 200000 } }))), [['cpu.max', 'max 200000']]);
    assert.deepEqual(files(v2Writes(res({ cpu: { period: 200000 } }))), [['cpu.max', 'max 200000']]);
    assert.deepEqual(files(v2Writes(res({ cpu: { cpus: '0-3', mems: '0' } }))), [['cpuset.cpus', '0-3'], ['cpuset.mems', '0']]);
  });

  it('pids, io (BFQ or io.weight), io.max throttles, hugetlb, rdma, unified line by line, in runc\'s order', () => {
    const w = v2Writes(res({
      pids: { limit: -1 },
      blockIO: {
        weight: 500,
        weightDevice: [{ major: 8, minor: 0, weight: 200 }],
        throttleReadBpsDevice: [{ major: 8, minor: 0, rate: MiB }],
        throttleWriteIOPSDevice: [{ major: 8, minor: 0, rate: 10 }],
      },
      hugepageLimits: [{ pageSize: '1GB', limit: 1024 * MiB }],
      rdma: { mlx4_0: { hcaObjects: 10 } },
      unified: { 'memory.high': '1000000', 'io.max': '8:0 rbps=1\n8:16 wbps=2\n' },
    }));
    assert.deepEqual(files(w), [
      ['pids.max', 'max'],
      ['io.bfq.weight', '500'],
      ['io.bfq.weight', '8:0 200'],
      ['io.max', `8:0 rbps=${MiB}`],
      ['io.max', '8:0 wiops=10'],
      ['hugetlb.1GB.max', String(1024 * MiB)],
      ['hugetlb.1GB.rsvd.max', String(1024 * MiB)],
      ['rdma.max', 'mlx4_0 hca_object=10'],
      ['memory.high', '1000000'],
      ['io.max', '8:0 rbps=1'],
      ['io.max', '8:16 wbps=2'],
    ]);
    assert.deepEqual(w[1].choices, [{ file: 'io.bfq.weight', value: '500' }, { file: 'io.weight', value: '4950' }]);
    assert.deepEqual(w.slice(-3).map((x) => x.controller), ['memory', 'io', 'io']);
  });

  it('refuses what cgroup v2 has no file for, by field', () => {
    invalid(() => v2Writes(res({ memory: { kernel: MiB } })), /linux\.resources\.memory\.kernel: cgroup v2 has no kernel memory limit/);
    invalid(() => v2Writes(res({ memory: { kernelTCP: MiB } })), /linux\.resources\.memory\.kernelTCP: cgroup v2 has no kernel memory limit/);
    invalid(() => v2Writes(res({ memory: { swappiness: 10 } })), /linux\.resources\.memory\.swappiness: cgroup v2 has no per-cgroup swappiness/);
    invalid(() => v2Writes(res({ memory: { disableOOMKiller: true } })), /linux\.resources\.memory\.disableOOMKiller/);
    invalid(() => v2Writes(res({ memory: { useHierarchy: false } })), /linux\.resources\.memory\.useHierarchy/);
    invalid(() => v2Writes(res({ cpu: { realtimeRuntime: 1000 } })), /linux\.resources\.cpu\.realtimeRuntime: cgroup v2 has no realtime group scheduling/);
    invalid(() => v2Writes(res({ network: { classID: 1 } })), /linux\.resources\.network: net_cls and net_prio do not exist on cgroup v2/);
    invalid(() => v2Writes(res({ blockIO: { leafWeight: 100 } })), /linux\.resources\.blockIO\.leafWeight/);
    invalid(() => v2Writes(res({ blockIO: { weightDevice: [{ major: 8, minor: 0, leafWeight: 100 }] } })), /weightDevice\[0\]\.leafWeight/);
  });

  it('writes no file for device rules (they become an eBPF program, see the manager)', () => {
    const fromDefault = v2Writes(parseResources(defaultSpec().linux!.resources));
    assert.ok(fromDefault.every((w) => w.controller !== 'devices'), JSON.stringify(fromDefault));
    assert.deepEqual(v2Writes(res({})), []);
  });

  it('turns the reduced device rules into the device program\'s input', () => {
    const state = deviceState(effectiveDeviceRules([{ allow: false, type: 'a', major: -1, minor: -1, access: 'rwm' }, { allow: true, type: 'c', major: 1, minor: 3, access: 'rw' }]));
    const rules = deviceFilterRules(state);
    assert.equal(rules.defaultAllow, false);
    assert.deepEqual(rules.exceptions[0], { type: 'b', major: -1, minor: -1, access: 'm' });
    assert.ok(rules.exceptions.some((e) => e.type === 'c' && e.major === 1 && e.minor === 3 && e.access === 'rwm'), JSON.stringify(rules));
    assert.ok(rules.exceptions.some((e) => e.type === 'c' && e.major === 136 && e.minor === -1), JSON.stringify(rules));
  });
});

describe('cgroups: managers over a plain directory tree (no cgroupfs needed)', () => {
  let tmp: string;
  const mountAt = (dir: string, controllers: string[]): CgroupMount => ({ mountPoint: dir, root: '/', version: 1, controllers });

  beforeEach(() => {
    tmp = makeTempDir('burrow-cgroups-');
  });

  afterEach(() => removeTempDir(tmp));

  function v1(controllers: string[][]): V1CgroupManager {
    return new V1CgroupManager('c1', controllers.map((cs) => {
      const mp = path.join(tmp, cs.join(','));
      fs.mkdirSync(mp, { recursive: true });
      return { key: cs.join(','), controllers: cs, mount: mountAt(mp, cs), dir: path.join(mp, 'default', 'c1') };
    }));
  }

  it('refuses a cgroup that already has processes, without touching it', async () => {
    const m = v1([['memory'], ['devices']]);
    fs.mkdirSync(m.paths[1], { recursive: true });
    fs.writeFileSync(path.join(m.paths[1], 'cgroup.procs'), '4242\n');
    throwsKind(() => m.create(), 'failed-precondition', new RegExp(`container c1: cgroup ${m.paths[1]} already has processes \\(4242\\)`));
    assert.equal(fs.existsSync(m.paths[0]), false, 'nothing made');
    await m.destroy();
    assert.equal(fs.existsSync(m.paths[1]), true, 'someone else\'s cgroup is never removed');
  });

  it('refuses limits of controllers that are not mounted, before writing anything', () => {
    const m = v1([['memory'], ['devices']]);
    m.create();
    invalid(() => m.apply(parseResources({ hugepageLimits: [{ pageSize: '2MB', limit: 1 }] })),
      /container c1: linux\.resources\.hugepageLimits\[0\]: the hugetlb cgroup controller is not mounted on this host \(hierarchies: memory devices\)/);
    const noDevices = v1([['pids']]);
    noDevices.create();
    invalid(() => noDevices.apply(parseResources({})), /linux\.resources\.devices: the devices cgroup controller is not mounted/);
  });

  it('refuses a setting whose file this kernel lacks, naming field, file and directory', () => {
    const m = v1([['memory'], ['devices']]);
    m.create();
    for (const f of ['devices.allow', 'devices.deny']) fs.writeFileSync(path.join(m.paths[1], f), '');
    invalid(() => m.apply(parseResources({ memory: { limit: MiB, swap: 2 * MiB } })),
      new RegExp(`container c1: linux\\.resources\\.memory\\.limit: ${m.paths[0]} has no memory\\.limit_in_bytes: this host's memory controller cannot set it`));
  });

  it('destroy removes what create made (the cgroup), and only once', async () => {
    const m = v1([['memory'], ['devices']]);
    m.create();
    for (const p of m.paths) assert.ok(fs.statSync(p).isDirectory());
    await m.destroy();
    for (const p of m.paths) assert.equal(fs.existsSync(p), false);
    assert.equal(fs.existsSync(path.dirname(m.paths[0])), true, 'parents stay, as with runc');
    await m.destroy();
  });

  it('a v2 manager refuses a controller its hierarchy does not offer, naming what it has', () => {
    const mp = path.join(tmp, 'v2');
    fs.mkdirSync(mp);
    fs.writeFileSync(path.join(mp, 'cgroup.controllers'), 'hugetlb\n');
    const m = new V2CgroupManager('c1', { mountPoint: mp, root: '/', version: 2, controllers: [] }, path.join(mp, 'default', 'c1'));
    m.create();
    invalid(() => m.apply(parseResources({ devices: [{ allow: true, access: 'rwm' }], pids: { limit: 5 } })),
      new RegExp(`container c1: linux\\.resources\\.pids\\.limit: the pids controller is not available in the cgroup v2 hierarchy on ${mp} \\(its cgroup\\.controllers: "hugetlb"\\)`));
  });

  it('a v2 manager attaches its device rules (runc\'s defaults, linux.devices) as a program, and an update replaces them', () => {
    const mp = path.join(tmp, 'v2dev');
    fs.mkdirSync(mp);
    fs.writeFileSync(path.join(mp, 'cgroup.controllers'), '');
    const native = new FakeNative();
    const dir = path.join(mp, 'default', 'c1');
    const m = new V2CgroupManager('c1', { mountPoint: mp, root: '/', version: 2, controllers: [] }, dir, () => [], native);
    m.create();
    const deny = { allow: false, type: 'c', major: 1, minor: 3, access: 'rw' };
    m.apply(parseResources({ devices: [{ allow: true, access: 'rwm' }, deny] }));
    assert.equal(native.deviceFilters.length, 1);
    assert.equal(native.deviceFilters[0].dir, dir);
    assert.equal(m.deviceProgramId, 1);
    // The spec's allow-all then deny, then runc's defaults: allow /dev/null again (c 1:3 rwm).
    assert.deepEqual(native.deviceFilters[0].rules, deviceFilterRules(deviceState(effectiveDeviceRules(parseResources({ devices: [{ allow: true, access: 'rwm' }, deny] }).devices))));
    m.update(parseResources({ devices: [{ allow: false, access: 'rwm' }] }));
    assert.equal(native.deviceFilters.length, 2);
    assert.equal(native.deviceFilters[1].rules.defaultAllow, false);
    assert.equal(m.deviceProgramId, 2);
    // An update without device rules leaves the program alone.
    m.update(parseResources({}));
    assert.equal(native.deviceFilters.length, 2);
    // Without the native layer, only allow-all can be accepted.
    const bare = new V2CgroupManager('c2', { mountPoint: mp, root: '/', version: 2, controllers: [] }, path.join(mp, 'default', 'c2'));
    bare.create();
    invalid(() => bare.apply(parseResources({})), /container c2: linux\.resources\.devices: on cgroup v2 device rules need an eBPF device program/);
    bare.apply(parseResources({ devices: [{ allow: true, access: 'rwm' }] }));
  });
});

/** Records what the sandbox asks of its cgroup. */
class FakeCgroup implements CgroupManager {
  readonly version = 1 as const;
  readonly calls: string[] = [];
  readonly procs: number[] = [];
  readonly kills: Array<[number, number | undefined]> = [];
  applied?: CgroupResources;
  applyError?: Error;
  spawnedAtApply = -1;

  constructor(
    readonly paths: string[],
    private readonly native: FakeNative,
  ) {}

  create(): void {
    this.calls.push('create');
  }

  apply(resources: CgroupResources): void {
    this.calls.push('apply');
    this.spawnedAtApply = this.native.spawned.length;
    if (this.applyError) throw this.applyError;
    this.applied = resources;
  }

  addProcess(pid: number): void {
    this.calls.push(`add ${pid}`);
    this.procs.push(pid);
  }

  pids(): number[] {
    return [...this.procs];
  }

  kill(signal: number, skip?: number): number {
    this.kills.push([signal, skip]);
    return this.procs.filter((p) => p !== skip).length;
  }

  async destroy(): Promise<void> {
    this.calls.push('destroy');
  }

  update(resources: CgroupResources): void {
    this.calls.push('update');
    this.applied = resources;
  }

  async freeze(): Promise<void> {
    this.calls.push('freeze');
  }

  async thaw(): Promise<void> {
    this.calls.push('thaw');
  }

  stats(): CgroupStats {
    return { typeName: 'io.containerd.cgroups.v1.Metrics', metrics: {} };
  }

  memoryDir(): string | undefined {
    return undefined;
  }
}

class FakeDriver implements CgroupDriver {
  readonly requests: CgroupRequest[] = [];
  readonly managers: FakeCgroup[] = [];
  applyError?: Error;

  constructor(private readonly native: FakeNative) {}

  forContainer(req: CgroupRequest): CgroupManager {
    this.requests.push(req);
    const m = new FakeCgroup([`/cg/memory/${req.id}`, `/cg/pids/${req.id}`], this.native);
    m.applyError = this.applyError;
    this.managers.push(m);
    return m;
  }
}

describe('cgroups: the sandbox and its cgroup', () => {
  const NS = 'default';
  let tmp: string;
  let store: StateStore;
  let native: FakeNative;
  let driver: FakeDriver;
  let deps: SandboxDeps;

  beforeEach(() => {
    tmp = makeTempDir('burrow-sandbox-cg-');
    store = new StateStore(path.join(tmp, 'state'));
    native = new FakeNative();
    driver = new FakeDriver(native);
    deps = { native, store, exits: new ExitRouter(native, silentLogger), logger: silentLogger, cgroups: driver };
  });

  afterEach(() => removeTempDir(tmp));

  function opts(mutate?: (s: OciSpec) => void, id = 'c1'): CreateOptions {
    const b = makeBundle(tmp, `bundle-${id}`, mutate);
    return { id, namespace: NS, bundle: b.bundle, rootfsMounts: [], stdio: { stdin: '', stdout: '', stderr: '', terminal: false } };
  }

  const persisted = (id = 'c1') => JSON.parse(fs.readFileSync(path.join(tmp, 'state', NS, id, 'state.json'), 'utf8')) as SandboxRecord;

  it('creates and applies the cgroup before the init exists, and adds the init right after spawn', async () => {
    const sb = await Sandbox.create(deps, opts((s) => {
      s.linux!.cgroupsPath = '/default/c1';
      s.linux!.resources = { ...s.linux!.resources, memory: { limit: 64 * MiB } };
    }));
    const m = driver.managers[0];
    assert.deepEqual(driver.requests, [{ id: 'c1', namespace: NS, cgroupsPath: '/default/c1', deviceFilter: native }]);
    assert.deepEqual(m.calls, ['create', 'apply', `add ${sb.pid}`]);
    assert.equal(m.spawnedAtApply, 0, 'limits are in place before the init is cloned');
    assert.equal(m.applied!.memory!.limit, 64 * MiB);
    assert.equal(native.last.releaseCalls, 0, 'the init was added while still waiting for Start');
    assert.deepEqual(persisted().cgroupPaths, ['/cg/memory/c1', '/cg/pids/c1']);
  });

  it('lists and signals the container through its cgroup', async () => {
    const sb = await Sandbox.create(deps, opts());
    await sb.start();
    const m = driver.managers[0];
    m.procs.push(77, 78);
    assert.deepEqual(sb.pids(), [sb.pid, 77, 78]);
    sb.signal(15, true);
    assert.deepEqual(m.kills, [[15, sb.pid]]);
    assert.deepEqual(native.signals.at(-1), { pid: sb.pid, signal: 15 });
    // SIGKILL of the init of a pid namespace kills everything in it: no cgroup walk needed.
    sb.signal(9, true);
    assert.deepEqual(m.kills, [[15, sb.pid]]);
  });

  it('an exec joins the container\'s cgroup before it runs', async () => {
    const sb = await Sandbox.create(deps, opts());
    await sb.start();
    sb.addExec('e1', { args: ['true'], cwd: '/', user: { uid: 0, gid: 0 } }, { stdin: '', stdout: '', stderr: '', terminal: false });
    const pid = await sb.startExec('e1');
    assert.ok(driver.managers[0].calls.includes(`add ${pid}`));
  });

  it('without a pid namespace of its own, what the init leaves is SIGKILLed when it exits', async () => {
    const sb = await Sandbox.create(deps, opts((s) => {
      s.linux!.namespaces = s.linux!.namespaces!.filter((n) => n.type !== 'pid');
    }));
    await sb.start();
    native.exit(sb.pid, 0);
    await sb.wait();
    assert.deepEqual(driver.managers[0].kills, [[9, undefined]]);
  });

  it('with a pid namespace of its own, the kernel does that: no cgroup kill', async () => {
    const sb = await Sandbox.create(deps, opts());
    await sb.start();
    native.exit(sb.pid, 0);
    await sb.wait();
    assert.deepEqual(driver.managers[0].kills, []);
  });

  it('destroy removes the cgroup after the init exited', async () => {
    const sb = await Sandbox.create(deps, opts());
    await sb.start();
    native.exit(sb.pid, 0);
    await sb.wait();
    await sb.destroy();
    assert.equal(driver.managers[0].calls.at(-1), 'destroy');
    assert.equal(fs.existsSync(path.join(tmp, 'state', NS, 'c1')), false);
  });

  it('a limit that cannot be honoured fails the create, removes the cgroup and spawns nothing', async () => {
    driver.applyError = new SandboxError('invalid-argument', 'linux.resources.memory.kernel: nope');
    await assert.rejects(Sandbox.create(deps, opts()), /linux\.resources\.memory\.kernel: nope/);
    assert.deepEqual(driver.managers[0].calls, ['create', 'apply', 'destroy']);
    assert.equal(native.spawned.length, 0);
    assert.equal(fs.existsSync(path.join(tmp, 'state', NS, 'c1')), false);
  });

  it('a failed spawn or setup removes the cgroup too', async () => {
    native.spawnError = new Error('clone3: boom');
    await assert.rejects(Sandbox.create(deps, opts()), /clone3: boom/);
    assert.deepEqual(driver.managers[0].calls, ['create', 'apply', 'destroy']);

    native.autoReady = false;
    const creating = Sandbox.create(deps, opts(undefined, 'c2'));
    await waitUntil(() => native.spawned.length === 1, 'spawn');
    native.last.rejectReady(new Error('mount /proc: EPERM'));
    await assert.rejects(creating, /mount \/proc: EPERM/);
    await settle();
    assert.deepEqual(driver.managers[1].calls, ['create', 'apply', `add ${native.last.pid}`, 'destroy']);
  });

  it('the delete helper removes recorded cgroup directories', async () => {
    const dirs = [path.join(tmp, 'cg', 'memory', 'c9'), path.join(tmp, 'cg', 'pids', 'c9')];
    for (const d of dirs) fs.mkdirSync(d, { recursive: true });
    const b = makeBundle(tmp, 'bundle-c9');
    assert.ok(store.claim(NS, 'c9'));
    store.save({
      id: 'c9', namespace: NS, bundle: b.bundle, rootfs: b.rootfs, rootfsMounted: false, pid: 0, privatePidNamespace: false,
      status: 'stopped', createdAt: new Date().toISOString(), stdio: { stdin: '', stdout: '', stderr: '', terminal: false }, cgroupPaths: dirs,
    });
    await forceCleanup(native, store, NS, 'c9', b.bundle);
    for (const d of dirs) assert.equal(fs.existsSync(d), false, d);
    assert.equal(fs.existsSync(path.dirname(dirs[0])), true);
  });
});
