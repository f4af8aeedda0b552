// bin/containerd-shim-burrow-v2 answers `delete` itself when the container left nothing behind,
// and hands everything else to Node. BURROW_NODE stands in for Node here, to see which it was.

import { strict as assert } from 'assert';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { decodeMessage } from '../../shim/protocol/proto-registry';
import { makeTempDir, removeTempDir } from '../fakes/fixtures';

const WRAPPER = path.resolve(__dirname, '../../../bin/containerd-shim-burrow-v2');

describe('cli: the wrapper\'s delete fast path', () => {
  let dir: string;
  let stateRoot: string;
  let bundle: string;
  let fakeNode: string;

  beforeEach(() => {
    dir = makeTempDir();
    stateRoot = path.join(dir, 'state');
    bundle = path.join(dir, 'bundles', 'c1');
    fs.mkdirSync(path.join(bundle, 'rootfs'), { recursive: true });
    fakeNode = path.join(dir, 'fake-node');
    fs.writeFileSync(fakeNode, '#!/bin/sh\nprintf "node %s" "$*"\n', { mode: 0o755 });
  });
  afterEach(() => removeTempDir(dir));

  const run = (args: string[]) => {
    const r = spawnSync(WRAPPER, args, {
      cwd: bundle,
      env: { PATH: process.env.PATH, BURROW_ROOT: stateRoot, BURROW_NODE: fakeNode },
    });
    assert.equal(r.status, 0, r.stderr.toString());
    return r.stdout;
  };
  const containerdArgs = (id = 'c1', ns = 'default', b = bundle) => [
    '-namespace', ns, '-address', '/run/containerd/containerd.sock', '-publish-binary', '/usr/bin/containerd',
    '-debug', '-id', id, '-bundle', b, 'delete',
  ];

  it('prints DeleteResponse{exit_status: 137, exited_at: now} without Node when nothing is left', () => {
    const before = Date.now() / 1000;
    const out = run(containerdArgs());
    assert.ok(!out.toString().startsWith('node '), `went to Node: ${out}`);
    const msg = decodeMessage<{ pid: number; exit_status: number; exited_at: { seconds: number | string; nanos: number } }>(
      'containerd.task.v2.DeleteResponse', out,
    );
    assert.equal(msg.pid, 0);
    assert.equal(msg.exit_status, 137);
    const at = Number(msg.exited_at.seconds) + msg.exited_at.nanos / 1e9;
    assert.ok(at >= before - 1 && at <= Date.now() / 1000 + 1, `exited_at ${at} not now (${before})`);
  });

  it('uses the working directory as the bundle without -bundle', () => {
    const out = run(containerdArgs().filter((a, i, all) => a !== '-bundle' && all[i - 1] !== '-bundle'));
    assert.ok(!out.toString().startsWith('node '), `went to Node: ${out}`);
  });

  it('goes to Node when the container has state left', () => {
    fs.mkdirSync(path.join(stateRoot, 'default', 'c1'), { recursive: true });
    assert.equal(run(containerdArgs()).toString(), `node ${path.resolve(__dirname, '../../..')}/dist/shim/cli/main.js ${containerdArgs().join(' ')}`);
  });

  for (const [what, args] of [
    ['an id outside containerd\'s rules', () => containerdArgs('../c1')],
    ['an id with a doubled separator', () => containerdArgs('c..1')],
    ['a namespace outside containerd\'s rules', () => containerdArgs('c1', '-x')],
    ['a bundle path mountinfo would escape', () => containerdArgs('c1', 'default', `${bundle} x`)],
    ['a relative bundle path', () => containerdArgs('c1', 'default', 'bundles/c1')],
    ['a flag it does not know', () => ['-unknown', 'x', ...containerdArgs()]],
  ] as const) {
    it(`goes to Node for ${what}`, () => {
      assert.match(run(args()).toString(), /^node /);
    });
  }

  it('leaves every other action to Node', () => {
    assert.match(run(containerdArgs().slice(0, -1).concat('start')).toString(), /^node .* start$/);
  });
});

describe('cli: the wrapper\'s start of a pod\'s app container', () => {
  let dir: string;
  let fakeNode: string;
  const sandbox = 'a'.repeat(64);

  beforeEach(() => {
    dir = makeTempDir();
    fakeNode = path.join(dir, 'fake-node');
    fs.writeFileSync(fakeNode, '#!/bin/sh\nprintf "node %s" "$*"\n', { mode: 0o755 });
  });
  afterEach(() => removeTempDir(dir));

  const start = (id: string, annotations: Record<string, string>) => {
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ ociVersion: '1.0.2', annotations }));
    const args = ['-namespace', 'k8s.io', '-address', `${dir}/containerd.sock`, '-publish-binary', '/usr/bin/containerd', '-id', id, 'start'];
    // stdin /dev/null, as containerd 1.6 runs `start`.
    const r = spawnSync(WRAPPER, args, { cwd: dir, env: { PATH: process.env.PATH, BURROW_NODE: fakeNode }, stdio: ['ignore', 'pipe', 'pipe'] });
    assert.equal(r.status, 0, r.stderr.toString());
    return { out: r.stdout.toString(), args };
  };

  it('goes to Node when nobody listens on the pod\'s socket', () => {
    const { out, args } = start('b'.repeat(64), { 'io.kubernetes.cri.sandbox-id': sandbox });
    assert.equal(out, `node ${path.resolve(__dirname, '../../..')}/dist/shim/cli/main.js ${args.join(' ')}`);
    assert.ok(!fs.existsSync(path.join(dir, 'address')));
  });

  it('goes to Node for the pause container, and for containers grouped another way', () => {
    assert.match(start(sandbox, { 'io.kubernetes.cri.sandbox-id': sandbox }).out, /^node /);
    assert.match(start('c1', { 'io.kubernetes.cri.sandbox-id': sandbox, 'io.containerd.runc.v2.group': 'g' }).out, /^node /);
    assert.match(start('c1', {}).out, /^node /);
  });
});
