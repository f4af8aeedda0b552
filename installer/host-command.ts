// Commands the installer runs on the host: `containerd --version`, the restart command. In the
// DaemonSet the installer's container shares the host's pid namespace, and `hostExec` (e.g.
// `nsenter -t 1 -m -u -i -n -p --`) runs them in the host's namespaces, where containerd's
// binary and systemd live; on a plain host it is empty.
import { spawn } from 'child_process';
import { InstallerError } from './errors';

export interface CommandResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export function runCommand(argv: readonly string[], timeoutMs = 120_000): Promise<CommandResult> {
  if (argv.length === 0) return Promise.reject(new InstallerError('empty command'));
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(new InstallerError(`cannot run ${argv.join(' ')}: ${e.message}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') });
    });
  });
}

/** Runs `argv` (prefixed with `hostExec`) and returns stdout; a non-zero exit is an InstallerError. */
export async function runChecked(hostExec: readonly string[], argv: readonly string[], timeoutMs?: number): Promise<string> {
  const full = [...hostExec, ...argv];
  const r = await runCommand(full, timeoutMs);
  if (r.code !== 0) {
    const how = r.signal ? `killed by ${r.signal}` : `exit ${r.code}`;
    throw new InstallerError(`\`${full.join(' ')}\` failed (${how}): ${(r.stderr || r.stdout).trim()}`);
  }
  return r.stdout;
}
