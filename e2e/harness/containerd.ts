// A throw-away containerd daemon per test suite, fully separate from the
// system one: own root, state, sockets and config, with <repo>/bin first on
// PATH so `--runtime io.containerd.burrow.v2` resolves to our shim.
import { spawn, ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { run, Result } from './command';
import { CriHost, CriOptions, cleanupCriHost, criHost, readCriHost, renderCriConfig, writeCniConfig } from './cri-host';
import { describeMount, unmountUnder } from './mounts';
import { buildDir, isUnder, repoRoot, sleep } from './paths';
import { ContainerdBinaries, ContainerdVersion, containerdBinaries, missingBinaries } from './versions';
import {
  describeProc, isAlive, killAndWait, listProcesses, openFiles, readCwd, readEnviron, readProc, withDescendants,
} from './procfs';

/** State and sockets (short paths: unix sockets must stay under 108 bytes). */
export const INSTANCE_BASE = '/run/burrow-e2e';
/** Persistent root (content store, snapshots); on disk so overlayfs works. */
export const ROOT_BASE = '/var/lib/burrow-e2e';
/** containerd 1.6 to 2.1 hard-code these regardless of the configured state dir. */
export const SHIM_SOCKET_DIR = '/run/containerd/s';
export const CTR_FIFO_DIR = '/run/containerd/fifo';
/** Default `--runc-root`/runc-shim Root: runc state of every containerd on the host. */
export const RUNC_SHIM_ROOT = '/run/containerd/runc';
export const TASK_PLUGIN_DIR = 'io.containerd.runtime.v2.task';
/** 2.x: bundles of sandboxes whose runtime has `sandboxer = "shim"` (Sandbox API shims). */
export const SANDBOX_PLUGIN_DIR = 'io.containerd.sandbox.controller.v1.shim';

const SYSTEM_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const REQUIRED_TOOLS = ['runc', 'busybox', 'tar', 'timeout', 'umount'];

export interface PrivateContainerdOptions {
  /** Instance name: [a-z0-9-], also the directory name under INSTANCE_BASE and ROOT_BASE. */
  name: string;
  /**
   * containerd generation (default '1.6', the system package): its own containerd, ctr and
   * containerd-shim-runc-v2 (e2e/harness/versions.ts), and a config in its own format.
   */
  version?: ContainerdVersion;
  /**
   * Enable the CRI plugin (default false: disabled, containerd starts faster), configured
   * for this instance only: pause image, runtimes `runc` and `burrow`, a private CNI
   * bridge network (see cri-host.ts). `true` means `{}`.
   */
  cri?: boolean | CriOptions;
  /** Added to containerd's environment, which every shim inherits. */
  extraEnv?: Record<string, string>;
  /**
   * Appended verbatim to config.toml; may only add tables (top-level keys come first in TOML).
   * Plugin ids and the config format differ between 1.x (version 2) and 2.x (version 3).
   */
  configExtra?: string;
  /** Namespace used by ctr() unless overridden per call. Default `default`. */
  namespace?: string;
  /** containerd log level. Default `debug` (also makes containerd pass `-debug` to shims). */
  logLevel?: 'trace' | 'debug' | 'info' | 'warn' | 'error';
  /** How long to wait for `ctr version` to answer. Default 30 s. */
  startTimeoutMs?: number;
}

export interface CtrOptions {
  input?: string | Buffer;
  env?: Record<string, string | undefined>;
  /** `timeout -k 5 <timeoutSec>` around ctr. Default 60. Exit code 124 = timed out. */
  timeoutSec?: number;
  namespace?: string;
}

/** Throws naming every missing binary; the test command runs scripts/setup-host.sh first. */
export function ensureHostTools(version: ContainerdVersion = '1.6'): void {
  if (process.getuid?.() !== 0) {
    throw new Error(`e2e tests must run as root (uid ${process.getuid?.()}); containerd and mounts need it`);
  }
  const dirs = (process.env.PATH ?? SYSTEM_PATH).split(':').concat(SYSTEM_PATH.split(':'));
  const missing = REQUIRED_TOOLS.filter(
    (tool) => !dirs.some((d) => {
      try {
        fs.accessSync(path.join(d, tool), fs.constants.X_OK);
        return true;
      } catch {
        return false;
      }
    }),
  );
  if (missing.length > 0) {
    throw new Error(
      `missing host tool(s): ${missing.join(', ')} (searched ${[...new Set(dirs)].join(':')}); ` +
        `run scripts/setup-host.sh as root`,
    );
  }
  const missingCd = missingBinaries(version);
  if (missingCd.length > 0) {
    throw new Error(`containerd ${version}: missing ${missingCd.join(', ')}; run scripts/setup-host.sh as root`);
  }
}

export class PrivateContainerd {
  readonly name: string;
  readonly version: ContainerdVersion;
  /** This version's containerd, ctr and runc shim. */
  readonly binaries: ContainerdBinaries;
  /** /run/burrow-e2e/<name>: config, log, pid file, sockets, state. */
  readonly instanceDir: string;
  readonly root: string;
  readonly state: string;
  /** gRPC socket path (what ctr --address and shims' -address get). */
  readonly address: string;
  /** ttrpc socket path (TTRPC_ADDRESS in the shim environment; events go here). */
  readonly ttrpcAddress: string;
  /** BURROW_ROOT given to containerd and so to every shim it starts. */
  readonly burrowRoot: string;
  readonly logFile: string;
  readonly configFile: string;
  readonly pidFile: string;
  namespace: string;
  /** CRI setup (network, pause image, pod log and cgroup roots) when started with `cri`. */
  cri: CriHost | undefined;

  private child: ChildProcess | undefined;
  private exited: { code: number | null; signal: string | null } | undefined;
  private startTimeoutMs = 30_000;
  private extraEnv: Record<string, string> = {};

  private constructor(name: string, namespace: string, version: ContainerdVersion) {
    this.name = name;
    this.version = version;
    this.binaries = containerdBinaries(version);
    this.instanceDir = path.join(INSTANCE_BASE, name);
    this.root = path.join(ROOT_BASE, name);
    this.state = path.join(this.instanceDir, 'state');
    this.address = path.join(this.instanceDir, 'containerd.sock');
    this.ttrpcAddress = path.join(this.instanceDir, 'containerd.sock.ttrpc');
    this.burrowRoot = path.join(this.state, 'burrow');
    this.logFile = path.join(this.instanceDir, 'containerd.log');
    this.configFile = path.join(this.instanceDir, 'config.toml');
    this.pidFile = path.join(this.instanceDir, 'containerd.pid');
    this.namespace = namespace;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Dirs whose contents belong to this instance only (mounts, processes' cwd). */
  get ownedDirs(): string[] {
    return [this.instanceDir, this.root];
  }

  /** `<state>/io.containerd.runtime.v2.task/<ns>/<id>`: containerd-created bundle = shim cwd. */
  bundleDir(id: string, namespace = this.namespace): string {
    return path.join(this.state, TASK_PLUGIN_DIR, namespace, id);
  }

  static async start(opts: PrivateContainerdOptions): Promise<PrivateContainerd> {
    if (!/^[a-z0-9][a-z0-9-]{0,31}$/.test(opts.name)) {
      throw new Error(`PrivateContainerd name "${opts.name}" must match [a-z0-9][a-z0-9-]{0,31}`);
    }
    const version = opts.version ?? '1.6';
    ensureHostTools(version);
    const c = new PrivateContainerd(opts.name, opts.namespace ?? 'default', version);
    c.startTimeoutMs = opts.startTimeoutMs ?? 30_000;
    c.extraEnv = opts.extraEnv ?? {};
    // A previous run that crashed before stop() leaves a daemon, mounts and
    // dirs behind under the same name; clear them so start is idempotent.
    await c.cleanup(c.readPidFile());

    fs.mkdirSync(c.state, { recursive: true, mode: 0o711 });
    fs.mkdirSync(c.root, { recursive: true, mode: 0o711 });
    if (opts.cri) {
      const criOpts = opts.cri === true ? {} : opts.cri;
      c.cri = criHost(c.name, c.instanceDir, c.state, criOpts);
      writeCniConfig(c.cri);
    }
    fs.writeFileSync(c.configFile, c.renderConfig(opts));

    try {
      await c.startDaemon();
    } catch (e) {
      await c.stop().catch(() => undefined);
      throw e;
    }
    return c;
  }

  /**
   * PATH for containerd and so for every shim: <repo>/bin first (`io.containerd.burrow.v2`
   * resolves to our shim), then this version's bin dir, so `io.containerd.runc.v2` resolves
   * to the runc shim of the same containerd release.
   */
  get daemonPath(): string {
    const dirs = [path.join(repoRoot(), 'bin'), this.binaries.binDir, ...SYSTEM_PATH.split(':')];
    return [...new Set(dirs)].join(':');
  }

  /** Spawn containerd on the existing config, root and state, and wait until it answers. */
  private async startDaemon(): Promise<void> {
    const env: Record<string, string> = {
      PATH: this.daemonPath,
      HOME: process.env.HOME ?? '/root',
      BURROW_ROOT: this.burrowRoot,
      ...this.extraEnv,
    };
    this.exited = undefined;
    const logFd = fs.openSync(this.logFile, 'a');
    let child: ChildProcess;
    try {
      // Own process group so signals aimed at the test runner's group (Ctrl-C
      // is fine, but `timeout` in CI) don't race with our orderly stop().
      child = spawn(this.binaries.containerd, ['--config', this.configFile], {
        env,
        cwd: this.instanceDir,
        detached: true,
        stdio: ['ignore', logFd, logFd],
      });
    } finally {
      fs.closeSync(logFd);
    }
    this.child = child;
    child.on('exit', (code, signal) => {
      if (this.child === child) this.exited = { code, signal };
    });
    child.on('error', (e) => {
      if (this.child === child) this.exited = { code: null, signal: `spawn error: ${e.message}` };
    });
    // Do not keep mocha alive if a suite forgets stop(); the next start() of
    // the same name reaps it through the pid file.
    child.unref();
    if (child.pid !== undefined) fs.writeFileSync(this.pidFile, `${child.pid}\n`);
    await this.waitReady(this.startTimeoutMs);
  }

  /**
   * Restart the daemon the way a node upgrade, `systemctl restart` (KillMode=process) or a
   * crash-loop does: stop containerd alone (SIGTERM, or SIGKILL with `kill: true`), leaving
   * shims and containers running, then start it again on the same root and state and the
   * config file as it is on disk now. containerd reconnects to the shims in its state dir.
   * A daemon that already exited is just started again.
   */
  async restart(opts: { kill?: boolean } = {}): Promise<void> {
    const pid = this.child?.pid;
    if (pid !== undefined && !this.exited) await this.stopDaemon(pid, opts.kill ? 'SIGKILL' : 'SIGTERM');
    await this.startDaemon();
  }

  private renderConfig(opts: PrivateContainerdOptions): string {
    const q = (s: string): string => JSON.stringify(s); // TOML basic strings accept JSON escapes
    // Without `cri`, only the CRI gRPC service is off (on 1.x it is the whole CRI plugin). 2.x
    // split CRI into images, runtime (config only) and that service; its podsandbox controller
    // and sandbox-controllers service need the first two, so they stay on there.
    const disabled = opts.cri ? [] : ['io.containerd.grpc.v1.cri'];
    return [
      `version = ${this.binaries.configVersion}`,
      `root = ${q(this.root)}`,
      `state = ${q(this.state)}`,
      `disabled_plugins = [${disabled.map(q).join(', ')}]`,
      '',
      '[grpc]',
      `  address = ${q(this.address)}`,
      '',
      '[ttrpc]',
      `  address = ${q(this.ttrpcAddress)}`,
      '',
      '[debug]',
      `  level = ${q(opts.logLevel ?? 'debug')}`,
      '',
      // The opt plugin otherwise creates /opt/containerd and prepends its bin
      // dir to containerd's PATH (which shims inherit).
      '[plugins."io.containerd.internal.v1.opt"]',
      `  path = ${q(path.join(this.root, 'opt'))}`,
      '',
      // NRI listens on the host-wide /var/run/nri/nri.sock (on by default in 2.x); two
      // instances would fight over it.
      ...(this.version === '1.6' ? [] : ['[plugins."io.containerd.nri.v1.nri"]', '  disable = true', '']),
      ...(this.cri ? [renderCriConfig(this.cri, opts.cri === true ? {} : opts.cri || {}, this.binaries.configVersion)] : []),
      opts.configExtra ?? '',
      '',
    ].join('\n');
  }

  private async waitReady(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last: Result | undefined;
    while (Date.now() < deadline) {
      if (this.exited) {
        throw new Error(
          `containerd "${this.name}" exited during start-up (code ${this.exited.code}, signal ${this.exited.signal}); ` +
            `config ${this.configFile}, log ${this.logFile}:\n${this.readLog(40)}`,
        );
      }
      if (fs.existsSync(this.address)) {
        last = await run('timeout', ['-k', '1', '5', this.binaries.ctr, '--address', this.address, 'version'], {
          timeoutMs: 10_000,
        });
        if (last.code === 0 && last.stdout.includes('Server:')) return;
      }
      await sleep(100);
    }
    throw new Error(
      `containerd ${this.version} "${this.name}" did not answer \`ctr --address ${this.address} version\` within ${timeoutMs} ms` +
        (last ? ` (last: exit ${last.code}: ${last.stderr.trim()})` : ' (socket never appeared)') +
        `; log ${this.logFile}:\n${this.readLog(40)}`,
    );
  }

  /** `timeout -k 5 <n> ctr --address <sock> -n <ns> ...args` with this version's ctr; never rejects. */
  ctr(args: readonly string[], opts: CtrOptions = {}): Promise<Result> {
    const sec = opts.timeoutSec ?? 60;
    return run(
      'timeout',
      ['-k', '5', String(sec), this.binaries.ctr, '--address', this.address, '-n', opts.namespace ?? this.namespace, ...args],
      { input: opts.input, env: opts.env, timeoutMs: (sec + 15) * 1000 },
    );
  }

  /** containerd's log (includes shim logs copied from each bundle's `log` FIFO). */
  readLog(tailLines?: number): string {
    let text: string;
    try {
      text = fs.readFileSync(this.logFile, 'utf8');
    } catch (e) {
      return `(cannot read ${this.logFile}: ${(e as Error).message})`;
    }
    if (tailLines === undefined) return text;
    return text.split('\n').slice(-tailLines - 1).join('\n');
  }

  /**
   * Kill containerd and everything it started, unmount, remove all dirs.
   * The log survives as <repo>/.e2e/logs/<name>-containerd.log.
   */
  async stop(): Promise<void> {
    await this.cleanup(this.child?.pid);
    this.child = undefined;
  }

  private readPidFile(): number | undefined {
    try {
      const pid = Number(fs.readFileSync(this.pidFile, 'utf8').trim());
      // Only trust it if that pid still is our containerd (pids get reused).
      const p = readProc(pid);
      return p && p.argv.includes(this.configFile) ? pid : undefined;
    } catch {
      return undefined;
    }
  }

  private async cleanup(containerdPid: number | undefined): Promise<void> {
    if (containerdPid !== undefined) await this.stopDaemon(containerdPid);

    const tasks = this.listBundles();
    const procs = this.instanceProcesses();
    // ctr's stdio FIFOs live in a shared dir and outlive a killed ctr/shim;
    // the shims holding them open are the only link back to this instance.
    const fifos = [...procs.keys()].flatMap(openFiles).filter((f) => isUnder(f, CTR_FIFO_DIR) && f !== CTR_FIFO_DIR);
    const survivors = await killAndWait(procs.keys());
    if (survivors.length > 0) {
      throw new Error(
        `PrivateContainerd ${this.name}: processes survived SIGKILL: ` +
          survivors.map((p) => procs.get(p) ?? String(p)).join('; '),
      );
    }
    // Pod netns mounts, veths, the bridge, libcni's cache and pod cgroups (CRI instances only;
    // the conflist on disk names what an earlier, crashed run of this name used).
    const cri = readCriHost(this.name, this.instanceDir, this.state) ?? this.cri;
    const criProblems = cri
      ? await cleanupCriHost(cri, tasks.map((t) => t.dir), tasks.map((t) => t.id), cgroupHierarchies())
      : [];
    for (const t of tasks) this.removeTaskLeftovers(t);
    removeFifos(fifos);

    const left = await unmountUnder(this.ownedDirs);
    if (left.length > 0) {
      // Never rm -rf through a live mount: that would delete whatever is mounted.
      throw new Error(
        `PrivateContainerd ${this.name}: cannot unmount ${left.map(describeMount).join(', ')}; not removing dirs`,
      );
    }
    if (fs.existsSync(this.logFile)) {
      fs.copyFileSync(this.logFile, path.join(buildDir('logs'), `${this.name}-containerd.log`));
    }
    fs.rmSync(this.instanceDir, { recursive: true, force: true });
    fs.rmSync(this.root, { recursive: true, force: true });
    if (criProblems.length > 0) {
      throw new Error(`PrivateContainerd ${this.name}: CRI host leftovers not removed: ${criProblems.join('; ')}`);
    }
  }

  private async stopDaemon(pid: number, signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM'): Promise<void> {
    try {
      process.kill(pid, signal);
    } catch {
      return;
    }
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      if (this.exited || !isAlive(pid)) return;
      await sleep(50);
    }
    const left = await killAndWait([pid]);
    if (left.length > 0) throw new Error(`containerd "${this.name}" (pid ${pid}) survived SIGKILL`);
  }

  /**
   * Shims (helpers and daemons) of this instance and everything below them.
   * Shims inherit containerd's environment, so TTRPC_ADDRESS/BURROW_ROOT
   * identify them even after a re-exec; cwd/argv catch the rest.
   */
  instanceProcesses(): Map<number, string> {
    const all = listProcesses();
    const self = new Set<number>();
    for (let p = readProc(process.pid); p && p.pid > 1; p = readProc(p.ppid)) self.add(p.pid);
    const roots: number[] = [];
    for (const p of all) {
      if (self.has(p.pid) || p.argv.length === 0) continue;
      const env = readEnviron(p.pid);
      const cwd = readCwd(p.pid);
      if (
        env.get('TTRPC_ADDRESS') === this.ttrpcAddress ||
        env.get('BURROW_ROOT') === this.burrowRoot ||
        p.argv.includes(this.address) ||
        p.argv.includes(this.configFile) ||
        (cwd !== undefined && this.ownedDirs.some((d) => isUnder(cwd, d)))
      ) {
        roots.push(p.pid);
      }
    }
    const ids = withDescendants(roots, all);
    const out = new Map<number, string>();
    for (const p of all) if (ids.has(p.pid) && !self.has(p.pid)) out.set(p.pid, describeProc(p));
    return out;
  }

  /** Every task bundle, and on 2.x every shim-sandboxer sandbox bundle: [namespace, id, dir]. */
  listBundles(): { namespace: string; id: string; dir: string }[] {
    const out: { namespace: string; id: string; dir: string }[] = [];
    for (const plugin of [TASK_PLUGIN_DIR, SANDBOX_PLUGIN_DIR]) {
      const base = path.join(this.state, plugin);
      for (const ns of safeReaddir(base)) {
        for (const id of safeReaddir(path.join(base, ns))) {
          out.push({ namespace: ns, id, dir: path.join(base, ns, id) });
        }
      }
    }
    return out;
  }

  /**
   * State that killed shims leave outside our dirs: the shim socket (named in
   * the bundle's `address` file), the runc-shim's runc state (else the next
   * run of the same container id fails with "already exists") and cgroups.
   */
  private removeTaskLeftovers(t: { namespace: string; id: string; dir: string }): void {
    const addr = shimSocketOf(t.dir);
    if (addr && isUnder(addr, SHIM_SOCKET_DIR)) fs.rmSync(addr, { force: true });
    fs.rmSync(path.join(RUNC_SHIM_ROOT, t.namespace, t.id), { recursive: true, force: true });
    for (const dir of cgroupDirsFor(t.namespace, t.id)) {
      try {
        fs.rmdirSync(dir);
      } catch {
        // busy or already gone; leak checks report it
      }
    }
  }
}

/**
 * The shim socket path of a bundle: from `address` (written by the shim's `start`; 1.x needs
 * it) or `bootstrap.json` (2.x writes it from the start output; its runc shim writes no
 * `address`). Undefined when the shim never got that far.
 */
export function shimSocketOf(bundleDir: string): string | undefined {
  let addr: string | undefined;
  try {
    addr = fs.readFileSync(path.join(bundleDir, 'address'), 'utf8').trim();
  } catch {
    try {
      addr = (JSON.parse(fs.readFileSync(path.join(bundleDir, 'bootstrap.json'), 'utf8')) as { address?: string }).address;
    } catch {
      return undefined;
    }
  }
  return addr ? addr.replace(/^unix:\/\//, '') : undefined;
}

function removeFifos(fifos: string[]): void {
  for (const f of new Set(fifos)) {
    const p = f.replace(/ \(deleted\)$/, '');
    fs.rmSync(p, { force: true });
    const dir = path.dirname(p);
    if (dir !== CTR_FIFO_DIR && isUnder(dir, CTR_FIFO_DIR) && safeReaddir(dir).length === 0) {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }
}

function safeReaddir(dir: string): string[] {
  try {
    return fs.readdirSync(dir).filter((n) => !n.startsWith('.'));
  } catch {
    return [];
  }
}

/** `<hierarchy>/<ns>/<id>` in every mounted cgroup hierarchy (v1 controllers and v2). */
export function cgroupDirsFor(namespace: string, id: string): string[] {
  return cgroupHierarchies()
    .map((h) => path.join(h, namespace, id))
    .filter((d) => fs.existsSync(d));
}

export function cgroupHierarchies(): string[] {
  const base = '/sys/fs/cgroup';
  if (fs.existsSync(path.join(base, 'cgroup.controllers'))) return [base];
  return safeReaddir(base)
    .map((n) => path.join(base, n))
    .filter((d) => fs.existsSync(path.join(d, 'cgroup.procs')));
}
