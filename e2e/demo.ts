// The demo: a private containerd of our own runs a container with the burrow runtime, and we
// print what the container sees of itself. Everything started here is stopped at the end.

import { BUSYBOX_REF, ensureHostTools, importImage, PrivateContainerd } from './harness';

const SCRIPT = [
  'echo "hello from a Burrow container"',
  'echo "  hostname:    $(hostname)"',
  'echo "  my pid:      $$"',
  'echo "  processes:   $(ls /proc | grep -cE "^[0-9]+$")"',
  'echo "  id:          $(id)"',
  'echo "  mounts:      $(wc -l < /proc/self/mountinfo)"',
  'echo "  root caps:   $(grep CapEff /proc/self/status)"',
].join('; ');

async function main(): Promise<void> {
  ensureHostTools();
  console.log('starting a private containerd…');
  const c = await PrivateContainerd.start({ name: 'demo' });
  try {
    await importImage(c);
    console.log(`running: ctr run --rm --runtime io.containerd.burrow.v2 ${BUSYBOX_REF} demo sh -c …\n`);
    const r = await c.ctr(['run', '--rm', '--runtime', 'io.containerd.burrow.v2', BUSYBOX_REF, 'demo', 'sh', '-c', SCRIPT]);
    process.stdout.write(r.stdout);
    if (r.code !== 0) {
      process.stderr.write(r.stderr);
      process.stderr.write(`\ncontainerd log (last lines):\n${c.readLog(40)}\n`);
      process.exitCode = 1;
    }
  } finally {
    await c.stop();
    console.log('\nprivate containerd stopped; nothing left behind.');
  }
}

main().catch((err: Error) => {
  console.error(err.stack ?? err.message);
  process.exit(1);
});
