import { strict as assert } from 'assert';
import * as L from '../../shim/sandbox/linux';
import { BIND_REMOUNT_FLAGS, parseMountOptions, propagationFlags } from '../../shim/sandbox/mount-options';
import { compactLowerdirs, mountRootfs, unmountAll } from '../../shim/sandbox/rootfs';
import { NativeError } from '../../shim/sandbox/native-api';
import { FakeNative } from '../fakes/fake-native';

describe('sandbox: parseMountOptions', () => {
  it('returns nothing for no options', () => {
    assert.deepEqual(parseMountOptions(), { flags: 0, data: '', propagation: [] });
    assert.deepEqual(parseMountOptions([]), { flags: 0, data: '', propagation: [] });
  });

  it('maps the flag words of containerd overlay and bind mounts', () => {
    assert.deepEqual(parseMountOptions(['rbind', 'ro']), { flags: L.MS_BIND | L.MS_REC | L.MS_RDONLY, data: '', propagation: [] });
    assert.equal(parseMountOptions(['bind']).flags, L.MS_BIND);
    assert.equal(
      parseMountOptions(['nosuid', 'nodev', 'noexec', 'noatime', 'nodiratime', 'relatime', 'strictatime', 'sync', 'dirsync', 'mand', 'remount']).flags,
      L.MS_NOSUID | L.MS_NODEV | L.MS_NOEXEC | L.MS_NOATIME | L.MS_NODIRATIME | L.MS_RELATIME | L.MS_STRICTATIME |
        L.MS_SYNCHRONOUS | L.MS_DIRSYNC | L.MS_MANDLOCK | L.MS_REMOUNT,
    );
  });

  it('lets a later word clear an earlier one', () => {
    assert.equal(parseMountOptions(['ro', 'rw']).flags, 0);
    assert.equal(parseMountOptions(['rw', 'ro']).flags, L.MS_RDONLY);
    assert.equal(parseMountOptions(['nosuid', 'suid', 'nodev', 'dev', 'noexec', 'exec']).flags, 0);
    assert.equal(parseMountOptions(['noatime', 'atime', 'sync', 'async', 'relatime', 'norelatime']).flags, 0);
    assert.equal(parseMountOptions(['strictatime', 'nostrictatime', 'nodiratime', 'diratime', 'mand', 'nomand']).flags, 0);
    // Clearing never touches other bits.
    assert.equal(parseMountOptions(['ro', 'nosuid', 'suid']).flags, L.MS_RDONLY);
  });

  it('ignores defaults', () => {
    assert.deepEqual(parseMountOptions(['defaults']), { flags: 0, data: '', propagation: [] });
  });

  it('collects propagation words in order, separately from the flags', () => {
    const p = parseMountOptions(['rbind', 'rprivate', 'shared', 'rslave', 'unbindable', 'runbindable', 'private', 'slave', 'rshared']);
    assert.equal(p.flags, L.MS_BIND | L.MS_REC);
    assert.deepEqual(p.propagation, [
      L.MS_PRIVATE | L.MS_REC,
      L.MS_SHARED,
      L.MS_SLAVE | L.MS_REC,
      L.MS_UNBINDABLE,
      L.MS_UNBINDABLE | L.MS_REC,
      L.MS_PRIVATE,
      L.MS_SLAVE,
      L.MS_SHARED | L.MS_REC,
    ]);
  });

  it('joins everything else into the data string, in order', () => {
    const p = parseMountOptions([
      'index=off',
      'lowerdir=/l1:/l2',
      'ro',
      'upperdir=/u',
      'workdir=/w',
      'userxattr',
    ]);
    assert.equal(p.flags, L.MS_RDONLY);
    assert.equal(p.data, 'index=off,lowerdir=/l1:/l2,upperdir=/u,workdir=/w,userxattr');
  });

  it('propagationFlags knows the OCI rootfsPropagation values only', () => {
    assert.equal(propagationFlags('rslave'), L.MS_SLAVE | L.MS_REC);
    assert.equal(propagationFlags('private'), L.MS_PRIVATE);
    assert.equal(propagationFlags('ro'), undefined);
    assert.equal(propagationFlags('bogus'), undefined);
  });

  it('BIND_REMOUNT_FLAGS holds the per-mount flags and none of bind/rec/remount/propagation', () => {
    for (const f of [L.MS_RDONLY, L.MS_NOSUID, L.MS_NODEV, L.MS_NOEXEC, L.MS_NOATIME, L.MS_RELATIME]) {
      assert.ok(BIND_REMOUNT_FLAGS & f, `flag ${f}`);
    }
    for (const f of [L.MS_BIND, L.MS_REC, L.MS_REMOUNT, L.MS_PRIVATE, L.MS_SLAVE, L.MS_SHARED]) {
      assert.equal(BIND_REMOUNT_FLAGS & f, 0, `flag ${f}`);
    }
  });
});

describe('sandbox: compactLowerdirs', () => {
  const SNAP = '/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots';

  function lowerdirs(n: number): string[] {
    return Array.from({ length: n }, (_, i) => `${SNAP}/${1000 + i}/fs`);
  }

  it('makes a long lowerdir list relative to the common parent, to be mounted from there', () => {
    const dirs = lowerdirs(60);
    const data = `index=off,lowerdir=${dirs.join(':')},upperdir=${SNAP}/2000/fs,workdir=${SNAP}/2000/work`;
    assert.ok(data.length > 4096 - 512, 'the fixture needs to exceed one page of mount data');
    const out = compactLowerdirs(data);
    assert.equal(out.chdir, SNAP);
    const expectedLower = dirs.map((_, i) => `${1000 + i}/fs`).join(':');
    // Only lowerdir changes: upperdir and workdir stay absolute.
    assert.equal(out.data, `index=off,lowerdir=${expectedLower},upperdir=${SNAP}/2000/fs,workdir=${SNAP}/2000/work`);
    assert.ok(out.data.length < 4096 - 512);
  });

  it('finds the common parent of dirs at different depths', () => {
    const out = compactLowerdirs('lowerdir=/a/b/c/fs:/a/b/d/e/fs:/a/b/fs');
    assert.equal(out.chdir, '/a/b');
    assert.equal(out.data, 'lowerdir=c/fs:d/e/fs:fs');
  });

  it('does not mistake a name prefix for a parent directory', () => {
    const out = compactLowerdirs('lowerdir=/data/snap1/fs:/data/snap10/fs');
    assert.equal(out.chdir, '/data');
    assert.equal(out.data, 'lowerdir=snap1/fs:snap10/fs');
  });

  it('leaves the data alone when the only common parent is /', () => {
    const data = 'lowerdir=/a/fs:/b/fs,upperdir=/u';
    assert.deepEqual(compactLowerdirs(data), { data });
  });

  it('leaves the data alone without a lowerdir option', () => {
    const data = 'upperdir=/u,workdir=/w';
    assert.deepEqual(compactLowerdirs(data), { data });
  });
});

describe('sandbox: mountRootfs and unmountAll', () => {
  it('mounts a long overlay with relative lowerdirs and a chdir', () => {
    const native = new FakeNative();
    const dirs = Array.from({ length: 200 }, (_, i) => `/var/lib/snaps/${i}/fs`);
    mountRootfs(native, [{ type: 'overlay', source: 'overlay', options: [`lowerdir=${dirs.join(':')}`, 'upperdir=/var/lib/snaps/u/fs', 'workdir=/var/lib/snaps/u/work'] }], '/bundle/rootfs');
    assert.equal(native.mountCalls.length, 1);
    const m = native.mountCalls[0];
    assert.equal(m.chdir, '/var/lib/snaps');
    assert.equal(m.fstype, 'overlay');
    assert.equal(m.target, '/bundle/rootfs');
    assert.ok(m.data.startsWith('lowerdir=0/fs:1/fs:'), m.data);
  });

  it('keeps a short overlay absolute, without chdir', () => {
    const native = new FakeNative();
    mountRootfs(native, [{ type: 'overlay', source: 'overlay', options: ['lowerdir=/l/1:/l/2', 'upperdir=/u', 'workdir=/w'] }], '/r');
    assert.equal(native.mountCalls[0].data, 'lowerdir=/l/1:/l/2,upperdir=/u,workdir=/w');
    assert.equal(native.mountCalls[0].chdir, undefined);
  });

  it('remounts a read-only bind mount and applies propagation', () => {
    const native = new FakeNative();
    mountRootfs(native, [{ type: 'bind', source: '/src', options: ['rbind', 'ro', 'rprivate'] }], '/r');
    assert.deepEqual(
      native.mountCalls.map((m) => [m.source, m.target, m.fstype, m.flags]),
      [
        ['/src', '/r', '', L.MS_BIND | L.MS_REC | L.MS_RDONLY],
        ['', '/r', '', L.MS_BIND | L.MS_REMOUNT | L.MS_RDONLY],
        ['', '/r', '', L.MS_PRIVATE | L.MS_REC],
      ],
    );
  });

  it('puts mounts with a target below the rootfs, never outside it', () => {
    const native = new FakeNative();
    mountRootfs(
      native,
      [
        { type: 'overlay', source: 'overlay', options: ['lowerdir=/l'] },
        { type: 'tmpfs', source: 'tmpfs', target: 'run', options: [] },
        { type: 'tmpfs', source: 'tmpfs', target: '../../etc', options: [] },
      ],
      '/b/rootfs',
    );
    assert.deepEqual(native.mountTable, ['/b/rootfs', '/b/rootfs/run', '/b/rootfs/etc']);
  });

  it('unmounts what it mounted when a later mount fails, and rethrows', () => {
    const native = new FakeNative();
    native.mountFailure = (_m, i) => (i === 1 ? new NativeError('mount tmpfs: No such device', 'ENODEV', 19) : undefined);
    assert.throws(
      () =>
        mountRootfs(
          native,
          [
            { type: 'overlay', source: 'overlay', options: ['lowerdir=/l'] },
            { type: 'tmpfs', source: 'tmpfs', target: 'run', options: [] },
          ],
          '/b/rootfs',
        ),
      /No such device/,
    );
    assert.deepEqual(native.mountTable, []);
    assert.deepEqual(native.unmountCalls, [{ target: '/b/rootfs', flags: L.MNT_DETACH }]);
  });

  it('unmountAll removes every stacked mount and stops at EINVAL', async () => {
    const native = new FakeNative();
    native.mount({ source: 'a', target: '/t', fstype: 'tmpfs', flags: 0, data: '' });
    native.mount({ source: 'b', target: '/t', fstype: 'tmpfs', flags: 0, data: '' });
    native.mount({ source: 'c', target: '/other', fstype: 'tmpfs', flags: 0, data: '' });
    await unmountAll(native, '/t');
    assert.deepEqual(native.mountTable, ['/other']);
    assert.equal(native.unmountCalls.length, 3);
    // Nothing mounted: a no-op.
    await unmountAll(native, '/t');
    assert.deepEqual(native.mountTable, ['/other']);
  });

  it('unmountAll rethrows other errors', async () => {
    const native = new FakeNative();
    native.unmount = () => {
      throw new NativeError('unmount "/t": Operation not permitted', 'EPERM', 1);
    };
    await assert.rejects(unmountAll(native, '/t'), /Operation not permitted/);
  });
});
