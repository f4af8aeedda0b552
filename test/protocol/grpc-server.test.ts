import * as grpc from '@grpc/grpc-js';
import { strict as assert } from 'assert';
import type * as net from 'net';
import * as path from 'path';
import { GrpcServer, grpcStatus } from '../../shim/protocol/grpc-server';
import { decodeMessage, encodeMessage, lookupService } from '../../shim/protocol/proto-registry';
import type { CallContext } from '../../shim/protocol/rpc-service';
import { Code, RpcError } from '../../shim/protocol/status';
import { closeListener, listenUnix, makeTempDir, RecordingLogger, removeTempDir } from './helpers';

const TASK = 'containerd.task.v2.Task';

function unary(client: grpc.Client, method: string, reqType: string, resType: string, req: object, md = new grpc.Metadata(), deadlineMs?: number): Promise<any> {
  return new Promise((resolve, reject) => {
    client.makeUnaryRequest(
      `/${TASK}/${method}`,
      (v: object) => Buffer.from(encodeMessage(reqType, v)),
      (b: Buffer) => decodeMessage(resType, b),
      req,
      md,
      deadlineMs ? { deadline: Date.now() + deadlineMs } : {},
      (err: grpc.ServiceError | null, value?: unknown) => (err ? reject(err) : resolve(value)),
    );
  });
}

function rawUnary(client: grpc.Client, method: string, payload: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    client.makeUnaryRequest(`/${TASK}/${method}`, (b: Buffer) => b, (b: Buffer) => b, payload, (err: grpc.ServiceError | null, v?: Buffer) =>
      err ? reject(err) : resolve(v as Buffer),
    );
  });
}

describe('protocol: GrpcServer (the Task handlers over gRPC)', () => {
  let tmp: string;
  let sock: string;
  let listener: net.Server;
  let server: GrpcServer;
  let client: grpc.Client;
  let logger: RecordingLogger;
  let seen: CallContext[];
  let releaseStart: () => void;

  beforeEach(async () => {
    tmp = makeTempDir();
    sock = path.join(tmp, 'shim.sock');
    logger = new RecordingLogger();
    seen = [];
    server = new GrpcServer({ logger });
    const handlers = {
      State: async (req: any, ctx: CallContext) => {
        seen.push(ctx);
        return { id: req.id, pid: 42, status: 2, exited_at: { seconds: -62135596800, nanos: 0 } };
      },
      Kill: async (req: any) => {
        throw new RpcError(Code.NotFound, `container ${req.id}: container not created`);
      },
      Pids: async () => {
        throw new Error('plain failure');
      },
      Wait: async () => ({ exited_at: 5 }),
      Pause: async () => undefined,
      Start: () => new Promise<object>((resolve) => (releaseStart = () => resolve({ pid: 7 }))),
    };
    server.addService(TASK, lookupService(TASK), handlers);
    server.addService('containerd.task.v3.Task', lookupService(TASK), handlers);
    listener = await listenUnix(sock);
    server.serve(listener);
    client = new grpc.Client(`unix://${sock}`, grpc.credentials.createInsecure());
  });

  afterEach(async () => {
    client.close();
    await server.close(1000);
    await closeListener(listener).catch(() => undefined);
    removeTempDir(tmp);
  });

  it('maps every status code to the same gRPC number', () => {
    for (const v of Object.values(Code).filter((x): x is number => typeof x === 'number')) {
      assert.equal(grpcStatus(v), v, Code[v]);
    }
    assert.equal(grpcStatus(Code.NotFound), grpc.status.NOT_FOUND);
    assert.equal(grpcStatus(Code.FailedPrecondition), grpc.status.FAILED_PRECONDITION);
  });

  it('answers with the handler\'s response, with the namespace header and deadline in the context', async () => {
    const md = new grpc.Metadata();
    md.set('containerd-namespace', 'k8s.io');
    md.set('x-extra', 'a');
    const res = await unary(client, 'State', 'containerd.task.v2.StateRequest', 'containerd.task.v2.StateResponse', { id: 'c1' }, md, 10_000);
    assert.equal(res.id, 'c1');
    assert.equal(res.pid, 42);
    assert.equal(res.status, 2);
    assert.equal(res.exited_at.seconds, -62135596800);
    assert.equal(seen[0].namespace, 'k8s.io');
    assert.equal(seen[0].service, TASK);
    assert.equal(seen[0].method, 'State');
    assert.deepEqual(seen[0].metadata.get('x-extra'), ['a']);
    assert.ok(seen[0].deadlineMs && seen[0].deadlineMs > Date.now() && seen[0].deadlineMs <= Date.now() + 10_000);
  });

  it('serves the same handlers under containerd.task.v3.Task', async () => {
    const res = await new Promise<any>((resolve, reject) =>
      client.makeUnaryRequest(
        '/containerd.task.v3.Task/State',
        (v: object) => Buffer.from(encodeMessage('containerd.task.v2.StateRequest', v)),
        (b: Buffer) => decodeMessage('containerd.task.v2.StateResponse', b),
        { id: 'v3' },
        (err: grpc.ServiceError | null, v?: unknown) => (err ? reject(err) : resolve(v)),
      ),
    );
    assert.equal(res.id, 'v3');
  });

  it('turns an RpcError into its status and a plain Error into UNKNOWN, with the message as details', async () => {
    await assert.rejects(unary(client, 'Kill', 'containerd.task.v2.KillRequest', 'google.protobuf.Empty', { id: 'gone', signal: 9 }), (e: grpc.ServiceError) => {
      assert.equal(e.code, grpc.status.NOT_FOUND);
      assert.equal(e.details, 'container gone: container not created');
      return true;
    });
    await assert.rejects(unary(client, 'Pids', 'containerd.task.v2.PidsRequest', 'containerd.task.v2.PidsResponse', { id: 'x' }), (e: grpc.ServiceError) => {
      assert.equal(e.code, grpc.status.UNKNOWN);
      assert.equal(e.details, 'plain failure');
      return true;
    });
  });

  it('an empty response encodes to zero bytes, as Go sends google.protobuf.Empty', async () => {
    const raw = await rawUnary(client, 'Pause', Buffer.from(encodeMessage('containerd.task.v2.PauseRequest', { id: 'c' })));
    assert.equal(raw.length, 0);
  });

  it('UNIMPLEMENTED for a method without a handler and for an unknown service', async () => {
    await assert.rejects(unary(client, 'Delete', 'containerd.task.v2.DeleteRequest', 'containerd.task.v2.DeleteResponse', { id: 'x' }), (e: grpc.ServiceError) => {
      assert.equal(e.code, grpc.status.UNIMPLEMENTED);
      return true;
    });
    await assert.rejects(
      new Promise((resolve, reject) =>
        client.makeUnaryRequest('/nope.Service/X', (b: Buffer) => b, (b: Buffer) => b, Buffer.alloc(0), (err: grpc.ServiceError | null, v?: Buffer) =>
          err ? reject(err) : resolve(v),
        ),
      ),
      (e: grpc.ServiceError) => e.code === grpc.status.UNIMPLEMENTED,
    );
  });

  it('INTERNAL for a payload that does not decode and for a response that does not encode (logged)', async () => {
    await assert.rejects(rawUnary(client, 'State', Buffer.from([0x0f])), (e: grpc.ServiceError) => {
      assert.equal(e.code, grpc.status.INTERNAL);
      assert.match(e.details, /unmarshalling request/);
      return true;
    });
    await assert.rejects(unary(client, 'Wait', 'containerd.task.v2.WaitRequest', 'containerd.task.v2.WaitResponse', { id: 'x' }), (e: grpc.ServiceError) => {
      assert.equal(e.code, grpc.status.INTERNAL);
      assert.match(e.details, /marshalling response/);
      return true;
    });
    assert.ok(logger.at('error').some((r) => /cannot be encoded/.test(r.msg)));
  });

  it('refuses a second registration of a service name', () => {
    assert.throws(() => server.addService(TASK, lookupService(TASK), {}), /already registered/);
  });

  it('close() lets a running call finish and deliver its answer', async () => {
    const started = unary(client, 'Start', 'containerd.task.v2.StartRequest', 'containerd.task.v2.StartResponse', { id: 'slow' });
    for (let i = 0; i < 100 && server.inFlight === 0; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(server.inFlight, 1);
    const closing = server.close(5000);
    releaseStart();
    assert.equal((await started).pid, 7);
    await closing;
    assert.equal(server.connectionCount, 0);
  });
});
