import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as net from 'net';
import * as path from 'path';
import { decodeMessage, lookupService } from '../../shim/protocol/proto-registry';
import { Code, RpcError } from '../../shim/protocol/status';
import { encodeFrame, FrameReader, MessageType } from '../../shim/protocol/ttrpc-frame';
import { CallContext, TtrpcServer } from '../../shim/protocol/ttrpc-server';
import { EventPublisher } from '../../shim/service/events-publisher';
import { closeListener, delay, listenUnix, makeTempDir, RecordingLogger, removeTempDir, waitFor } from './helpers';

const EVENTS = 'containerd.services.events.ttrpc.v1.Events';
const ZERO_TIME = { seconds: -62135596800, nanos: 0 };

interface Envelope {
  timestamp: { seconds: number; nanos: number };
  namespace: string;
  topic: string;
  event: { type_url: string; value: Uint8Array };
}

interface Received {
  envelope: Envelope;
  ctx: CallContext;
}

/** A stand-in for containerd's ttrpc events endpoint. */
class FakeContainerd {
  readonly received: Received[] = [];
  /** Failures to inject: each Forward call shifts one off (undefined = succeed). */
  readonly failures: Array<RpcError | undefined> = [];
  calls = 0;
  private server: TtrpcServer | null = null;
  private listener: net.Server | null = null;

  constructor(private readonly socketPath: string) {}

  async start(): Promise<void> {
    this.listener = await listenUnix(this.socketPath);
    this.server = new TtrpcServer({ logger: new RecordingLogger() });
    this.server.addService(EVENTS, lookupService(EVENTS), {
      Forward: async (req: { envelope: Envelope }, ctx: CallContext) => {
        this.calls++;
        const failure = this.failures.shift();
        if (failure !== undefined) throw failure;
        this.received.push({ envelope: req.envelope, ctx });
        return undefined;
      },
    });
    this.server.serve(this.listener);
  }

  async stop(): Promise<void> {
    await this.server?.close(100);
    if (this.listener !== null) await closeListener(this.listener);
    this.server = null;
    this.listener = null;
  }

  topics(): string[] {
    return this.received.map((r) => r.envelope.topic);
  }
}

describe('service: EventPublisher', function () {
  this.timeout(20000);

  let dir: string;
  let socketPath: string;
  let fake: FakeContainerd;
  let logger: RecordingLogger;
  let publisher: EventPublisher | null;

  beforeEach(async () => {
    dir = makeTempDir();
    socketPath = path.join(dir, 'containerd.sock.ttrpc');
    fake = new FakeContainerd(socketPath);
    await fake.start();
    logger = new RecordingLogger();
    publisher = null;
  });

  afterEach(async () => {
    await publisher?.close(200);
    await fake.stop();
    removeTempDir(dir);
  });

  function makePublisher(extra: { ttrpcAddress?: string; retryDelayMs?: number } = {}): EventPublisher {
    publisher = new EventPublisher({
      namespace: 'k8s.io',
      ttrpcAddress: socketPath,
      logger,
      retryDelayMs: 20,
      ...extra,
    });
    return publisher;
  }

  it('forwards events in order with correct envelopes and namespace metadata', async () => {
    const p = makePublisher();
    const before = Math.floor(Date.now() / 1000);
    p.publish('/tasks/create', 'containerd.events.TaskCreate', {
      container_id: 'c1',
      bundle: '/run/b/c1',
      rootfs: [{ type: 'overlay', source: 'overlay', options: ['lowerdir=/a'] }],
      io: { stdout: '/run/fifo/out', terminal: false },
      pid: 100,
    });
    p.publish('/tasks/start', 'containerd.events.TaskStart', { container_id: 'c1', pid: 100 });
    for (let i = 0; i < 30; i++) {
      p.publish('/tasks/exec-added', 'containerd.events.TaskExecAdded', { container_id: 'c1', exec_id: `e${i}` });
    }
    p.publish('/tasks/exit', 'containerd.events.TaskExit', {
      container_id: 'c1',
      id: 'c1',
      pid: 100,
      exit_status: 137,
      exited_at: ZERO_TIME,
    });
    await waitFor(() => fake.received.length === 33, 'all events');

    const topics = fake.topics();
    assert.equal(topics[0], '/tasks/create');
    assert.equal(topics[1], '/tasks/start');
    assert.equal(topics[32], '/tasks/exit');
    const execIds = fake.received
      .slice(2, 32)
      .map((r) => decodeMessage<{ exec_id: string }>(r.envelope.event.type_url, r.envelope.event.value).exec_id);
    assert.deepEqual(execIds, Array.from({ length: 30 }, (_, i) => `e${i}`));

    for (const { envelope, ctx } of fake.received) {
      assert.equal(envelope.namespace, 'k8s.io');
      assert.ok(envelope.timestamp.seconds >= before && envelope.timestamp.seconds <= Date.now() / 1000 + 1);
      assert.ok(!envelope.event.type_url.includes('/'), 'bare type URL');
      assert.equal(ctx.namespace, 'k8s.io');
      assert.deepEqual(ctx.metadata.get('containerd-namespace-ttrpc'), ['k8s.io']);
      assert.ok(ctx.deadlineMs !== undefined, 'Forward carries a timeout');
    }
    const create = fake.received[0].envelope.event;
    assert.equal(create.type_url, 'containerd.events.TaskCreate');
    const decoded = decodeMessage<{ rootfs: Array<{ options: string[] }>; io: { stdout: string }; pid: number }>(
      create.type_url,
      create.value,
    );
    assert.deepEqual(decoded.rootfs[0].options, ['lowerdir=/a']);
    assert.equal(decoded.io.stdout, '/run/fifo/out');
    assert.equal(decoded.pid, 100);
    const exit = decodeMessage('containerd.events.TaskExit', fake.received[32].envelope.event.value);
    assert.deepEqual(exit, { container_id: 'c1', id: 'c1', pid: 100, exit_status: 137, exited_at: ZERO_TIME });
    assert.equal(p.pending, 0);
  });

  it('reconnects and delivers after containerd restarts', async () => {
    const p = makePublisher({ retryDelayMs: 100 });
    p.publish('/tasks/start', 'containerd.events.TaskStart', { container_id: 'c1', pid: 1 });
    await waitFor(() => fake.received.length === 1, 'first event');

    await fake.stop();
    p.publish('/tasks/exit', 'containerd.events.TaskExit', { container_id: 'c1', id: 'c1', pid: 1, exit_status: 0 });
    p.publish('/tasks/delete', 'containerd.events.TaskDelete', { container_id: 'c1', pid: 1 });
    await delay(150);
    assert.equal(p.pending, 2, 'events wait while containerd is down');

    fake = new FakeContainerd(socketPath);
    await fake.start();
    await waitFor(() => fake.received.length === 2, 'events after restart', 5000);
    assert.deepEqual(fake.topics(), ['/tasks/exit', '/tasks/delete']);
    assert.ok(logger.at('warn').some((r) => /will retry/.test(r.msg)));
  });

  it('redials at once when a Forward fails with ttrpc: closed', async () => {
    // A raw endpoint that hangs up on the first connection's request and answers on the second.
    const rawPath = path.join(dir, 'raw.sock');
    const raw = await listenUnix(rawPath);
    let connections = 0;
    const delivered: string[] = [];
    raw.on('connection', (socket: net.Socket) => {
      const n = ++connections;
      const reader = new FrameReader();
      socket.on('error', () => undefined);
      socket.on('data', (chunk: Buffer) => {
        for (const ev of reader.push(chunk)) {
          if (ev.kind !== 'frame') continue;
          if (n === 1) {
            socket.destroy();
            return;
          }
          const req = decodeMessage<{ payload: Uint8Array }>('ttrpc.Request', ev.frame.data);
          const fwd = decodeMessage<{ envelope: Envelope }>(
            'containerd.services.events.ttrpc.v1.ForwardRequest',
            req.payload,
          );
          delivered.push(fwd.envelope.topic);
          socket.write(encodeFrame(ev.frame.streamId, MessageType.Response, Buffer.alloc(0)));
        }
      });
    });
    try {
      // With a 5 s retry delay only the immediate redial can deliver in time.
      const p = makePublisher({ ttrpcAddress: `unix://${rawPath}`, retryDelayMs: 5000 });
      const started = Date.now();
      p.publish('/tasks/paused', 'containerd.events.TaskPaused', { container_id: 'c1' });
      await waitFor(() => delivered.length === 1, 'event over the second connection', 2000);
      assert.ok(Date.now() - started < 2000);
      assert.equal(connections, 2);
      assert.deepEqual(delivered, ['/tasks/paused']);
      await p.close(1000);
    } finally {
      await closeListener(raw);
    }
  });

  it('retries a failing Forward with growing delays, then drops it after 5 attempts', async () => {
    const p = makePublisher({ retryDelayMs: 20 });
    fake.failures.push(new RpcError(Code.Unavailable, 'busy'), new RpcError(Code.Unavailable, 'busy'));
    p.publish('/tasks/oom', 'containerd.events.TaskOOM', { container_id: 'c1' });
    await waitFor(() => fake.received.length === 1, 'event after two failures');
    assert.equal(fake.calls, 3);

    for (let i = 0; i < 5; i++) fake.failures.push(new RpcError(Code.InvalidArgument, 'bad topic'));
    p.publish('/tasks/resumed', 'containerd.events.TaskResumed', { container_id: 'c1' });
    p.publish('/tasks/paused', 'containerd.events.TaskPaused', { container_id: 'c1' });
    await waitFor(() => fake.received.length === 2, 'event after the dropped one');
    assert.deepEqual(fake.topics(), ['/tasks/oom', '/tasks/paused']);
    assert.equal(fake.calls, 3 + 5 + 1);
    const dropped = logger.at('error').find((r) => /dropping event after repeated failures/.test(r.msg));
    assert.ok(dropped);
    assert.deepEqual((dropped.meta as { topic: string; attempts: number }).topic, '/tasks/resumed');
  });

  it('never throws from publish, even for unencodable events or after close', async () => {
    const p = makePublisher();
    p.publish('/tasks/exit', 'containerd.events.NoSuchEvent', {});
    p.publish('/tasks/exit', 'containerd.events.TaskExit', { exited_at: 'not an object' });
    assert.equal(p.pending, 0);
    assert.equal(logger.at('error').length, 2);
    await p.close();
    p.publish('/tasks/oom', 'containerd.events.TaskOOM', { container_id: 'c1' });
    assert.equal(p.pending, 0);
  });

  it('close() drains queued events before disconnecting', async () => {
    const p = makePublisher();
    for (let i = 0; i < 10; i++) p.publish('/tasks/oom', 'containerd.events.TaskOOM', { container_id: `c${i}` });
    await p.close(5000);
    assert.equal(fake.received.length, 10);
  });

  it('close() gives up after its timeout when containerd is unreachable', async () => {
    await fake.stop();
    const p = makePublisher({ retryDelayMs: 1000 });
    p.publish('/tasks/oom', 'containerd.events.TaskOOM', { container_id: 'c1' });
    const started = Date.now();
    await p.close(150);
    assert.ok(Date.now() - started < 1000);
    assert.equal(p.pending, 0);
    assert.ok(logger.at('error').some((r) => /undelivered/.test(r.msg)));
  });

  it('falls back to `<publish-binary> publish` when TTRPC_ADDRESS is unset', async () => {
    const script = path.join(dir, 'fake-containerd');
    const argsFile = path.join(dir, 'args');
    const stdinFile = path.join(dir, 'stdin');
    fs.writeFileSync(script, `#!/bin/sh\necho "$@" >> '${argsFile}'\ncat >> '${stdinFile}'\n`, { mode: 0o755 });
    publisher = new EventPublisher({
      namespace: 'default',
      publishBinary: script,
      containerdAddress: '/run/containerd/containerd.sock',
      logger,
      retryDelayMs: 20,
    });
    publisher.publish('/tasks/exit', 'containerd.events.TaskExit', { container_id: 'c1', id: 'c1', pid: 5, exit_status: 3 });
    await publisher.close(5000);
    assert.equal(
      fs.readFileSync(argsFile, 'utf8'),
      '--address /run/containerd/containerd.sock publish --topic /tasks/exit --namespace default\n',
    );
    const any = decodeMessage<{ type_url: string; value: Uint8Array }>('google.protobuf.Any', fs.readFileSync(stdinFile));
    assert.equal(any.type_url, 'containerd.events.TaskExit');
    assert.deepEqual(decodeMessage('containerd.events.TaskExit', any.value), {
      container_id: 'c1',
      id: 'c1',
      pid: 5,
      exit_status: 3,
      exited_at: null,
    });
  });

  it('retries a failing publish binary and reports its stderr', async () => {
    const script = path.join(dir, 'failing-containerd');
    fs.writeFileSync(script, '#!/bin/sh\ncat >/dev/null\necho "ctr: connection refused" >&2\nexit 1\n', { mode: 0o755 });
    publisher = new EventPublisher({
      namespace: 'default',
      publishBinary: script,
      containerdAddress: '/nonexistent.sock',
      logger,
      retryDelayMs: 5,
    });
    publisher.publish('/tasks/oom', 'containerd.events.TaskOOM', { container_id: 'c1' });
    await waitFor(() => logger.at('error').length === 1, 'event to be dropped', 5000);
    const meta = logger.at('error')[0].meta as { attempts: number; error: string };
    assert.equal(meta.attempts, 5);
    assert.match(meta.error, /exit 1\): ctr: connection refused/);
  });
});
