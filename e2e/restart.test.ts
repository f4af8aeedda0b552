// containerd restarted under running workloads, on every containerd of the matrix: a node
// upgrade or a crash-looping daemon must not take pods down. containerd alone is stopped
// (SIGTERM, and then SIGKILL: no chance to say goodbye) and started again on the same config,
// root and state; it finds the shims through the bundles' `address` files and reconnects.
// Afterwards the CRI pod and the ctr task are still there with the same pids, Pids/State
// answer, they can be exec'd into, a new container joins the running pod, and everything
// stops and is removed without leaving anything behind. Handler `runc` (containerd's own
// shim of the same release) runs the same case as the yardstick.
import { strict as assert } from 'assert';
import * as fs from 'fs';
import { criNode, podCase } from './cri/node';
import type { Pod } from './cri/pod';
import {
  BUSYBOX_REF,
  CRI_HANDLERS,
  CRI_NAMESPACE,
  CriHandler,
  isAlive,
  matrixVersions,
  readProc,
  sleep,
} from './harness';

const RUNTIME_OF: Record<CriHandler, string> = { burrow: 'io.containerd.burrow.v2', runc: 'io.containerd.runc.v2' };

for (const version of matrixVersions()) describe(`containerd ${version} restarted while pods and tasks run`, function () {
  this.timeout(300_000);
  const node = criNode({ name: `restart-${version.replace('.', '')}`, version, ctrBusybox: true });

  /** `ctr task ls` line of `id`: [pid, status], or undefined. */
  async function taskLine(id: string, namespace?: string): Promise<[number, string] | undefined> {
    const ls = await node.c.ctr(['task', 'ls'], { namespace });
    assert.equal(ls.code, 0, ls.stderr);
    const m = new RegExp(`^${id}\\s+(\\d+)\\s+(\\S+)`, 'm').exec(ls.stdout);
    return m ? [Number(m[1]), m[2]] : undefined;
  }

  /** What must hold after each restart: same pids, Pids/State answer, exec works in both. */
  async function checkAlive(
    label: string,
    w: { task: string; taskPid: number; pod: Pod; app: string; appPid: number },
  ): Promise<void> {
    assert.deepEqual(await taskLine(w.task), [w.taskPid, 'RUNNING'], `${label}: ctr task ${w.task}`);
    const ps = await node.c.ctr(['task', 'ps', w.task]);
    assert.equal(ps.code, 0, `${label}: ctr task ps ${w.task}: ${ps.stderr}`);
    assert.match(ps.stdout, new RegExp(`^${w.taskPid}\\s`, 'm'), `${label}: ${ps.stdout}`);
    const ex = await node.c.ctr(['task', 'exec', '--exec-id', `probe-${Date.now()}`, w.task, 'sh', '-c', 'echo $(cat /proc/1/cmdline | tr "\\0" " ")']);
    assert.equal(ex.code, 0, `${label}: ctr task exec: ${ex.stderr}`);
    assert.equal(ex.stdout, 'sleep 600\n', label);

    const pod = await node.client.podSandboxStatus(w.pod.id);
    assert.equal(pod.status?.state, 'SANDBOX_READY', `${label}: pod ${w.pod.id}`);
    const st = await node.client.containerStatus(w.app);
    assert.equal(st.status?.state, 'CONTAINER_RUNNING', `${label}: container ${w.app}`);
    assert.deepEqual(await taskLine(w.app, CRI_NAMESPACE), [w.appPid, 'RUNNING'], `${label}: CRI task ${w.app}`);
    const r = await node.client.execSync(w.app, ['sh', '-c', 'echo out; echo err >&2; exit 4'], 30);
    assert.deepEqual(
      { stdout: r.stdout.toString(), stderr: r.stderr.toString(), exit_code: r.exit_code },
      { stdout: 'out\n', stderr: 'err\n', exit_code: 4 },
      label,
    );
  }

  for (const handler of CRI_HANDLERS) {
    it(`handler ${handler}: a pod and a ctr task survive SIGTERM and SIGKILL of containerd, then stop cleanly`, async function () {
      const task = `task-${handler}`;
      await podCase(node, handler, async (k) => {
        try {
          const r = await node.c.ctr(['run', '-d', '--runtime', RUNTIME_OF[handler], BUSYBOX_REF, task, 'sleep', '600']);
          assert.equal(r.code, 0, r.stderr);
          const pod = await k.pod('restart');
          const app = await k.run(pod, { name: 'app', image: BUSYBOX_REF, command: ['sleep', '3600'] });
          const taskPid = (await taskLine(task))?.[0];
          const appPid = (await taskLine(app, CRI_NAMESPACE))?.[0];
          assert.ok(taskPid && appPid, `pids of ${task} (${taskPid}) and ${app} (${appPid})`);
          const w = { task, taskPid, pod, app, appPid };
          if (handler === 'runc') {
            // The yardstick is the runc shim of this containerd release (first on containerd's PATH).
            const shim = readProc(taskPid)?.ppid ?? 0;
            assert.equal(fs.readlinkSync(`/proc/${shim}/exe`), node.c.binaries.shimRuncV2, `shim of ${task}`);
          }
          await checkAlive('before the restart', w);

          for (const kill of [false, true]) {
            const label = `after ${kill ? 'SIGKILL' : 'SIGTERM'} and restart of containerd`;
            const oldPid = node.c.pid;
            await node.c.restart({ kill });
            assert.notEqual(node.c.pid, oldPid);
            assert.ok(isAlive(taskPid) && isAlive(appPid), `${label}: container processes died`);
            await node.reconnect();
            await checkAlive(label, w);
          }

          // A new container in the pod whose sandbox was started by the previous daemon.
          const late = await k.run(pod, { name: 'late', image: BUSYBOX_REF, command: ['sleep', '3600'] });
          const lr = await node.client.execSync(late, ['cat', '/proc/1/cmdline'], 30);
          assert.equal(lr.stdout.toString(), 'sleep\x003600\x00');

          // Stop and remove everything through the restarted daemon.
          const kill = await node.c.ctr(['task', 'kill', '-s', 'SIGKILL', task]);
          assert.equal(kill.code, 0, kill.stderr);
          for (let i = 0; i < 100 && (await taskLine(task))?.[1] !== 'STOPPED'; i++) await sleep(100);
          assert.deepEqual(await taskLine(task), [taskPid, 'STOPPED']);
          const rm = await node.c.ctr(['task', 'rm', task]);
          assert.equal(rm.code, 0, rm.stderr);
          const crm = await node.c.ctr(['container', 'rm', task]);
          assert.equal(crm.code, 0, crm.stderr);
          await k.teardown(pod);
          assert.deepEqual(await node.client.listPodSandbox({}), []);
        } finally {
          await node.c.ctr(['task', 'rm', '-f', task]);
          await node.c.ctr(['container', 'rm', task]);
        }
      });
    });
  }
});
