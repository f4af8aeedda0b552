import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { SandboxError } from '../../shim/sandbox/errors';
import { buildInitPlan, LaunchPlan } from '../../shim/sandbox/launch-plan';
import * as L from '../../shim/sandbox/linux';
import type { OciSpec } from '../../shim/sandbox/oci-spec';
import { defaultSpec, makeTempDir, removeTempDir } from '../fakes/fixtures';

const STDIO: [number, number, number] = [10, 11, 12];

/** Asserts that `fn` throws an invalid-argument SandboxError whose message contains every `parts`. */
function assertInvalid(fn: () => unknown, ...parts: string[]): SandboxError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof SandboxError, `expected a SandboxError, got ${String(caught)}`);
  assert.equal(caught.kind, 'invalid-argument', caught.message);
  for (const p of parts) assert.ok(caught.message.includes(p), `${JSON.stringify(caught.message)} should name ${p}`);
  return caught;
}

describe('sandbox: buildInitPlan', () => {
  let tmp: string;
  let bundle: string;

  before(() => {
    tmp = makeTempDir('burrow-plan-');
    bundle = path.join(tmp, 'bundle');
    fs.mkdirSync(path.join(bundle, 'rootfs'), { recursive: true });
    fs.mkdirSync(path.join(tmp, 'hostdir'));
    fs.writeFileSync(path.join(tmp, 'hostfile'), 'x');
    fs.mkdirSync(path.join(bundle, 'shared'));
  });

  after(() => removeTempDir(tmp));

  function plan(mutate?: (s: OciSpec) => void): LaunchPlan {
    const spec = defaultSpec();
    mutate?.(spec);
    return buildInitPlan({ id: 'c1', bundle, spec, stdio: STDIO });
  }

  describe('containerd default spec', () => {
    it('maps process, root and paths as given', () => {
      const p = plan();
      const spec = defaultSpec();
      assert.equal(p.id, 'c1');
      assert.equal(p.rootfs, path.join(bundle, 'rootfs'), 'relative root.path is resolved against the bundle');
      assert.equal(p.readonlyRoot, false);
      assert.deepEqual(p.args, ['sleep', '300']);
      // No /etc/passwd in this rootfs: HOME defaults to "/", as in runc.
      assert.deepEqual(p.env, ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'HOME=/']);
      assert.equal(p.cwd, '/');
      assert.equal(p.uid, 0);
      assert.equal(p.gid, 0);
      assert.deepEqual(p.additionalGids, [0]);
      assert.equal(p.umask, 0o022);
      assert.equal(p.noNewPrivileges, true);
      assert.equal(p.oomScoreAdj, null);
      assert.equal(p.hostname, null);
      assert.deepEqual(p.stdio, STDIO);
      assert.equal(p.waitForStart, true);
      assert.deepEqual(p.maskedPaths, spec.linux!.maskedPaths);
      assert.deepEqual(p.readonlyPaths, spec.linux!.readonlyPaths);
    });

    it('creates every listed namespace and joins none', () => {
      const p = plan();
      assert.equal(p.cloneFlags, L.CLONE_NEWPID | L.CLONE_NEWIPC | L.CLONE_NEWUTS | L.CLONE_NEWNS | L.CLONE_NEWNET);
      assert.deepEqual(p.joinNamespaces, []);
    });

    it('maps the mount options of each default mount', () => {
      const byTarget = new Map(plan().mounts.map((m) => [m.target, m]));
      assert.deepEqual([...byTarget.keys()], ['/proc', '/dev', '/dev/pts', '/dev/shm', '/dev/mqueue', '/sys', '/run']);
      assert.deepEqual(byTarget.get('/proc'), {
        source: 'proc',
        target: '/proc',
        fstype: 'proc',
        flags: L.MS_NOSUID | L.MS_NOEXEC | L.MS_NODEV,
        data: '',
        remountFlags: 0,
        propagation: [],
        fileTarget: false,
      });
      const dev = byTarget.get('/dev')!;
      assert.equal(dev.fstype, 'tmpfs');
      assert.equal(dev.flags, L.MS_NOSUID | L.MS_STRICTATIME);
      assert.equal(dev.data, 'mode=755,size=65536k');
      const pts = byTarget.get('/dev/pts')!;
      assert.equal(pts.flags, L.MS_NOSUID | L.MS_NOEXEC);
      assert.equal(pts.data, 'newinstance,ptmxmode=0666,mode=0620,gid=5');
      const shm = byTarget.get('/dev/shm')!;
      assert.equal(shm.source, 'shm');
      assert.equal(shm.data, 'mode=1777,size=65536k');
      const sys = byTarget.get('/sys')!;
      assert.equal(sys.flags, L.MS_NOSUID | L.MS_NOEXEC | L.MS_NODEV | L.MS_RDONLY);
      assert.equal(sys.remountFlags, 0, 'only bind mounts need a remount for ro');
    });

    it('maps capability names to their bit numbers', () => {
      const caps = plan().capabilities!;
      // CHOWN DAC_OVERRIDE FSETID FOWNER MKNOD NET_RAW SETGID SETUID SETFCAP SETPCAP NET_BIND_SERVICE
      // SYS_CHROOT KILL AUDIT_WRITE, as numbered in linux/capability.h.
      const expected = [0, 1, 4, 3, 27, 13, 6, 7, 31, 8, 10, 18, 5, 29];
      assert.deepEqual(caps.bounding, expected);
      assert.deepEqual(caps.effective, expected);
      assert.deepEqual(caps.permitted, expected);
      assert.deepEqual(caps.inheritable, []);
      assert.deepEqual(caps.ambient, []);
    });

    it('maps rlimits to resource numbers', () => {
      assert.deepEqual(plan().rlimits, [{ resource: 7, soft: 1024, hard: 1024 }]);
    });

    it('defaults rootfs propagation to rslave', () => {
      assert.equal(plan().rootPropagation, L.MS_SLAVE | L.MS_REC);
    });
  });

  describe('namespaces', () => {
    it('joins namespaces given by path instead of creating them', () => {
      const p = plan((s) => {
        s.linux!.namespaces = [
          { type: 'mount' },
          { type: 'network', path: '/proc/100/ns/net' },
          { type: 'pid', path: '/proc/100/ns/pid' },
          { type: 'uts' },
        ];
      });
      assert.equal(p.cloneFlags, L.CLONE_NEWNS | L.CLONE_NEWUTS);
      assert.deepEqual(p.joinNamespaces, [
        { flag: L.CLONE_NEWNET, path: '/proc/100/ns/net' },
        { flag: L.CLONE_NEWPID, path: '/proc/100/ns/pid' },
      ]);
    });

    it('joins in setns order, whatever the spec order', () => {
      const p = plan((s) => {
        s.linux!.namespaces = [
          { type: 'cgroup', path: '/proc/7/ns/cgroup' },
          { type: 'pid', path: '/proc/7/ns/pid' },
          { type: 'network', path: '/proc/7/ns/net' },
          { type: 'mount' },
          { type: 'uts', path: '/proc/7/ns/uts' },
          { type: 'ipc', path: '/proc/7/ns/ipc' },
        ];
      });
      assert.deepEqual(
        p.joinNamespaces.map((j) => j.path),
        ['/proc/7/ns/ipc', '/proc/7/ns/uts', '/proc/7/ns/net', '/proc/7/ns/pid', '/proc/7/ns/cgroup'],
      );
      assert.deepEqual(
        p.joinNamespaces.map((j) => j.flag),
        [L.CLONE_NEWIPC, L.CLONE_NEWUTS, L.CLONE_NEWNET, L.CLONE_NEWPID, L.CLONE_NEWCGROUP],
      );
      assert.equal(p.cloneFlags, L.CLONE_NEWNS);
    });

    it('joins a user namespace by path first and a mount namespace last', () => {
      const p = plan((s) => {
        s.linux!.namespaces = s.linux!.namespaces!.map((n) => (n.type === 'mount' ? { type: 'mount', path: '/run/x/mnt' } : n));
        s.linux!.namespaces!.push({ type: 'user', path: '/run/x/user' });
      });
      assert.deepEqual(p.joinNamespaces.map((j) => j.path), ['/run/x/user', '/run/x/mnt']);
      assert.deepEqual(p.joinNamespaces.map((j) => j.flag), [L.CLONE_NEWUSER, L.CLONE_NEWNS]);
      assert.equal(p.cloneFlags & (L.CLONE_NEWUSER | L.CLONE_NEWNS), 0);
      assert.deepEqual(p.uidMappings, []);
    });

    it('accepts id mappings for a joined user namespace (as runc 1.1.5 wants them) and writes none', () => {
      const p = plan((s) => {
        s.linux!.namespaces!.push({ type: 'user', path: '/run/x/user' });
        s.linux!.uidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
        s.linux!.gidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
      });
      assert.deepEqual([p.uidMappings, p.gidMappings], [[], []]);
    });

    it('takes HOME from the container\'s /etc/passwd when the spec sets none', () => {
      const p = plan((s) => {
        fs.mkdirSync(path.join(bundle, s.root!.path, 'etc'), { recursive: true });
        fs.writeFileSync(path.join(bundle, s.root!.path, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n');
        s.process!.user = { uid: 1000, gid: 1000 };
      });
      assert.ok(p.env.includes('HOME=/home/app'), p.env.join(' '));
      const kept = plan((s) => s.process!.env!.push('HOME=/custom'));
      assert.deepEqual(kept.env.filter((e) => e.startsWith('HOME=')), ['HOME=/custom']);
    });

    it('creates a cgroup namespace when listed without path', () => {
      const p = plan((s) => s.linux!.namespaces!.push({ type: 'cgroup' }));
      assert.ok(p.cloneFlags & L.CLONE_NEWCGROUP);
    });

    it('roots a new cgroup namespace at the container\'s cgroup, with a user namespace too', () => {
      const dirs = ['/sys/fs/cgroup/memory/default/c1', '/sys/fs/cgroup/unified/default/c1'];
      const build = (mutate: (s: OciSpec) => void) => {
        const spec = defaultSpec();
        mutate(spec);
        return buildInitPlan({ id: 'c1', bundle, spec, stdio: STDIO, cgroupDirs: dirs });
      };
      const userns = build((s) => {
        s.linux!.namespaces!.push({ type: 'cgroup' }, { type: 'user' });
        s.linux!.uidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
        s.linux!.gidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
      });
      assert.ok(userns.cloneFlags & L.CLONE_NEWCGROUP && userns.cloneFlags & L.CLONE_NEWUSER);
      assert.deepEqual(userns.cgroupNamespaceDirs, dirs);
      const joined = build((s) => s.linux!.namespaces!.push({ type: 'cgroup', path: '/proc/1/ns/cgroup' }));
      assert.deepEqual(joined.cgroupNamespaceDirs, [], 'a joined cgroup namespace is left as it is');
      assert.deepEqual(build(() => undefined).cgroupNamespaceDirs, []);
    });

    it('rejects creating a user namespace without uid and gid mappings', () => {
      assertInvalid(() => plan((s) => s.linux!.namespaces!.push({ type: 'user' })), 'linux.uidMappings', 'user namespace');
      assertInvalid(
        () =>
          plan((s) => {
            s.linux!.namespaces!.push({ type: 'user' });
            s.linux!.uidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
          }),
        'linux.uidMappings/gidMappings',
      );
    });

    it('rejects mappings without a new user namespace', () => {
      assertInvalid(
        () =>
          plan((s) => {
            s.linux!.uidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
            s.linux!.gidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
          }),
        'linux.uidMappings/gidMappings',
        'user namespace',
      );
    });

    it('rejects a spec without a mount namespace', () => {
      assertInvalid(
        () => plan((s) => (s.linux!.namespaces = s.linux!.namespaces!.filter((n) => n.type !== 'mount'))),
        'linux.namespaces',
        'mount namespace',
      );
      assertInvalid(() => plan((s) => delete s.linux!.namespaces), 'linux.namespaces', 'mount namespace');
    });

    it('rejects a duplicate namespace type, naming its index', () => {
      assertInvalid(
        () => plan((s) => s.linux!.namespaces!.push({ type: 'network', path: '/proc/1/ns/net' })),
        'linux.namespaces[5]',
        'duplicate network',
      );
    });

    it('rejects an unknown namespace type, naming its index', () => {
      assertInvalid(() => plan((s) => s.linux!.namespaces!.splice(1, 0, { type: 'bogus' })), 'linux.namespaces[1]', '"bogus"');
    });

    it('rejects a relative namespace path', () => {
      assertInvalid(
        () => plan((s) => (s.linux!.namespaces![4] = { type: 'network', path: 'proc/1/ns/net' })),
        'linux.namespaces[4].path',
      );
    });
  });

  describe('mounts', () => {
    function withMount(m: NonNullable<OciSpec['mounts']>[number]): LaunchPlan['mounts'][number] {
      const p = plan((s) => s.mounts!.push(m));
      return p.mounts[p.mounts.length - 1];
    }

    it('binds read-only with a remount carrying MS_RDONLY', () => {
      const src = path.join(tmp, 'hostdir');
      const m = withMount({ destination: '/data', type: 'bind', source: src, options: ['bind', 'ro'] });
      assert.deepEqual(m, {
        source: src,
        target: '/data',
        fstype: 'bind',
        flags: L.MS_BIND,
        data: '',
        remountFlags: L.MS_RDONLY,
        propagation: [],
        fileTarget: false,
      });
    });

    it('rbind sets MS_REC; bind does not', () => {
      const src = path.join(tmp, 'hostdir');
      assert.equal(withMount({ destination: '/a', type: 'bind', source: src, options: ['rbind'] }).flags, L.MS_BIND | L.MS_REC);
      assert.equal(withMount({ destination: '/a', type: 'bind', source: src, options: ['bind'] }).flags, L.MS_BIND);
    });

    it('treats a mount whose options say rbind as a bind mount whatever its type', () => {
      const src = path.join(tmp, 'hostdir');
      const m = withMount({ destination: '/a', type: 'none', source: src, options: ['rbind', 'nosuid', 'nodev', 'rw'] });
      assert.equal(m.fstype, 'bind');
      assert.equal(m.flags, L.MS_BIND | L.MS_REC);
      assert.equal(m.remountFlags, L.MS_NOSUID | L.MS_NODEV);
    });

    it('keeps propagation options in order', () => {
      const src = path.join(tmp, 'hostdir');
      const m = withMount({ destination: '/a', type: 'bind', source: src, options: ['rbind', 'rprivate', 'slave'] });
      assert.deepEqual(m.propagation, [L.MS_PRIVATE | L.MS_REC, L.MS_SLAVE]);
    });

    it('passes unknown options as fs data', () => {
      const m = withMount({ destination: '/t', type: 'tmpfs', source: 'tmpfs', options: ['nodev', 'size=1m', 'mode=700', 'uid=5'] });
      assert.equal(m.flags, L.MS_NODEV);
      assert.equal(m.data, 'size=1m,mode=700,uid=5');
    });

    it('marks a file bind source so the target is created as a file', () => {
      const src = path.join(tmp, 'hostfile');
      const m = withMount({ destination: '/etc/hosts', type: 'bind', source: src, options: ['rbind', 'ro'] });
      assert.equal(m.fileTarget, true);
      assert.equal(m.remountFlags, L.MS_RDONLY);
    });

    it('resolves a relative bind source against the bundle', () => {
      const m = withMount({ destination: '/shared', type: 'bind', source: 'shared', options: ['rbind'] });
      assert.equal(m.source, path.join(bundle, 'shared'));
      assert.equal(m.fileTarget, false);
    });

    it('rejects a bind mount whose source does not exist, naming the mount and the path', () => {
      const missing = path.join(tmp, 'no-such-dir');
      assertInvalid(
        () => plan((s) => s.mounts!.push({ destination: '/x', type: 'bind', source: missing, options: ['rbind'] })),
        'mounts[7]',
        missing,
      );
    });

    it('rejects a bind mount without source', () => {
      assertInvalid(() => plan((s) => s.mounts!.push({ destination: '/x', type: 'bind', options: ['rbind'] })), 'mounts[7]', 'no source');
    });

    it('rejects a relative destination and a mount without type', () => {
      assertInvalid(() => plan((s) => s.mounts!.push({ destination: 'x', type: 'tmpfs', source: 'tmpfs' })), 'mounts[7].destination');
      assertInvalid(() => plan((s) => s.mounts!.push({ destination: '/x', source: 'tmpfs' })), 'mounts[7]', 'no type');
    });

    it('normalizes destinations', () => {
      const m = withMount({ destination: '/a//b/../c', type: 'tmpfs', source: 'tmpfs' });
      assert.equal(m.target, '/a/c');
    });
  });

  describe('devices and /dev symlinks', () => {
    const DEFAULTS = [
      ['/dev/null', 1, 3],
      ['/dev/zero', 1, 5],
      ['/dev/full', 1, 7],
      ['/dev/random', 1, 8],
      ['/dev/urandom', 1, 9],
      ['/dev/tty', 5, 0],
    ];

    it('creates the default devices', () => {
      const devices = plan().devices;
      assert.deepEqual(
        devices.map((d) => [d.path, d.major, d.minor]),
        DEFAULTS,
      );
      for (const d of devices) {
        assert.equal(d.mode, L.S_IFCHR | 0o666, d.path);
        assert.equal(d.uid, 0);
        assert.equal(d.gid, 0);
      }
    });

    it('adds the spec devices to the defaults', () => {
      const devices = plan((s) => {
        s.linux!.devices = [
          { type: 'c', path: '/dev/fuse', major: 10, minor: 229, fileMode: 0o600, uid: 0, gid: 0 },
          { type: 'b', path: '/dev/loop0', major: 7, minor: 0 },
        ];
      }).devices;
      assert.equal(devices.length, 8);
      assert.deepEqual(devices[6], { path: '/dev/fuse', mode: L.S_IFCHR | 0o600, major: 10, minor: 229, uid: 0, gid: 0 });
      assert.deepEqual(devices[7], { path: '/dev/loop0', mode: L.S_IFBLK | 0o666, major: 7, minor: 0, uid: 0, gid: 0 });
    });

    it('rejects a device of unknown type', () => {
      assertInvalid(() => plan((s) => (s.linux!.devices = [{ type: 'x', path: '/dev/x', major: 1, minor: 1 }])), 'linux.devices[0]');
    });

    it('creates no devices and no symlinks when /dev is bind-mounted', () => {
      for (const destination of ['/dev', '/dev/']) {
        const p = plan((s) => s.mounts!.push({ destination, type: 'bind', source: '/dev', options: ['rbind'] }));
        assert.deepEqual(p.devices, [], destination);
        assert.deepEqual(p.symlinks, [], destination);
      }
    });

    it('links /dev/ptmx to pts/ptmx when devpts is mounted', () => {
      const links = plan().symlinks;
      assert.deepEqual(links.find((l) => l.path === '/dev/ptmx'), { target: 'pts/ptmx', path: '/dev/ptmx' });
      for (const [p, t] of [
        ['/dev/fd', '/proc/self/fd'],
        ['/dev/stdin', '/proc/self/fd/0'],
        ['/dev/stdout', '/proc/self/fd/1'],
        ['/dev/stderr', '/proc/self/fd/2'],
      ]) {
        assert.deepEqual(links.find((l) => l.path === p), { target: t, path: p });
      }
    });

    it('does not link /dev/ptmx without a devpts mount', () => {
      const links = plan((s) => (s.mounts = s.mounts!.filter((m) => m.type !== 'devpts'))).symlinks;
      assert.equal(links.find((l) => l.path === '/dev/ptmx'), undefined);
      assert.ok(links.some((l) => l.path === '/dev/fd'));
    });
  });

  describe('process', () => {
    it('rejects an unknown capability, naming the set', () => {
      assertInvalid(
        () => plan((s) => s.process!.capabilities!.effective.push('CAP_NOT_A_THING')),
        'process.capabilities.effective',
        'CAP_NOT_A_THING',
      );
    });

    it('has no capability plan when the spec has none', () => {
      assert.equal(plan((s) => delete s.process!.capabilities).capabilities, null);
    });

    it('maps several rlimits and rejects an unknown one', () => {
      const p = plan((s) => {
        s.process!.rlimits = [
          { type: 'RLIMIT_CORE', soft: 0, hard: 0 },
          { type: 'RLIMIT_NPROC', soft: 100, hard: 200 },
          { type: 'RLIMIT_MEMLOCK', soft: 65536, hard: 65536 },
        ];
      });
      assert.deepEqual(p.rlimits, [
        { resource: 4, soft: 0, hard: 0 },
        { resource: 6, soft: 100, hard: 200 },
        { resource: 8, soft: 65536, hard: 65536 },
      ]);
      assertInvalid(
        () => plan((s) => s.process!.rlimits!.push({ type: 'RLIMIT_BOGUS', soft: 1, hard: 1 })),
        'process.rlimits[1]',
        'RLIMIT_BOGUS',
      );
    });

    it('takes user, umask, oomScoreAdj and readonly root from the spec', () => {
      const p = plan((s) => {
        s.process!.user = { uid: 1000, gid: 1001, umask: 0o077, additionalGids: [5, 6] };
        s.process!.oomScoreAdj = -500;
        s.process!.noNewPrivileges = false;
        s.root = { path: '/abs/rootfs', readonly: true };
      });
      assert.equal(p.uid, 1000);
      assert.equal(p.gid, 1001);
      assert.equal(p.umask, 0o077);
      assert.deepEqual(p.additionalGids, [5, 6]);
      assert.equal(p.oomScoreAdj, -500);
      assert.equal(p.noNewPrivileges, false);
      assert.equal(p.rootfs, '/abs/rootfs');
      assert.equal(p.readonlyRoot, true);
    });
  });

  describe('hostname', () => {
    it('sets the hostname in a new uts namespace', () => {
      assert.equal(plan((s) => (s.hostname = 'box')).hostname, 'box');
    });

    it('rejects a hostname without a uts namespace', () => {
      assertInvalid(
        () =>
          plan((s) => {
            s.hostname = 'box';
            s.linux!.namespaces = s.linux!.namespaces!.filter((n) => n.type !== 'uts');
          }),
        'hostname',
        'uts',
      );
    });
  });

  describe('unsupported features', () => {
    it('plans seccomp, and refuses a bad profile by field', () => {
      const profile = { defaultAction: 'SCMP_ACT_ERRNO', syscalls: [{ names: ['read'], action: 'SCMP_ACT_ALLOW' }] };
      assert.equal(plan((s) => (s.linux!.seccomp = profile)).seccomp?.syscalls[0].name, 'read');
      assert.equal(plan().seccomp, null);
      assertInvalid(() => plan((s) => (s.linux!.seccomp = { defaultAction: 'SCMP_ACT_BOGUS' })), 'linux.seccomp.defaultAction');
    });

    it('rejects sysctls that would change the host, naming the key', () => {
      assertInvalid(() => plan((s) => (s.linux!.sysctl = { 'vm.swappiness': '10' })), 'linux.sysctl["vm.swappiness"]');
      assertInvalid(
        () =>
          plan((s) => {
            s.linux!.sysctl = { 'net.ipv4.ip_forward': '1' };
            s.linux!.namespaces = s.linux!.namespaces!.filter((n) => n.type !== 'network');
          }),
        'linux.sysctl["net.ipv4.ip_forward"]',
        'network namespace',
      );
      assertInvalid(() => plan((s) => (s.linux!.sysctl = { 'net/../../vm/x': '1' })), 'linux.sysctl', 'invalid key');
    });

    it('passes sysctls of the container\'s own namespaces as /proc/sys writes', () => {
      assert.deepEqual(plan().sysctl, []);
      assert.deepEqual(plan((s) => (s.linux!.sysctl = {})).sysctl, []);
      assert.deepEqual(plan((s) => (s.linux!.sysctl = { 'net.ipv4.ip_forward': '1', 'kernel.shmmax': '68719476736' })).sysctl, [
        { path: '/proc/sys/net/ipv4/ip_forward', value: '1' },
        { path: '/proc/sys/kernel/shmmax', value: '68719476736' },
      ]);
    });

    it('rejects an SELinux process label and mount label', () => {
      assertInvalid(() => plan((s) => (s.process!.selinuxLabel = 'system_u:system_r:container_t:s0')), 'process.selinuxLabel');
      assertInvalid(() => plan((s) => (s.linux!.mountLabel = 'system_u:object_r:container_file_t:s0')), 'linux.mountLabel');
    });

    it('gives a terminal process a pty of the requested size', () => {
      const p = plan((s) => {
        s.process!.terminal = true;
        s.process!.consoleSize = { height: 40, width: 120 };
      });
      assert.equal(p.terminal, true);
      assert.equal(p.consoleRows, 40);
      assert.equal(p.consoleCols, 120);
      assert.equal(plan().terminal, false);
    });

    it('rejects a field Burrow does not know, by name', () => {
      assertInvalid(() => plan((s) => ((s.linux as Record<string, unknown>).intelRdt = { closID: 'x' })), 'linux.intelRdt');
    });

    it('refuses a cgroup mount when the container has no cgroup of its own', () => {
      assertInvalid(
        () => plan((s) => s.mounts!.push({ destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup' })),
        'mounts[7]',
        'cgroup',
      );
    });

    it('turns a v1 cgroup mount into a tmpfs with the container\'s cgroup of each v1 hierarchy, as runc', () => {
      const spec = defaultSpec();
      spec.mounts!.push({ destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['ro', 'nosuid'] });
      const dirs = ['/sys/fs/cgroup/memory/default/c1', '/sys/fs/cgroup/cpu,cpuacct/default/c1', '/sys/fs/cgroup/systemd/default/c1', '/sys/fs/cgroup/unified/default/c1'];
      const p = buildInitPlan({ id: 'c1', bundle, spec, stdio: STDIO, cgroupDirs: dirs });
      const cg = p.mounts.filter((m) => m.target.startsWith('/sys/fs/cgroup'));
      assert.deepEqual(
        cg.map((m) => [m.target, m.fstype, m.source]),
        [
          ['/sys/fs/cgroup', 'tmpfs', 'tmpfs'],
          ['/sys/fs/cgroup/memory', 'bind', '/sys/fs/cgroup/memory/default/c1'],
          ['/sys/fs/cgroup/cpu,cpuacct', 'bind', '/sys/fs/cgroup/cpu,cpuacct/default/c1'],
          ['/sys/fs/cgroup/systemd', 'bind', '/sys/fs/cgroup/systemd/default/c1'],
        ],
        'the hybrid host\'s cgroup2 hierarchy is left out, as runc does',
      );
      assert.ok(cg[1].remountFlags & L.MS_RDONLY, 'hierarchies are bound read-only');
      assert.equal(cg[0].flags & L.MS_RDONLY, 0);
      assert.ok(!p.mounts.some((m) => m.target === '/sys/fs/cgroup' && m.flags & L.MS_REMOUNT), 'the tmpfs stays read-write, as runc leaves it');
      assert.deepEqual(
        p.symlinks.filter((l) => l.path.startsWith('/sys/fs/cgroup')),
        [
          { target: 'cpu,cpuacct', path: '/sys/fs/cgroup/cpu' },
          { target: 'cpu,cpuacct', path: '/sys/fs/cgroup/cpuacct' },
        ],
      );
    });

    it('mounts each v1 hierarchy itself in a new cgroup namespace, as runc', () => {
      const spec = defaultSpec();
      spec.mounts!.push({ destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['ro', 'nosuid', 'nodev'] });
      spec.linux!.namespaces!.push({ type: 'cgroup' });
      const dirs = ['/sys/fs/cgroup/cpu,cpuacct/default/c1', '/sys/fs/cgroup/systemd/default/c1', '/sys/fs/cgroup/unified/default/c1'];
      const p = buildInitPlan({ id: 'c1', bundle, spec, stdio: STDIO, cgroupDirs: dirs });
      const cg = p.mounts.filter((m) => m.target.startsWith('/sys/fs/cgroup/'));
      assert.deepEqual(
        cg.map((m) => [m.target, m.fstype, m.source, m.data, m.flags]),
        [
          ['/sys/fs/cgroup/cpu,cpuacct', 'cgroup', 'cgroup', 'cpu,cpuacct', L.MS_NOSUID | L.MS_NODEV | L.MS_NOEXEC | L.MS_RDONLY],
          ['/sys/fs/cgroup/systemd', 'cgroup', 'systemd', 'name=systemd', L.MS_NOSUID | L.MS_NODEV | L.MS_NOEXEC | L.MS_RDONLY],
        ],
      );
      assert.deepEqual(p.cgroupNamespaceDirs, dirs, 'the child is put in every hierarchy before it unshares');
    });
  });

  describe('rootfsPropagation', () => {
    const cases: Array<[string, number, number]> = [
      ['private', L.MS_PRIVATE, 0],
      ['rprivate', L.MS_PRIVATE | L.MS_REC, 0],
      ['slave', L.MS_SLAVE, 0],
      ['rslave', L.MS_SLAVE | L.MS_REC, 0],
      ['shared', L.MS_SHARED, L.MS_SHARED],
      ['rshared', L.MS_SHARED | L.MS_REC, L.MS_SHARED | L.MS_REC],
      ['unbindable', L.MS_UNBINDABLE, L.MS_UNBINDABLE],
      ['runbindable', L.MS_UNBINDABLE | L.MS_REC, L.MS_UNBINDABLE | L.MS_REC],
    ];
    for (const [value, flags, after] of cases) {
      it(`maps ${value} (before pivot_root, and ${after ? 'again after it' : 'not again after it'})`, () => {
        const p = plan((s) => (s.linux!.rootfsPropagation = value));
        assert.equal(p.rootPropagation, flags);
        assert.equal(p.rootPropagationAfterPivot, after);
      });
    }

    it('applies nothing after pivot_root without rootfsPropagation', () => {
      assert.equal(plan().rootPropagationAfterPivot, 0);
    });

    it('rejects an unknown value', () => {
      assertInvalid(() => plan((s) => (s.linux!.rootfsPropagation = 'sideways')), 'linux.rootfsPropagation', '"sideways"');
    });
  });
});
