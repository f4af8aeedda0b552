// The shim binary driven the way containerd drives it, but by this test: `start` in a bundle,
// the Task service over ttrpc, events to a ttrpc Events server of ours, `delete`, `-v`.
// This reaches the shim's own validation, which containerd's client checks would otherwise hide.

import { strict as assert } from 'assert';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as net from 'net';
import * as path from 'path';
import { decodeMessage, encodeMessage, lookupService } from '../shim/protocol/proto-registry';
import { Code, RpcError } from '../shim/protocol/status';
import { TtrpcClient } from '../shim/protocol/ttrpc-client';
import { TtrpcServer } from '../shim/protocol/ttrpc-server';
import { silentLogger } from '../shim/log/logger';
import { defaultSpec, freshBusyboxRootfs, repoRoot, run, sleep } from './harness';

const SHIM = path.join(repoRoot(), 'bin', 'containerd-shim-burrow-v2');
const BASE = '/run/burrow-e2e/direct';
const TASK = 'containerd.task.v2.Task';

interface Forwarded {
  topic: string;
  type: string;
  event: Record<string, any>;
}

describe('shim binary over ttrpc, without containerd', function () {
  this.timeout(60_000);
  const events: Forwarded[] = [];
  let eventsServer: TtrpcServer;
  let eventsListener: net.Server;
  let rootfs: string;
  const env = {
    TTRPC_ADDRESS: path.join(BASE, 'events.sock'),
    BURROW_ROOT: path.join(BASE, 'state'),
  };
  const shimFlags = (id: string) => ['-namespace', 'direct', '-address', path.join(BASE, 'containerd.sock'), '-publish-binary', '/bin/false', '-id', id];

  function bundle(id: string, edit: (spec: Record<string, any>) => void = () => undefined): string {
    const dir = path.join(BASE, 'bundles', id);
    fs.mkdirSync(dir, { recursive: true });
    const spec = defaultSpec(rootfs);
    spec.process.args = ['sh', '-c', 'exit 7'];
    edit(spec);
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(spec));
    return dir;
  }

  async function startShim(id: string, dir: string): Promise<TtrpcClient> {
    const r = await run(SHIM, [...shimFlags(id), 'start'], { cwd: dir, env, timeoutMs: 20_000 });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^unix:\/\/\/run\/containerd\/s\/[0-9a-f]{64}$/);
    assert.equal(fs.readFileSync(path.join(dir, 'address'), 'utf8'), r.stdout);
    const client = new TtrpcClient(r.stdout);
    await client.connect();
    return client;
  }

  async function call(client: TtrpcClient, method: string, req: object): Promise<Record<string, any>> {
    const svc = lookupService(TASK);
    const m = svc.methods[method];
    m.resolve();
    const bytes = await client.call(TASK, method, encodeMessage(m.resolvedRequestType!.fullName.slice(1), req), {
      metadata: { 'containerd-namespace-ttrpc': 'direct' },
      timeoutMs: 20_000,
    });
    return decodeMessage(m.resolvedResponseType!.fullName.slice(1), bytes);
  }

  async function expectCode(p: Promise<unknown>, code: Code, message: RegExp): Promise<void> {
    await assert.rejects(p, (err: unknown) => {
      assert.ok(err instanceof RpcError, String(err));
      assert.equal(err.code, code, err.message);
      assert.match(err.message, message);
      return true;
    });
  }

  async function shutdown(client: TtrpcClient, id: string, dir: string): Promise<void> {
    const sock = fs.readFileSync(path.join(dir, 'address'), 'utf8').replace('unix://', '');
    await call(client, 'Shutdown', { id });
    client.close();
    for (let i = 0; i < 50 && fs.existsSync(sock); i++) await sleep(100);
    assert.ok(!fs.existsSync(sock), `shim socket ${sock} still exists after Shutdown`);
  }

  before(async function () {
    rootfs = await freshBusyboxRootfs(BASE);
    eventsServer = new TtrpcServer({ logger: silentLogger });
    eventsServer.addService('containerd.services.events.ttrpc.v1.Events', lookupService('containerd.services.events.ttrpc.v1.Events'), {
      Forward: async (req: Record<string, any>) => {
        const env = req.envelope;
        const event = decodeMessage(env.event.type_url, env.event.value);
        events.push({ topic: env.topic, type: env.event.type_url, event });
        return undefined;
      },
    });
    eventsListener = net.createServer();
    eventsServer.serve(eventsListener);
    await new Promise<void>((r) => eventsListener.listen(env.TTRPC_ADDRESS, r));
  });

  after(async function () {
    await eventsServer?.close();
    eventsListener?.close();
    fs.rmSync(BASE, { recursive: true, force: true });
  });

  it('runs a task through its whole lifecycle with the events in order', async function () {
    const dir = bundle('life');
    const client = await startShim('life', dir);
    const created = await call(client, 'Create', { id: 'life', bundle: dir });
    assert.ok(created.pid > 0);
    const state = await call(client, 'State', { id: 'life' });
    assert.equal(state.status, 1 /* CREATED */);
    assert.equal(state.exited_at.seconds, -62135596800);
    const connect = await call(client, 'Connect', { id: 'life' });
    assert.equal(connect.task_pid, created.pid);
    const waiting = call(client, 'Wait', { id: 'life' });
    const started = await call(client, 'Start', { id: 'life' });
    assert.equal(started.pid, created.pid);
    const waited = await waiting;
    assert.equal(waited.exit_status, 7);
    assert.equal((await call(client, 'State', { id: 'life' })).status, 3 /* STOPPED */);
    await expectCode(call(client, 'Kill', { id: 'life', signal: 9 }), Code.NotFound, /process already finished/);
    const deleted = await call(client, 'Delete', { id: 'life' });
    assert.equal(deleted.exit_status, 7);
    assert.equal(deleted.pid, created.pid);
    await expectCode(call(client, 'State', { id: 'life' }), Code.NotFound, /container not created/);
    await shutdown(client, 'life', dir);
    const mine = events.filter((e) => e.event.container_id === 'life');
    assert.deepEqual(
      mine.map((e) => e.topic),
      ['/tasks/create', '/tasks/start', '/tasks/exit', '/tasks/delete'],
    );
    const exit = mine[2].event;
    assert.equal(exit.id, 'life');
    assert.equal(exit.pid, created.pid);
    assert.equal(exit.exit_status, 7);
    assert.deepEqual(fs.readdirSync(env.BURROW_ROOT), []);
  });

  it('answers bad requests with the right status codes and keeps serving', async function () {
    const dir = bundle('codes');
    const client = await startShim('codes', dir);
    await expectCode(call(client, 'Create', { id: 'bad..id', bundle: dir }), Code.InvalidArgument, /bad\.\.id/);
    await expectCode(call(client, 'Create', { id: '../escape', bundle: dir }), Code.InvalidArgument, /escape/);
    const broken = path.join(BASE, 'bundles', 'broken');
    fs.mkdirSync(broken, { recursive: true });
    fs.writeFileSync(path.join(broken, 'config.json'), '{ not json');
    await expectCode(call(client, 'Create', { id: 'broken', bundle: broken }), Code.InvalidArgument, /error parsing OCI spec ".*broken\/config.json"/);
    const missing = bundle('missing-rootfs', (s) => (s.root = { path: '/nonexistent/rootfs' }));
    await expectCode(call(client, 'Create', { id: 'missing-rootfs', bundle: missing }), Code.InvalidArgument, /rootfs "\/nonexistent\/rootfs" does not exist/);
    const nobin = bundle('nobin', (s) => (s.process.args = ['definitely-not-here']));
    await expectCode(call(client, 'Create', { id: 'nobin', bundle: nobin }), Code.Unknown, /executable file not found in \$PATH/);
    await expectCode(call(client, 'Create', { id: 'stdio', bundle: dir, stdout: '/nonexistent/fifo' }), Code.InvalidArgument, /nonexistent\/fifo/);
    await expectCode(call(client, 'Kill', { id: 'nothing', signal: 9 }), Code.NotFound, /container not created/);
    await expectCode(call(client, 'Exec', { id: 'codes', exec_id: 'e1' }), Code.NotFound, /container not created/);
    await expectCode(call(client, 'Pause', { id: 'codes' }), Code.NotFound, /container not created/);
    await expectCode(call(client, 'Checkpoint', { id: 'codes' }), Code.Unimplemented, /Checkpoint/);
    assert.equal((await call(client, 'Connect', { id: 'nothing' })).task_pid, 0);

    const created = await call(client, 'Create', { id: 'codes', bundle: dir });
    await expectCode(call(client, 'Create', { id: 'codes', bundle: dir }), Code.AlreadyExists, /already exists/);
    await expectCode(call(client, 'State', { id: 'codes', exec_id: 'nope' }), Code.NotFound, /process does not exist nope/);
    // Killing a created task: its init never runs the program and reports the signal.
    await call(client, 'Kill', { id: 'codes', signal: 9 });
    assert.equal((await call(client, 'Wait', { id: 'codes' })).exit_status, 137);
    assert.equal((await call(client, 'Delete', { id: 'codes' })).pid, created.pid);
    await shutdown(client, 'codes', dir);
    assert.deepEqual(fs.readdirSync(env.BURROW_ROOT), []);
  });

  it('delete cleans up after a shim that is gone and prints a DeleteResponse', async function () {
    const dir = bundle('orphan');
    const client = await startShim('orphan', dir);
    const created = await call(client, 'Create', { id: 'orphan', bundle: dir });
    await call(client, 'Start', { id: 'orphan' }).catch(() => undefined);
    // The shim dies without cleaning up: what containerd's `delete` is for.
    const shimPid = (await call(client, 'Connect', { id: 'orphan' })).shim_pid;
    client.close();
    process.kill(shimPid, 'SIGKILL');
    // stdout is protobuf bytes: read it raw.
    const r = spawnSync(SHIM, [...shimFlags('orphan'), '-bundle', dir, 'delete'], {
      cwd: dir,
      env: { ...process.env, ...env },
      timeout: 20_000,
    });
    assert.equal(r.status, 0, r.stderr.toString());
    const resp = decodeMessage<Record<string, any>>('containerd.task.v2.DeleteResponse', r.stdout);
    assert.equal(resp.pid, created.pid);
    assert.equal(resp.exit_status, 137);
    assert.ok(resp.exited_at.seconds > 0);
    assert.deepEqual(fs.readdirSync(env.BURROW_ROOT), []);
    for (let i = 0; i < 50 && fs.existsSync(`/proc/${created.pid}`); i++) await sleep(100);
    const stat = fs.existsSync(`/proc/${created.pid}/stat`) ? fs.readFileSync(`/proc/${created.pid}/stat`, 'utf8') : '';
    assert.ok(stat === '' || / Z /.test(stat), `container init ${created.pid} still alive: ${stat}`);
    // Idempotent: nothing left to clean, still a valid answer.
    const again = await run(SHIM, [...shimFlags('orphan'), '-bundle', dir, 'delete'], { cwd: dir, env, timeoutMs: 20_000 });
    assert.equal(again.code, 0, again.stderr);
    fs.rmSync(fs.readFileSync(path.join(dir, 'address'), 'utf8').replace('unix://', ''), { force: true });
  });

  it('-v prints its version', async function () {
    const r = await run(SHIM, ['-v']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /containerd-shim-burrow-v2:\n {2}Version: {2}\d+\.\d+\.\d+/);
  });

  it('rejects an unknown flag like Go shims do (exit 2)', async function () {
    const r = await run(SHIM, ['-bogus', 'x', 'start']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /flag provided but not defined: -bogus/);
  });
});
