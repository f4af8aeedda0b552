// The two runtimes compared, as ctr (`--runtime`) and CRI (handler) name them, and how to
// find their shim processes among an instance's processes.

import * as fs from 'node:fs';
import type { PrivateContainerd } from '../e2e/harness';
import { listProcesses, readEnviron } from '../e2e/harness';

export type RuntimeName = 'burrow' | 'runc';

export interface Runtime {
  name: RuntimeName;
  /** containerd runtime type (`ctr run --runtime`). */
  type: string;
  /** CRI runtime handler in PrivateContainerd's CRI config. */
  handler: string;
}

export const BURROW: Runtime = { name: 'burrow', type: 'io.containerd.burrow.v2', handler: 'burrow' };
export const RUNC: Runtime = { name: 'runc', type: 'io.containerd.runc.v2', handler: 'runc' };
/** A before B: every benchmark alternates them, so load from elsewhere hits both alike. */
export const RUNTIMES: readonly Runtime[] = [BURROW, RUNC];

function exeName(pid: number): string {
  try {
    return fs.readlinkSync(`/proc/${pid}/exe`).split('/').pop() ?? '';
  } catch {
    return '';
  }
}

/**
 * The long-running shim processes of `rt` in instance `c`. Shims inherit containerd's
 * environment (TTRPC_ADDRESS), containers do not; Burrow's shim is a Node process, runc's
 * is the containerd-shim-runc-v2 binary.
 */
export function shimPids(c: PrivateContainerd, rt: Runtime): number[] {
  const out: number[] = [];
  for (const p of listProcesses()) {
    if (readEnviron(p.pid).get('TTRPC_ADDRESS') !== c.ttrpcAddress) continue;
    const exe = exeName(p.pid);
    const isShim = rt.name === 'runc' ? exe === 'containerd-shim-runc-v2' : /^node/.test(exe);
    if (isShim) out.push(p.pid);
  }
  return out;
}

/** Proportional set size in kB (shared pages divided among the processes sharing them). */
export function pssKb(pid: number): number {
  const text = fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  const m = /^Pss:\s+(\d+) kB$/m.exec(text);
  if (!m) throw new Error(`/proc/${pid}/smaps_rollup: no Pss line`);
  return Number(m[1]);
}

export function rssKb(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : 0;
}
