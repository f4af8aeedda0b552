// containerd 2.x's Sandbox API with Burrow: a CRI runtime handler `burrow` configured with
// `sandboxer = "shim"` makes containerd call Burrow's containerd.runtime.sandbox.v1.Sandbox
// service for the pod (CreateSandbox/StartSandbox/SandboxStatus/Platform/StopSandbox/
// WaitSandbox/ShutdownSandbox), and Burrow runs the pod's namespaces with its own pause
// process — no pause image in the image store. The same pod then runs with the default
// `podsandbox` sandboxer (containerd runs a pause container through the Task API) as the
// yardstick. Both: app container in the pod's namespaces, exec, stats, clean teardown.
import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { CriClient } from './cri/client';
import { criNode, podCase } from './cri/node';
import {
  BUSYBOX_REF,
  CRI_NAMESPACE,
  matrixVersions,
} from './harness';

const VERSION = '2.1';
const SHIM_SANDBOX_DIR = 'io.containerd.sandbox.controller.v1.shim';

function nsInode(pid: number, ns: string): string {
  return fs.readlinkSync(`/proc/${pid}/ns/${ns}`);
}

/** Host pid of the container's init, from the pid namespace's view CRI reports in verbose info. */
async function containerPid(client: CriClient, id: string): Promise<number> {
  const st = await client.containerStatus(id, true);
  const pid = (JSON.parse(st.info.info ?? '{}') as { pid?: number }).pid;
  assert.ok(pid, `no pid in verbose ContainerStatus of ${id}: ${JSON.stringify(st.info).slice(0, 300)}`);
  return pid;
}

// BURROW_E2E_CONTAINERD narrows the matrix for local runs; CI runs every version.
for (const sandboxer of matrixVersions().includes(VERSION) ? (['shim', 'podsandbox'] as const) : []) {
  describe(`Sandbox API on containerd ${VERSION}: a burrow pod with sandboxer = "${sandboxer}"`, function () {
    this.timeout(300_000);
    // With Burrow's Sandbox service no pause image is needed, so none is imported.
    const node = criNode({
      name: `sandbox-api-${sandboxer}`,
      version: VERSION,
      cri: { burrowSandboxer: sandboxer },
      pauseImage: sandboxer === 'podsandbox',
    });

    it('runs the pod, a container in its namespaces, exec and stats; teardown leaves nothing', async function () {
      await podCase(node, 'burrow', async (k) => {
        const images = (await node.client.listImages()).flatMap((i) => i.repo_tags);
        if (sandboxer === 'shim') {
          assert.ok(!images.includes(node.c.cri?.sandboxImage ?? ''), `pause image present: ${images.join(', ')}`);
        }
        const pod = await k.pod(`sbapi-${sandboxer}`);
        const status = await node.client.podSandboxStatus(pod.id, true);
        assert.equal(status.status?.state, 'SANDBOX_READY');
        const prefix = (node.c.cri?.subnet ?? '').replace(/0\/24$/, '');
        assert.ok(status.status?.network?.ip.startsWith(prefix), `pod ip "${status.status?.network?.ip}" not in ${node.c.cri?.subnet}`);
        // podsandbox: CRI's own JSON under "info"; shim: Burrow's SandboxStatus info map as is.
        const podPid = sandboxer === 'shim' ? Number(status.info.pid) : (JSON.parse(status.info.info ?? '{}') as { pid?: number }).pid;
        assert.ok(podPid, `no pid in verbose PodSandboxStatus: ${JSON.stringify(status.info).slice(0, 300)}`);
        const proc = fs.readFileSync(`/proc/${podPid}/status`, 'utf8');
        assert.match(proc, /^Name:\tpause$/m);
        assert.match(proc, /^Uid:\t65535\t/m);
        assert.match(proc, /^NSpid:\t\d+\t1$/m);

        const sandboxBundle = path.join(node.c.state, SHIM_SANDBOX_DIR, CRI_NAMESPACE, pod.id);
        const containers = await node.c.ctr(['containers', 'ls', '-q'], { namespace: CRI_NAMESPACE });
        if (sandboxer === 'shim') {
          // Burrow's own pause: no sandbox container in containerd, the pod's files in the sandbox bundle.
          assert.ok(!containers.stdout.split('\n').includes(pod.id), `a container ${pod.id} exists: ${containers.stdout}`);
          assert.ok(fs.existsSync(path.join(sandboxBundle, 'burrow-pod', 'rootfs', 'pause')), `no ${sandboxBundle}/burrow-pod`);
          assert.match(node.c.readLog(), new RegExp(`pod sandbox started.*sandbox_id=${pod.id}`));
        } else {
          assert.ok(containers.stdout.split('\n').includes(pod.id), `no pause container ${pod.id}: ${containers.stdout}`);
          assert.ok(!fs.existsSync(sandboxBundle), `${sandboxBundle} exists with the podsandbox sandboxer`);
        }

        const id = await k.run(pod, { name: 'sleeper', image: BUSYBOX_REF, command: ['sleep', '3600'] });
        assert.equal((await node.client.containerStatus(id)).status?.state, 'CONTAINER_RUNNING');
        if (sandboxer === 'shim') {
          // The sandbox shim announced version 3: containerd attached the container to it (no
          // `start` of its own), which it records in the container's bundle.
          const cb = node.c.bundleDir(id, CRI_NAMESPACE);
          assert.equal(fs.readFileSync(path.join(cb, 'sandbox'), 'utf8'), pod.id);
          const boot = JSON.parse(fs.readFileSync(path.join(cb, 'bootstrap.json'), 'utf8')) as Record<string, unknown>;
          assert.equal(boot.version, 3);
          assert.equal(String(boot.protocol).toLowerCase(), 'ttrpc');
        }
        const pid = await containerPid(node.client, id);
        for (const ns of ['net', 'ipc', 'uts']) {
          assert.equal(nsInode(pid, ns), nsInode(podPid, ns), `container ${id} is not in the pod's ${ns} namespace`);
        }

        const r = await node.client.execSync(id, ['sh', '-c', 'echo out; hostname; exit 4'], 30);
        assert.equal(r.stdout.toString(), `out\n${pod.config.hostname}\n`);
        assert.equal(r.exit_code, 4);

        const stats = await node.client.containerStats(id);
        assert.ok(stats, `no ContainerStats for ${id}`);
        assert.ok(Number(stats.memory?.working_set_bytes?.value ?? 0) > 0, `no memory stats: ${JSON.stringify(stats)}`);
        assert.ok(stats.cpu?.usage_core_nano_seconds !== undefined, `no cpu stats: ${JSON.stringify(stats)}`);

        await k.teardown(pod);
        assert.deepEqual(await node.client.listPodSandbox({ id: pod.id }), []);
        assert.ok(!fs.existsSync(`/proc/${podPid}`) || !fs.readFileSync(`/proc/${podPid}/status`, 'utf8').includes('pause'), `pause ${podPid} still runs`);
        assert.ok(!fs.existsSync(sandboxBundle), `${sandboxBundle} left behind`);
      });
    });

    it('keeps the pod across a containerd restart: status, exec and teardown afterwards', async function () {
      await podCase(node, 'burrow', async (k) => {
        const pod = await k.pod(`sbapi-restart-${sandboxer}`);
        const id = await k.run(pod, { name: 'sleeper', image: BUSYBOX_REF, command: ['sleep', '3600'] });
        const before = await containerPid(node.client, id);
        await node.c.restart();
        await node.reconnect();
        assert.equal((await node.client.podSandboxStatus(pod.id)).status?.state, 'SANDBOX_READY');
        assert.equal((await node.client.containerStatus(id)).status?.state, 'CONTAINER_RUNNING');
        assert.equal(await containerPid(node.client, id), before);
        const r = await node.client.execSync(id, ['echo', 'still here'], 30);
        assert.equal(r.stdout.toString(), 'still here\n');
        assert.equal(r.exit_code, 0);
      });
    });
  });
}

// containerd 1.7's experimental CRI "sbserver" (ENABLE_CRI_SANDBOXES=1) with sandbox_mode =
// "shim" calls the same Sandbox service; there it also runs over gRPC, which 1.7 can keep. Only
// the pod's own life is checked: 1.7's sbserver bind-mounts the pod's /etc/hosts and
// resolv.conf into every container unconditionally (pkg/cri/sbserver/container_create.go),
// files only its podsandbox controller writes, so no shim-sandboxed pod of 1.7 can start a
// container (2.x mounts them only when they exist).
if (matrixVersions().includes('1.7')) describe('Sandbox API on containerd 1.7 (experimental sbserver, sandbox_mode = "shim"), over ttrpc and gRPC', function () {
  this.timeout(300_000);
  const handlers = { ttrpc: 'burrow-sb', grpc: 'burrow-sb-grpc' };
  const rt = (h: string) => `[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.${h}`;
  // No images: Burrow's Sandbox service needs no pause image, and no container is started.
  const node = criNode({
    name: 'sandbox-api-17',
    version: '1.7',
    pauseImage: false,
    busybox: false,
    extraEnv: { ENABLE_CRI_SANDBOXES: '1' },
    configExtra: [
      `${rt(handlers.ttrpc)}]`,
      '  runtime_type = "io.containerd.burrow.v2"',
      '  sandbox_mode = "shim"',
      '',
      `${rt(handlers.grpc)}]`,
      '  runtime_type = "io.containerd.burrow.v2"',
      '  sandbox_mode = "shim"',
      `${rt(handlers.grpc)}.options]`,
      '  Protocol = "grpc"',
      '',
    ].join('\n'),
  });

  for (const [transport, handler] of Object.entries(handlers)) {
    it(`runs and removes a pod through Burrow's Sandbox service over ${transport}, no pause image`, async function () {
      await podCase(node, handler, async (k) => {
        const pod = await k.pod('sb17');
        const status = await node.client.podSandboxStatus(pod.id, true);
        assert.equal(status.status?.state, 'SANDBOX_READY');
        const log = node.c.readLog();
        assert.match(log, new RegExp(`pod sandbox started.*sandbox_id=${pod.id}`));
        assert.match(log, new RegExp(`shim started.*id=${pod.id}.*protocol=${transport}`));
        const podPid = Number(status.info.pid);
        assert.ok(podPid > 0, `no pid in PodSandboxStatus info: ${JSON.stringify(status.info)}`);
        assert.match(fs.readFileSync(`/proc/${podPid}/status`, 'utf8'), /^Name:\tpause$/m);
        // The pause holds the netns CRI pinned and CNI configured.
        const netns = status.info.netns;
        assert.ok(netns, `no netns in PodSandboxStatus info: ${JSON.stringify(status.info)}`);
        assert.equal(nsInode(podPid, 'net'), `net:[${fs.statSync(netns).ino}]`);
        await k.teardown(pod);
        assert.ok(!fs.existsSync(`/proc/${podPid}/status`) || !/^Name:\tpause$/m.test(fs.readFileSync(`/proc/${podPid}/status`, 'utf8')), 'pause still runs');
      });
    });
  }
});
