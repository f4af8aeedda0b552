// What a Kubernetes node does with `runtimeClassName: burrow`, driven through
// containerd's CRI the way kubelet drives it: pods of several containers
// sharing a network namespace and one shim, ExecSync with and without a
// timeout, a memory limit that ends in an OOM kill, container stats, pod
// teardown with containers still running, ten pods at once, and `ctr task
// exec -t` into a CRI container. Every case runs for handler `runc`
// (containerd's own shim: the reference) and `burrow` with the same
// assertions, and ends with the harness's leak check (processes, mounts,
// netns, CNI state, cgroups, bundles, Burrow state).
import { strict as assert } from 'assert';
import * as fs from 'fs';
import { CriClient, CriError } from './cri/client';
import { criNode, PodCase, podCase } from './cri/node';
import { BESTEFFORT_RESOURCES, containerLogPath, readLog, removePodCgroup, waitContainerExited } from './cri/pod';
import type { ContainerStats, ContainerStatus } from './cri/types';
import {
  BUSYBOX_REF,
  CRI_HANDLERS,
  CRI_NAMESPACE,
  matrixVersions,
  ipamReservations,
  listProcesses,
  PrivateContainerd,
  readEnviron,
  readProc,
  Result,
  run,
  sleep,
  withDescendants,
} from './harness';

const MiB = 1024 * 1024;

/**
 * What containerd 1.6's CRI (1.6.20 here) answers when an ExecSync outlives its
 * timeout: it SIGKILLs the exec process, waits for its exit and fails the call
 * with DeadlineExceeded. Measured with runc's shim; Burrow must give the same.
 */
const EXEC_TIMEOUT_ERROR = {
  codeName: 'DEADLINE_EXCEEDED',
  details: /^failed to exec in container: timeout 1s exceeded: context deadline exceeded$/,
};

interface ShimDaemon {
  pid: number;
  /** The `-id` the shim was started for (with CRI grouping: the pod sandbox id). */
  id: string;
  argv: string[];
}

/**
 * Long-running shim processes of this containerd instance (runc's or Burrow's):
 * those whose argv names the instance's socket (`-address <sock>`) or that
 * inherited its TTRPC_ADDRESS, minus the short-lived `start`/`delete` helpers
 * and minus what such a shim runs below itself (runc, container processes).
 */
function shimDaemons(c: PrivateContainerd): ShimDaemon[] {
  const procs = listProcesses();
  const matched = procs.filter((p) => {
    if (p.pid === c.pid || p.argv.length === 0) return false;
    const last = p.argv[p.argv.length - 1];
    if (last === 'start' || last === 'delete') return false;
    const i = p.argv.indexOf('-address');
    const byArgv = i >= 0 && p.argv[i + 1] === c.address;
    return byArgv || readEnviron(p.pid).get('TTRPC_ADDRESS') === c.ttrpcAddress;
  });
  const ids = new Set(matched.map((p) => p.pid));
  const byPid = new Map(procs.map((p) => [p.pid, p]));
  const belowAnother = (pid: number): boolean => {
    for (let p = byPid.get(byPid.get(pid)?.ppid ?? 0); p && p.pid > 1; p = byPid.get(p.ppid)) {
      if (ids.has(p.pid)) return true;
    }
    return false;
  };
  return matched
    .filter((p) => !belowAnother(p.pid))
    .map((p) => {
      const i = p.argv.indexOf('-id');
      return { pid: p.pid, id: i >= 0 ? p.argv[i + 1] ?? '' : '', argv: p.argv };
    });
}

/** The container's init pid from verbose ContainerStatus (0 when not running). */
async function containerPid(client: CriClient, id: string): Promise<number> {
  const r = await client.containerStatus(id, true);
  return (JSON.parse(r.info.info ?? '{}') as { pid?: number }).pid ?? 0;
}

/** Pid and network namespace path of a pod's pause container, from verbose PodSandboxStatus. */
async function sandboxInfo(client: CriClient, podId: string): Promise<{ pid: number; netns: string }> {
  const r = await client.podSandboxStatus(podId, true);
  const info = JSON.parse(r.info.info ?? '{}') as {
    pid?: number;
    runtimeSpec?: { linux?: { namespaces?: { type: string; path?: string }[] } };
  };
  const netns = info.runtimeSpec?.linux?.namespaces?.find((n) => n.type === 'network')?.path ?? '';
  return { pid: info.pid ?? 0, netns };
}

async function waitFor<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() >= deadline) {
      throw new Error(`${what}: not within ${timeoutMs} ms${last instanceof Error ? ` (last error: ${last.message})` : ''}`);
    }
    await sleep(100);
  }
}

const num = (v: { value: string } | null | undefined): number => (v ? Number(v.value) : 0);

function describeStats(s: ContainerStats | null | undefined): string {
  if (!s) return 'null';
  return JSON.stringify({
    id: s.attributes?.id,
    cpu: s.cpu && { usage_core_nano_seconds: s.cpu.usage_core_nano_seconds?.value ?? null },
    memory: s.memory && {
      working_set_bytes: s.memory.working_set_bytes?.value ?? null,
      usage_bytes: s.memory.usage_bytes?.value ?? null,
    },
  });
}

for (const version of matrixVersions()) describe(`CRI pods on containerd ${version}: what a node does with runtimeClassName burrow (kubelet-like), handlers runc and burrow`, function () {
  this.timeout(300_000);
  const node = criNode({ name: `cri-pods-${version.replace('.', '')}`, version });

  /**
   * Warnings and errors of containerd and the shims about the given ids (and
   * Burrow's own), repeated lines folded, for failure messages.
   */
  function logExcerpt(ids: readonly string[], max = 30): string {
    const seen = new Map<string, number>();
    for (const l of node.c.readLog().split('\n')) {
      if (!/level=(warning|error|fatal)/.test(l)) continue;
      if (!l.includes('runtime=io.containerd.burrow.v2') && !ids.some((id) => id && l.includes(id))) continue;
      if (l.includes('cleanup warnings') || l.includes('cleaning up after shim disconnected')) continue;
      const key = l.replace(/^time="[^"]*" /, '');
      seen.set(key, (seen.get(key) ?? 0) + 1);
    }
    if (seen.size === 0) return '';
    const lines = [...seen].slice(-max).map(([l, n]) => (n > 1 ? `${l}  (x${n})` : l));
    return `\ncontainerd/shim log (${node.c.logFile}), warnings and errors:\n  ${lines.join('\n  ')}`;
  }

  /** How often containerd received a TaskOOM event for the container. */
  function taskOomEvents(id: string): number {
    return node.c.readLog().split('\n').filter((l) => l.includes(`TaskOOM event &TaskOOM{ContainerID:${id},`)).length;
  }

  for (const handler of CRI_HANDLERS) {
    describe(`handler ${handler}`, function () {
      /** podCase for this handler; a failure of Burrow's shows the relevant log lines too. */
      const inCase = (body: (k: PodCase) => Promise<void>, settleMs = 5_000): Promise<void> =>
        podCase(node, handler, body, { settleMs, explain: handler === 'burrow' ? logExcerpt : undefined });

      it('two containers of a pod share its network (127.0.0.1), under exactly one shim with the pause container', async function () {
        await inCase(async (k) => {
          const pod = await k.pod('net2');
          const server = await k.run(pod, {
            name: 'server', image: BUSYBOX_REF, command: ['nc', '-ll', '-p', '8080', '-e', 'echo', 'hi-from-server'],
          });
          const clientId = await k.run(pod, {
            name: 'client',
            image: BUSYBOX_REF,
            command: ['sh', '-c',
              'for i in $(seq 100); do nc 127.0.0.1 8080 && exec sleep 3600; sleep 0.1; done; echo never-connected; exit 1'],
          });
          const log = containerLogPath(pod, 'client');
          await waitFor(`"hi-from-server" in the client's log ${log}`, 20_000, async () =>
            (readLog(log).includes('hi-from-server') ? true : undefined)).catch((e: Error) => {
            throw new Error(`${e.message}; log: ${JSON.stringify(readLog(log))}`);
          });
          for (const id of [server, clientId]) {
            assert.equal((await node.client.containerStatus(id)).status?.state, 'CONTAINER_RUNNING', `container ${id}`);
          }

          // One shim for the pod: the pause container's and both apps' processes are its children.
          const sandbox = await sandboxInfo(node.client, pod.id);
          const pids = { pause: sandbox.pid, server: await containerPid(node.client, server), client: await containerPid(node.client, clientId) };
          for (const [name, pid] of Object.entries(pids)) assert.ok(pid > 0, `no pid for ${name}: ${JSON.stringify(pids)}`);
          const podIds = new Set([pod.id, server, clientId]);
          const all = shimDaemons(node.c);
          const mine = all.filter((s) => podIds.has(s.id));
          assert.equal(mine.length, 1,
            `shim processes for pod ${pod.id}: ${JSON.stringify(mine.map((s) => `${s.pid}: ${s.argv.join(' ')}`))} ` +
            `(all of the instance: ${JSON.stringify(all.map((s) => `${s.pid}: ${s.argv.join(' ')}`))})`);
          assert.equal(mine[0].id, pod.id, 'the pod shim is started for the sandbox id');
          const procs = listProcesses();
          const below = withDescendants([mine[0].pid], procs);
          for (const [name, pid] of Object.entries(pids)) {
            assert.ok(below.has(pid), `${name} (pid ${pid}, parent ${readProc(pid)?.ppid}) is not below the pod shim ${mine[0].pid}`);
          }
          // Same network namespace for all three.
          const netns = Object.values(pids).map((pid) => fs.readlinkSync(`/proc/${pid}/ns/net`));
          assert.equal(new Set(netns).size, 1, `network namespaces: ${netns}`);
          assert.notEqual(netns[0], fs.readlinkSync('/proc/self/ns/net'));
        });
      });

      it('ExecSync returns stdout, stderr and the exit code, and honours a timeout', async function () {
        await inCase(async (k) => {
          const pod = await k.pod('exec');
          const id = await k.run(pod, { name: 'sleeper', image: BUSYBOX_REF, command: ['sleep', '3600'] });
          assert.equal((await node.client.containerStatus(id)).status?.state, 'CONTAINER_RUNNING');

          const r = await node.client.execSync(id, ['sh', '-c', 'echo out; echo err >&2; exit 2'], 30);
          assert.deepEqual(
            { stdout: r.stdout.toString(), stderr: r.stderr.toString(), exit_code: r.exit_code },
            { stdout: 'out\n', stderr: 'err\n', exit_code: 2 },
          );
          const big = await node.client.execSync(id, ['sh', '-c', 'head -c 300000 /dev/zero | tr "\\0" x'], 30);
          assert.equal(big.exit_code, 0);
          assert.equal(big.stdout.length, 300000);
          assert.ok(big.stdout.every((b) => b === 0x78), 'stdout is not all "x"');
          const ok = await node.client.execSync(id, ['true'], 0);
          assert.deepEqual({ stdout: ok.stdout.length, stderr: ok.stderr.length, exit_code: ok.exit_code }, { stdout: 0, stderr: 0, exit_code: 0 });

          const t0 = Date.now();
          const err = await node.client.execSync(id, ['sleep', '10'], 1).then(
            (res) => new Error(`ExecSync answered ${JSON.stringify({ exit_code: res.exit_code, stdout: res.stdout.toString() })}`),
            (e: unknown) => e,
          );
          const elapsed = Date.now() - t0;
          assert.ok(err instanceof CriError, `ExecSync(sleep 10, timeout 1 s) after ${elapsed} ms: ${(err as Error).message}`);
          assert.deepEqual(
            { codeName: err.codeName, timeout: EXEC_TIMEOUT_ERROR.details.test(err.details) },
            { codeName: EXEC_TIMEOUT_ERROR.codeName, timeout: true },
            `ExecSync(sleep 10, timeout 1 s) after ${elapsed} ms: ${err.message}`,
          );
          assert.ok(elapsed >= 900 && elapsed < 5_000, `ExecSync with timeout 1 s returned after ${elapsed} ms`);

          // The timed-out exec was killed; the container goes on.
          const ps = await node.client.execSync(id, ['ps', '-o', 'pid,args'], 10);
          assert.equal(ps.exit_code, 0, ps.stderr.toString());
          assert.doesNotMatch(ps.stdout.toString(), /sleep 10$/m, `the timed-out exec still runs:\n${ps.stdout}`);
          assert.equal((await node.client.containerStatus(id)).status?.state, 'CONTAINER_RUNNING');
        });
      });

      it('a container over its memory limit is OOM-killed: exit code 137, reason OOMKilled', async function () {
        await inCase(async (k) => {
          const pod = await k.pod('oom', { qos: 'burstable' });
          const id = await k.run(pod, {
            name: 'hog',
            image: BUSYBOX_REF,
            // One 128 MiB buffer, filled from /dev/zero: every page is charged to the container.
            command: ['dd', 'if=/dev/zero', 'of=/dev/null', 'bs=128M', 'count=1'],
            resources: { ...BESTEFFORT_RESOURCES, memory_limit_in_bytes: 32 * MiB, oom_score_adj: 999 },
          });
          let st: ContainerStatus = await waitContainerExited(node.client, id, 30_000);
          // CRI records the reason from the TaskOOM event, which may trail the exit a little.
          const deadline = Date.now() + 3_000;
          while (st.reason !== 'OOMKilled' && Date.now() < deadline) {
            await sleep(100);
            st = (await node.client.containerStatus(id)).status ?? st;
          }
          const limit = st.resources?.linux?.memory_limit_in_bytes;
          assert.deepEqual(
            { exit_code: st.exit_code, reason: st.reason },
            { exit_code: 137, reason: 'OOMKilled' },
            `ContainerStatus of the OOM-killed container (limit ${limit}): ` +
              JSON.stringify({ exit_code: st.exit_code, reason: st.reason, message: st.message, log: readLog(st.log_path) }) +
              `; TaskOOM events containerd received for ${id}: ${taskOomEvents(id)}`,
          );
        });
      });

      it('ContainerStats and ListContainerStats report CPU and memory of a busy container', async function () {
        await inCase(async (k) => {
          const pod = await k.pod('stats');
          const id = await k.run(pod, {
            name: 'busy', image: BUSYBOX_REF, command: ['sh', '-c', 'while :; do :; done'],
          });
          await sleep(1_000);
          let last: ContainerStats | null | undefined;
          const good = (s: ContainerStats | null | undefined): boolean =>
            !!s && s.attributes?.id === id && num(s.cpu?.usage_core_nano_seconds) > 0 && num(s.memory?.working_set_bytes) > 0;
          const stats: ContainerStats = await waitFor('ContainerStats with non-zero CPU and working set', 10_000, async () => {
            last = await node.client.containerStats(id);
            return last && good(last) ? last : undefined;
          }).catch((e: Error) => {
            throw new Error(`${e.message}; last: ${describeStats(last)}`);
          });
          // A busy loop for over a second: well over 100 ms of CPU; a shell's working set is over 64 KiB.
          assert.ok(num(stats.cpu?.usage_core_nano_seconds) > 100e6, `cpu: ${describeStats(stats)}`);
          assert.ok(num(stats.memory?.working_set_bytes) > 64 * 1024, `memory: ${describeStats(stats)}`);

          for (const filter of [{ id }, { pod_sandbox_id: pod.id }]) {
            let listed: ContainerStats[] = [];
            await waitFor(`ListContainerStats(${JSON.stringify(filter)}) with non-zero CPU and working set`, 10_000, async () => {
              listed = await node.client.listContainerStats(filter);
              return listed.length === 1 && good(listed[0]) ? true : undefined;
            }).catch((e: Error) => {
              throw new Error(`${e.message}; last: [${listed.map(describeStats).join(', ')}]`);
            });
          }
          // CPU time grows while it runs.
          await sleep(500);
          const later = await node.client.containerStats(id);
          assert.ok(num(later?.cpu?.usage_core_nano_seconds) > num(stats.cpu?.usage_core_nano_seconds),
            `cpu did not grow: ${describeStats(stats)} then ${describeStats(later)}`);
        });
      });

      it('StopPodSandbox with containers still running, then RemovePodSandbox, leave nothing behind', async function () {
        await inCase(async (k) => {
          const pod = await k.pod('stop');
          const stubborn = await k.run(pod, {
            name: 'stubborn', image: BUSYBOX_REF, command: ['sh', '-c', 'trap "" TERM; while :; do sleep 1; done'],
          });
          const forker = await k.run(pod, {
            name: 'forker', image: BUSYBOX_REF, command: ['sh', '-c', 'sleep 3600 & sleep 3600 & wait'],
          });
          const done = await k.run(pod, { name: 'done', image: BUSYBOX_REF, command: ['true'] });
          await waitContainerExited(node.client, done, 20_000);
          const containers = [stubborn, forker, done];

          const sandbox = await sandboxInfo(node.client, pod.id);
          assert.ok(sandbox.netns && fs.existsSync(sandbox.netns), `pod netns "${sandbox.netns}"`);
          const roots = [sandbox.pid, await containerPid(node.client, stubborn), await containerPid(node.client, forker)];
          assert.ok(roots.every((p) => p > 0), `pids ${roots}`);
          await waitFor('forker\'s two children', 5_000, async () =>
            (listProcesses().filter((p) => p.ppid === roots[2]).length === 2 ? true : undefined));
          const procs = listProcesses();
          const tree = withDescendants(roots, procs);
          const started = new Map(procs.filter((p) => tree.has(p.pid)).map((p) => [p.pid, p.startTime]));
          assert.ok(started.size >= 5, `pod processes: ${[...started.keys()]}`);

          const t0 = Date.now();
          await node.client.stopPodSandbox(pod.id);
          const stopMs = Date.now() - t0;
          assert.ok(stopMs < 20_000, `StopPodSandbox took ${stopMs} ms`);
          assert.equal((await node.client.podSandboxStatus(pod.id)).status?.state, 'SANDBOX_NOTREADY');
          for (const id of containers) {
            assert.equal((await node.client.containerStatus(id)).status?.state, 'CONTAINER_EXITED', `container ${id} after StopPodSandbox`);
          }
          const alive = [...started].filter(([pid, start]) => readProc(pid)?.startTime === start);
          assert.deepEqual(alive.map(([pid]) => `${pid} ${readProc(pid)?.argv.join(' ')}`), [], 'pod processes alive after StopPodSandbox');
          assert.ok(!fs.existsSync(sandbox.netns), `netns ${sandbox.netns} still there after StopPodSandbox`);
          const reserved = ipamReservations(node.c.cri!).filter((r) => r.containerId === pod.id);
          assert.deepEqual(reserved, [], 'pod address still reserved after StopPodSandbox');

          await node.client.removePodSandbox(pod.id);
          removePodCgroup(pod.cgroupParent, pod.cgroupRoot);
          k.forget(pod);
          assert.deepEqual(await node.client.listPodSandbox({ id: pod.id }), []);
          assert.deepEqual(await node.client.listContainers({ pod_sandbox_id: pod.id }), []);
          const bundles = node.c.listBundles().filter((b) => b.id === pod.id || containers.includes(b.id));
          assert.deepEqual(bundles, [], 'bundles after RemovePodSandbox');
        });
      });

      it('ten pods started concurrently all run, and all are cleaned up', async function () {
        const N = 10;
        await inCase(async (k) => {
          const started = await Promise.allSettled(Array.from({ length: N }, async (_, i) => {
            const name = `many-${i}`;
            const pod = await k.pod(name);
            const id = await k.run(pod, {
              name: 'app',
              image: BUSYBOX_REF,
              command: ['sh', '-c', 'echo "pod=$POD_NAME"; exec sleep 3600'],
              env: { POD_NAME: pod.config.metadata.name },
            });
            return { pod, id };
          }));
          const failed = started.flatMap((s, i) => (s.status === 'rejected' ? [`pod ${i}: ${(s.reason as Error).message}`] : []));
          assert.deepEqual(failed, [], 'RunPodSandbox/CreateContainer/StartContainer failures');
          const ok = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));

          await Promise.all(ok.map(async ({ pod, id }) => {
            const log = containerLogPath(pod, 'app');
            const want = `pod=${pod.config.metadata.name}`;
            await waitFor(`"${want}" in ${log}`, 20_000, async () => (readLog(log).includes(want) ? true : undefined))
              .catch((e: Error) => {
                throw new Error(`${e.message}; log: ${JSON.stringify(readLog(log))}`);
              });
            assert.equal((await node.client.containerStatus(id)).status?.state, 'CONTAINER_RUNNING', `container of ${pod.config.metadata.name}`);
          }));
          const ready = await node.client.listPodSandbox({ state: { state: 'SANDBOX_READY' } });
          const readyIds = new Set(ready.map((p) => p.id));
          assert.deepEqual(ok.filter(({ pod }) => !readyIds.has(pod.id)).map(({ pod }) => pod.id), [], 'pods not READY');
          const ips = await Promise.all(ok.map(async ({ pod }) => (await node.client.podSandboxStatus(pod.id)).status?.network?.ip ?? ''));
          assert.equal(new Set(ips.filter(Boolean)).size, N, `pod addresses: ${ips}`);
          // One shim per pod, started for its sandbox.
          const shims = shimDaemons(node.c).map((s) => s.id).sort();
          assert.deepEqual(shims, ok.map(({ pod }) => pod.id).sort(), 'shim processes (by -id) vs pods');
        }, 20_000);
      });

      it('ctr -n k8s.io task exec -t into a CRI container', async function () {
        /** ctr under a pty (script), as a user at a terminal runs it. */
        const ctrInPty = (args: string[]): Promise<Result> => {
          const cmd = [node.c.binaries.ctr, '--address', node.c.address, '-n', CRI_NAMESPACE, ...args]
            .map((a) => `'${a.replace(/'/g, "'\\''")}'`).join(' ');
          return run('script', ['-qec', cmd, '/dev/null'], { timeoutMs: 30_000 });
        };
        const lines = (out: string): string[] =>
          out.replace(/\0|\^@/g, '').split(/\r*\n/).map((l) => l.trim()).filter(Boolean);

        await inCase(async (k) => {
          const pod = await k.pod('ctrexec');
          const id = await k.run(pod, { name: 'sleeper', image: BUSYBOX_REF, command: ['sleep', '3600'] });
          const listed = await node.c.ctr(['task', 'ls'], { namespace: CRI_NAMESPACE });
          assert.match(listed.stdout, new RegExp(`^${id}\\s+\\d+\\s+RUNNING`, 'm'), listed.stdout + listed.stderr);

          const r = await ctrInPty(['task', 'exec', '-t', '--exec-id', 'ctr-tty', id, 'sh', '-c', 'tty; [ -t 0 ] && echo stdin-is-tty; exit 6']);
          assert.equal(r.code, 6, `ctr task exec -t: exit ${r.code}\n${r.stdout}${r.stderr}`);
          assert.deepEqual(lines(r.stdout).slice(0, 2), ['/dev/pts/0', 'stdin-is-tty'], r.stdout);

          const plain = await node.c.ctr(['task', 'exec', '--exec-id', 'ctr-plain', id, 'sh', '-c', 'echo plain-$((6*7)); exit 3'],
            { namespace: CRI_NAMESPACE });
          assert.deepEqual({ code: plain.code, stdout: plain.stdout }, { code: 3, stdout: 'plain-42\n' }, plain.stderr);

          // The CRI still sees its container running, and ExecSync still works after ctr's execs.
          assert.equal((await node.client.containerStatus(id)).status?.state, 'CONTAINER_RUNNING');
          const again = await node.client.execSync(id, ['echo', 'still-here'], 10);
          assert.equal(again.stdout.toString(), 'still-here\n');
        });
      });
    });
  }
});
