// Stats without root: cgroup v1 and v2 metrics read from fixture trees shaped like cgroupfs
// (files as the kernel writes them), checked field by field against what containerd/cgroups
// reports for the same files, and through the protobuf encoding containerd decodes.

import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { lookupType, packAny } from '../../shim/protocol/proto-registry';
import { SandboxError } from '../../shim/sandbox/errors';
import type { CgroupDir, CgroupMount } from '../../shim/sandbox/cgroups/hierarchies';
import { hostHugePageSizes, hugePageSizeName, parseUint, u64 } from '../../shim/sandbox/cgroups/stat-files';
import { V1CgroupManager } from '../../shim/sandbox/cgroups/v1-manager';
import { parsePartitions, parseRdma, readV1Metrics, V1Metrics } from '../../shim/sandbox/cgroups/v1-stats';
import { V2CgroupManager } from '../../shim/sandbox/cgroups/v2-manager';
import { parseIoStat, parsePsi, readV2Metrics } from '../../shim/sandbox/cgroups/v2-stats';
import { makeTempDir, removeTempDir } from '../fakes/fixtures';

const UNLIMITED = '9223372036854771712';

/** Writes `files` (name → content) into `dir`, making it. */
function tree(dir: string, files: Record<string, string>): string {
  fs.mkdirSync(dir, { recursive: true });
  for (const [name, content] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), content);
  return dir;
}

/** The message as containerd decodes it: 64-bit values as exact decimal strings. */
function roundTrip(typeName: string, metrics: object): Record<string, any> {
  const any = packAny(typeName, metrics);
  assert.equal(any.type_url, typeName);
  const type = lookupType(typeName);
  return type.toObject(type.decode(any.value), { longs: String, defaults: false, arrays: true }) as Record<string, any>;
}

// memory.stat of a cgroup v1 memory cgroup as Linux 6.x writes it (more keys than MemoryStat has).
const V1_MEMORY_STAT = `cache 8192
rss 61440
rss_huge 0
shmem 0
mapped_file 4096
dirty 4096
writeback 0
workingset_refault_anon 0
workingset_refault_file 0
swap 0
swapcached 0
pgpgin 462
pgpgout 448
pgfault 764
pgmajfault 1
inactive_anon 28672
active_anon 4096
inactive_file 8192
active_file 0
unevictable 0
hierarchical_memory_limit 67108864
hierarchical_memsw_limit ${UNLIMITED}
total_cache 8192
total_rss 61440
total_rss_huge 0
total_shmem 0
total_mapped_file 4096
total_dirty 4096
total_writeback 0
total_workingset_refault_anon 0
total_workingset_refault_file 0
total_swap 0
total_swapcached 0
total_pgpgin 462
total_pgpgout 448
total_pgfault 764
total_pgmajfault 1
total_inactive_anon 28672
total_active_anon 4096
total_inactive_file 8192
total_active_file 0
total_unevictable 0
`;

describe('cgroup stats: values and files', () => {
  it('uint64s are numbers while exact, decimal strings above 2^53', () => {
    assert.equal(u64(42n), 42);
    assert.equal(u64(BigInt(Number.MAX_SAFE_INTEGER)), Number.MAX_SAFE_INTEGER);
    assert.equal(u64(9223372036854771712n), UNLIMITED);
    assert.equal(u64((1n << 64n) - 1n), '18446744073709551615');
  });

  it('parses like containerd: negative integers are 0, anything else is an error naming the file', () => {
    assert.equal(parseUint('123', '/f'), 123n);
    assert.equal(parseUint('-1', '/f'), 0n);
    assert.throws(() => parseUint('12a', '/cg/memory.stat'), /\/cg\/memory\.stat: "12a" is not an unsigned integer/);
    assert.throws(() => parseUint('18446744073709551616', '/f'), /out of the uint64 range/);
  });

  it('names huge page sizes as cgroup files do', () => {
    assert.equal(hugePageSizeName('hugepages-2048kB'), '2MB');
    assert.equal(hugePageSizeName('hugepages-1048576kB'), '1GB');
    assert.equal(hugePageSizeName('hugepages-64kB'), '64KB');
    assert.equal(hugePageSizeName('hugepages-32768kB'), '32MB');
    assert.throws(() => hugePageSizeName('nonsense'), /unexpected huge page size entry "nonsense"/);
  });

  it('reads the host\'s huge page sizes from sysfs, none without the directory', () => {
    const tmp = makeTempDir('burrow-hp-');
    try {
      tree(path.join(tmp, 'kernel', 'mm', 'hugepages', 'hugepages-2048kB'), {});
      tree(path.join(tmp, 'kernel', 'mm', 'hugepages', 'hugepages-1048576kB'), {});
      assert.deepEqual(hostHugePageSizes(tmp), ['1GB', '2MB']);
      assert.deepEqual(hostHugePageSizes(path.join(tmp, 'nowhere')), []);
    } finally {
      removeTempDir(tmp);
    }
  });

  it('maps /proc/partitions to device names, skipping the header', () => {
    const devices = parsePartitions('major minor  #blocks  name\n\n 254        0  268435456 vda\n   8       16   1000 sdb\n');
    assert.deepEqual([...devices], [['254:0', '/dev/vda'], ['8:16', '/dev/sdb']]);
  });

  it('parses rdma, io.stat and PSI lines', () => {
    assert.deepEqual(parseRdma('mlx4_0 hca_handle=2 hca_object=max\nbad line\n'), [
      { device: 'mlx4_0', hca_handles: 2, hca_objects: 0xffffffff },
    ]);
    assert.deepEqual(parseIoStat('254:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n'), [
      { major: 254, minor: 0, rbytes: 4096, wbytes: 8192, rios: 1, wios: 2 },
    ]);
    assert.deepEqual(parsePsi('some avg10=0.50 avg60=0.10 avg300=0.00 total=12345\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=7\n', '/p'), {
      some: { avg10: 0.5, avg60: 0.1, avg300: 0, total: 12345 },
      full: { avg10: 0, avg60: 0, avg300: 0, total: 7 },
    });
  });
});

describe('cgroup stats: cgroup v1 (io.containerd.cgroups.v1.Metrics)', () => {
  let tmp: string;
  let proc: string;
  const dirs: Record<string, string> = {};
  const dirOf = (c: string) => dirs[c];

  beforeEach(() => {
    tmp = makeTempDir('burrow-v1stats-');
    proc = tree(path.join(tmp, 'proc'), { partitions: 'major minor  #blocks  name\n\n 254        0  268435456 vda\n 254        1  1000 vda1\n' });
    for (const k of Object.keys(dirs)) delete dirs[k];
    dirs.cpu = tree(path.join(tmp, 'cpu', 'default', 'c1'), {
      'cpu.stat': 'nr_periods 10\nnr_throttled 2\nthrottled_time 5000\nnr_bursts 0\nburst_time 0\n',
    });
    dirs.cpuacct = tree(path.join(tmp, 'cpuacct', 'default', 'c1'), {
      'cpuacct.stat': 'user 153\nsystem 7\n',
      'cpuacct.usage': '1551814165\n',
      'cpuacct.usage_percpu': '1548940532 2873633 \n',
    });
    dirs.memory = tree(path.join(tmp, 'memory', 'default', 'c1'), {
      'memory.stat': V1_MEMORY_STAT,
      'memory.oom_control': 'oom_kill_disable 0\nunder_oom 0\noom_kill 3\n',
      'memory.usage_in_bytes': '516096\n',
      'memory.max_usage_in_bytes': '2514944\n',
      'memory.failcnt': '0\n',
      'memory.limit_in_bytes': '67108864\n',
      'memory.memsw.usage_in_bytes': '516096\n',
      'memory.memsw.max_usage_in_bytes': '2514944\n',
      'memory.memsw.failcnt': '0\n',
      'memory.memsw.limit_in_bytes': `${UNLIMITED}\n`,
      'memory.kmem.usage_in_bytes': '245760\n',
      'memory.kmem.max_usage_in_bytes': '606208\n',
      'memory.kmem.failcnt': '0\n',
      'memory.kmem.limit_in_bytes': `${UNLIMITED}\n`,
      // No memory.kmem.tcp.*: optional like memsw, its entry stays at zero.
    });
    dirs.pids = tree(path.join(tmp, 'pids', 'default', 'c1'), { 'pids.current': '3\n', 'pids.max': 'max\n' });
    dirs.blkio = tree(path.join(tmp, 'blkio', 'default', 'c1'), {
      'blkio.throttle.io_serviced': '254:0 Read 10\n254:0 Write 20\n254:0 Sync 25\n254:0 Async 5\n254:0 Discard 0\n254:0 Total 30\nTotal 30\n',
      'blkio.throttle.io_service_bytes': '254:0 Read 40960\n254:0 Write 81920\nTotal 122880\n',
    });
    dirs.hugetlb = tree(path.join(tmp, 'hugetlb', 'default', 'c1'), {
      'hugetlb.2MB.usage_in_bytes': '0\n', 'hugetlb.2MB.max_usage_in_bytes': '2097152\n', 'hugetlb.2MB.failcnt': '1\n',
      'hugetlb.1GB.usage_in_bytes': '0\n', 'hugetlb.1GB.max_usage_in_bytes': '0\n', 'hugetlb.1GB.failcnt': '0\n',
    });
  });

  afterEach(() => removeTempDir(tmp));

  const host = () => ({ procRoot: proc, hugePageSizes: ['1GB', '2MB'] });

  it('reads every controller: cpu, cpuacct, memory with its entries and OOM control, pids, blkio, hugetlb', () => {
    const m = readV1Metrics(dirOf, host());
    assert.deepEqual(m.cpu, {
      // cpuacct.stat counts USER_HZ ticks (100/s): 153 ticks are 1.53 s.
      usage: { total: 1551814165, kernel: 70000000, user: 1530000000, per_cpu: [1548940532, 2873633] },
      throttling: { periods: 10, throttled_periods: 2, throttled_time: 5000 },
    });
    assert.deepEqual(m.pids, { current: 3, limit: 0 }, 'no pids limit is 0 on v1');
    const mem = m.memory!;
    assert.equal(mem.cache, 8192);
    assert.equal(mem.rss, 61440);
    assert.equal(mem.pg_pg_in, 462);
    assert.equal(mem.pg_maj_fault, 1);
    assert.equal(mem.hierarchical_memory_limit, 67108864);
    assert.equal(mem.hierarchical_swap_limit, UNLIMITED);
    assert.equal(mem.total_rss, 61440);
    assert.equal(mem.total_inactive_file, 8192);
    assert.equal(mem.total_pg_fault, 764);
    assert.equal(Object.keys(mem).filter((k) => typeof mem[k] !== 'object').length, 32, 'all 32 memory.stat fields');
    assert.deepEqual(mem.usage, { limit: 67108864, usage: 516096, max: 2514944, failcnt: 0 });
    assert.deepEqual(mem.swap, { limit: UNLIMITED, usage: 516096, max: 2514944, failcnt: 0 });
    assert.deepEqual(mem.kernel, { limit: UNLIMITED, usage: 245760, max: 606208, failcnt: 0 });
    assert.deepEqual(mem.kernel_tcp, { limit: 0, usage: 0, max: 0, failcnt: 0 });
    assert.deepEqual(m.memory_oom_control, { oom_kill_disable: 0, under_oom: 0, oom_kill: 3 });
    // Without CFQ's files the throttling layer's counters (Total lines skipped), device named from /proc/partitions.
    assert.deepEqual(m.blkio!.io_serviced_recursive.map((e) => [e.op, e.device, e.major, e.minor, e.value]), [
      ['Read', '/dev/vda', 254, 0, 10], ['Write', '/dev/vda', 254, 0, 20], ['Sync', '/dev/vda', 254, 0, 25],
      ['Async', '/dev/vda', 254, 0, 5], ['Discard', '/dev/vda', 254, 0, 0], ['Total', '/dev/vda', 254, 0, 30],
    ]);
    assert.deepEqual(m.blkio!.io_service_bytes_recursive.map((e) => e.value), [40960, 81920]);
    assert.deepEqual(m.hugetlb, [
      { usage: 0, max: 0, failcnt: 0, pagesize: '1GB' },
      { usage: 0, max: 2097152, failcnt: 1, pagesize: '2MB' },
    ]);
    assert.equal(m.rdma, undefined, 'no rdma hierarchy');
  });

  it('encodes as containerd decodes it, the unlimited limits exactly', () => {
    const m = roundTrip('io.containerd.cgroups.v1.Metrics', readV1Metrics(dirOf, host()));
    assert.equal(m.memory.usage.limit, '67108864');
    assert.equal(m.memory.swap.limit, UNLIMITED);
    assert.equal(m.memory.hierarchical_swap_limit, UNLIMITED);
    assert.equal(m.memory.total_rss, '61440');
    assert.deepEqual(m.cpu.usage.per_cpu, ['1548940532', '2873633']);
    assert.equal(m.memory_oom_control.oom_kill, '3');
    assert.equal(m.blkio.io_serviced_recursive[0].device, '/dev/vda');
    assert.equal(m.hugetlb[1].pagesize, '2MB');
    // An empty message field is still sent (Go's non-nil pointer): ctr prints "kernel_tcp": {}.
    assert.deepEqual(m.memory.kernel_tcp, {});
  });

  it('prefers CFQ\'s recursive files when they have entries', () => {
    tree(dirs.blkio, {
      'blkio.io_serviced_recursive': '254:0 Read 1\n254:0 Write 2\nTotal 3\n',
      'blkio.io_service_bytes_recursive': '254:0 Read 512\nTotal 512\n',
      'blkio.sectors_recursive': '254:0 8\n',
      'blkio.io_queued_recursive': 'Total 0\n', 'blkio.io_service_time_recursive': 'Total 0\n',
      'blkio.io_wait_time_recursive': 'Total 0\n', 'blkio.io_merged_recursive': 'Total 0\n', 'blkio.time_recursive': '254:0 9\n',
    });
    const b = readV1Metrics(dirOf, host()).blkio!;
    assert.deepEqual(b.io_serviced_recursive.map((e) => e.value), [1, 2]);
    assert.deepEqual(b.sectors_recursive, [{ op: '', device: '/dev/vda', major: 254, minor: 0, value: 8 }]);
    assert.deepEqual(b.io_time_recursive.map((e) => e.value), [9]);
  });

  it('leaves out a controller whose directory or files are missing, keeping what it read', () => {
    fs.rmSync(dirs.hugetlb, { recursive: true });
    fs.rmSync(path.join(dirs.memory, 'memory.oom_control'));
    fs.rmSync(path.join(dirs.cpuacct, 'cpuacct.usage_percpu'));
    delete dirs.pids;
    const m: V1Metrics = readV1Metrics(dirOf, host());
    assert.equal(m.hugetlb, undefined);
    assert.equal(m.pids, undefined);
    assert.equal(m.memory!.total_rss, 61440, 'memory.stat was read');
    assert.equal(m.memory_oom_control, undefined);
    assert.deepEqual(m.memory!.usage, { limit: 0, usage: 0, max: 0, failcnt: 0 }, 'stopped at the missing file');
    // cpuacct sets its values only once all its files are read (containerd): cpu stays zero, throttling is there.
    assert.deepEqual(m.cpu.usage, { total: 0, kernel: 0, user: 0, per_cpu: [] });
    assert.equal(m.cpu.throttling.periods, 10);
  });

  it('fails on a malformed file, naming it', () => {
    fs.writeFileSync(path.join(dirs.memory, 'memory.stat'), 'cache 1\nnot a key value line\n');
    assert.throws(() => readV1Metrics(dirOf, host()), new RegExp(`${dirs.memory}/memory\\.stat: line "not a key value line" is not "key value"`));
  });

  it('the v1 manager reports its cgroup\'s metrics, and not-found once the cgroup is gone', () => {
    const mount = (c: string): CgroupMount => ({ mountPoint: path.join(tmp, c), root: '/', version: 1, controllers: [c] });
    const cgDirs: CgroupDir[] = ['cpu', 'cpuacct', 'memory', 'pids'].map((c) => ({ key: c, controllers: [c], mount: mount(c), dir: dirs[c] }));
    const m = new V1CgroupManager('c1', cgDirs, host);
    const stats = m.stats();
    assert.equal(stats.typeName, 'io.containerd.cgroups.v1.Metrics');
    assert.equal((stats.metrics as V1Metrics).pids!.current, 3);
    for (const d of cgDirs) fs.rmSync(d.dir, { recursive: true });
    assert.throws(() => m.stats(), (err: unknown) => {
      assert.ok(err instanceof SandboxError);
      assert.equal(err.kind, 'not-found');
      assert.match(err.message, new RegExp(`container c1: cgroup does not exist \\(${dirs.cpu}, `));
      return true;
    });
  });
});

describe('cgroup stats: cgroup v2 (io.containerd.cgroups.v2.Metrics)', () => {
  let tmp: string;
  let dir: string;

  beforeEach(() => {
    tmp = makeTempDir('burrow-v2stats-');
    dir = tree(path.join(tmp, 'default', 'c1'), {
      'cgroup.controllers': 'cpu io memory pids hugetlb\n',
      'cpu.stat': 'usage_usec 1530341\nuser_usec 1500000\nsystem_usec 30341\nnr_periods 4\nnr_throttled 1\nthrottled_usec 900\nnr_bursts 0\nburst_usec 0\n',
      'cpu.pressure': 'some avg10=1.25 avg60=0.50 avg300=0.10 total=4242\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=10\n',
      'memory.stat': 'anon 61440\nfile 8192\nkernel 53248\nkernel_stack 16384\nslab 20480\nsock 0\nshmem 0\nfile_mapped 4096\n' +
        'file_dirty 0\nfile_writeback 0\nanon_thp 0\ninactive_anon 28672\nactive_anon 32768\ninactive_file 8192\nactive_file 0\n' +
        'unevictable 0\nslab_reclaimable 8192\nslab_unreclaimable 12288\npgfault 764\npgmajfault 2\nworkingset_refault_anon 0\n' +
        'workingset_refault 0\nworkingset_activate 0\nworkingset_nodereclaim 0\npgrefill 0\npgscan 0\npgsteal 0\npgactivate 0\n' +
        'pgdeactivate 0\npglazyfree 0\npglazyfreed 0\nthp_fault_alloc 0\nthp_collapse_alloc 0\n',
      'memory.current': '262144\n',
      'memory.max': 'max\n',
      'memory.peak': '2514944\n',
      'memory.swap.current': '0\n',
      'memory.swap.max': 'max\n',
      'memory.events': 'low 0\nhigh 0\nmax 7\noom 2\noom_kill 1\noom_group_kill 0\n',
      'pids.current': '2\n',
      'pids.max': '128\n',
      'io.stat': '254:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n',
      'hugetlb.2MB.current': '0\n',
      'hugetlb.2MB.max': 'max\n',
      'hugetlb.2MB.events': 'max 3\n',
      'hugetlb.2MB.rsvd.max': 'max\n',
    });
  });

  afterEach(() => removeTempDir(tmp));

  it('reads cpu.stat, memory.stat and the single-value files, "max" as 2^64-1', () => {
    const m = readV2Metrics(dir, ['1GB', '2MB']);
    assert.deepEqual(m.pids, { current: 2, limit: 128 });
    assert.equal(m.cpu.usage_usec, 1530341);
    assert.equal(m.cpu.system_usec, 30341);
    assert.equal(m.cpu.throttled_usec, 900);
    assert.deepEqual(m.cpu.psi, { some: { avg10: 1.25, avg60: 0.5, avg300: 0.1, total: 4242 }, full: { avg10: 0, avg60: 0, avg300: 0, total: 10 } });
    assert.equal(m.memory.anon, 61440);
    assert.equal(m.memory.inactive_file, 8192);
    assert.equal(m.memory.pgmajfault, 2);
    assert.equal(m.memory.usage, 262144);
    assert.equal(m.memory.usage_limit, '18446744073709551615');
    assert.equal(m.memory.max_usage, 2514944);
    assert.equal(m.memory.swap_limit, '18446744073709551615');
    assert.equal(m.memory.swap_max_usage, 0, 'no memory.swap.peak: 0');
    assert.equal(m.memory.psi, undefined, 'no memory.pressure');
    assert.deepEqual(m.memory_events, { low: 0, high: 0, max: 7, oom: 2, oom_kill: 1, oom_group_kill: 0 });
    assert.deepEqual(m.io.usage, [{ major: 254, minor: 0, rbytes: 4096, wbytes: 8192, rios: 1, wios: 2 }]);
    assert.deepEqual(m.hugetlb, [{ current: 0, max: '18446744073709551615', pagesize: '2MB', failcnt: 3 }], 'only sizes with files');
    assert.deepEqual(m.rdma, { current: [], limit: [] });
  });

  it('encodes as containerd decodes it', () => {
    const m = roundTrip('io.containerd.cgroups.v2.Metrics', readV2Metrics(dir, ['2MB']));
    assert.equal(m.memory.usage_limit, '18446744073709551615');
    assert.equal(m.memory.usage, '262144');
    assert.equal(m.cpu.usage_usec, '1530341');
    assert.equal(m.cpu.psi.some.avg10, 1.25);
    assert.equal(m.memory_events.oom_kill, '1');
    assert.equal(m.pids.limit, '128');
  });

  it('a cgroup without the memory controller has no memory_events and zero memory values; pids.max "max" is 2^64-1', () => {
    for (const f of fs.readdirSync(dir).filter((f) => f.startsWith('memory.'))) fs.rmSync(path.join(dir, f));
    fs.writeFileSync(path.join(dir, 'pids.max'), 'max\n');
    const m = readV2Metrics(dir, []);
    assert.equal(m.memory_events, undefined);
    assert.equal(m.memory.usage, 0);
    assert.equal(m.memory.anon, 0);
    assert.equal(m.pids.limit, '18446744073709551615');
    assert.equal(m.cpu.usage_usec, 1530341);
  });

  it('fails on a malformed cpu.stat, naming it', () => {
    fs.writeFileSync(path.join(dir, 'cpu.stat'), 'usage_usec\n');
    assert.throws(() => readV2Metrics(dir, []), new RegExp(`${dir}/cpu\\.stat: line "usage_usec" is not "key value"`));
  });

  it('the v2 manager reports its cgroup\'s metrics, and not-found once the cgroup is gone', () => {
    const m = new V2CgroupManager('c1', { mountPoint: tmp, root: '/', version: 2, controllers: [] }, dir, () => ['2MB']);
    const stats = m.stats();
    assert.equal(stats.typeName, 'io.containerd.cgroups.v2.Metrics');
    assert.equal((stats.metrics as { memory: { usage: number } }).memory.usage, 262144);
    assert.equal(m.memoryDir(), dir);
    fs.rmSync(dir, { recursive: true });
    assert.equal(m.memoryDir(), undefined);
    assert.throws(() => m.stats(), new RegExp(`container c1: cgroup does not exist \\(${dir}\\)`));
  });
});
