// Terminals: `ctr run -t` and `ctr task exec -t` under runc's shim and Burrow give the process
// a pty of the container's own devpts. ctr needs a terminal of its own for -t: `script`
// (util-linux, always on Debian) provides one.

import { strict as assert } from 'assert';
import {
  assertNoLeaks,
  BUSYBOX_REF,
  containerdForSuite,
  HostSnapshot,
  Result,
  run,
  RUNTIMES,
  sleep,
  snapshotHost,
} from './harness';

describe('terminals through ctr -t, runc and Burrow alike', function () {
  this.timeout(120_000);
  const node = containerdForSuite({ name: 'tty' });
  let baseline: HostSnapshot;

  /** ctr under a pty; its output is what a user would see on their terminal. */
  function ctrInPty(args: string[]): Promise<Result> {
    const cmd = ['ctr', '--address', node.c.address, '-n', node.c.namespace, ...args].map((a) => `'${a.replace(/'/g, "'\\''")}'`).join(' ');
    return run('script', ['-qec', cmd, '/dev/null'], { timeoutMs: 30_000 });
  }

  // The pty echoes CRLF and ctr may print a NUL first; what matters is the lines themselves.
  const lines = (out: string) => out.replace(/\0|\^@/g, '').split(/\r*\n/).map((l) => l.trim()).filter(Boolean);

  beforeEach(async function () {
    baseline = await snapshotHost(node.c);
  });

  afterEach(async function () {
    await assertNoLeaks(node.c, baseline);
  });

  for (const [name, runtime] of Object.entries(RUNTIMES)) {
    it(`${name}: run -t gives the init a pty from the container's devpts`, async function () {
      const r = await ctrInPty(['run', '--rm', '-t', '--runtime', runtime, BUSYBOX_REF, `tty-${name}`, 'sh', '-c', 'tty; [ -t 0 ] && echo stdin-is-tty; exit 4']);
      assert.equal(r.code, 4, r.stdout + r.stderr);
      assert.deepEqual(lines(r.stdout).slice(0, 2), ['/dev/pts/0', 'stdin-is-tty']);
    });

    it(`${name}: exec -t gives the exec a pty and its exit code`, async function () {
      const id = `ttyx-${name}`;
      const d = await node.c.ctr(['run', '-d', '--runtime', runtime, BUSYBOX_REF, id, 'sleep', '600']);
      assert.equal(d.code, 0, d.stderr);
      try {
        const r = await ctrInPty(['task', 'exec', '-t', '--exec-id', 'x', id, 'sh', '-c', 'tty; exit 6']);
        assert.equal(r.code, 6, r.stdout + r.stderr);
        assert.equal(lines(r.stdout)[0], '/dev/pts/0');
      } finally {
        await node.c.ctr(['task', 'kill', '-s', 'SIGKILL', id]);
        for (let i = 0; i < 50 && (await node.c.ctr(['task', 'rm', id])).code !== 0; i++) await sleep(100);
        await node.c.ctr(['container', 'rm', id]);
      }
    });
  }
});
