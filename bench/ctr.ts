// ctr, run directly (no `timeout` wrapper: its fork+exec would be timed too) with a wall-clock
// measurement from spawn to exit.

import { spawn } from 'node:child_process';
import type { PrivateContainerd } from '../e2e/harness';

export interface Timed {
  ms: number;
  code: number | null;
  stderr: string;
}

export function ctrTimed(c: PrivateContainerd, args: readonly string[], namespace = c.namespace, timeoutMs = 60_000): Promise<Timed> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const child = spawn('ctr', ['--address', c.address, '-n', namespace, ...args], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    const err: Buffer[] = [];
    child.stderr.on('data', (b: Buffer) => err.push(b));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ ms: Number(process.hrtime.bigint() - t0) / 1e6, code, stderr: Buffer.concat(err).toString() });
    });
  });
}

/** Like ctrTimed, but a non-zero exit is an error naming the command and its stderr. */
export async function ctrOk(c: PrivateContainerd, args: readonly string[], namespace = c.namespace): Promise<number> {
  const r = await ctrTimed(c, args, namespace);
  if (r.code !== 0) throw new Error(`ctr ${args.join(' ')} (namespace ${namespace}) exited ${r.code}: ${r.stderr.trim()}`);
  return r.ms;
}

/** Kill (SIGKILL), delete the task, then the container; tolerant of any of them being gone. */
export async function removeContainer(c: PrivateContainerd, id: string, namespace = c.namespace): Promise<void> {
  await ctrTimed(c, ['task', 'kill', '-s', 'SIGKILL', id], namespace);
  for (let i = 0; i < 100; i++) {
    const r = await ctrTimed(c, ['task', 'rm', id], namespace);
    if (r.code === 0 || /not found/.test(r.stderr)) break;
    await new Promise((res) => setTimeout(res, 50));
  }
  await ctrTimed(c, ['container', 'rm', id], namespace);
}
