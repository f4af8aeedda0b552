import * as fs from 'fs';
// A NativeRuntime without syscalls, for the sandbox and service tests: it records every spawn
// plan, signal, mount and unmount, and lets the test decide when a process is ready, when its
// release (execve) completes and when it exits.

import type { LaunchPlan } from '../../shim/sandbox/launch-plan';
import * as L from '../../shim/sandbox/linux';
import {
  DeviceFilterRules,
  ExitRecord,
  HostMount,
  NativeError,
  NativeRuntime,
  OomRegistration,
  SpawnedProcess,
} from '../../shim/sandbox/native-api';

const SIGKILL = 9;

// Far above any pid_max (2^22), so /proc never has these and no real process is ever signalled.
const FIRST_PID = 1_500_000_000;

interface Deferred<T> {
  promise: Promise<T>;
  resolve(value: T): void;
  reject(err: Error): void;
  settled: boolean;
}

function deferred<T>(): Deferred<T> {
  const d = { settled: false } as Deferred<T>;
  d.promise = new Promise<T>((resolve, reject) => {
    d.resolve = (v) => {
      d.settled = true;
      resolve(v);
    };
    d.reject = (e) => {
      d.settled = true;
      reject(e);
    };
  });
  // Tests that never await a rejection must not produce unhandled-rejection noise.
  d.promise.catch(() => undefined);
  return d;
}

export class FakeProcess implements SpawnedProcess {
  alive = true;
  abandoned = false;
  releaseCalls = 0;
  /** The OCI state handed over by each release() call. */
  readonly releaseStates: Array<Buffer | undefined> = [];
  /** The OCI state handed over by each resume() call. */
  readonly resumeStates: Buffer[] = [];
  exitStatus?: number;
  /** The child's pty master fd number a terminal plan reports (any number: it is fake). */
  childTerminalFd?: number;
  private readonly readyD = deferred<void>();
  private readonly pausedD = deferred<void>();
  private readonly releaseD = deferred<void>();

  constructor(
    readonly pid: number,
    readonly plan: LaunchPlan,
  ) {}

  ready(): Promise<void> {
    return this.readyD.promise;
  }

  terminalFd(): number | undefined {
    return this.childTerminalFd ?? (this.plan.terminal ? 100 : undefined);
  }

  paused(): Promise<void> {
    return this.pausedD.promise;
  }

  resume(state: Buffer): void {
    this.resumeStates.push(state);
  }

  release(state?: Buffer): Promise<void> {
    this.releaseCalls++;
    this.releaseStates.push(state);
    return this.releaseD.promise;
  }

  abandon(): void {
    this.abandoned = true;
  }

  resolveReady(): void {
    this.readyD.resolve();
  }

  rejectReady(err: Error): void {
    this.readyD.reject(err);
  }

  resolvePaused(): void {
    this.pausedD.resolve();
  }

  rejectPaused(err: Error): void {
    this.pausedD.reject(err);
  }

  resolveRelease(): void {
    this.releaseD.resolve();
  }

  rejectRelease(err: Error): void {
    this.releaseD.reject(err);
  }
}

export interface SignalRecord {
  pid: number;
  signal: number;
}

export interface FakeNativeOptions {
  /** Resolve ready() right after spawn (default true). */
  autoReady?: boolean;
  /** Resolve paused() right after spawn (default true; only plans with pauseBeforePivot wait for it). */
  autoPause?: boolean;
  /** Resolve release() right after spawn, i.e. before start is even called (default true). */
  autoRelease?: boolean;
  /** Signals after which the process exits with 128 + signal (default: SIGKILL only). */
  fatalSignals?: number[];
}

export class FakeNative implements NativeRuntime {
  /** takeFd hands out real fds (of /dev/null) so that closing them is a real close. */
  takeFd(_pid: number, _fd: number): number {
    return fs.openSync('/dev/null', 'r');
  }

  startPtyRelay(master: number, stdin: number, stdout: number): void {
    this.relays.push({ master, stdin, stdout });
    // The real relay owns and closes them when the pty hangs up; a fake closes at once.
    for (const fd of [master, stdin, stdout]) if (fd >= 0) fs.closeSync(fd);
  }

  resizePty(master: number, cols: number, rows: number): void {
    this.resizes.push({ master, cols, rows });
  }

  readonly spawned: FakeProcess[] = [];
  readonly signals: SignalRecord[] = [];
  /** Every mount(2) call, in order (remounts and propagation changes included). */
  readonly mountCalls: HostMount[] = [];
  /** Every unmount call, in order, also the failing ones. */
  readonly unmountCalls: Array<{ target: string; flags: number }> = [];
  /** pty relays started, and resizes, as the Terminal class drives them. */
  readonly relays: Array<{ master: number; stdin: number; stdout: number }> = [];
  readonly resizes: Array<{ master: number; cols: number; rows: number }> = [];
  /** What is mounted now: one entry per mount stacked on a target. */
  readonly mountTable: string[] = [];
  /** Set to make the next spawn throw it. */
  spawnError?: Error;
  /** Returns an error to make that mount call fail. */
  mountFailure?: (m: HostMount, callIndex: number) => Error | undefined;
  autoReady: boolean;
  autoPause: boolean;
  autoRelease: boolean;
  fatalSignals: Set<number>;
  private nextPid = FIRST_PID;
  private readonly listeners: Array<(rec: ExitRecord) => void> = [];

  constructor(opts: FakeNativeOptions = {}) {
    this.autoReady = opts.autoReady ?? true;
    this.autoPause = opts.autoPause ?? true;
    this.autoRelease = opts.autoRelease ?? true;
    this.fatalSignals = new Set(opts.fatalSignals ?? [SIGKILL]);
  }

  spawn(plan: LaunchPlan): SpawnedProcess {
    if (this.spawnError) {
      const err = this.spawnError;
      this.spawnError = undefined;
      throw err;
    }
    const p = new FakeProcess(this.nextPid++, structuredClone(plan));
    this.spawned.push(p);
    if (this.autoPause) p.resolvePaused();
    if (this.autoReady) p.resolveReady();
    if (this.autoRelease) p.resolveRelease();
    return p;
  }

  signal(pid: number, signal: number): void {
    const p = this.spawned.find((s) => s.pid === pid);
    if (!p || !p.alive) throw new NativeError(`signal ${signal} to pid ${pid}: No such process`, 'ESRCH', 3);
    this.signals.push({ pid, signal });
    if (this.fatalSignals.has(signal)) {
      // The kernel kills at once, the reaper reports a moment later.
      p.alive = false;
      setImmediate(() => this.deliver(p, 128 + signal));
    }
  }

  mount(m: HostMount): void {
    const index = this.mountCalls.length;
    this.mountCalls.push({ ...m });
    const err = this.mountFailure?.(m, index);
    if (err) throw err;
    // Remounts and propagation changes alter an existing mount; they stack nothing.
    const propagationOnly = (m.flags & (L.MS_PRIVATE | L.MS_SLAVE | L.MS_SHARED | L.MS_UNBINDABLE)) !== 0;
    if ((m.flags & L.MS_REMOUNT) === 0 && !propagationOnly) this.mountTable.push(m.target);
  }

  unmount(target: string, flags: number): void {
    this.unmountCalls.push({ target, flags });
    const i = this.mountTable.lastIndexOf(target);
    if (i < 0) throw new NativeError(`unmount ${JSON.stringify(target)}: Invalid argument`, 'EINVAL', 22);
    this.mountTable.splice(i, 1);
  }

  onExit(listener: (rec: ExitRecord) => void): void {
    this.listeners.push(listener);
  }

  /** OOM registrations (cgroup v1 eventfds) by memory cgroup directory; closed ones are removed. */
  readonly oomWatches = new Map<string, () => void>();
  /** Every attachDeviceFilter call, in order; ids count up from 1. */
  readonly deviceFilters: Array<{ dir: string; rules: DeviceFilterRules; id: number }> = [];

  attachDeviceFilter(dir: string, rules: DeviceFilterRules): number {
    const id = this.deviceFilters.length + 1;
    this.deviceFilters.push({ dir, rules, id });
    return id;
  }

  /** Set to make the next watchOom throw it. */
  oomWatchError?: Error;

  watchOom(dir: string, listener: () => void): OomRegistration {
    if (this.oomWatchError) {
      const err = this.oomWatchError;
      this.oomWatchError = undefined;
      throw err;
    }
    this.oomWatches.set(dir, listener);
    return { close: () => this.oomWatches.delete(dir) };
  }

  /** Delivers an eventfd notification for `dir`, as the native OOM monitor would. */
  notifyOom(dir: string): void {
    const l = this.oomWatches.get(dir);
    if (!l) throw new Error(`no OOM watch on ${dir}`);
    l();
  }

  /** Makes `pid` exit with `exitStatus` now (as the reaper would report it). */
  exit(pid: number, exitStatus: number): void {
    const p = this.process(pid);
    if (p.exitStatus !== undefined) throw new Error(`fake process ${pid} already exited`);
    p.alive = false;
    this.deliver(p, exitStatus);
  }

  process(pid: number): FakeProcess {
    const p = this.spawned.find((s) => s.pid === pid);
    if (!p) throw new Error(`no fake process ${pid}`);
    return p;
  }

  /** The most recently spawned process. */
  get last(): FakeProcess {
    const p = this.spawned[this.spawned.length - 1];
    if (!p) throw new Error('nothing spawned yet');
    return p;
  }

  live(): FakeProcess[] {
    return this.spawned.filter((p) => p.alive);
  }

  private deliver(p: FakeProcess, exitStatus: number): void {
    if (p.exitStatus !== undefined) return;
    p.exitStatus = exitStatus;
    for (const l of this.listeners) l({ pid: p.pid, exitStatus });
  }
}
