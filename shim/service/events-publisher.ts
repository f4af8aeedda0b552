/**
 * Publishes task events to containerd, like the runc shim's RemoteEventsPublisher:
 * one worker forwards envelopes strictly in order over ttrpc
 * (containerd.services.events.ttrpc.v1.Events/Forward at TTRPC_ADDRESS).
 * On `ttrpc: closed` or a dial error it redials once and retries at once;
 * any other failure retries the same event after 1 s × attempt and drops it
 * after 5 attempts. Retrying the head of the queue (rather than re-queueing
 * at the tail as Go does) keeps e.g. TaskExit ahead of TaskDelete.
 *
 * Without TTRPC_ADDRESS it falls back to `containerd publish` (one process
 * per event), the shim v1-era path that containerd still supports.
 */
import { spawn } from 'child_process';
import { encodeMessage, packAny } from '../protocol/proto-registry';
import { isClosedError, TtrpcClient } from '../protocol/ttrpc-client';
import type { Logger } from '../protocol/ttrpc-server';
import { NAMESPACE_METADATA_KEY } from '../protocol/ttrpc-server';

const EVENTS_SERVICE = 'containerd.services.events.ttrpc.v1.Events';
const FORWARD_TIMEOUT_MS = 5000;
const MAX_ATTEMPTS = 5;
const DEFAULT_RETRY_DELAY_MS = 1000;
const DEFAULT_CLOSE_TIMEOUT_MS = 5000;

export interface EventPublisherOptions {
  namespace: string;
  /** TTRPC_ADDRESS; may be unset, then the exec fallback is used. */
  ttrpcAddress?: string;
  /** containerd binary for the fallback (-publish-binary). */
  publishBinary?: string;
  /** containerd's gRPC socket for the fallback (-address). */
  containerdAddress?: string;
  logger: Logger;
  /** Base of the linear retry back-off; tests shorten it. */
  retryDelayMs?: number;
}

interface QueuedEvent {
  topic: string;
  typeName: string;
  /** Fixed at publish time: the envelope timestamp is when it happened, not when it was sent. */
  timestamp: { seconds: number; nanos: number };
  /** Encoded event (the Any's value). */
  value: Uint8Array;
  attempts: number;
}

export class EventPublisher {
  private readonly namespace: string;
  private readonly ttrpcAddress: string | undefined;
  private readonly publishBinary: string | undefined;
  private readonly containerdAddress: string | undefined;
  private readonly logger: Logger;
  private readonly retryDelayMs: number;
  private readonly queue: QueuedEvent[] = [];
  private client: TtrpcClient | null = null;
  private running = false;
  private closing = false;
  private closed = false;
  /** Resolves the worker's retry sleep early when close() gives up. */
  private wakeSleep: (() => void) | null = null;
  private idleWaiters: Array<() => void> = [];

  constructor(opts: EventPublisherOptions) {
    this.namespace = opts.namespace;
    this.ttrpcAddress = opts.ttrpcAddress !== undefined && opts.ttrpcAddress !== '' ? opts.ttrpcAddress : undefined;
    this.publishBinary = opts.publishBinary;
    this.containerdAddress = opts.containerdAddress;
    this.logger = opts.logger;
    this.retryDelayMs = opts.retryDelayMs ?? DEFAULT_RETRY_DELAY_MS;
  }

  /** Queues an event; never throws and never waits for containerd. */
  publish(topic: string, typeName: string, event: object): void {
    if (this.closing) {
      this.logger.warn('events: publisher closed, dropping event', { topic, type: typeName });
      return;
    }
    let value: Uint8Array;
    try {
      value = encodeMessage(typeName, event);
    } catch (err) {
      this.logger.error('events: cannot encode event, dropping it', {
        topic,
        type: typeName,
        error: (err as Error).message,
      });
      return;
    }
    const now = Date.now();
    this.queue.push({
      topic,
      typeName,
      timestamp: { seconds: Math.floor(now / 1000), nanos: (now % 1000) * 1e6 },
      value,
      attempts: 0,
    });
    if (!this.running) {
      this.running = true;
      void this.run();
    }
  }

  /** Number of events not yet delivered (or dropped). */
  get pending(): number {
    return this.queue.length;
  }

  /** Waits (≤ timeoutMs) for the queue to drain, then drops the rest and disconnects. */
  async close(timeoutMs: number = DEFAULT_CLOSE_TIMEOUT_MS): Promise<void> {
    if (this.closed) return;
    this.closing = true;
    if (this.running) {
      let timer: NodeJS.Timeout | undefined;
      const drained = new Promise<void>((resolve) => this.idleWaiters.push(resolve));
      const timedOut = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, timeoutMs);
      });
      await Promise.race([drained, timedOut]);
      clearTimeout(timer);
    }
    this.closed = true;
    if (this.queue.length > 0) {
      this.logger.error('events: closing with undelivered events', {
        count: this.queue.length,
        topics: this.queue.map((e) => e.topic),
      });
      this.queue.length = 0;
    }
    const wake = this.wakeSleep;
    if (wake !== null) wake();
    this.client?.close();
    this.client = null;
  }

  private async run(): Promise<void> {
    try {
      while (this.queue.length > 0 && !this.closed) {
        const item = this.queue[0];
        let error: Error | null = null;
        try {
          await this.send(item);
        } catch (err) {
          error = err instanceof Error ? err : new Error(String(err));
        }
        if (this.closed) break;
        if (error === null) {
          this.queue.shift();
          continue;
        }
        item.attempts++;
        if (item.attempts >= MAX_ATTEMPTS) {
          this.queue.shift();
          this.logger.error('events: dropping event after repeated failures', {
            topic: item.topic,
            type: item.typeName,
            attempts: item.attempts,
            error: error.message,
          });
          continue;
        }
        this.logger.warn('events: publish failed, will retry', {
          topic: item.topic,
          attempt: item.attempts,
          error: error.message,
        });
        await this.sleep(this.retryDelayMs * item.attempts);
      }
    } finally {
      this.running = false;
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of waiters) w();
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.wakeSleep = null;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wakeSleep = done;
    });
  }

  private send(item: QueuedEvent): Promise<void> {
    if (this.ttrpcAddress !== undefined) return this.forward(this.ttrpcAddress, item);
    return this.execPublish(item);
  }

  private async forward(address: string, item: QueuedEvent): Promise<void> {
    const payload = encodeMessage('containerd.services.events.ttrpc.v1.ForwardRequest', {
      envelope: {
        timestamp: item.timestamp,
        namespace: this.namespace,
        topic: item.topic,
        event: { type_url: item.typeName, value: item.value },
      },
    });
    try {
      await this.callForward(address, payload);
    } catch (err) {
      if (this.closed || (!isClosedError(err) && !isDialError(err))) throw err;
      // containerd restarted or the connection dropped: one fresh dial, as runc does.
      this.logger.debug('events: connection lost, redialing', { address, error: (err as Error).message });
      this.dropClient();
      await this.callForward(address, payload);
    }
  }

  private async callForward(address: string, payload: Uint8Array): Promise<void> {
    const client = await this.connectedClient(address);
    await client.call(EVENTS_SERVICE, 'Forward', payload, {
      metadata: { [NAMESPACE_METADATA_KEY]: this.namespace },
      timeoutMs: FORWARD_TIMEOUT_MS,
    });
  }

  private async connectedClient(address: string): Promise<TtrpcClient> {
    if (this.client !== null && !this.client.closed) return this.client;
    if (this.closed) throw new Error('events: publisher closed');
    this.dropClient();
    const client = new TtrpcClient(address);
    try {
      await client.connect(FORWARD_TIMEOUT_MS);
    } catch (err) {
      throw markDialError(err);
    }
    if (this.closed) {
      // close() ran while we were dialing; do not leak the socket.
      client.close();
      throw new Error('events: publisher closed');
    }
    this.client = client;
    return client;
  }

  private dropClient(): void {
    this.client?.close();
    this.client = null;
  }

  private execPublish(item: QueuedEvent): Promise<void> {
    const binary = this.publishBinary;
    const address = this.containerdAddress;
    if (binary === undefined || binary === '' || address === undefined || address === '') {
      return Promise.reject(
        new Error('events: neither TTRPC_ADDRESS nor publish binary and containerd address are set'),
      );
    }
    const any = encodeMessage('google.protobuf.Any', { type_url: item.typeName, value: item.value });
    const args = ['--address', address, 'publish', '--topic', item.topic, '--namespace', this.namespace];
    return new Promise<void>((resolve, reject) => {
      const child = spawn(binary, args, { stdio: ['pipe', 'ignore', 'pipe'] });
      let stderr = '';
      const timer = setTimeout(() => child.kill('SIGKILL'), FORWARD_TIMEOUT_MS);
      child.stderr.setEncoding('utf8');
      child.stderr.on('data', (s: string) => {
        if (stderr.length < 4096) stderr += s;
      });
      child.stdin.on('error', () => {
        // EPIPE if the child died early; its exit status reports the failure.
      });
      child.on('error', (err) => {
        clearTimeout(timer);
        reject(new Error(`events: exec ${binary} publish --topic ${item.topic}: ${err.message}`));
      });
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        if (code === 0) resolve();
        else
          reject(
            new Error(
              `events: ${binary} publish --topic ${item.topic} failed (${signal ?? `exit ${code}`}): ${stderr.trim()}`,
            ),
          );
      });
      child.stdin.end(Buffer.from(any));
    });
  }
}

const DIAL_ERROR = Symbol('dialError');

function markDialError(err: unknown): Error {
  const e = err instanceof Error ? err : new Error(String(err));
  (e as Error & { [DIAL_ERROR]?: boolean })[DIAL_ERROR] = true;
  return e;
}

function isDialError(err: unknown): boolean {
  return err instanceof Error && (err as Error & { [DIAL_ERROR]?: boolean })[DIAL_ERROR] === true;
}
