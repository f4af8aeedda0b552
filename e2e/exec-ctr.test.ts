// Exec into a running Burrow container through `ctr task exec`: the process joins every
// namespace of the container, has its own stdio and exit status, and dies with the init.

import { strict as assert } from 'assert';
import {
  assertNoLeaks,
  BUSYBOX_REF,
  containerdForSuite,
  HostSnapshot,
  matrixVersions,
  sleep,
  snapshotHost,
} from './harness';

const BURROW = 'io.containerd.burrow.v2';

for (const version of matrixVersions()) describe(`exec into a running container with ctr task exec on containerd ${version}`, function () {
  this.timeout(120_000);
  const node = containerdForSuite({ name: `exec-${version.replace('.', '')}`, version });
  let baseline: HostSnapshot;
  let n = 0;
  let id = '';

  beforeEach(async function () {
    baseline = await snapshotHost(node.c);
    id = `exec${++n}`;
    const r = await node.c.ctr(['run', '-d', '--runtime', BURROW, BUSYBOX_REF, id, 'sleep', '600']);
    assert.equal(r.code, 0, r.stderr);
  });

  afterEach(async function () {
    await node.c.ctr(['task', 'kill', '-s', 'SIGKILL', id]);
    for (let i = 0; i < 50; i++) {
      if ((await node.c.ctr(['task', 'rm', id])).code === 0) break;
      await sleep(100);
    }
    await node.c.ctr(['container', 'rm', id]);
    await assertNoLeaks(node.c, baseline);
  });

  it('runs in the container namespaces and reports its exit code', async function () {
    const init = await node.c.ctr(['task', 'exec', '--exec-id', 'probe', id, 'sh', '-c', 'cat /proc/1/cmdline | tr "\\0" " "; echo; echo $$; exit 5']);
    assert.equal(init.code, 5, init.stderr);
    const [cmdline, pid] = init.stdout.trim().split('\n');
    // pid 1 of this pid namespace is the container's sleep: the exec is inside it.
    assert.equal(cmdline.trim(), 'sleep 600');
    assert.notEqual(pid, '1');
  });

  it('gets its own stdin', async function () {
    const r = await node.c.ctr(['task', 'exec', '--exec-id', 'in', id, 'sh', '-c', 'read x; echo got $x'], { input: 'abc\n' });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'got abc\n');
  });

  it('fails clearly for a binary that is not there', async function () {
    const r = await node.c.ctr(['task', 'exec', '--exec-id', 'nobin', id, 'no-such-binary']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /exec: "no-such-binary": executable file not found in \$PATH/);
  });

  it('shows in task ps with its exec id and dies with the init', async function () {
    const bg = node.c.ctr(['task', 'exec', '--exec-id', 'sleeper', id, 'sleep', '300']);
    // The ProcessDetails in INFO: ctr 1.6 prints gogo's `ExecID:sleeper`, 1.7+ protobuf text `exec_id:"sleeper"`.
    const sleeperInfo = /ExecID:sleeper|exec_id:"sleeper"/;
    let ps = '';
    for (let i = 0; i < 50 && !sleeperInfo.test(ps); i++) {
      await sleep(100);
      ps = (await node.c.ctr(['task', 'ps', id])).stdout;
    }
    assert.match(ps, sleeperInfo);
    assert.equal(ps.trim().split('\n').length, 3, ps);
    const kill = await node.c.ctr(['task', 'kill', '-s', 'SIGKILL', id]);
    assert.equal(kill.code, 0, kill.stderr);
    assert.equal((await bg).code, 137);
  });

  it('refuses a duplicate exec id while the first runs', async function () {
    const bg = node.c.ctr(['task', 'exec', '--exec-id', 'dup', id, 'sleep', '300']);
    await sleep(500);
    const r = await node.c.ctr(['task', 'exec', '--exec-id', 'dup', id, 'true']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /already exists/);
    await node.c.ctr(['task', 'kill', '-s', 'SIGKILL', id]);
    await bg;
  });
});
