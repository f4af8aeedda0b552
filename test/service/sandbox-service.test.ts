import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { silentLogger } from '../../shim/log/logger';
import { encodeMessage, lookupService, unpackAny } from '../../shim/protocol/proto-registry';
import type { UnaryHandler } from '../../shim/protocol/rpc-service';
import { Code } from '../../shim/protocol/status';
import * as L from '../../shim/sandbox/linux';
import type { CgroupDriver, CgroupManager, CgroupRequest, CgroupStats } from '../../shim/sandbox/cgroups/manager';
import { podCgroupsPath, podSpec, POD_DIR } from '../../shim/sandbox/pod-sandbox';
import { SANDBOX_SERVICE, SandboxService } from '../../shim/service/sandbox-service';
import { FakeNative } from '../fakes/fake-native';
import { makeTempDir, removeTempDir, settle } from '../fakes/fixtures';
import { callMethod, fakeSandboxDeps, rejectsCode } from '../fakes/service-calls';

const NS = 'k8s.io';
const SIGTERM = 15;
const SIGKILL = 9;

function podConfigAny(config: object): { type_url: string; value: Uint8Array } {
  return { type_url: 'runtime.v1.PodSandboxConfig', value: encodeMessage('runtime.v1.PodSandboxConfig', config) };
}

/** The pod cgroup as the sandbox layer sees it: recorded requests, fixed metrics. */
class PodCgroups implements CgroupDriver {
  readonly requests: CgroupRequest[] = [];
  readonly calls: string[] = [];
  forContainer(req: CgroupRequest): CgroupManager {
    this.requests.push(req);
    const calls = this.calls;
    return {
      version: 1,
      paths: [],
      create: () => void calls.push('create'),
      apply: () => void calls.push('apply'),
      addProcess: () => undefined,
      pids: () => [],
      kill: () => 0,
      destroy: async () => void calls.push('destroy'),
      update: () => undefined,
      freeze: async () => undefined,
      thaw: async () => undefined,
      stats: (): CgroupStats => ({ typeName: 'io.containerd.cgroups.v1.Metrics', metrics: { pids: { current: 1, limit: 0 } } }),
      memoryDir: () => undefined,
    } as unknown as CgroupManager;
  }
}

describe('service: SandboxService (pod sandboxes with Burrow\'s pause process)', () => {
  let tmp: string;
  let bundle: string;
  let netns: string;
  let pauseBinary: string;
  let native: FakeNative;
  let service: SandboxService;
  let h: Record<string, UnaryHandler>;
  let shutdowns: number;

  beforeEach(() => {
    tmp = makeTempDir('burrow-sandbox-svc-');
    bundle = path.join(tmp, 'bundle');
    fs.mkdirSync(path.join(bundle, 'rootfs'), { recursive: true });
    netns = path.join(tmp, 'netns-cni-1');
    fs.writeFileSync(netns, '');
    pauseBinary = path.join(tmp, 'pause-bin');
    fs.writeFileSync(pauseBinary, '\x7fELF fake pause');
    native = new FakeNative({ fatalSignals: [SIGKILL] });
    shutdowns = 0;
    service = new SandboxService({
      namespace: NS,
      sandboxDeps: fakeSandboxDeps(native, path.join(tmp, 'state')),
      logger: silentLogger,
      onShutdown: () => shutdowns++,
      pauseBinary,
    });
    h = service.handlers();
  });

  afterEach(() => removeTempDir(tmp));

  const call = (method: string, req: Record<string, unknown>): Promise<any> => callMethod(h, SANDBOX_SERVICE, NS, method, req);

  const podConfig = {
    metadata: { name: 'web', uid: 'u-1', namespace: 'default', attempt: 0 },
    hostname: 'web-pod',
    linux: {
      cgroup_parent: '/kubepods/besteffort/podu-1',
      security_context: { namespace_options: { network: 0, pid: 1, ipc: 0 } },
      sysctls: { 'net.ipv4.ip_unprivileged_port_start': '0' },
    },
  };

  async function createAndStart(id = 'pod1'): Promise<number> {
    await call('CreateSandbox', { sandbox_id: id, bundle_path: bundle, netns_path: netns, options: podConfigAny(podConfig), rootfs: [] });
    const started = await call('StartSandbox', { sandbox_id: id });
    return started.pid as number;
  }

  it('serves every method of the Sandbox service', () => {
    const methods = lookupService(SANDBOX_SERVICE).methodsArray.map((m) => m.name).sort();
    assert.deepEqual(Object.keys(h).sort(), methods);
  });

  it('CreateSandbox + StartSandbox: the pause process in the pod netns and new ipc/uts/pid/mount namespaces, as 65535, read-only root', async () => {
    const pid = await createAndStart();
    const plan = native.last.plan;
    assert.equal(pid, native.last.pid);
    assert.deepEqual(plan.args, ['/pause']);
    assert.equal(plan.uid, 65535);
    assert.equal(plan.gid, 65535);
    assert.equal(plan.noNewPrivileges, true);
    assert.equal(plan.readonlyRoot, true);
    assert.equal(plan.rootfs, path.join(bundle, POD_DIR, 'rootfs'));
    assert.equal(plan.hostname, 'web-pod');
    for (const flag of [L.CLONE_NEWNS, L.CLONE_NEWPID, L.CLONE_NEWIPC, L.CLONE_NEWUTS]) {
      assert.ok((plan.cloneFlags & flag) !== 0, `clone flag ${flag.toString(16)} missing`);
    }
    assert.equal(plan.cloneFlags & L.CLONE_NEWNET, 0, 'the pod netns is joined, not made');
    assert.deepEqual(plan.joinNamespaces.map((j) => j.path), [netns]);
    assert.equal(fs.readFileSync(path.join(bundle, POD_DIR, 'rootfs', 'pause'), 'utf8'), '\x7fELF fake pause');
    const spec = JSON.parse(fs.readFileSync(path.join(bundle, POD_DIR, 'config.json'), 'utf8'));
    assert.equal(spec.linux.cgroupsPath, '/kubepods/besteffort/podu-1/pod1');
    assert.deepEqual(spec.linux.sysctl, { 'net.ipv4.ip_unprivileged_port_start': '0' });
  });

  it('SandboxStatus, Platform, PingSandbox while the pod runs', async () => {
    const pid = await createAndStart();
    const st = await call('SandboxStatus', { sandbox_id: 'pod1', verbose: true });
    assert.equal(st.sandbox_id, 'pod1');
    assert.equal(st.pid, pid);
    assert.equal(st.state, 'SANDBOX_READY');
    assert.ok(st.created_at.seconds > 0);
    assert.equal(st.exited_at.seconds, -62135596800);
    assert.equal(st.info.pid, String(pid));
    assert.equal(st.info.netns, netns);
    const plat = await call('Platform', { sandbox_id: 'pod1' });
    assert.equal(plat.platform.os, 'linux');
    assert.ok(plat.platform.architecture.length > 0);
    assert.deepEqual(await call('PingSandbox', { sandbox_id: 'pod1' }), {});
  });

  it('WaitSandbox blocks until the pause process exits', async () => {
    const pid = await createAndStart();
    const answers: any[] = [];
    const waiting = call('WaitSandbox', { sandbox_id: 'pod1' }).then((r) => answers.push(r));
    await settle();
    assert.equal(answers.length, 0, 'WaitSandbox answered while the pod runs');
    native.exit(pid, 0);
    await waiting;
    assert.equal(answers[0].exit_status, 0);
    assert.ok(answers[0].exited_at.seconds > 0);
    const st = await call('SandboxStatus', { sandbox_id: 'pod1' });
    assert.equal(st.state, 'SANDBOX_NOTREADY');
    assert.ok(st.exited_at.seconds > 0);
    await rejectsCode(call('PingSandbox', { sandbox_id: 'pod1' }), Code.Unavailable, /exited/);
  });

  it('StopSandbox with a timeout: SIGTERM, then SIGKILL when the pause does not go', async () => {
    const pid = await createAndStart();
    await call('StopSandbox', { sandbox_id: 'pod1', timeout_secs: 1 });
    assert.deepEqual(native.signals.filter((s) => s.pid === pid).map((s) => s.signal), [SIGTERM, SIGKILL]);
    const w = await call('WaitSandbox', { sandbox_id: 'pod1' });
    assert.equal(w.exit_status, 137);
    // Stopped again: nothing more is signalled.
    await call('StopSandbox', { sandbox_id: 'pod1', timeout_secs: 1 });
    assert.equal(native.signals.length, 2);
  });

  it('StopSandbox: SIGTERM is enough for a pause that exits on it', async () => {
    native.fatalSignals.add(SIGTERM);
    const pid = await createAndStart();
    await call('StopSandbox', { sandbox_id: 'pod1', timeout_secs: 30 });
    assert.deepEqual(native.signals.map((s) => [s.pid, s.signal]), [[pid, SIGTERM]]);
    assert.equal((await call('WaitSandbox', { sandbox_id: 'pod1' })).exit_status, 128 + SIGTERM);
  });

  it('ShutdownSandbox kills what is left, forgets the sandbox and lets the shim go', async () => {
    const pid = await createAndStart();
    await call('ShutdownSandbox', { sandbox_id: 'pod1' });
    assert.deepEqual(native.signals, [{ pid, signal: SIGKILL }]);
    await settle();
    assert.equal(shutdowns, 1);
    assert.equal(service.sandboxCount, 0);
    await rejectsCode(call('SandboxStatus', { sandbox_id: 'pod1' }), Code.NotFound, /sandbox pod1/);
    assert.deepEqual(fs.readdirSync(path.join(tmp, 'state')).flatMap((ns) => fs.readdirSync(path.join(tmp, 'state', ns))), []);
  });

  it('ShutdownSandbox of a created, never started sandbox', async () => {
    await call('CreateSandbox', { sandbox_id: 'pod2', bundle_path: bundle, netns_path: netns });
    await call('ShutdownSandbox', { sandbox_id: 'pod2' });
    assert.equal(native.last.abandoned, true);
    assert.equal(service.sandboxCount, 0);
  });

  it('host networking: no network and no uts namespace of its own', async () => {
    const hostNet = { ...podConfig, linux: { ...podConfig.linux, security_context: { namespace_options: { network: 2, pid: 2, ipc: 2 } }, sysctls: {} } };
    await call('CreateSandbox', { sandbox_id: 'hostnet', bundle_path: bundle, netns_path: '', options: podConfigAny(hostNet) });
    const plan = native.last.plan;
    for (const flag of [L.CLONE_NEWNET, L.CLONE_NEWUTS, L.CLONE_NEWPID, L.CLONE_NEWIPC]) {
      assert.equal(plan.cloneFlags & flag, 0, `clone flag ${flag.toString(16)} set`);
    }
    assert.deepEqual(plan.joinNamespaces, []);
    assert.equal(plan.hostname, null);
  });

  it('refuses bad requests with the right codes, and keeps nothing of them', async () => {
    await rejectsCode(call('CreateSandbox', { sandbox_id: 'bad..id', bundle_path: bundle }), Code.InvalidArgument, /bad\.\.id/);
    await rejectsCode(
      call('CreateSandbox', { sandbox_id: 'p', bundle_path: bundle, options: { type_url: 'containerd.runc.v1.Options', value: new Uint8Array() } }),
      Code.InvalidArgument,
      /not a runtime\.v1\.PodSandboxConfig/,
    );
    await rejectsCode(
      call('CreateSandbox', { sandbox_id: 'p', bundle_path: bundle, rootfs: [{ type: 'overlay', source: 'overlay', target: '', options: [] }] }),
      Code.InvalidArgument,
      /rootfs mounts are not supported/,
    );
    await rejectsCode(call('CreateSandbox', { sandbox_id: 'p', bundle_path: bundle, netns_path: path.join(tmp, 'absent') }), Code.InvalidArgument, /does not exist/);
    const userns = { ...podConfig, linux: { ...podConfig.linux, security_context: { namespace_options: { network: 0, pid: 0, ipc: 0, userns_options: { mode: 0, uids: [{ host_id: 100000, container_id: 0, length: 65536 }] } } } } };
    await rejectsCode(
      call('CreateSandbox', { sandbox_id: 'p', bundle_path: bundle, netns_path: netns, options: podConfigAny(userns) }),
      Code.InvalidArgument,
      /user namespace for the pod/,
    );
    await rejectsCode(call('CreateSandbox', { sandbox_id: 'p', bundle_path: 'relative' }), Code.InvalidArgument, /absolute/);
    fs.rmSync(pauseBinary);
    await rejectsCode(call('CreateSandbox', { sandbox_id: 'p', bundle_path: bundle, netns_path: netns }), Code.FailedPrecondition, /pause binary .* is missing/);
    assert.equal(service.sandboxCount, 0);
    assert.ok(!fs.existsSync(path.join(bundle, POD_DIR)), 'pod dir left after failed creates');
    assert.equal(native.spawned.length, 0);
    for (const m of ['StartSandbox', 'StopSandbox', 'WaitSandbox', 'SandboxStatus', 'PingSandbox', 'ShutdownSandbox', 'SandboxMetrics', 'Platform']) {
      await rejectsCode(call(m, { sandbox_id: 'nope' }), Code.NotFound, /sandbox nope: not found/);
    }
  });

  it('refuses a second CreateSandbox and a second StartSandbox of the same id', async () => {
    await createAndStart();
    await rejectsCode(call('CreateSandbox', { sandbox_id: 'pod1', bundle_path: bundle, netns_path: netns }), Code.AlreadyExists, /already exists/);
    await rejectsCode(call('StartSandbox', { sandbox_id: 'pod1' }), Code.FailedPrecondition, /ready, it cannot be started/);
  });

  it('SandboxMetrics: the pod cgroup\'s metrics, made at Create as <cgroup_parent>/<id> and removed at Shutdown', async () => {
    const cgroups = new PodCgroups();
    service = new SandboxService({
      namespace: NS,
      sandboxDeps: fakeSandboxDeps(native, path.join(tmp, 'state2'), { cgroups }),
      logger: silentLogger,
      onShutdown: () => shutdowns++,
      pauseBinary,
    });
    h = service.handlers();
    await createAndStart('cg');
    assert.deepEqual(cgroups.requests.map((r) => r.cgroupsPath), ['/kubepods/besteffort/podu-1/cg']);
    const m = await call('SandboxMetrics', { sandbox_id: 'cg' });
    assert.equal(m.metrics.id, 'cg');
    assert.ok(m.metrics.timestamp.seconds > 0);
    assert.equal(m.metrics.data.type_url, 'io.containerd.cgroups.v1.Metrics');
    assert.equal(unpackAny<any>(m.metrics.data).pids.current, 1);
    await call('ShutdownSandbox', { sandbox_id: 'cg' });
    assert.ok(cgroups.calls.includes('create') && cgroups.calls.includes('destroy'), cgroups.calls.join(','));
  });

  it('SandboxMetrics without a pod cgroup is NotFound', async () => {
    await call('CreateSandbox', { sandbox_id: 'nocg', bundle_path: bundle, netns_path: netns });
    await rejectsCode(call('SandboxMetrics', { sandbox_id: 'nocg' }), Code.NotFound, /cgroup does not exist/);
  });

  it('names the pod cgroup as containerd names the pause container\'s', () => {
    assert.equal(podCgroupsPath('', 'x'), '');
    assert.equal(podCgroupsPath('/kubepods/burstable/pod1', 'abc'), '/kubepods/burstable/pod1/abc');
    assert.equal(podCgroupsPath('kubepods-burstable-pod1.slice', 'abc'), 'kubepods-burstable-pod1.slice:cri-containerd:abc');
    assert.throws(() => podSpec('x', { netnsPath: 'rel', hostname: '', cgroupParent: '', hostPid: false, hostIpc: false, sysctls: {} }), /must be absolute/);
  });
});
