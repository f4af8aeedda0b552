import { strict as assert } from 'assert';
import * as net from 'net';
import * as path from 'path';
import { decodeMessage, encodeMessage, lookupService } from '../../shim/protocol/proto-registry';
import { Code, RpcError } from '../../shim/protocol/status';
import { encodeFrame, encodeHeader, Frame, MessageType } from '../../shim/protocol/ttrpc-frame';
import { CallContext, TtrpcServer, UnaryHandler } from '../../shim/protocol/ttrpc-server';
import {
  closeListener,
  delay,
  hex,
  listenUnix,
  makeTempDir,
  RawConn,
  RecordingLogger,
  removeTempDir,
  waitFor,
} from './helpers';

const TASK = 'containerd.task.v2.Task';
const ZERO_TIME = { seconds: -62135596800, nanos: 0 };

interface Status {
  code: number;
  message: string;
}

function requestFrame(
  streamId: number,
  service: string,
  method: string,
  payload: Uint8Array,
  extra: { metadata?: Array<{ key: string; value: string }>; timeout_nano?: number } = {},
): Buffer {
  return encodeFrame(streamId, MessageType.Request, encodeMessage('ttrpc.Request', { service, method, payload, ...extra }));
}

function taskRequest(streamId: number, method: string, typeName: string, body: object): Buffer {
  return requestFrame(streamId, TASK, method, encodeMessage(`containerd.task.v2.${typeName}`, body));
}

function statusOf(frame: Frame): Status | null {
  const resp = decodeMessage<{ status: Status | null }>('ttrpc.Response', frame.data);
  return resp.status === null ? null : { code: resp.status.code, message: resp.status.message };
}

function payloadOf<T>(frame: Frame, typeName: string): T {
  const resp = decodeMessage<{ payload: Uint8Array }>('ttrpc.Response', frame.data);
  return decodeMessage<T>(typeName, resp.payload);
}

/** Deterministic PRNG so a fuzz failure can be replayed. */
function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s;
  };
}

describe('protocol: ttrpc server', function () {
  this.timeout(20000);

  let dir: string;
  let socketPath: string;
  let listener: net.Server;
  let server: TtrpcServer;
  let logger: RecordingLogger;
  let contexts: CallContext[];
  let openGate: () => void;
  let gate: Promise<void>;
  const conns: RawConn[] = [];

  async function connect(): Promise<RawConn> {
    const c = await RawConn.connect(socketPath);
    conns.push(c);
    return c;
  }

  beforeEach(async () => {
    dir = makeTempDir();
    socketPath = path.join(dir, 's.sock');
    listener = await listenUnix(socketPath);
    logger = new RecordingLogger();
    contexts = [];
    gate = new Promise<void>((resolve) => {
      openGate = resolve;
    });
    const impl: Partial<Record<string, UnaryHandler>> = {
      Connect: async () => ({ shim_pid: 1234, task_pid: 5678 }),
      State: async (req: { id: string }, ctx: CallContext) => {
        contexts.push(ctx);
        switch (req.id) {
          case 'nf':
            throw new RpcError(Code.NotFound, 'container not created: not found');
          case 'dup':
            throw new RpcError(Code.AlreadyExists, 'id dup: already exists');
          case 'pre':
            throw new RpcError(Code.FailedPrecondition, 'process not created');
          case 'plain':
            throw new Error('cannot delete a running process');
          case 'str':
            throw 'a bare string';
          case 'badresp':
            return { exited_at: 5 };
          default:
            return { id: req.id, pid: 42, status: 2, exited_at: ZERO_TIME };
        }
      },
      Wait: async () => {
        await gate;
        return { exit_status: 137, exited_at: ZERO_TIME };
      },
      Kill: async () => undefined,
      // Synchronous throw from a handler typed as async must still become a status.
      Pids: ((): Promise<unknown> => {
        throw new RpcError(Code.NotFound, 'sync throw');
      }) as UnaryHandler,
    };
    server = new TtrpcServer({ logger });
    const service = lookupService(TASK);
    server.addService(TASK, service, impl);
    server.addService('containerd.task.v3.Task', service, impl);
    server.serve(listener);
  });

  afterEach(async () => {
    openGate();
    for (const c of conns.splice(0)) c.destroy();
    await server.close(500);
    await closeListener(listener);
    removeTempDir(dir);
  });

  it('answers the ttrpc.md §5 Connect example with the exact reply bytes', async () => {
    const c = await connect();
    c.write(
      requestFrame(1, TASK, 'Connect', encodeMessage('containerd.task.v2.ConnectRequest', { id: 'abc' }), {
        metadata: [{ key: 'containerd-namespace-ttrpc', value: 'default' }],
      }),
    );
    c.write(taskRequest(3, 'State', 'StateRequest', { id: 'nf' }));
    await c.waitFrames(2);
    assert.deepEqual(
      c.allBytes(),
      Buffer.concat([
        hex('00000008 00000001 02 00 12 06 08 d2 09 10 ae 2c'),
        hex('00000026 00000003 02 00 0a 24 08 05 12 20'),
        Buffer.from('container not created: not found'),
      ]),
    );
  });

  it('dispatches concurrently: a slow Wait does not block a later State', async () => {
    const c = await connect();
    c.write(taskRequest(1, 'Wait', 'WaitRequest', { id: 'c1' }));
    c.write(taskRequest(3, 'State', 'StateRequest', { id: 'c1' }));
    const [first] = await c.waitFrames(1);
    assert.equal(first.streamId, 3);
    assert.deepEqual(payloadOf(first, 'containerd.task.v2.StateResponse'), {
      id: 'c1',
      bundle: '',
      pid: 42,
      status: 2,
      stdin: '',
      stdout: '',
      stderr: '',
      terminal: false,
      exit_status: 0,
      exited_at: ZERO_TIME,
      exec_id: '',
    });
    assert.equal(server.inFlight, 1);
    assert.equal(server.connectionCount, 1);
    openGate();
    const frames = await c.waitFrames(2);
    assert.equal(frames[1].streamId, 1);
    assert.equal(statusOf(frames[1]), null);
    assert.deepEqual(payloadOf(frames[1], 'containerd.task.v2.WaitResponse'), { exit_status: 137, exited_at: ZERO_TIME });
    await waitFor(() => server.inFlight === 0, 'in-flight to drain');
  });

  it('uses Go status messages for unknown services and methods', async () => {
    const c = await connect();
    c.write(requestFrame(1, 'containerd.task.v9.Task', 'Create', Buffer.alloc(0)));
    c.write(requestFrame(3, TASK, 'Frobnicate', Buffer.alloc(0)));
    // In the proto, absent from the impl.
    c.write(taskRequest(5, 'Checkpoint', 'CheckpointTaskRequest', { id: 'c1' }));
    const frames = await c.waitFrames(3);
    const byId = new Map(frames.map((f) => [f.streamId, statusOf(f)]));
    assert.deepEqual(byId.get(1), { code: Code.Unimplemented, message: 'service containerd.task.v9.Task' });
    assert.deepEqual(byId.get(3), { code: Code.Unimplemented, message: 'method Frobnicate' });
    assert.deepEqual(byId.get(5), { code: Code.Unimplemented, message: 'method Checkpoint' });
  });

  it('propagates RpcError codes and maps other errors to Unknown', async () => {
    const c = await connect();
    const cases: Array<[string, Status]> = [
      ['nf', { code: Code.NotFound, message: 'container not created: not found' }],
      ['dup', { code: Code.AlreadyExists, message: 'id dup: already exists' }],
      ['pre', { code: Code.FailedPrecondition, message: 'process not created' }],
      ['plain', { code: Code.Unknown, message: 'cannot delete a running process' }],
      ['str', { code: Code.Unknown, message: 'a bare string' }],
    ];
    cases.forEach(([id], i) => c.write(taskRequest(2 * i + 1, 'State', 'StateRequest', { id })));
    c.write(taskRequest(2 * cases.length + 1, 'Pids', 'PidsRequest', { id: 'x' }));
    const frames = await c.waitFrames(cases.length + 1);
    const byId = new Map(frames.map((f) => [f.streamId, f]));
    cases.forEach(([, expected], i) => {
      const frame = byId.get(2 * i + 1);
      assert.ok(frame);
      assert.deepEqual(statusOf(frame), expected);
      assert.equal(decodeMessage<{ payload: Uint8Array }>('ttrpc.Response', frame.data).payload.length, 0);
    });
    const pids = byId.get(2 * cases.length + 1);
    assert.ok(pids);
    assert.deepEqual(statusOf(pids), { code: Code.NotFound, message: 'sync throw' });
  });

  it('reports a handler response that cannot be encoded as Internal', async () => {
    const c = await connect();
    c.write(taskRequest(1, 'State', 'StateRequest', { id: 'badresp' }));
    const [f] = await c.waitFrames(1);
    const st = statusOf(f);
    assert.equal(st?.code, Code.Internal);
    assert.match(st?.message ?? '', /^ttrpc: error marshalling response: /);
    assert.ok(logger.at('error').some((r) => /cannot be encoded/.test(r.msg)));
  });

  it('rejects undecodable envelopes, undecodable payloads and even stream ids', async () => {
    const c = await connect();
    c.write(encodeFrame(1, MessageType.Request, hex('ff ff ff')));
    c.write(requestFrame(3, TASK, 'State', hex('1a 05 61'))); // field 3 announces 5 bytes, has 1
    c.write(taskRequest(4, 'State', 'StateRequest', { id: 'c1' }));
    const frames = await c.waitFrames(3);
    const byId = new Map(frames.map((f) => [f.streamId, statusOf(f)]));
    assert.equal(byId.get(1)?.code, Code.InvalidArgument);
    assert.match(byId.get(1)?.message ?? '', /^unmarshal request error: /);
    assert.equal(byId.get(3)?.code, Code.Internal);
    assert.match(byId.get(3)?.message ?? '', /^ttrpc: error unmarshalling payload: /);
    assert.deepEqual(byId.get(4), {
      code: Code.InvalidArgument,
      message: 'StreamID must be odd for client initiated streams',
    });
    // None of that is a reason to drop containerd's connection.
    c.write(taskRequest(5, 'Connect', 'ConnectRequest', { id: 'c1' }));
    await c.waitFrames(4);
    assert.equal(c.closed, false);
  });

  it('ignores frames that are not requests', async () => {
    const c = await connect();
    c.write(encodeFrame(1, MessageType.Data, hex('0a 00'), 0x01));
    c.write(encodeFrame(3, MessageType.Response, Buffer.alloc(0)));
    c.write(encodeFrame(5, 0x7f, hex('00')));
    c.write(taskRequest(7, 'Connect', 'ConnectRequest', { id: 'c1' }));
    const [f] = await c.waitFrames(1);
    assert.equal(f.streamId, 7);
    await delay(50);
    assert.equal(c.frames.length, 1);
  });

  it('passes metadata, namespace and deadline to handlers; same impl under v3', async () => {
    const c = await connect();
    const before = Date.now();
    c.write(
      requestFrame(1, 'containerd.task.v3.Task', 'State', encodeMessage('containerd.task.v2.StateRequest', { id: 'c1', exec_id: 'e1' }), {
        metadata: [
          { key: 'containerd-namespace-ttrpc', value: 'k8s.io' },
          { key: 'traceparent', value: 'a' },
          { key: 'Traceparent', value: 'b' },
        ],
        timeout_nano: 2_000_000_000,
      }),
    );
    c.write(taskRequest(3, 'State', 'StateRequest', { id: 'c2' }));
    await c.waitFrames(2);
    const [ctx3, ctx2] = contexts;
    assert.equal(ctx3.service, 'containerd.task.v3.Task');
    assert.equal(ctx3.method, 'State');
    assert.equal(ctx3.namespace, 'k8s.io');
    assert.deepEqual(ctx3.metadata.get('traceparent'), ['a', 'b']);
    assert.ok(ctx3.deadlineMs !== undefined && ctx3.deadlineMs >= before + 2000 && ctx3.deadlineMs <= Date.now() + 2000);
    assert.equal(ctx2.namespace, undefined);
    assert.equal(ctx2.deadlineMs, undefined);
  });

  it('answers Empty methods with a zero-length Response frame', async () => {
    const c = await connect();
    c.write(taskRequest(1, 'Kill', 'KillRequest', { id: 'c1', signal: 9, all: true }));
    const [f] = await c.waitFrames(1);
    assert.equal(f.length, 0);
    assert.equal(f.type, MessageType.Response);
  });

  it('answers an oversized frame with ResourceExhausted, closes only that connection', async () => {
    const bad = await connect();
    const good = await connect();
    bad.write(encodeHeader({ length: 4194305, streamId: 7, type: MessageType.Request, flags: 0 }));
    bad.write(Buffer.alloc(1000, 0x41));
    const [f] = await bad.waitFrames(1);
    assert.equal(f.streamId, 7);
    assert.deepEqual(statusOf(f), {
      code: Code.ResourceExhausted,
      message: 'message length 4194305 exceed maximum message size of 4194304',
    });
    await bad.waitClosed();
    assert.ok(logger.at('error').some((r) => /oversized frame/.test(r.msg)));
    good.write(taskRequest(1, 'Connect', 'ConnectRequest', { id: 'c1' }));
    await good.waitFrames(1);
    assert.equal(good.closed, false);
    const third = await connect();
    third.write(taskRequest(1, 'Connect', 'ConnectRequest', { id: 'c1' }));
    await third.waitFrames(1);
    await waitFor(() => server.connectionCount === 2, 'bad connection to be dropped');
  });

  it('accepts a frame of exactly 4 MiB', async () => {
    const c = await connect();
    // A request whose envelope is exactly the maximum: padding goes into metadata.
    const base = encodeMessage('ttrpc.Request', {
      service: TASK,
      method: 'Connect',
      payload: encodeMessage('containerd.task.v2.ConnectRequest', { id: 'c1' }),
    });
    // metadata entry: tag + 4-byte length + KeyValue{0a 01 'k', 12 <4-byte len> value} = 13 bytes of framing.
    const valueLen = 4194304 - base.length - 13;
    const data = encodeMessage('ttrpc.Request', {
      service: TASK,
      method: 'Connect',
      payload: encodeMessage('containerd.task.v2.ConnectRequest', { id: 'c1' }),
      metadata: [{ key: 'k', value: 'v'.repeat(valueLen) }],
    });
    assert.equal(data.length, 4194304);
    c.write(encodeFrame(1, MessageType.Request, data));
    const [f] = await c.waitFrames(1, 10000);
    assert.equal(statusOf(f), null);
  });

  it('survives random garbage and truncated frames', async () => {
    const next = prng(0x5eed);
    for (let i = 0; i < 40; i++) {
      const c = await connect();
      const len = 1 + (next() % 300);
      const junk = Buffer.alloc(len);
      for (let j = 0; j < len; j++) junk[j] = next() & 0xff;
      if (i % 4 === 1) junk[0] = 0; // plausible lengths too, not only huge ones
      if (i % 4 === 2) {
        // A valid header announcing more than is sent: truncated frame, then EOF.
        c.write(encodeHeader({ length: 500, streamId: 1, type: MessageType.Request, flags: 0 }));
      }
      if (i % 4 === 3) {
        // Valid header, random body.
        c.write(encodeFrame(1, MessageType.Request, junk));
      } else {
        c.write(junk);
      }
      if (i % 2 === 0) c.socket.end();
      else c.destroy();
    }
    await waitFor(() => server.connectionCount === 0, 'fuzzed connections to go away');
    const c = await connect();
    c.write(taskRequest(1, 'Connect', 'ConnectRequest', { id: 'c1' }));
    const [f] = await c.waitFrames(1);
    assert.deepEqual(payloadOf(f, 'containerd.task.v2.ConnectResponse'), { shim_pid: 1234, task_pid: 5678, version: '' });
  });

  it('shrugs off a client EOF in the middle of a request', async () => {
    const c = await connect();
    c.write(taskRequest(1, 'Wait', 'WaitRequest', { id: 'c1' }));
    const half = taskRequest(3, 'State', 'StateRequest', { id: 'c1' });
    c.write(half.subarray(0, half.length - 3));
    await waitFor(() => server.inFlight === 1, 'Wait to be running');
    c.socket.end();
    await waitFor(() => server.connectionCount === 0, 'connection to close');
    openGate(); // the Wait reply now has nowhere to go
    await waitFor(() => server.inFlight === 0, 'abandoned handler to finish');
    await delay(20);
    assert.deepEqual(logger.at('error'), []);
    const d = await connect();
    d.write(taskRequest(1, 'Connect', 'ConnectRequest', { id: 'c1' }));
    await d.waitFrames(1);
  });

  it('close() waits for running handlers, then closes', async () => {
    const c = await connect();
    const idle = await connect();
    c.write(taskRequest(1, 'Wait', 'WaitRequest', { id: 'c1' }));
    await waitFor(() => server.inFlight === 1, 'Wait to be running');
    const closing = server.close(5000);
    await idle.waitClosed(); // idle connections go at once
    assert.equal(c.closed, false);
    setTimeout(() => openGate(), 50);
    await closing;
    assert.equal(c.frames.length, 1, 'in-flight Wait was answered before closing');
    await c.waitClosed();
    assert.equal(server.connectionCount, 0);
    await assert.rejects(RawConn.connect(socketPath));
  });

  it('close() gives up on handlers after its timeout', async () => {
    const c = await connect();
    c.write(taskRequest(1, 'Wait', 'WaitRequest', { id: 'c1' }));
    await waitFor(() => server.inFlight === 1, 'Wait to be running');
    const started = Date.now();
    await server.close(100);
    assert.ok(Date.now() - started < 1000);
    await c.waitClosed();
    assert.equal(c.frames.length, 0);
  });

  it('refuses to register a service name twice', () => {
    assert.throws(() => server.addService(TASK, lookupService(TASK), {}), /service containerd\.task\.v2\.Task already registered/);
  });
});
