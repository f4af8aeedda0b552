// The container's stdin/stdout/stderr from the paths containerd's client gave us.
//
// The FIFOs are handed to the container directly (no copy loop in the shim): the shim keeps a
// reader on stdout/stderr so the container never gets EPIPE while containerd restarts, and a
// writer on stdin so the container sees EOF only after CloseIO — the semantics of runc's shim.

import * as fs from 'fs';
import * as path from 'path';
import { invalidArgument } from './errors';

export interface StdioConfig {
  stdin: string;
  stdout: string;
  stderr: string;
  terminal: boolean;
}

const { O_RDONLY, O_WRONLY, O_RDWR, O_NONBLOCK, O_APPEND, O_CREAT } = fs.constants;

function closeQuietly(fd: number): void {
  try {
    fs.closeSync(fd);
  } catch {
    // Already closed.
  }
}

export class ProcessIO {
  /** fds for the child's 0, 1, 2 (-1 = /dev/null); the child gets its own copies at spawn. */
  readonly fds: [number, number, number] = [-1, -1, -1];
  private readonly childEnds: number[] = [];
  private readonly keepAlive: number[] = [];
  private stdinWriter = -1;
  /** With a terminal: the FIFO ends the pty relay will own (stdin reader, stdout writer). */
  private relay: { stdin: number; stdout: number } = { stdin: -1, stdout: -1 };

  private constructor(private readonly owner: string) {}

  /** Opens everything or nothing: on failure every fd opened so far is closed. */
  static open(cfg: StdioConfig, owner: string): ProcessIO {
    const io = new ProcessIO(owner);
    try {
      io.openAll(cfg);
    } catch (err) {
      io.close();
      throw err;
    }
    return io;
  }

  private openAll(cfg: StdioConfig): void {
    if (cfg.terminal) {
      // The process gets its pty as stdio; the FIFOs go to the relay (stderr is unused, and
      // the client never opens it with a terminal).
      if (cfg.stdin) this.relay.stdin = this.untrack(this.openStdin(cfg.stdin));
      if (cfg.stdout) {
        if (schemeOf(cfg.stdout) !== 'fifo') {
          throw invalidArgument(`${this.owner}: stdout ${JSON.stringify(cfg.stdout)}: only FIFOs with a terminal`);
        }
        this.relay.stdout = this.untrack(this.openOutput(cfg.stdout));
      }
      return;
    }
    if (cfg.stdin) this.fds[0] = this.openStdin(cfg.stdin);
    const url = cfg.stdout ? schemeOf(cfg.stdout) : 'fifo';
    if (url === 'file') {
      const file = decodeURIComponent(new URL(cfg.stdout).pathname);
      fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o755 });
      const fd = this.track(fs.openSync(file, O_WRONLY | O_APPEND | O_CREAT, 0o644), this.childEnds);
      this.fds[1] = fd;
      this.fds[2] = fd;
      return;
    }
    if (url !== 'fifo') {
      throw invalidArgument(`${this.owner}: stdout ${JSON.stringify(cfg.stdout)}: ${url}:// logging is not supported yet`);
    }
    if (cfg.stdout) this.fds[1] = this.openOutput(cfg.stdout);
    if (cfg.stderr) this.fds[2] = cfg.stderr === cfg.stdout ? this.fds[1] : this.openOutput(cfg.stderr);
  }

  private untrack(fd: number): number {
    this.childEnds.splice(this.childEnds.indexOf(fd), 1);
    return fd;
  }

  /** The FIFO ends for the pty relay; from now on the relay owns (and closes) them. */
  handOverToRelay(): { stdin: number; stdout: number } {
    const r = this.relay;
    this.relay = { stdin: -1, stdout: -1 };
    return r;
  }

  private track(fd: number, list: number[]): number {
    list.push(fd);
    return fd;
  }

  private openStdin(p: string): number {
    try {
      // O_RDWR never blocks and makes us a writer, so the child's blocking O_RDONLY open
      // below returns at once, and the child sees EOF only once we close this (CloseIO).
      this.stdinWriter = fs.openSync(p, O_RDWR);
      return this.track(fs.openSync(p, O_RDONLY), this.childEnds);
    } catch (err) {
      throw invalidArgument(`${this.owner}: open stdin ${JSON.stringify(p)}: ${(err as Error).message}`);
    }
  }

  private openOutput(p: string): number {
    try {
      if (!fs.statSync(p).isFIFO()) {
        return this.track(fs.openSync(p, O_WRONLY | O_APPEND), this.childEnds);
      }
      // A reader first (never blocks with O_NONBLOCK), then the child's blocking writer,
      // which cannot block either now that a reader exists.
      this.track(fs.openSync(p, O_RDONLY | O_NONBLOCK), this.keepAlive);
      return this.track(fs.openSync(p, O_WRONLY), this.childEnds);
    } catch (err) {
      throw invalidArgument(`${this.owner}: open output ${JSON.stringify(p)}: ${(err as Error).message}`);
    }
  }

  /** After spawn the child holds its own copies; ours would keep the client from seeing EOF. */
  releaseChildEnds(): void {
    for (const fd of this.childEnds.splice(0)) closeQuietly(fd);
  }

  closeStdin(): void {
    if (this.stdinWriter >= 0) {
      closeQuietly(this.stdinWriter);
      this.stdinWriter = -1;
    }
  }

  close(): void {
    for (const fd of [this.relay.stdin, this.relay.stdout]) if (fd >= 0) closeQuietly(fd);
    this.relay = { stdin: -1, stdout: -1 };
    this.releaseChildEnds();
    this.closeStdin();
    for (const fd of this.keepAlive.splice(0)) closeQuietly(fd);
  }
}

function schemeOf(uri: string): string {
  const m = /^([a-z][a-z0-9+.-]*):\/\//i.exec(uri);
  return m ? m[1].toLowerCase() : 'fifo';
}
