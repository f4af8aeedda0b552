// A container's sandbox: its lifecycle (create → start → signal/wait → destroy), with its
// metadata persisted after every state change, and everything undone when create fails
// half-way. Modelled on gVisor's runsc/sandbox/sandbox.go.

import * as fs from 'fs';
import * as path from 'path';
import type { Logger } from '../log/logger';
import { thawQuietly } from './cgroups/cgroupfs';
import { killLeftovers, openCgroup, removeCgroupDirs } from './cgroups/container-cgroup';
import { deviceState, effectiveDeviceRules } from './cgroups/device-rules';
import type { CgroupDriver, CgroupManager, CgroupStats } from './cgroups/manager';
import { OomWatcher } from './cgroups/oom-watch';
import { CgroupResources, parseResources } from './cgroups/resources';
import { alreadyExists, failedPrecondition, invalidArgument, notFound, SandboxError } from './errors';
import type { ExitRouter } from './exit-router';
import { ExecExit, ExecProcess, ExecTable } from './exec-process';
import { ociState, runRuntimeHooks } from './hooks';
import { validateId } from './ids';
import { buildInitPlan } from './launch-plan';
import type { NativeRuntime, SpawnedProcess } from './native-api';
import { loadSpec, OciSpec } from './oci-spec';
import { isSameProcess, pidsInNamespaceOf, processStartTime } from './proc';
import { mountRootfs, RootfsMount, unmountAll } from './rootfs';
import type { SandboxRecord, StateStore } from './state-store';
import { ProcessIO, StdioConfig } from './stdio';
import { Terminal } from './terminal';
import { now, Timestamp } from './timestamp';

export interface SandboxDeps {
  native: NativeRuntime;
  store: StateStore;
  exits: ExitRouter;
  logger: Logger;
  /** Makes each container's cgroup (cgroups/cgroupfs-driver.ts); absent only in tests without cgroups. */
  cgroups?: CgroupDriver;
}

export interface CreateOptions {
  id: string;
  namespace: string;
  bundle: string;
  rootfsMounts: RootfsMount[];
  stdio: StdioConfig;
}

export interface ExitInfo {
  pid: number;
  exitStatus: number;
  exitedAt: Timestamp;
}

const SIGKILL = 9;

/** Spec fields this version honours only partly: said in the log, never silently dropped. */
function warnUnapplied(logger: Logger, id: string, spec: OciSpec): void {
  if (spec.process?.apparmorProfile) {
    logger.warn('AppArmor is not supported: process.apparmorProfile ignored', { id, profile: spec.process.apparmorProfile });
  }
}
// How long a SIGKILLed process may take to be reaped before cleanup goes on without it.
const KILL_WAIT_MS = 10_000;

// Why Pause and Resume refuse a state: runc's shim's words (containerd pkg/process/init_state.go).
const PAUSE_REFUSED: Record<string, string> = {
  creating: 'cannot pause task in created state',
  created: 'cannot pause task in created state',
  pausing: 'cannot pause a paused container',
  paused: 'cannot pause a paused container',
  stopped: 'cannot pause a stopped container',
};
const RESUME_REFUSED: Record<string, string> = {
  creating: 'cannot resume task in created state',
  created: 'cannot resume task in created state',
  running: 'cannot resume a running process',
  stopped: 'cannot resume a stopped container',
};

const isPaused = (status: string) => status === 'paused' || status === 'pausing';

export class Sandbox {
  private proc?: SpawnedProcess;
  private io?: ProcessIO;
  private exited?: Promise<ExitInfo>;
  private destroyed = false;
  /** The bundle's spec as read at create: its later hooks (poststart, poststop) run from it. */
  private spec?: OciSpec;
  private readonly execs = new ExecTable();
  private terminal?: Terminal;
  private cgroup?: CgroupManager;
  private oomWatch?: OomWatcher;
  /** Serializes Pause, Resume and the thaw after a SIGKILL, as runc's shim does with its process lock. */
  private freezerLock: Promise<void> = Promise.resolve();

  private constructor(
    private readonly deps: SandboxDeps,
    private readonly rec: SandboxRecord,
  ) {}

  get id(): string {
    return this.rec.id;
  }

  get pid(): number {
    return this.rec.pid;
  }

  /** A copy of the persisted metadata. */
  get record(): SandboxRecord {
    return { ...this.rec };
  }

  static async create(deps: SandboxDeps, opts: CreateOptions): Promise<Sandbox> {
    validateId(opts.id);
    validateId(opts.namespace, 'namespace');
    if (!path.isAbsolute(opts.bundle)) {
      throw invalidArgument(`container ${opts.id}: bundle ${JSON.stringify(opts.bundle)} must be an absolute path`);
    }
    const spec = loadSpec(opts.bundle);
    warnUnapplied(deps.logger, opts.id, spec);
    const rootPath = spec.root!.path;
    const rootfs = path.isAbsolute(rootPath) ? rootPath : path.join(opts.bundle, rootPath);
    if (!deps.store.claim(opts.namespace, opts.id)) {
      throw alreadyExists(`container ${opts.id} already exists in namespace ${opts.namespace}`);
    }
    const pidNs = spec.linux?.namespaces?.find((n) => n.type === 'pid');
    const sb = new Sandbox(deps, {
      id: opts.id,
      namespace: opts.namespace,
      bundle: opts.bundle,
      rootfs,
      rootfsMounted: false,
      pid: 0,
      privatePidNamespace: pidNs !== undefined && !pidNs.path,
      status: 'creating',
      createdAt: new Date().toISOString(),
      stdio: opts.stdio,
    });
    try {
      sb.persist();
      sb.prepareRootfs(opts.rootfsMounts);
      // The spec decides whether the init has a terminal (runc reads it from there too).
      sb.rec.stdio = { ...opts.stdio, terminal: spec.process?.terminal === true };
      sb.io = ProcessIO.open(sb.rec.stdio, `container ${opts.id}`);
      // The cgroup exists with its limits before the init does; its paths are persisted first,
      // so that every later failure (and the delete helper) removes it.
      sb.cgroup = openCgroup(deps.cgroups, opts.id, opts.namespace, spec, deps.native);
      sb.rec.cgroupPaths = sb.cgroup?.paths;
      sb.persist();
      const plan = buildInitPlan({ id: opts.id, bundle: opts.bundle, spec, stdio: sb.io.fds, cgroupDirs: sb.cgroup?.paths });
      sb.cgroup?.apply(parseResources(spec.linux?.resources), spec.linux?.devices);
      // A new cgroup namespace: the native layer puts the child in the cgroup before it
      // unshares the namespace (plan.cgroupNamespaceDirs).
      sb.proc = deps.native.spawn(plan);
      // Still before execve (it waits for Start): no user code runs outside the cgroup.
      sb.cgroup?.addProcess(sb.proc.pid);
      sb.rec.pid = sb.proc.pid;
      sb.rec.pidStartTime = processStartTime(sb.proc.pid);
      sb.exited = sb.trackExit(sb.proc.pid);
      sb.io.releaseChildEnds();
      sb.persist();
      sb.spec = spec;
      if (plan.pauseBeforePivot) {
        // Namespaces exist and the rootfs is mounted: the runtime-namespace hooks run now,
        // then the child goes on with its createContainer hooks and pivot_root.
        await sb.proc.paused();
        const state = sb.hookState('creating');
        await runRuntimeHooks(spec, 'prestart', state);
        await runRuntimeHooks(spec, 'createRuntime', state);
        sb.proc.resume(Buffer.from(JSON.stringify(state)));
      }
      await sb.proc.ready();
      if (plan.terminal) sb.terminal = Terminal.attach(deps.native, sb.proc, sb.io, `container ${opts.id}`);
      sb.rec.status = 'created';
      sb.persist();
      return sb;
    } catch (err) {
      await sb.destroyAfterFailure(err);
      throw err;
    }
  }

  private prepareRootfs(mounts: RootfsMount[]): void {
    const { rootfs, id } = this.rec;
    if (mounts.length === 0) {
      // `ctr run --rootfs` and bundles prepared by hand: the directory is the rootfs.
      if (!fs.statSync(rootfs, { throwIfNoEntry: false })?.isDirectory()) {
        throw invalidArgument(`container ${id}: rootfs ${JSON.stringify(rootfs)} does not exist`);
      }
      return;
    }
    fs.mkdirSync(rootfs, { recursive: true, mode: 0o711 });
    try {
      mountRootfs(this.deps.native, mounts, rootfs);
    } catch (err) {
      throw invalidArgument(`container ${id}: mount rootfs on ${JSON.stringify(rootfs)}: ${(err as Error).message}`);
    }
    this.rec.rootfsMounted = true;
    this.persist();
  }

  private async trackExit(pid: number): Promise<ExitInfo> {
    const rec = await this.deps.exits.watch(pid);
    const info: ExitInfo = { pid, exitStatus: rec.exitStatus, exitedAt: now() };
    // runc's shim resumes a container whose init exited while paused: what is left in it
    // (execs, processes outside a pid namespace of its own) must be able to run and die.
    if (isPaused(this.rec.status)) this.thawNow();
    this.rec.status = 'stopped';
    this.rec.exitStatus = info.exitStatus;
    this.rec.exitedAt = info.exitedAt;
    this.persist();
    // Without a pid namespace of its own nothing kills the init's processes with it.
    if (!this.rec.privatePidNamespace) killLeftovers(this.cgroup, this.rec.id, this.deps.logger);
    this.deps.logger.debug('container init exited', { id: this.rec.id, pid, exitStatus: info.exitStatus });
    return info;
  }

  private hookState(status: 'creating' | 'created' | 'running' | 'stopped') {
    const { id, pid, bundle } = this.rec;
    return ociState(this.spec!, { id, status, pid, bundle });
  }

  /** Hooks whose failure is only logged: the lifecycle has gone past the point of failing. */
  private async runLoggedHooks(kind: 'poststart' | 'poststop', status: 'running' | 'stopped'): Promise<void> {
    if (!this.spec) return;
    try {
      await runRuntimeHooks(this.spec, kind, this.hookState(status));
    } catch (err) {
      this.deps.logger.warn(`${kind} hook failed`, { id: this.rec.id, error: (err as Error).message });
    }
  }

  private persist(): void {
    if (!this.destroyed) this.deps.store.save(this.rec);
  }

  /** Lets the created init run its program; resolves with its pid once execve succeeded. */
  async start(): Promise<number> {
    if (this.rec.status !== 'created' || !this.proc) {
      throw failedPrecondition(`container ${this.rec.id} is ${this.rec.status}, it cannot be started`);
    }
    try {
      await this.proc.release(Buffer.from(JSON.stringify(this.hookState('created'))));
    } catch (err) {
      // The child exits right after reporting: let its exit be recorded first, so that a
      // client seeing Start fail finds the task stopped (and deletes it), not still created.
      const timeout = new Promise<undefined>((r) => setTimeout(() => r(undefined), 2000).unref());
      await Promise.race([this.exited, timeout]);
      throw failedPrecondition(`container ${this.rec.id}: start: ${(err as Error).message}`);
    }
    // A program that exits at once may already have been reaped.
    if (this.rec.status === 'created') {
      this.rec.status = 'running';
      this.persist();
    }
    await this.runLoggedHooks('poststart', 'running');
    return this.rec.pid;
  }

  /** Signals the init, or with `all` every process of the container. */
  signal(signal: number, all: boolean): void {
    const { status, id, pid } = this.rec;
    if (status === 'stopped') throw notFound(`container ${id}: process already finished`);
    if (status === 'creating') throw failedPrecondition(`container ${id} is still being created`);
    if (all && !(this.rec.privatePidNamespace && signal === SIGKILL)) {
      if (this.cgroup) this.cgroup.kill(signal, pid);
      else for (const p of pidsInNamespaceOf(pid)) {
        if (p === pid) continue;
        try {
          process.kill(p, signal);
        } catch {
          // Exited meanwhile.
        }
      }
    }
    try {
      this.deps.native.signal(pid, signal);
    } catch (err) {
      if ((err as { code?: string }).code === 'ESRCH') throw notFound(`container ${id}: process already finished`);
      throw err;
    }
  }

  /**
   * Kill: signal(), and for a SIGKILL of a paused container a thaw, as runc does: on cgroup v1
   * a frozen process dies only once thawed. The status stays paused until the init's exit.
   */
  async kill(signal: number, all: boolean): Promise<void> {
    const paused = isPaused(this.rec.status);
    this.signal(signal, all);
    if (!paused || signal !== SIGKILL || !this.cgroup) return;
    const cgroup = this.cgroup;
    try {
      await this.withFreezerLock(() => cgroup.thaw());
    } catch (err) {
      // The signal was delivered: like runc, a failed thaw does not fail the Kill.
      this.deps.logger.warn('thaw after SIGKILL of a paused container failed', { id: this.rec.id, error: (err as Error).message });
    }
  }

  private withFreezerLock<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.freezerLock.then(fn, fn);
    this.freezerLock = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  private requireCgroup(what: string): CgroupManager {
    if (!this.cgroup) throw failedPrecondition(`container ${this.rec.id}: ${what}: the container has no cgroup`);
    return this.cgroup;
  }

  /** Synchronous best-effort thaw of every directory of the cgroup (exit and cleanup paths). */
  private thawNow(): void {
    for (const dir of this.cgroup?.paths ?? []) thawQuietly(dir);
  }

  /** Freezes the container (Pause): status pausing, then paused once the cgroup is frozen. */
  pause(): Promise<void> {
    return this.withFreezerLock(async () => {
      const { status, id } = this.rec;
      if (status !== 'running') throw failedPrecondition(`container ${id}: ${PAUSE_REFUSED[status]}`);
      const cgroup = this.requireCgroup('pause');
      this.rec.status = 'pausing';
      this.persist();
      try {
        await cgroup.freeze();
      } catch (err) {
        if (this.rec.status === 'pausing') {
          this.rec.status = 'running';
          this.persist();
        }
        throw err;
      }
      if (this.rec.status !== 'pausing') {
        // The init exited while its cgroup was being frozen: nothing may stay frozen.
        this.thawNow();
        throw failedPrecondition(`container ${id}: ${PAUSE_REFUSED.stopped}`);
      }
      this.rec.status = 'paused';
      this.persist();
    });
  }

  /** Thaws a paused container (Resume). */
  resume(): Promise<void> {
    return this.withFreezerLock(async () => {
      const { status, id } = this.rec;
      if (status !== 'paused') throw failedPrecondition(`container ${id}: ${RESUME_REFUSED[status]}`);
      await this.requireCgroup('resume').thaw();
      if (this.rec.status === 'paused') {
        this.rec.status = 'running';
        this.persist();
      }
    });
  }

  /**
   * New resources for the container's cgroup (Update: JSON linux.resources). Allowed while
   * created, running or paused, as with runc. Device rules: replaced on cgroup v2 (a new device
   * program), unchangeable on v1 (see checkDevicesUnchanged).
   */
  update(raw: unknown): void {
    const { status, id } = this.rec;
    if (status === 'stopped') throw failedPrecondition(`container ${id}: cannot update a stopped container`);
    if (status === 'creating') throw failedPrecondition(`container ${id} is still being created`);
    const cgroup = this.requireCgroup('update');
    let res: CgroupResources;
    try {
      res = parseResources(raw);
      if (cgroup.version === 1) this.checkDevicesUnchanged(res);
      cgroup.update(res);
    } catch (err) {
      // Every error of an update names the container (the field-level checks do not know it).
      if (err instanceof SandboxError && !err.message.startsWith(`container ${id}`)) {
        throw new SandboxError(err.kind, `container ${id}: ${err.message}`);
      }
      throw err;
    }
    this.deps.logger.info('container resources updated', { id });
  }

  /**
   * An update's device rules must be those of the container already (CRI sends the whole
   * linux.resources, rules included): rewriting them on a running container is not done (runc
   * ignores them), and other rules are refused rather than silently dropped. None: unchanged.
   */
  private checkDevicesUnchanged(res: CgroupResources): void {
    if (res.devices.length === 0) return;
    const linuxDevices = this.spec?.linux?.devices ?? [];
    const asked = deviceState(effectiveDeviceRules(res.devices, linuxDevices));
    const have = deviceState(effectiveDeviceRules(parseResources(this.spec?.linux?.resources).devices, linuxDevices));
    if (JSON.stringify(asked) !== JSON.stringify(have)) {
      throw invalidArgument(
        'linux.resources.devices: the device rules of a created container cannot be changed by an update ' +
          `(have ${have.defaultAllow ? 'allow' : 'deny'} all but [${have.exceptions.join(', ')}], ` +
          `asked ${asked.defaultAllow ? 'allow' : 'deny'} all but [${asked.exceptions.join(', ')}])`,
      );
    }
  }

  /** The cgroup's metrics (Stats); not-found "cgroup does not exist" without one. */
  stats(): CgroupStats {
    if (!this.cgroup) throw notFound(`container ${this.rec.id}: cgroup does not exist`);
    return this.cgroup.stats();
  }

  /**
   * Starts watching the cgroup for OOM kills (right after Create, until the container is
   * removed). A cgroup that cannot be watched is logged, as by runc's shim, not an error.
   */
  watchOom(onOom: () => void): void {
    if (!this.cgroup || this.oomWatch || this.destroyed) return;
    const dir = this.cgroup.memoryDir();
    if (!dir) {
      this.deps.logger.warn('no memory cgroup: OOM kills will not be reported', { id: this.rec.id, cgroup: this.cgroup.paths });
      return;
    }
    try {
      this.oomWatch = OomWatcher.start({
        id: this.rec.id, version: this.cgroup.version, dir, native: this.deps.native, logger: this.deps.logger, onOom,
      });
    } catch (err) {
      this.deps.logger.warn('cannot watch the cgroup for OOM kills', { id: this.rec.id, dir, error: (err as Error).message });
    }
  }

  /** Reports an OOM kill not reported yet (called before an exit is published). */
  checkOom(): void {
    this.oomWatch?.check();
  }

  /** Resolves when the init has exited (also after the fact, for every caller). */
  wait(): Promise<ExitInfo> {
    if (!this.exited) throw failedPrecondition(`container ${this.rec.id} has no process`);
    return this.exited;
  }

  /** Registers an exec (Exec): it runs only when started. */
  addExec(execId: string, processSpec: unknown, stdio: StdioConfig): ExecProcess {
    const { status, id } = this.rec;
    if (isPaused(status)) throw failedPrecondition(`container ${id}: cannot exec in a paused state`);
    if (status !== 'created' && status !== 'running') {
      throw failedPrecondition(`container ${id} is ${status}: cannot exec in it`);
    }
    const exec = new ExecProcess(execId, processSpec, stdio);
    this.execs.add(exec);
    return exec;
  }

  exec(execId: string): ExecProcess {
    return this.execs.get(this.rec.id, execId);
  }

  async startExec(execId: string): Promise<number> {
    const exec = this.exec(execId);
    if (isPaused(this.rec.status)) {
      throw failedPrecondition(`container ${this.rec.id}: cannot exec in a paused container`);
    }
    if (this.rec.status !== 'running') {
      throw failedPrecondition(`container ${this.rec.id} init process is not running`);
    }
    return exec.start({
      containerId: this.rec.id,
      spec: this.spec!,
      initPid: this.rec.pid,
      native: this.deps.native,
      exits: this.deps.exits,
      join: (pid) => this.joinContainer(pid),
    });
  }

  /** Puts a process (an exec) where the init is, beyond its namespaces: in its cgroup. */
  private joinContainer(pid: number): void {
    this.cgroup?.addProcess(pid);
  }

  signalExec(execId: string, signal: number): void {
    this.exec(execId).signal(this.deps.native, signal);
  }

  deleteExec(execId: string): ExecExit {
    const info = this.exec(execId).release();
    this.execs.remove(execId);
    return info;
  }

  /** Execs still running (their exits come before the init's, for containerd). */
  runningExecs(): ExecProcess[] {
    return this.execs.all().filter((e) => e.status === 'running');
  }

  pids(): number[] {
    if (this.rec.status === 'stopped' || this.rec.pid <= 0) return [];
    if (this.cgroup) return this.cgroup.pids();
    // Without a pid namespace of its own the namespace is the host's: only the init is ours.
    return this.rec.privatePidNamespace ? pidsInNamespaceOf(this.rec.pid) : [this.rec.pid];
  }

  closeStdin(): void {
    this.io?.closeStdin();
  }

  resizePty(cols: number, rows: number): void {
    this.terminal?.resize(cols, rows);
  }

  /**
   * Removes the container: a created (never started) init is killed first; a running one
   * must be stopped by the caller. Unmounts the rootfs and forgets the state.
   */
  async destroy(): Promise<ExitInfo> {
    const { status, id } = this.rec;
    if (status === 'running') throw failedPrecondition(`container ${id}: cannot delete a running process`);
    if (isPaused(status)) throw failedPrecondition(`container ${id}: cannot delete a paused process`);
    if (status === 'created') {
      this.proc?.abandon();
      this.killQuietly();
    }
    const info = await this.wait();
    await this.release();
    await this.runLoggedHooks('poststop', 'stopped');
    return info;
  }

  private killQuietly(): void {
    if (this.rec.pid <= 0) return;
    try {
      this.deps.native.signal(this.rec.pid, SIGKILL);
    } catch {
      // Already gone.
    }
  }

  private async release(): Promise<void> {
    for (const e of this.execs.all()) e.dispose();
    this.terminal?.close();
    this.io?.close();
    if (this.rec.rootfsMounted) {
      await unmountAll(this.deps.native, this.rec.rootfs);
      this.rec.rootfsMounted = false;
    }
    // Before the cgroup goes: its removal would notify the OOM eventfd, which must be closed anyway.
    this.oomWatch?.close();
    this.oomWatch = undefined;
    // After the init exited: the cgroup must be gone once the container is deleted.
    await this.cgroup?.destroy();
    this.deps.store.remove(this.rec.namespace, this.rec.id);
    this.destroyed = true;
  }

  private async destroyAfterFailure(cause: unknown): Promise<void> {
    const log = this.deps.logger;
    this.proc?.abandon();
    this.killQuietly();
    if (this.exited) {
      const timeout = new Promise<undefined>((r) => setTimeout(() => r(undefined), KILL_WAIT_MS).unref());
      if ((await Promise.race([this.exited, timeout])) === undefined) {
        log.error('process of a failed create did not exit after SIGKILL', { id: this.rec.id, pid: this.rec.pid });
      }
    }
    try {
      await this.release();
    } catch (err) {
      log.error('cleanup after failed create', {
        id: this.rec.id,
        error: (err as Error).message,
        cause: (cause as Error).message,
      });
    }
  }

  /** Records of every sandbox in `namespace`, with inits that died meanwhile marked stopped. */
  static list(store: StateStore, namespace: string): SandboxRecord[] {
    return store.list(namespace).flatMap((id) => {
      const rec = Sandbox.load(store, namespace, id);
      return rec ? [rec] : [];
    });
  }

  /** The persisted record of one sandbox, noticing an init that died while nobody watched. */
  static load(store: StateStore, namespace: string, id: string): SandboxRecord | undefined {
    const rec = store.load(namespace, id);
    if (!rec) return undefined;
    if (['created', 'running', 'pausing', 'paused'].includes(rec.status) && !isSameProcess(rec.pid, rec.pidStartTime)) {
      rec.status = 'stopped';
      store.save(rec);
    }
    return rec;
  }
}

/**
 * What the `delete` helper does for a shim that is gone: kill what is left of the container,
 * unmount its rootfs, forget its state. Idempotent; returns the init pid if it was known.
 */
export async function forceCleanup(
  native: Pick<NativeRuntime, 'unmount'>,
  store: StateStore,
  namespace: string,
  id: string,
  bundle: string,
  warn: (msg: string) => void = () => undefined,
): Promise<number> {
  validateId(id);
  const rec = store.load(namespace, id);
  // A container paused when its shim died: on cgroup v1 its frozen processes die only once thawed.
  for (const dir of rec?.cgroupPaths ?? []) thawQuietly(dir);
  if (rec && rec.status !== 'stopped' && isSameProcess(rec.pid, rec.pidStartTime)) {
    try {
      // Not our child here (the daemon cloned it), hence kill(2) after the start-time check.
      process.kill(rec.pid, SIGKILL);
    } catch {
      // Exited meanwhile.
    }
  }
  await unmountAll(native as NativeRuntime, rec?.rootfs ?? path.join(bundle, 'rootfs'));
  // Kills what is left in it (processes outside a pid namespace of their own survive the init).
  await removeCgroupDirs(id, rec?.cgroupPaths ?? []);
  store.remove(namespace, id);
  if (rec) {
    // The container was never deleted through its shim: its poststop hooks have not run yet.
    try {
      const spec = loadSpec(bundle);
      await runRuntimeHooks(spec, 'poststop', ociState(spec, { id, status: 'stopped', pid: rec.pid, bundle }));
    } catch (err) {
      warn(`container ${id}: poststop hooks: ${(err as Error).message}`);
    }
  }
  return rec?.pid ?? 0;
}
