// containerd's CRI driven the way kubelet drives it, against a private
// CRI-enabled containerd, once per RuntimeClass handler: `runc` (containerd's
// own shim: proves the harness) and `burrow`. Pods get an address on the
// instance's private CNI bridge; nothing is pulled (the pause image is built
// from native/pause, busybox from the host's static busybox).
import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { CriClient, CriError } from './cri/client';
import { criNode, podCase } from './cri/node';
import { containerLogPath, Pod, readLog, runContainer, runPod, waitContainerExited } from './cri/pod';
import {
  bridgeExists,
  BUSYBOX_REF,
  buildDir,
  cgroupHierarchies,
  cniCacheFiles,
  criLeakEntries,
  diffSnapshots,
  CRI_HANDLERS,
  CRI_NAMESPACE,
  ensureHostTools,
  importImage,
  importPauseImage,
  matrixVersions,
  podCgroupDirs,
  PrivateContainerd,
  shimSocketOf,
  snapshotHost,
} from './harness';

for (const version of matrixVersions()) describe(`CRI basics: kubelet-like pods on a private containerd ${version}, handlers runc and burrow`, function () {
  this.timeout(300_000);
  const node = criNode({ name: `cri-basic-${version.replace('.', '')}`, version });

  it('answers Version and Status, and lists the pause and busybox images', async function () {
    const v = await node.client.version();
    assert.equal(v.runtime_name, 'containerd');
    assert.equal(v.runtime_api_version, 'v1');
    const st = await node.client.status();
    const conds = Object.fromEntries((st.status?.conditions ?? []).map((x) => [x.type, x.status]));
    // 1.7+ add a condition that our config uses no deprecated setting (e.g. 2.x's moved keys).
    const expected: Record<string, boolean> = { RuntimeReady: true, NetworkReady: true };
    if (version !== '1.6') expected.ContainerdHasNoDeprecationWarnings = true;
    assert.deepEqual(conds, expected);
    const tags = (await node.client.listImages()).flatMap((i) => i.repo_tags);
    assert.ok(tags.includes(node.c.cri?.sandboxImage ?? ''), `no pause image in ${tags.join(', ')}`);
    assert.ok(tags.includes(BUSYBOX_REF), `no busybox in ${tags.join(', ')}`);
    const missing = await node.client.imageStatus('docker.io/burrow/absent:1');
    assert.equal(missing.image, null);
  });

  for (const handler of CRI_HANDLERS) {
    describe(`handler ${handler}`, function () {
      /** Run `body` in a fresh pod `<name>-<handler>`, torn down and leak-checked afterwards. */
      const inPod = (name: string, body: (pod: Pod) => Promise<void>): Promise<void> =>
        podCase(node, handler, async (k) => body(await k.pod(name)));

      /** A bundle's config.json, kept under .e2e/captured/ for shim authors. */
      const capture = (id: string, file: string): void => {
        const spec = JSON.parse(fs.readFileSync(path.join(node.c.bundleDir(id, CRI_NAMESPACE), 'config.json'), 'utf8'));
        fs.writeFileSync(path.join(buildDir('captured'), file), `${JSON.stringify(spec, null, 2)}\n`);
      };

      it('RunPodSandbox: the pod gets an address in the instance subnet; Stop and Remove leave nothing', async function () {
        let podId = '';
        const baseline = await snapshotHost(node.c);
        await inPod('net', async (p) => {
          podId = p.id;
          const res = await node.client.podSandboxStatus(p.id, true);
          const st = res.status;
          assert.ok(st, 'no PodSandboxStatus');
          assert.equal(st.state, 'SANDBOX_READY');
          assert.equal(st.runtime_handler, handler);
          const prefix = (node.c.cri?.subnet ?? '').replace(/0\/24$/, '');
          assert.ok(st.network?.ip.startsWith(prefix), `pod ip "${st.network?.ip}" not in ${node.c.cri?.subnet}`);
          const listed = await node.client.listPodSandbox({ id: p.id });
          assert.deepEqual(listed.map((x) => [x.id, x.state]), [[p.id, 'SANDBOX_READY']]);
          capture(p.id, `cri-pause-config-${handler}.json`);

          // The project's pause image: /pause as the image's user 65535, pid 1 of the pod.
          const pid = (JSON.parse(res.info.info ?? '{}') as { pid?: number }).pid;
          assert.ok(pid, `no pid in verbose PodSandboxStatus: ${JSON.stringify(res.info).slice(0, 300)}`);
          const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
          assert.match(status, /^Name:\tpause$/m);
          assert.match(status, /^Uid:\t65535\t/m);
          assert.match(status, /^NSpid:\t\d+\t1$/m);

          // What the leak check watches while a pod lives (so it would see leftovers).
          const during = diffSnapshots(baseline, await snapshotHost(node.c)).map((l) => l.split(':')[0]);
          const want = ['netns', 'cni', 'mount', 'bundle', 'process', ...(handler === 'runc' ? ['cgroup'] : [])];
          for (const cat of want) assert.ok(during.includes(cat), `no ${cat} entry while pod ${p.id} runs: ${during}`);
        });
        assert.deepEqual(await node.client.listPodSandbox({ id: podId }), []);
      });

      it('runs busybox echo: the CRI log file holds the line, exit code 0', async function () {
        await inPod('echo', async (p) => {
          const id = await runContainer(node.client, p, {
            name: 'echo', image: BUSYBOX_REF, command: ['echo', 'hello-from-cri'],
          });
          const st = await waitContainerExited(node.client, id);
          assert.equal(st.exit_code, 0, JSON.stringify(st));
          assert.equal(st.reason, 'Completed');
          assert.equal(st.log_path, containerLogPath(p, 'echo'));
          assert.deepEqual(readLog(st.log_path), ['hello-from-cri']);
        });
      });

      it('reports exit code 3 of sh -c "exit 3"', async function () {
        await inPod('exit', async (p) => {
          const id = await runContainer(node.client, p, { name: 'exit3', image: BUSYBOX_REF, command: ['sh', '-c', 'exit 3'] });
          const st = await waitContainerExited(node.client, id);
          assert.equal(st.exit_code, 3, JSON.stringify(st));
          assert.equal(st.reason, 'Error');
        });
      });

      it('ExecSync returns stdout, stderr and the exit code', async function () {
        await inPod('exec', async (p) => {
          const id = await runContainer(node.client, p, { name: 'sleeper', image: BUSYBOX_REF, command: ['sleep', '3600'] });
          assert.equal((await node.client.containerStatus(id)).status?.state, 'CONTAINER_RUNNING');
          capture(id, `cri-container-config-${handler}.json`);
          const r = await node.client.execSync(id, ['sh', '-c', 'echo out; echo err >&2; exit 2'], 30);
          assert.deepEqual(
            { stdout: r.stdout.toString(), stderr: r.stderr.toString(), exit_code: r.exit_code },
            { stdout: 'out\n', stderr: 'err\n', exit_code: 2 },
          );
          await assert.rejects(node.client.execSync('no-such-container', ['true']), (e: unknown) => {
            assert.ok(e instanceof CriError);
            assert.equal(e.codeName, 'NOT_FOUND');
            return true;
          });
        });
      });
    });
  }
});

for (const version of matrixVersions()) describe(`CRI harness on containerd ${version}: stop() after a crash removes what the pods left on the host`, function () {
  this.timeout(300_000);

  it('netns mounts, veths, bridge, IPAM reservations, libcni cache, pod cgroups, processes', async function () {
    ensureHostTools(version);
    const c = await PrivateContainerd.start({ name: `cri-crash-${version.replace('.', '')}`, version, cri: true });
    const client = new CriClient(c.address);
    let netns: string[] = [];
    let sockets: string[] = [];
    const pods: Pod[] = [];
    let failure: unknown;
    try {
      await importPauseImage(c);
      await importImage(c, BUSYBOX_REF, CRI_NAMESPACE);
      await client.waitReady();
      for (const handler of CRI_HANDLERS) {
        pods.push(await runPod(client, {
          name: `crash-${handler}`, handler, logRoot: c.cri?.podLogDir, cgroupRoot: c.cri?.cgroupRoot,
        }));
      }
      // A running app container as well, in the runc pod.
      await runContainer(client, pods[CRI_HANDLERS.indexOf('runc')], {
        name: 'sleeper', image: BUSYBOX_REF, command: ['sleep', '600'],
      });
      const bundles = c.listBundles();
      netns = (await criLeakEntries(c.cri, bundles.map((b) => b.dir), bundles.map((b) => b.id))).netns;
      assert.equal(netns.length, CRI_HANDLERS.length, `netns of the pods: ${netns}`);
      // One shim per pod, for both handlers; found through `address` (1.x) or `bootstrap.json` (2.x).
      sockets = [...new Set(bundles.map((b) => shimSocketOf(b.dir)).filter((s): s is string => s !== undefined))];
      assert.equal(sockets.length, CRI_HANDLERS.length, `shim sockets of the pods: ${sockets}`);
      for (const s of sockets) assert.ok(fs.existsSync(s), `${s} missing while its shim runs`);
    } catch (e) {
      failure = e;
    }
    client.close();
    // containerd dies without tearing anything down; start() of the same name cleans up, then stop().
    if (c.pid) process.kill(c.pid, 'SIGKILL');
    const again = await PrivateContainerd.start({ name: `cri-crash-${version.replace('.', '')}`, version, cri: true });
    await again.stop();
    if (failure) throw failure;
    const h = again.cri;
    assert.ok(h);
    for (const ns of netns) assert.ok(!fs.existsSync(ns), `${ns} still there`);
    for (const s of sockets) assert.ok(!fs.existsSync(s), `shim socket ${s} still there`);
    assert.ok(!(await bridgeExists(h)), `bridge ${h.bridge} still there`);
    assert.deepEqual(cniCacheFiles(h, pods.map((p) => p.id)), []);
    assert.deepEqual(podCgroupDirs(h, cgroupHierarchies()), []);
    assert.deepEqual([...again.instanceProcesses().values()], []);
  });
});
