// The demo: a private containerd of our own, with its CRI plugin and a `burrow` runtime
// handler, runs a pod the way kubelet would for `runtimeClassName: burrow`, and we print what
// its container saw and said. Everything started here is stopped at the end.

import { CriClient } from './cri/client';
import { readLog, runContainer, runPod, teardown, waitContainerExited } from './cri/pod';
import { BUSYBOX_REF, CRI_NAMESPACE, ensureHostTools, importImage, importPauseImage, PrivateContainerd } from './harness';

const SCRIPT = [
  'echo "hello from a pod run by Burrow"',
  'echo "  hostname:    $(hostname)"',
  'echo "  pod address: $(ip -4 -o addr show eth0 | awk "{print \\$4}")"',
  'echo "  my pid:      $$ of $(ls /proc | grep -cE "^[0-9]+$") processes I can see"',
  'echo "  id:          $(id)"',
  'echo "  memory cgroup limit: $(cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max)"',
].join('; ');

async function main(): Promise<void> {
  ensureHostTools();
  console.log('starting a private containerd with CRI and the burrow runtime handler…');
  const c = await PrivateContainerd.start({ name: 'demo', cri: true });
  const client = new CriClient(c.address);
  try {
    await importPauseImage(c);
    await importImage(c, BUSYBOX_REF, CRI_NAMESPACE);
    await client.waitReady();
    console.log('RunPodSandbox(handler "burrow"), CreateContainer, StartContainer — as kubelet does…\n');
    const pod = await runPod(client, { name: 'hello-burrow', handler: 'burrow', logRoot: c.cri?.podLogDir, cgroupRoot: c.cri?.cgroupRoot });
    try {
      const id = await runContainer(client, pod, {
        name: 'hello',
        image: BUSYBOX_REF,
        command: ['sh', '-c', SCRIPT],
        resources: { cpu_period: 100000, cpu_shares: 2, memory_limit_in_bytes: 64 * 1024 * 1024, oom_score_adj: 1000 },
      });
      const st = await waitContainerExited(client, id);
      for (const line of readLog(st.log_path)) console.log(line);
      console.log(`\ncontainer exited with ${st.exit_code} (${st.reason}); the pod's log is ${st.log_path}`);
      if (st.exit_code !== 0) process.exitCode = 1;
    } finally {
      await teardown(client, pod);
    }
  } catch (err) {
    process.stderr.write(`\ncontainerd log (last lines):\n${c.readLog(40)}\n`);
    throw err;
  } finally {
    client.close();
    await c.stop();
    console.log('StopPodSandbox, RemovePodSandbox, private containerd stopped; nothing left behind.');
  }
}

main().catch((err: Error) => {
  console.error(err.stack ?? err.message);
  process.exit(1);
});
