/**
 * Unary ttrpc server (the protocol containerd uses to call shims), matching
 * the observable behaviour of Go's ttrpc 1.1.1 server: concurrent dispatch
 * per connection, Go's status texts, and never closing a connection unless
 * its framing became unusable — containerd reads any close as "shim died".
 */
import * as net from 'net';
import type * as protobuf from 'protobufjs';
import { decodeMessage, encodeMessage } from './proto-registry';
import { CallContext, Logger, MethodEntry, UnaryHandler, unaryMethods } from './rpc-service';
import { Code, StatusLike, statusFromError } from './status';
import { encodeFrame, FrameHeader, FrameReader, MAX_MESSAGE_SIZE, MessageType } from './ttrpc-frame';

export type { CallContext, Logger, UnaryHandler } from './rpc-service';

export const NAMESPACE_METADATA_KEY = 'containerd-namespace-ttrpc';

/** Decoded ttrpc.Request (keepCase plain object). */
interface RequestEnvelope {
  service: string;
  method: string;
  payload: Uint8Array;
  timeout_nano: number;
  metadata: Array<{ key: string; value: string }>;
}

interface ServiceEntry {
  name: string;
  methods: Map<string, MethodEntry>;
  impl: Partial<Record<string, UnaryHandler>>;
}

interface Connection {
  id: number;
  socket: net.Socket;
  reader: FrameReader;
  inFlight: number;
  /** Set once we decided to stop reading from it (oversized frame, shutdown). */
  closing: boolean;
}

export interface TtrpcServerOptions {
  logger: Logger;
  maxMessageSize?: number;
}

/** How long close() waits for running handlers before cutting connections. */
const DEFAULT_CLOSE_TIMEOUT_MS = 5000;

export class TtrpcServer {
  private readonly logger: Logger;
  private readonly maxMessageSize: number;
  private readonly services = new Map<string, ServiceEntry>();
  private readonly listeners = new Set<net.Server>();
  private readonly connections = new Set<Connection>();
  private nextConnId = 1;
  private inFlightTotal = 0;
  private shuttingDown = false;
  /** Woken whenever a handler finishes or a connection goes away, for close(). */
  private onSettled: (() => void) | null = null;

  constructor(opts: TtrpcServerOptions) {
    this.logger = opts.logger;
    this.maxMessageSize = opts.maxMessageSize ?? MAX_MESSAGE_SIZE;
  }

  get connectionCount(): number {
    return this.connections.size;
  }

  get inFlight(): number {
    return this.inFlightTotal;
  }

  /**
   * Registers `impl` under the ttrpc service name `name`. The method table
   * comes from the proto service, so the same impl can be registered under a
   * second name (containerd.task.v3.Task) with identical message types.
   */
  addService(name: string, service: protobuf.Service, impl: Partial<Record<string, UnaryHandler>>): void {
    if (this.services.has(name)) {
      throw new Error(`ttrpc: service ${name} already registered`);
    }
    const methods = unaryMethods(name, service, this.logger);
    for (const key of Object.keys(impl)) {
      if (!methods.has(key)) {
        this.logger.warn('ttrpc: handler has no matching method in the proto service', { service: name, method: key });
      }
    }
    this.services.set(name, { name, methods, impl });
  }

  /** Accept connections from an already-listening server (e.g. handed over by `start`). */
  serve(listener: net.Server): void {
    this.listeners.add(listener);
    listener.on('connection', (socket: net.Socket) => this.handleConnection(socket));
    listener.on('error', (err: Error) => {
      this.logger.error('ttrpc: listener error', { error: err.message, address: describeAddress(listener) });
    });
  }

  handleConnection(socket: net.Socket): void {
    if (this.shuttingDown) {
      socket.destroy();
      return;
    }
    const conn: Connection = {
      id: this.nextConnId++,
      socket,
      reader: new FrameReader(this.maxMessageSize),
      inFlight: 0,
      closing: false,
    };
    this.connections.add(conn);
    this.logger.debug('ttrpc: connection opened', { conn: conn.id });

    socket.on('data', (chunk: Buffer) => this.onData(conn, chunk));
    socket.on('error', (err: NodeJS.ErrnoException) => {
      // EPIPE/ECONNRESET are the peer going away; 'close' follows and cleans up.
      this.logger.debug('ttrpc: connection error', { conn: conn.id, error: err.message, code: err.code });
    });
    socket.on('end', () => {
      // Go's server drops the connection on EOF and abandons in-flight replies.
      if (!conn.reader.idle) {
        this.logger.debug('ttrpc: EOF inside a frame', { conn: conn.id });
      }
      socket.destroy();
    });
    socket.on('close', () => {
      this.connections.delete(conn);
      this.logger.debug('ttrpc: connection closed', { conn: conn.id, abandoned: conn.inFlight });
      this.settled();
    });
  }

  /**
   * Stops accepting, lets running handlers finish (at most timeoutMs) while
   * closing each connection as soon as it is idle, then destroys the rest.
   */
  async close(timeoutMs: number = DEFAULT_CLOSE_TIMEOUT_MS): Promise<void> {
    this.shuttingDown = true;
    for (const listener of this.listeners) {
      listener.close(() => undefined);
    }
    this.listeners.clear();

    const deadline = Date.now() + timeoutMs;
    for (;;) {
      for (const conn of this.connections) {
        if (conn.inFlight === 0) conn.socket.destroy();
      }
      if (this.connections.size === 0) return;
      const left = deadline - Date.now();
      if (left <= 0) break;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.onSettled = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.onSettled = null;
    }
    for (const conn of this.connections) {
      this.logger.warn('ttrpc: closing connection with handlers still running', { conn: conn.id, inFlight: conn.inFlight });
      conn.socket.destroy();
    }
    this.connections.clear();
  }

  private settled(): void {
    const wake = this.onSettled;
    if (wake !== null) {
      this.onSettled = null;
      wake();
    }
  }

  private onData(conn: Connection, chunk: Buffer): void {
    if (conn.closing) return;
    for (const event of conn.reader.push(chunk)) {
      if (event.kind === 'oversized') {
        this.rejectOversized(conn, event.header);
        return;
      }
      const { frame } = event;
      if (frame.type !== MessageType.Request) {
        // ttrpc 1.1.1 ignores other types for forward compatibility.
        this.logger.debug('ttrpc: ignoring non-request frame', { conn: conn.id, stream: frame.streamId, type: frame.type });
        continue;
      }
      if (frame.streamId % 2 !== 1) {
        this.sendStatus(conn, frame.streamId, {
          code: Code.InvalidArgument,
          message: 'StreamID must be odd for client initiated streams',
        });
        continue;
      }
      let request: RequestEnvelope;
      try {
        request = decodeMessage<RequestEnvelope>('ttrpc.Request', frame.data);
      } catch (err) {
        this.sendStatus(conn, frame.streamId, {
          code: Code.InvalidArgument,
          message: `unmarshal request error: ${(err as Error).message}`,
        });
        continue;
      }
      void this.dispatch(conn, frame.streamId, request);
    }
  }

  private rejectOversized(conn: Connection, header: FrameHeader): void {
    const message = `message length ${header.length} exceed maximum message size of ${this.maxMessageSize}`;
    this.logger.error('ttrpc: oversized frame, closing connection', {
      conn: conn.id,
      stream: header.streamId,
      length: header.length,
    });
    this.sendStatus(conn, header.streamId, { code: Code.ResourceExhausted, message });
    // The stream position can no longer be trusted (garbage often looks like
    // a huge length), so end the connection once the reply is flushed.
    conn.closing = true;
    conn.socket.end(() => conn.socket.destroy());
  }

  private async dispatch(conn: Connection, streamId: number, request: RequestEnvelope): Promise<void> {
    conn.inFlight++;
    this.inFlightTotal++;
    try {
      const result = await this.invoke(request);
      if (result.ok) {
        this.sendPayload(conn, streamId, request, result.payload);
      } else {
        this.sendStatus(conn, streamId, result.status);
      }
    } catch (err) {
      // Only reachable through a bug in the response path; never let it escape.
      this.logger.error('ttrpc: failed to answer request', {
        conn: conn.id,
        stream: streamId,
        service: request.service,
        method: request.method,
        error: (err as Error).message,
      });
    } finally {
      conn.inFlight--;
      this.inFlightTotal--;
      this.settled();
    }
  }

  private async invoke(
    request: RequestEnvelope,
  ): Promise<{ ok: true; payload: Uint8Array } | { ok: false; status: StatusLike }> {
    const service = this.services.get(request.service);
    if (service === undefined) {
      return { ok: false, status: { code: Code.Unimplemented, message: `service ${request.service}` } };
    }
    const method = service.methods.get(request.method);
    const handler = method !== undefined ? service.impl[request.method] : undefined;
    if (method === undefined || typeof handler !== 'function') {
      return { ok: false, status: { code: Code.Unimplemented, message: `method ${request.method}` } };
    }

    let decoded: unknown;
    try {
      decoded = decodeMessage(method.requestType, request.payload);
    } catch (err) {
      return {
        ok: false,
        status: { code: Code.Internal, message: `ttrpc: error unmarshalling payload: ${(err as Error).message}` },
      };
    }

    let response: unknown;
    try {
      response = await handler.call(service.impl, decoded, buildContext(request));
    } catch (err) {
      return { ok: false, status: statusFromError(err) };
    }

    try {
      return { ok: true, payload: encodeMessage(method.responseType, (response ?? {}) as object) };
    } catch (err) {
      this.logger.error('ttrpc: handler returned a response that cannot be encoded', {
        service: request.service,
        method: request.method,
        responseType: method.responseType,
        error: (err as Error).message,
      });
      return {
        ok: false,
        status: { code: Code.Internal, message: `ttrpc: error marshalling response: ${(err as Error).message}` },
      };
    }
  }

  private sendPayload(conn: Connection, streamId: number, request: RequestEnvelope, payload: Uint8Array): void {
    // Checked on the payload so the error reply itself always fits.
    if (payload.length + 16 > this.maxMessageSize) {
      const message = `message length ${payload.length} exceed maximum message size of ${this.maxMessageSize}`;
      this.logger.error('ttrpc: response too large', {
        conn: conn.id,
        stream: streamId,
        service: request.service,
        method: request.method,
        length: payload.length,
      });
      this.sendStatus(conn, streamId, { code: Code.ResourceExhausted, message });
      return;
    }
    // Status omitted on success, as Go does.
    this.write(conn, streamId, encodeMessage('ttrpc.Response', { payload }));
  }

  private sendStatus(conn: Connection, streamId: number, status: StatusLike): void {
    this.write(conn, streamId, encodeMessage('ttrpc.Response', { status: { code: status.code, message: status.message } }));
  }

  private write(conn: Connection, streamId: number, data: Uint8Array): void {
    const { socket } = conn;
    if (socket.destroyed || !socket.writable) {
      // The client is gone (or we are ending it); Go drops these too.
      this.logger.debug('ttrpc: dropping response for closed connection', { conn: conn.id, stream: streamId });
      return;
    }
    // One write per frame keeps concurrent responses from interleaving.
    socket.write(encodeFrame(streamId, MessageType.Response, data));
  }
}

function buildContext(request: RequestEnvelope): CallContext {
  const metadata = new Map<string, string[]>();
  for (const kv of request.metadata) {
    // Go's MD lower-cases keys; do the same so lookups are case-insensitive.
    const key = kv.key.toLowerCase();
    const value = kv.value;
    const list = metadata.get(key);
    if (list === undefined) metadata.set(key, [value]);
    else list.push(value);
  }
  const ctx: CallContext = { service: request.service, method: request.method, metadata };
  const ns = metadata.get(NAMESPACE_METADATA_KEY);
  if (ns !== undefined) ctx.namespace = ns[0];
  if (request.timeout_nano > 0) ctx.deadlineMs = Date.now() + request.timeout_nano / 1e6;
  return ctx;
}

function describeAddress(listener: net.Server): string {
  const addr = listener.address();
  return typeof addr === 'string' ? addr : addr === null ? '(not listening)' : `${addr.address}:${addr.port}`;
}
