// The daemon's logger: winston, writing logfmt lines (like runc's shim) to fd 2, which `start`
// connected to the bundle's log FIFO that containerd copies into its own log. Loading winston
// costs ~35 ms, a third of a daemon's start-up from modules: the one-file bundle and the V8
// startup snapshot (scripts/bundle.js) carry it already loaded, so a container start does not
// wait for it.

import * as fs from 'fs';
import { Writable } from 'stream';
import * as winston from 'winston';
import type { Logger } from '../log/logger';

const RUNTIME = 'io.containerd.burrow.v2';

function quote(v: unknown): string {
  const s = typeof v === 'string' ? v : JSON.stringify(v);
  return /^[A-Za-z0-9_.:/@+-]+$/.test(s) ? s : JSON.stringify(s);
}

export function formatLine(level: string, message: unknown, meta: Record<string, unknown>): string {
  let line = `time="${new Date().toISOString()}" level=${level} msg=${JSON.stringify(String(message))}`;
  for (const [k, v] of Object.entries(meta)) {
    if (v !== undefined) line += ` ${k}=${quote(v)}`;
  }
  return line;
}

const logfmt = winston.format.printf((info) => {
  const { level, message, timestamp: _t, ...meta } = info as Record<string, unknown>;
  return formatLine(String(level), message, meta);
});

/**
 * Writes each line synchronously and drops it when the FIFO cannot take it: the FIFO is
 * non-blocking, and while containerd is away (restart) there is no reader at all. Losing log
 * lines is better than blocking the shim or growing its heap.
 */
function fdSink(fd: number): Writable {
  return new Writable({
    write(chunk: Buffer, _enc, cb) {
      try {
        fs.writeSync(fd, chunk);
      } catch {
        // EAGAIN (FIFO full), EPIPE (no reader) or EBADF: drop the line.
      }
      cb();
    },
  });
}

export function createLogger(opts: { debug: boolean; id: string; namespace: string }, fd = 2): Logger {
  return winston.createLogger({
    level: opts.debug ? 'debug' : 'info',
    defaultMeta: { runtime: RUNTIME, namespace: opts.namespace },
    format: logfmt,
    transports: [new winston.transports.Stream({ stream: fdSink(fd), eol: '\n' })],
  });
}
