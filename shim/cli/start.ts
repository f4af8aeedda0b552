// `start`: find or create the shim server for this container, print its address, exit.
// Runs on every container start, so it stays lean: no protobuf, no logger, no native library.

import { spawn } from 'child_process';
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as net from 'net';
import * as path from 'path';
import { WireFormatError } from '../protocol/wire-reader';
import { daemonCommand } from './daemon-command';
import { BootstrapError, detectContainerd, grpcShimVersion, isShimSandboxBundle, startOutput } from './bootstrap-output';
import { daemonArgs, ShimFlags } from './flags';
import { OptionsError, parseStartInput, protocolFromOptions, readStdin, ShimProtocol } from './start-options';

// containerd's default socket directory (defaults.DefaultStateDir + "/s"), where runc's shim
// puts its sockets too: short enough for sun_path on every install.
const SOCKET_DIR = '/run/containerd/s';

// Annotations that group containers onto one shim server, the first present wins:
// CRI sets the sandbox id on a pod's pause container and on all its app containers.
const GROUP_ANNOTATIONS = ['io.containerd.runc.v2.group', 'io.kubernetes.cri.sandbox-id'];

export function groupingKey(bundle: string, id: string): string {
  try {
    const spec = JSON.parse(fs.readFileSync(path.join(bundle, 'config.json'), 'utf8')) as {
      annotations?: Record<string, string>;
    };
    for (const a of GROUP_ANNOTATIONS) {
      const v = spec.annotations?.[a];
      if (v) return v;
    }
  } catch {
    // No readable spec: the container is its own group; Create will report the spec problem.
  }
  return id;
}

export function socketPath(flags: ShimFlags, key: string, socketDir: string = SOCKET_DIR): string {
  const hash = createHash('sha256').update(path.posix.join(flags.address, flags.namespace, key)).digest('hex');
  return path.join(socketDir, hash);
}

function canConnect(sock: string): Promise<boolean> {
  return new Promise((resolve) => {
    const c = net.connect(sock);
    const done = (ok: boolean) => {
      c.destroy();
      resolve(ok);
    };
    c.setTimeout(100, () => done(false));
    c.once('connect', () => done(true));
    c.once('error', () => done(false));
  });
}

function listen(sock: string): Promise<net.Server> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(sock, () => resolve(server));
  });
}

function writeAddress(bundle: string, address: string): void {
  const tmp = path.join(bundle, '.address');
  fs.writeFileSync(tmp, address, { mode: 0o600 });
  fs.renameSync(tmp, path.join(bundle, 'address'));
}

/** Listens on `sock`, or returns undefined if a live server already does. */
export async function listenOrJoin(sock: string): Promise<net.Server | undefined> {
  fs.mkdirSync(path.dirname(sock), { recursive: true, mode: 0o700 });
  try {
    return await listen(sock);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') {
      throw new Error(`listen on ${JSON.stringify(sock)}: ${(err as Error).message}`);
    }
  }
  if (await canConnect(sock)) return undefined;
  // A socket file left by a dead server.
  fs.rmSync(sock, { force: true });
  return listen(sock);
}

/**
 * The daemon gets containerd's oom_score_adj + 1 (as runc's shim): under memory pressure it
 * goes before containerd, and containers without their own oomScoreAdj inherit it. `from` is
 * where containerd's value is read: its own file, or one that inherited it.
 */
export function oomScoreAboveContainerd(from: string, to: string): void {
  try {
    const containerd = Number(fs.readFileSync(`/proc/${from}/oom_score_adj`, 'utf8').trim());
    fs.writeFileSync(`/proc/${to}/oom_score_adj`, String(Math.min(1000, containerd + 1)));
  } catch {
    // EACCES without privileges or in a user namespace: the daemon keeps its inherited value.
  }
}

/** What a `start` decided before it listens: where, over which transport, and what it prints. */
export interface StartPlan {
  bundle: string;
  sock: string;
  protocol: ShimProtocol;
  /** The start output: the bare address, or the bootstrap JSON (bootstrap-output.ts). */
  output: string;
}

/**
 * The steps of every `start` before it listens (this one, and start-in-place.ts run from the
 * snapshot): containerd's stdin (runtime options, or 2.3+'s BootstrapParams) read to EOF, the
 * socket directory, the transport and the start output. Returns an exit status on bad input.
 */
export function planStart(flags: ShimFlags): StartPlan | number {
  if (!flags.id || !flags.namespace || !flags.address) {
    process.stderr.write('start needs -id, -namespace and -address\n');
    return 2;
  }
  const bundle = process.cwd();
  try {
    const input = parseStartInput(readStdin(), flags.id);
    // containerd 2.3+ may move the socket directory (shim manager's socket_dir).
    const sock = socketPath(flags, groupingKey(bundle, flags.id), input.bootstrap?.socketDir ?? SOCKET_DIR);
    const protocol = protocolFromOptions(input.options);
    let version = 2;
    if (protocol === 'grpc') version = grpcShimVersion(detectContainerd(input, flags.publishBinary));
    else if (isShimSandboxBundle(bundle)) version = 3;
    return { bundle, sock, protocol, output: startOutput(protocol, sock, version) };
  } catch (err) {
    if (!(err instanceof OptionsError || err instanceof BootstrapError || err instanceof WireFormatError)) throw err;
    process.stderr.write(`container ${flags.id}: ${err.message}\n`);
    return 1;
  }
}

/**
 * What the bundle's `address` file holds. In gRPC mode the bootstrap JSON: containerd 1.7
 * re-reads `address` after a restart with the same rules as the start output. Otherwise the
 * plain address, which 2.x's fallback (no bootstrap.json) reads as ttrpc.
 */
export function recordAddress(plan: StartPlan): void {
  writeAddress(plan.bundle, plan.protocol === 'grpc' ? plan.output : `unix://${plan.sock}`);
}

/** The bundle's `address` file, then the start output on stdout. */
export function announce(plan: StartPlan): void {
  recordAddress(plan);
  fs.writeSync(1, plan.output);
}

export async function start(flags: ShimFlags): Promise<number> {
  const plan = planStart(flags);
  if (typeof plan === 'number') return plan;
  const { bundle, sock, protocol } = plan;
  const server = await listenOrJoin(sock);
  if (server) {
    fs.chmodSync(sock, 0o600);
    // The daemon logs to the bundle's log FIFO, which containerd holds open for reading.
    let logFd: number | 'ignore' = 'ignore';
    try {
      logFd = fs.openSync(path.join(bundle, 'log'), fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
    } catch {
      // No reader (not run by containerd): the daemon runs without a log.
    }
    const listenFd = (server as unknown as { _handle: { fd: number } })._handle.fd;
    const daemon = daemonCommand(require.main?.filename ?? process.argv[1]);
    const child = spawn(process.execPath, [...daemon.nodeArgs, ...daemonArgs(flags, sock, protocol)], {
      cwd: bundle,
      detached: true,
      // Never our stdout/stderr: containerd reads them to EOF and would wait for the daemon.
      stdio: ['ignore', 'ignore', logFd, listenFd],
    });
    child.unref();
    if (child.pid) oomScoreAboveContainerd(String(process.ppid), String(child.pid));
  }
  announce(plan);
  return 0;
}
