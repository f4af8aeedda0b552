/**
 * The same services as ttrpc-server.ts, served over gRPC (HTTP/2 cleartext on the shim's unix
 * socket) with @grpc/grpc-js: containerd 1.7+ dials a shim that announced `"protocol":"grpc"`
 * with grpc-go. Handlers are the very ones the ttrpc server runs (rpc-service.ts); messages are
 * encoded and decoded by the same proto registry, so both transports carry identical bytes and
 * statuses. The listening socket is the one `start` created and handed over (fd 3): accepted
 * connections are injected into grpc-js rather than letting it bind a path itself.
 */
import * as grpc from '@grpc/grpc-js';
import type * as net from 'net';
import type * as protobuf from 'protobufjs';
import { decodeMessage, encodeMessage } from './proto-registry';
import { CallContext, Logger, MethodEntry, UnaryHandler, unaryMethods } from './rpc-service';
import { Code, StatusLike, statusFromError } from './status';

/** containerd's namespace header for gRPC (the ttrpc one has a `-ttrpc` suffix). */
export const GRPC_NAMESPACE_METADATA_KEY = 'containerd-namespace';

/**
 * Status codes are the same numbers in both worlds (ttrpc carries google.rpc.Status), so an
 * RpcError's code passes through unchanged; this table only pins that down for the compiler
 * and for readers.
 */
export function grpcStatus(code: Code): grpc.status {
  const table: Record<Code, grpc.status> = {
    [Code.OK]: grpc.status.OK,
    [Code.Canceled]: grpc.status.CANCELLED,
    [Code.Unknown]: grpc.status.UNKNOWN,
    [Code.InvalidArgument]: grpc.status.INVALID_ARGUMENT,
    [Code.DeadlineExceeded]: grpc.status.DEADLINE_EXCEEDED,
    [Code.NotFound]: grpc.status.NOT_FOUND,
    [Code.AlreadyExists]: grpc.status.ALREADY_EXISTS,
    [Code.PermissionDenied]: grpc.status.PERMISSION_DENIED,
    [Code.ResourceExhausted]: grpc.status.RESOURCE_EXHAUSTED,
    [Code.FailedPrecondition]: grpc.status.FAILED_PRECONDITION,
    [Code.Aborted]: grpc.status.ABORTED,
    [Code.OutOfRange]: grpc.status.OUT_OF_RANGE,
    [Code.Unimplemented]: grpc.status.UNIMPLEMENTED,
    [Code.Internal]: grpc.status.INTERNAL,
    [Code.Unavailable]: grpc.status.UNAVAILABLE,
    [Code.DataLoss]: grpc.status.DATA_LOSS,
    [Code.Unauthenticated]: grpc.status.UNAUTHENTICATED,
  };
  return table[code] ?? grpc.status.UNKNOWN;
}

export interface GrpcServerOptions {
  logger: Logger;
}

const DEFAULT_CLOSE_TIMEOUT_MS = 5000;

type UnaryCallback = (err: grpc.ServerErrorResponse | null, value?: Buffer) => void;

export class GrpcServer {
  private readonly logger: Logger;
  private readonly server = new grpc.Server();
  private readonly names = new Set<string>();
  private injector: ReturnType<grpc.Server['createConnectionInjector']> | null = null;
  private readonly listeners = new Set<net.Server>();
  private readonly sockets = new Set<net.Socket>();
  private inFlightTotal = 0;
  private shuttingDown = false;
  private onSettled: (() => void) | null = null;

  constructor(opts: GrpcServerOptions) {
    this.logger = opts.logger;
  }

  get connectionCount(): number {
    return this.sockets.size;
  }

  get inFlight(): number {
    return this.inFlightTotal;
  }

  /** Registers `impl` as gRPC service `name` (paths `/<name>/<Method>`); same contract as TtrpcServer.addService. */
  addService(name: string, service: protobuf.Service, impl: Partial<Record<string, UnaryHandler>>): void {
    if (this.names.has(name)) throw new Error(`grpc: service ${name} already registered`);
    if (this.injector !== null) throw new Error(`grpc: service ${name} added after serving started`);
    const methods = unaryMethods(name, service, this.logger);
    const definition: Record<string, grpc.MethodDefinition<Buffer, Buffer>> = {};
    const implementation: grpc.UntypedServiceImplementation = {};
    for (const [method, entry] of methods) {
      const handler = impl[method];
      if (typeof handler !== 'function') continue; // grpc-js answers UNIMPLEMENTED for it
      definition[method] = {
        path: `/${name}/${method}`,
        requestStream: false,
        responseStream: false,
        // Decoding happens in the handler so a bad payload gets the ttrpc server's answer.
        requestDeserialize: (bytes: Buffer) => bytes,
        requestSerialize: (bytes: Buffer) => bytes,
        responseSerialize: (bytes: Buffer) => bytes,
        responseDeserialize: (bytes: Buffer) => bytes,
        originalName: method,
      };
      implementation[method] = (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: UnaryCallback) =>
        void this.dispatch(name, method, entry, handler.bind(impl), call, callback);
    }
    for (const key of Object.keys(impl)) {
      if (!methods.has(key)) {
        this.logger.warn('grpc: handler has no matching method in the proto service', { service: name, method: key });
      }
    }
    this.server.addService(definition, implementation);
    this.names.add(name);
  }

  /** Serves gRPC on every connection `listener` accepts (e.g. the socket `start` handed over). */
  serve(listener: net.Server): void {
    if (this.injector === null) {
      this.injector = this.server.createConnectionInjector(grpc.ServerCredentials.createInsecure());
    }
    this.listeners.add(listener);
    listener.on('connection', (socket: net.Socket) => this.handleConnection(socket));
    listener.on('error', (err: Error) => this.logger.error('grpc: listener error', { error: err.message }));
  }

  handleConnection(socket: net.Socket): void {
    if (this.shuttingDown || this.injector === null) {
      socket.destroy();
      return;
    }
    this.sockets.add(socket);
    // EPIPE/ECONNRESET are the peer going away; 'close' follows and cleans up.
    socket.on('error', (err: NodeJS.ErrnoException) => this.logger.debug('grpc: connection error', { error: err.message, code: err.code }));
    socket.on('close', () => {
      this.sockets.delete(socket);
      this.settled();
    });
    this.injector.injectConnection(socket);
  }

  /**
   * Stops accepting and sends every client a GOAWAY: running calls finish and their replies
   * are flushed (containerd's Shutdown call is one of them), then grpc-js closes each
   * connection. What is still open after timeoutMs is cut.
   */
  async close(timeoutMs: number = DEFAULT_CLOSE_TIMEOUT_MS): Promise<void> {
    this.shuttingDown = true;
    for (const listener of this.listeners) listener.close(() => undefined);
    this.listeners.clear();
    this.injector?.drain(timeoutMs);
    const deadline = Date.now() + timeoutMs;
    while (this.sockets.size > 0 && Date.now() < deadline) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, deadline - Date.now());
        this.onSettled = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.onSettled = null;
    }
    if (this.sockets.size > 0) {
      this.logger.warn('grpc: closing connections with calls still running', { connections: this.sockets.size, inFlight: this.inFlightTotal });
    }
    this.injector?.destroy();
    this.server.forceShutdown();
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
  }

  private settled(): void {
    const wake = this.onSettled;
    if (wake !== null) {
      this.onSettled = null;
      wake();
    }
  }

  private async dispatch(
    service: string,
    method: string,
    entry: MethodEntry,
    handler: UnaryHandler,
    call: grpc.ServerUnaryCall<Buffer, Buffer>,
    callback: UnaryCallback,
  ): Promise<void> {
    this.inFlightTotal++;
    try {
      const result = await this.invoke(service, method, entry, handler, call);
      if (result.ok) callback(null, result.payload);
      else callback(toServiceError(result.status));
    } catch (err) {
      // Only reachable through a bug in the response path; never let it escape.
      this.logger.error('grpc: failed to answer request', { service, method, error: (err as Error).message });
    } finally {
      this.inFlightTotal--;
      this.settled();
    }
  }

  private async invoke(
    service: string,
    method: string,
    entry: MethodEntry,
    handler: UnaryHandler,
    call: grpc.ServerUnaryCall<Buffer, Buffer>,
  ): Promise<{ ok: true; payload: Buffer } | { ok: false; status: StatusLike }> {
    let decoded: unknown;
    try {
      decoded = decodeMessage(entry.requestType, call.request);
    } catch (err) {
      return { ok: false, status: { code: Code.Internal, message: `grpc: error unmarshalling request: ${(err as Error).message}` } };
    }
    let response: unknown;
    try {
      response = await handler(decoded, buildContext(service, method, call));
    } catch (err) {
      return { ok: false, status: statusFromError(err) };
    }
    try {
      return { ok: true, payload: Buffer.from(encodeMessage(entry.responseType, (response ?? {}) as object)) };
    } catch (err) {
      this.logger.error('grpc: handler returned a response that cannot be encoded', {
        service,
        method,
        responseType: entry.responseType,
        error: (err as Error).message,
      });
      return { ok: false, status: { code: Code.Internal, message: `grpc: error marshalling response: ${(err as Error).message}` } };
    }
  }
}

function toServiceError(status: StatusLike): grpc.ServerErrorResponse {
  const err = new Error(status.message) as grpc.ServerErrorResponse;
  err.code = grpcStatus(status.code);
  err.details = status.message;
  return err;
}

function buildContext(service: string, method: string, call: grpc.ServerUnaryCall<Buffer, Buffer>): CallContext {
  const metadata = new Map<string, string[]>();
  // grpc-js keys are lower-case already, as are ttrpc's after buildContext there.
  for (const key of Object.keys(call.metadata.getMap())) {
    metadata.set(key, call.metadata.get(key).map((v) => (typeof v === 'string' ? v : v.toString('utf8'))));
  }
  const ctx: CallContext = { service, method, metadata };
  const ns = metadata.get(GRPC_NAMESPACE_METADATA_KEY);
  if (ns !== undefined) ctx.namespace = ns[0];
  const deadline = call.getDeadline();
  const ms = deadline instanceof Date ? deadline.getTime() : Number(deadline);
  if (Number.isFinite(ms)) ctx.deadlineMs = ms;
  return ctx;
}
