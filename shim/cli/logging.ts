// The daemon's logger: logfmt lines (like runc's shim) written to fd 2, which `start` connected
// to the bundle's log FIFO that containerd copies into its own log. Written directly rather
// than through a logging library: loading one (winston: ~35 ms) was a third of the daemon's
// start-up, and every container start waits for it.

import * as fs from 'fs';
import type { Logger } from '../log/logger';

const RUNTIME = 'io.containerd.burrow.v2';
const LEVELS = { error: 0, warn: 1, info: 2, debug: 3 } as const;
type Level = keyof typeof LEVELS;

function quote(v: unknown): string {
  const s = typeof v === 'string' ? v : JSON.stringify(v);
  return /^[A-Za-z0-9_.:/@+-]+$/.test(s) ? s : JSON.stringify(s);
}

export function formatLine(level: Level, message: string, meta: Record<string, unknown>): string {
  let line = `time="${new Date().toISOString()}" level=${level} msg=${JSON.stringify(String(message))}`;
  for (const [k, v] of Object.entries(meta)) {
    if (v !== undefined) line += ` ${k}=${quote(v)}`;
  }
  return `${line}\n`;
}

/**
 * Writes each line synchronously and drops it when the FIFO cannot take it: the FIFO is
 * non-blocking, and while containerd is away (restart) there is no reader at all. Losing log
 * lines is better than blocking the shim or growing its heap.
 */
export function createLogger(opts: { debug: boolean; id: string; namespace: string }, fd = 2): Logger {
  const max = opts.debug ? LEVELS.debug : LEVELS.info;
  const base = { runtime: RUNTIME, namespace: opts.namespace };
  const at = (level: Level) => (msg: string, meta?: object) => {
    if (LEVELS[level] > max) return;
    try {
      fs.writeSync(fd, formatLine(level, msg, { ...base, ...(meta as Record<string, unknown>) }));
    } catch {
      // EAGAIN (FIFO full) or EPIPE (no reader): drop the line.
    }
  };
  return { error: at('error'), warn: at('warn'), info: at('info'), debug: at('debug') };
}
