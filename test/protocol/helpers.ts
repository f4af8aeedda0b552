/** Shared fixtures for the protocol tests: temp sockets, a recording logger, a raw frame client. */
import * as fs from 'fs';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import { Frame, FrameReader } from '../../shim/protocol/ttrpc-frame';
import type { Logger } from '../../shim/protocol/ttrpc-server';

export interface LogRecord {
  level: 'debug' | 'info' | 'warn' | 'error';
  msg: string;
  meta?: object;
}

export class RecordingLogger implements Logger {
  readonly records: LogRecord[] = [];
  debug(msg: string, meta?: object): void {
    this.records.push({ level: 'debug', msg, meta });
  }
  info(msg: string, meta?: object): void {
    this.records.push({ level: 'info', msg, meta });
  }
  warn(msg: string, meta?: object): void {
    this.records.push({ level: 'warn', msg, meta });
  }
  error(msg: string, meta?: object): void {
    this.records.push({ level: 'error', msg, meta });
  }
  at(level: LogRecord['level']): LogRecord[] {
    return this.records.filter((r) => r.level === level);
  }
}

export function makeTempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'burrow-proto-'));
}

export function removeTempDir(dir: string): void {
  fs.rmSync(dir, { recursive: true, force: true });
}

export function listenUnix(socketPath: string): Promise<net.Server> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(socketPath, () => {
      server.removeListener('error', reject);
      resolve(server);
    });
  });
}

export function closeListener(server: net.Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

export function hex(s: string): Buffer {
  return Buffer.from(s.replace(/\s+/g, ''), 'hex');
}

export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls until cond() holds, failing with `what` after timeoutMs. */
export async function waitFor(cond: () => boolean, what: string, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await delay(5);
  }
}

/** A byte-level client: writes whatever it is told and collects response frames. */
export class RawConn {
  readonly socket: net.Socket;
  readonly frames: Frame[] = [];
  readonly bytes: Buffer[] = [];
  private readonly reader = new FrameReader();
  closed = false;

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => {
      this.bytes.push(Buffer.from(chunk));
      for (const ev of this.reader.push(chunk)) {
        if (ev.kind === 'frame') this.frames.push({ ...ev.frame, data: Buffer.from(ev.frame.data) });
      }
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      this.closed = true;
    });
  }

  static connect(socketPath: string): Promise<RawConn> {
    return new Promise((resolve, reject) => {
      const socket = net.createConnection({ path: socketPath });
      socket.once('error', reject);
      socket.once('connect', () => {
        socket.removeListener('error', reject);
        resolve(new RawConn(socket));
      });
    });
  }

  write(data: Uint8Array): void {
    this.socket.write(data);
  }

  allBytes(): Buffer {
    return Buffer.concat(this.bytes);
  }

  async waitFrames(n: number, timeoutMs = 3000): Promise<Frame[]> {
    await waitFor(() => this.frames.length >= n, `${n} frame(s)`, timeoutMs);
    return this.frames.slice(0, n);
  }

  async waitClosed(timeoutMs = 3000): Promise<void> {
    await waitFor(() => this.closed, 'connection close', timeoutMs);
  }

  destroy(): void {
    this.socket.destroy();
  }
}
