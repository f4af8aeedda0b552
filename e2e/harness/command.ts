// Child-process runner for e2e tests: always resolves with the full outcome so
// tests can assert on exit codes and stderr instead of catching exceptions.
import { spawn } from 'node:child_process';

export interface RunOptions {
  /** Written to stdin, then stdin is closed. Without it stdin is /dev/null. */
  input?: string | Buffer;
  /** Merged over process.env (a value of undefined removes the variable). */
  env?: Record<string, string | undefined>;
  /** Kill the whole process group with SIGKILL after this long. Default 120 s. */
  timeoutMs?: number;
  cwd?: string;
}

export interface Result {
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
  /** True when run() killed the process group because timeoutMs elapsed. */
  timedOut: boolean;
}

const DEFAULT_TIMEOUT_MS = 120_000;
// After the direct child exits, grandchildren that inherited stdout/stderr can
// keep the pipes open forever (daemons); stop waiting for EOF after this.
const PIPE_DRAIN_MS = 2_000;

export function run(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<Result> {
  return new Promise((resolve) => {
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries({ ...process.env, ...(opts.env ?? {}) })) {
      if (v !== undefined) env[k] = v;
    }
    // detached = own process group, so a timeout can kill helpers the command
    // started (e.g. `timeout` → ctr) without touching the test runner.
    const child = spawn(cmd, args, {
      cwd: opts.cwd,
      env,
      detached: true,
      stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timedOut = false;
    let settled = false;
    let exitCode: number | null = null;
    let exitSignal: string | null = null;
    let drainTimer: NodeJS.Timeout | undefined;

    const finish = (): void => {
      if (settled) return;
      settled = true;
      clearTimeout(killTimer);
      if (drainTimer) clearTimeout(drainTimer);
      child.stdout?.destroy();
      child.stderr?.destroy();
      resolve({
        code: exitCode,
        signal: exitSignal,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
        timedOut,
      });
    };

    const killTimer = setTimeout(() => {
      timedOut = true;
      if (child.pid !== undefined) {
        try {
          process.kill(-child.pid, 'SIGKILL');
        } catch {
          // group already gone
        }
      }
    }, opts.timeoutMs ?? DEFAULT_TIMEOUT_MS);

    child.stdout?.on('data', (b: Buffer) => out.push(b));
    child.stderr?.on('data', (b: Buffer) => err.push(b));
    child.on('error', (e: NodeJS.ErrnoException) => {
      // spawn failure (ENOENT, EACCES): report like a shell would, exit 127/126.
      exitCode = e.code === 'ENOENT' ? 127 : 126;
      err.push(Buffer.from(`run: cannot execute ${cmd}: ${e.message}\n`));
      finish();
    });
    child.on('exit', (code, signal) => {
      exitCode = code;
      exitSignal = signal;
      drainTimer = setTimeout(finish, PIPE_DRAIN_MS);
    });
    child.on('close', finish);

    if (opts.input !== undefined && child.stdin) {
      // EPIPE when the command exits without reading all input is not an error here.
      child.stdin.on('error', () => undefined);
      child.stdin.end(opts.input);
    }
  });
}

/** Render a Result for assertion messages. */
export function describeResult(cmd: string, args: readonly string[], r: Result): string {
  const how = r.timedOut ? 'timed out' : r.signal ? `killed by ${r.signal}` : `exit ${r.code}`;
  return `${cmd} ${args.join(' ')} → ${how}\n--- stdout ---\n${r.stdout}--- stderr ---\n${r.stderr}`;
}
