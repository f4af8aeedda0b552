/**
 * Minimal unary ttrpc client, used by the shim to call containerd
 * (events Forward) and by tests. Follows the Go client: odd, strictly
 * increasing stream ids; one pending map; every pending call fails with
 * `ttrpc: closed` when the connection ends.
 */
import * as net from 'net';
import { decodeMessage, encodeMessage } from './proto-registry';
import { Code, RpcError } from './status';
import { encodeFrame, FrameReader, MAX_MESSAGE_SIZE, MessageType } from './ttrpc-frame';

/** Message of the error pending calls fail with when the connection ends (Go's ttrpc.ErrClosed). */
export const CLOSED_MESSAGE = 'ttrpc: closed';

export function isClosedError(err: unknown): boolean {
  return err instanceof Error && !(err instanceof RpcError) && err.message === CLOSED_MESSAGE;
}

export interface CallOptions {
  metadata?: Record<string, string>;
  /** Sent as timeout_nano and enforced locally (DeadlineExceeded). */
  timeoutMs?: number;
}

interface Pending {
  resolve(payload: Uint8Array): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout | null;
}

interface ResponseEnvelope {
  status: { code: number; message: string } | null;
  payload: Uint8Array;
}

/** `unix:///run/x.sock` → `/run/x.sock`; a plain path is used as is. */
export function socketPathFromAddress(address: string): string {
  return address.startsWith('unix://') ? address.slice('unix://'.length) : address;
}

const DEFAULT_CONNECT_TIMEOUT_MS = 5000;

export class TtrpcClient {
  private readonly path: string;
  private socket: net.Socket | null = null;
  private readonly reader = new FrameReader(MAX_MESSAGE_SIZE);
  private readonly pending = new Map<number, Pending>();
  private nextStreamId = 1;
  private isClosed = false;

  constructor(socketPath: string) {
    this.path = socketPathFromAddress(socketPath);
  }

  /** True once the connection ended or close() was called; a closed client cannot be reused. */
  get closed(): boolean {
    return this.isClosed;
  }

  connect(timeoutMs: number = DEFAULT_CONNECT_TIMEOUT_MS): Promise<void> {
    if (this.socket !== null || this.isClosed) {
      return Promise.reject(new Error(`ttrpc: client for ${this.path} already connected or closed`));
    }
    return new Promise<void>((resolve, reject) => {
      const socket = net.createConnection({ path: this.path });
      this.socket = socket;
      let dialing = true;
      const timer = setTimeout(() => {
        fail(new Error(`ttrpc: dial unix ${this.path}: timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      const fail = (err: Error): void => {
        dialing = false;
        clearTimeout(timer);
        this.shutdown();
        reject(err);
      };
      socket.once('connect', () => {
        if (!dialing) return;
        dialing = false;
        clearTimeout(timer);
        resolve();
      });
      // Kept for the socket's whole life: an 'error' without a listener would crash the process.
      socket.on('error', (err: NodeJS.ErrnoException) => {
        if (!dialing) {
          this.shutdown();
          return;
        }
        const wrapped = new Error(`ttrpc: dial unix ${this.path}: ${err.message}`) as NodeJS.ErrnoException;
        wrapped.code = err.code;
        fail(wrapped);
      });
      socket.on('data', (chunk: Buffer) => this.onData(chunk));
      socket.on('close', () => this.shutdown());
    });
  }

  call(service: string, method: string, payload: Uint8Array, opts: CallOptions = {}): Promise<Uint8Array> {
    const socket = this.socket;
    if (this.isClosed || socket === null || socket.destroyed || !socket.writable) {
      return Promise.reject(new Error(CLOSED_MESSAGE));
    }
    const streamId = this.nextStreamId;
    this.nextStreamId += 2;

    const metadata = Object.entries(opts.metadata ?? {}).map(([key, value]) => ({ key, value }));
    const request: Record<string, unknown> = { service, method, payload, metadata };
    if (opts.timeoutMs !== undefined && opts.timeoutMs > 0) {
      request.timeout_nano = Math.round(opts.timeoutMs * 1e6);
    }
    const data = encodeMessage('ttrpc.Request', request);
    if (data.length > MAX_MESSAGE_SIZE) {
      return Promise.reject(
        new RpcError(
          Code.ResourceExhausted,
          `ttrpc: ${service}/${method}: message length ${data.length} exceed maximum message size of ${MAX_MESSAGE_SIZE}`,
        ),
      );
    }

    return new Promise<Uint8Array>((resolve, reject) => {
      const entry: Pending = { resolve, reject, timer: null };
      if (opts.timeoutMs !== undefined && opts.timeoutMs > 0) {
        const timeoutMs = opts.timeoutMs;
        entry.timer = setTimeout(() => {
          // A late response for this id is then ignored, as the Go client does.
          this.pending.delete(streamId);
          reject(
            new RpcError(
              Code.DeadlineExceeded,
              `ttrpc: ${service}/${method} (stream ${streamId}) on ${this.path}: deadline of ${timeoutMs} ms exceeded`,
            ),
          );
        }, timeoutMs);
      }
      this.pending.set(streamId, entry);
      // Allocation and write happen in the same tick, so ids hit the wire in increasing order.
      socket.write(encodeFrame(streamId, MessageType.Request, data));
    });
  }

  close(): void {
    this.shutdown();
  }

  private onData(chunk: Buffer): void {
    for (const event of this.reader.push(chunk)) {
      if (event.kind === 'oversized') {
        // The reader skips the body, so only this call fails.
        this.settle(
          event.header.streamId,
          new RpcError(
            Code.ResourceExhausted,
            `message length ${event.header.length} exceed maximum message size of ${MAX_MESSAGE_SIZE}`,
          ),
        );
        continue;
      }
      const { frame } = event;
      if (frame.type !== MessageType.Response) continue;
      let response: ResponseEnvelope;
      try {
        response = decodeMessage<ResponseEnvelope>('ttrpc.Response', frame.data);
      } catch (err) {
        this.settle(
          frame.streamId,
          new RpcError(Code.Internal, `ttrpc: failed to decode response on stream ${frame.streamId}: ${(err as Error).message}`),
        );
        continue;
      }
      const status = response.status;
      if (status !== null && status.code !== Code.OK) {
        this.settle(frame.streamId, new RpcError(status.code as Code, status.message));
      } else {
        this.settle(frame.streamId, response.payload);
      }
    }
  }

  private settle(streamId: number, result: Uint8Array | Error): void {
    const entry = this.pending.get(streamId);
    if (entry === undefined) return; // timed out already, or never ours
    this.pending.delete(streamId);
    if (entry.timer !== null) clearTimeout(entry.timer);
    if (result instanceof Error) entry.reject(result);
    else entry.resolve(result);
  }

  private shutdown(): void {
    this.isClosed = true;
    if (this.socket !== null && !this.socket.destroyed) this.socket.destroy();
    if (this.pending.size === 0) return;
    const entries = [...this.pending.values()];
    this.pending.clear();
    for (const entry of entries) {
      if (entry.timer !== null) clearTimeout(entry.timer);
      entry.reject(new Error(CLOSED_MESSAGE));
    }
  }
}
