import { strict as assert } from 'assert';
import * as net from 'net';
import * as path from 'path';
import { decodeMessage, encodeMessage, lookupService } from '../../shim/protocol/proto-registry';
import { Code, RpcError } from '../../shim/protocol/status';
import { CLOSED_MESSAGE, isClosedError, socketPathFromAddress, TtrpcClient } from '../../shim/protocol/ttrpc-client';
import { encodeFrame, encodeHeader, Frame, FrameReader, MessageType } from '../../shim/protocol/ttrpc-frame';
import { CallContext, TtrpcServer } from '../../shim/protocol/ttrpc-server';
import { closeListener, delay, listenUnix, makeTempDir, RecordingLogger, removeTempDir, waitFor } from './helpers';

const TASK = 'containerd.task.v2.Task';

function enc(typeName: string, body: object): Uint8Array {
  return encodeMessage(`containerd.task.v2.${typeName}`, body);
}

/** A hand-rolled server to observe exactly what the client puts on the wire. */
function rawServer(listener: net.Server, onFrame: (frame: Frame, socket: net.Socket) => void): void {
  listener.on('connection', (socket: net.Socket) => {
    const reader = new FrameReader();
    socket.on('error', () => undefined);
    socket.on('data', (chunk: Buffer) => {
      for (const ev of reader.push(chunk)) if (ev.kind === 'frame') onFrame(ev.frame, socket);
    });
  });
}

describe('protocol: ttrpc client', function () {
  this.timeout(20000);

  let dir: string;
  let socketPath: string;
  let listener: net.Server;
  let clients: TtrpcClient[];

  async function dial(address = socketPath): Promise<TtrpcClient> {
    const c = new TtrpcClient(address);
    clients.push(c);
    await c.connect(2000);
    return c;
  }

  beforeEach(async () => {
    dir = makeTempDir();
    socketPath = path.join(dir, 'c.sock');
    listener = await listenUnix(socketPath);
    clients = [];
  });

  afterEach(async () => {
    for (const c of clients) c.close();
    await closeListener(listener);
    removeTempDir(dir);
  });

  describe('against TtrpcServer', () => {
    let server: TtrpcServer;
    let contexts: CallContext[];
    let release: () => void;

    beforeEach(() => {
      contexts = [];
      const hold = new Promise<void>((resolve) => {
        release = resolve;
      });
      server = new TtrpcServer({ logger: new RecordingLogger() });
      server.addService(TASK, lookupService(TASK), {
        Connect: async (req: { id: string }, ctx: CallContext) => {
          contexts.push(ctx);
          return { shim_pid: 1234, task_pid: req.id === 'c1' ? 5678 : 0 };
        },
        State: async (req: { id: string }) => {
          throw new RpcError(Code.NotFound, `container ${req.id} not created: not found`);
        },
        Kill: async () => undefined,
        Wait: async () => {
          await hold;
          return { exit_status: 0 };
        },
      });
      server.serve(listener);
    });

    afterEach(async () => {
      release();
      await server.close(200);
    });

    it('round-trips a call with metadata and deadline', async () => {
      const c = await dial();
      const before = Date.now();
      const out = await c.call(TASK, 'Connect', enc('ConnectRequest', { id: 'c1' }), {
        metadata: { 'containerd-namespace-ttrpc': 'default' },
        timeoutMs: 3000,
      });
      assert.deepEqual(decodeMessage('containerd.task.v2.ConnectResponse', out), {
        shim_pid: 1234,
        task_pid: 5678,
        version: '',
      });
      assert.equal(contexts[0].namespace, 'default');
      const deadline = contexts[0].deadlineMs ?? 0;
      assert.ok(deadline >= before + 3000 && deadline <= Date.now() + 3000);
    });

    it('accepts unix:// addresses', async () => {
      assert.equal(socketPathFromAddress('unix:///run/x.sock'), '/run/x.sock');
      assert.equal(socketPathFromAddress('/run/x.sock'), '/run/x.sock');
      const c = await dial(`unix://${socketPath}`);
      await c.call(TASK, 'Connect', enc('ConnectRequest', { id: 'c1' }));
    });

    it('rejects with RpcError carrying the status code', async () => {
      const c = await dial();
      await assert.rejects(c.call(TASK, 'State', enc('StateRequest', { id: 'c9' })), (err: unknown) => {
        assert.ok(err instanceof RpcError);
        assert.equal(err.code, Code.NotFound);
        assert.equal(err.message, 'container c9 not created: not found');
        return true;
      });
      await assert.rejects(c.call(TASK, 'Pause', enc('PauseRequest', { id: 'c1' })), {
        code: Code.Unimplemented,
        message: 'method Pause',
      });
      // The connection stays usable after errors.
      const empty = await c.call(TASK, 'Kill', enc('KillRequest', { id: 'c1', signal: 15 }));
      assert.equal(empty.length, 0);
    });

    it('times out a call locally and ignores the late answer', async () => {
      const c = await dial();
      await assert.rejects(c.call(TASK, 'Wait', enc('WaitRequest', { id: 'c1' }), { timeoutMs: 50 }), (err: unknown) => {
        assert.ok(err instanceof RpcError);
        assert.equal(err.code, Code.DeadlineExceeded);
        assert.match(err.message, /Task\/Wait \(stream 1\).*50 ms/);
        return true;
      });
      release();
      await waitFor(() => server.inFlight === 0, 'Wait handler to finish');
      await c.call(TASK, 'Connect', enc('ConnectRequest', { id: 'c1' }));
    });

    it('fails pending calls with ttrpc: closed when the server goes away', async () => {
      const c = await dial();
      const pending = c.call(TASK, 'Wait', enc('WaitRequest', { id: 'c1' }));
      await waitFor(() => server.inFlight === 1, 'Wait to be running');
      await server.close(0);
      await assert.rejects(pending, (err: unknown) => {
        assert.ok(isClosedError(err));
        assert.equal((err as Error).message, CLOSED_MESSAGE);
        return true;
      });
      assert.equal(c.closed, true);
      await assert.rejects(c.call(TASK, 'Connect', enc('ConnectRequest', {})), { message: CLOSED_MESSAGE });
    });

    it('close() fails pending calls with ttrpc: closed', async () => {
      const c = await dial();
      const pending = c.call(TASK, 'Wait', enc('WaitRequest', { id: 'c1' }));
      c.close();
      await assert.rejects(pending, { message: CLOSED_MESSAGE });
      assert.ok(!isClosedError(new RpcError(Code.Unknown, CLOSED_MESSAGE)));
    });
  });

  describe('on the wire', () => {
    it('allocates stream ids 1, 3, 5 … and sets timeout_nano', async () => {
      const seen: Array<{ id: number; method: string; timeout: number }> = [];
      rawServer(listener, (frame, socket) => {
        const req = decodeMessage<{ method: string; timeout_nano: number }>('ttrpc.Request', frame.data);
        seen.push({ id: frame.streamId, method: req.method, timeout: req.timeout_nano });
        socket.write(encodeFrame(frame.streamId, MessageType.Response, Buffer.alloc(0)));
      });
      const c = await dial();
      await Promise.all([
        c.call(TASK, 'A', new Uint8Array(0)),
        c.call(TASK, 'B', new Uint8Array(0), { timeoutMs: 1500 }),
        c.call(TASK, 'C', new Uint8Array(0)),
      ]);
      await c.call(TASK, 'D', new Uint8Array(0));
      assert.deepEqual(seen, [
        { id: 1, method: 'A', timeout: 0 },
        { id: 3, method: 'B', timeout: 1_500_000_000 },
        { id: 5, method: 'C', timeout: 0 },
        { id: 7, method: 'D', timeout: 0 },
      ]);
    });

    it('matches out-of-order responses to their calls', async () => {
      const held: Array<{ id: number; socket: net.Socket }> = [];
      rawServer(listener, (frame, socket) => {
        held.push({ id: frame.streamId, socket });
      });
      const c = await dial();
      const a = c.call(TASK, 'Connect', new Uint8Array(0));
      const b = c.call(TASK, 'Connect', new Uint8Array(0));
      await waitFor(() => held.length === 2, 'both requests');
      for (const { id, socket } of [...held].reverse()) {
        const payload = enc('ConnectResponse', { task_pid: id });
        socket.write(encodeFrame(id, MessageType.Response, encodeMessage('ttrpc.Response', { payload })));
      }
      const [ra, rb] = await Promise.all([a, b]);
      assert.equal(decodeMessage<{ task_pid: number }>('containerd.task.v2.ConnectResponse', ra).task_pid, 1);
      assert.equal(decodeMessage<{ task_pid: number }>('containerd.task.v2.ConnectResponse', rb).task_pid, 3);
    });

    it('fails only the call whose response is oversized', async () => {
      rawServer(listener, (frame, socket) => {
        if (frame.streamId === 1) {
          socket.write(encodeHeader({ length: 4194305, streamId: 1, type: MessageType.Response, flags: 0 }));
          socket.write(Buffer.alloc(4194305));
        } else {
          socket.write(encodeFrame(frame.streamId, MessageType.Response, Buffer.alloc(0)));
        }
      });
      const c = await dial();
      await assert.rejects(c.call(TASK, 'Big', new Uint8Array(0)), { code: Code.ResourceExhausted });
      assert.equal((await c.call(TASK, 'Small', new Uint8Array(0))).length, 0);
    });

    it('reports dial failures with the socket path', async () => {
      const missing = path.join(dir, 'missing.sock');
      const c = new TtrpcClient(missing);
      await assert.rejects(c.connect(500), (err: NodeJS.ErrnoException) => {
        assert.ok(err.message.includes(missing));
        assert.equal(err.code, 'ENOENT');
        return true;
      });
      assert.equal(c.closed, true);
      await assert.rejects(c.call(TASK, 'Connect', new Uint8Array(0)), { message: CLOSED_MESSAGE });
      await delay(10);
    });
  });
});
