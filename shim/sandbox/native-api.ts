// What the sandbox layer needs from the native (syscall) layer. The sandbox depends on this
// interface only, so unit tests run it against a fake without root; shim/native implements it.

import type { LaunchPlan } from './launch-plan';

export interface ExitRecord {
  pid: number;
  /** Exit code, or 128 + signal number when killed by a signal (SIGKILL → 137). */
  exitStatus: number;
}

export interface SpawnedProcess {
  readonly pid: number;
  /**
   * Resolves once the process is set up: blocked before execve when the plan waits for start,
   * or already exec'd when it does not. Rejects with the child's own report of what failed.
   */
  ready(): Promise<void>;
  /**
   * Resolves when a plan with `pauseBeforePivot` stopped for the runtime-namespace hooks
   * (namespaces exist, rootfs mounted, before pivot_root); rejects like ready().
   */
  paused(): Promise<void>;
  /** Continues a paused process, handing it the OCI state for its createContainer hooks. */
  resume(state: Buffer): void;
  /**
   * Lets a process blocked before execve go on, handing it the OCI state for its
   * startContainer hooks; resolves once execve succeeded.
   */
  release(state?: Buffer): Promise<void>;
  /** The child's fd number of its pty master (plans with `terminal`), known once ready. */
  terminalFd(): number | undefined;
  /** Drops the control pipe so a process still blocked before execve exits without running. */
  abandon(): void;
}

export interface HostMount {
  source: string;
  target: string;
  fstype: string;
  flags: number;
  data: string;
  /** Run the mount from this directory (relative overlay lowerdirs). */
  chdir?: string;
}

/** A live OOM notification registration (NativeRuntime.watchOom). */
export interface OomRegistration {
  /** Stops the notifications and releases the eventfd; idempotent. */
  close(): void;
}

/**
 * A cgroup's device rules reduced to a default and exceptions (cgroups/device-rules.ts
 * DeviceState, exceptions parsed): what the cgroup v2 device program is built from.
 */
export interface DeviceFilterRules {
  defaultAllow: boolean;
  /** Each takes the other action than the default; major/minor -1 = any. */
  exceptions: Array<{ type: 'b' | 'c'; major: number; minor: number; access: string }>;
}

/** Attaches cgroup v2 device programs (implemented by NativeRuntime). */
export interface CgroupDeviceFilter {
  /**
   * Makes `rules` the device rules of the cgroup v2 directory `dir`: an eBPF program
   * (BPF_PROG_TYPE_CGROUP_DEVICE) replacing the one attached before. Returns its program id;
   * throws a NativeError naming the failed step.
   */
  attachDeviceFilter(dir: string, rules: DeviceFilterRules): number;
}

export interface NativeRuntime extends CgroupDeviceFilter {
  spawn(plan: LaunchPlan): SpawnedProcess;
  /** Signals a process we spawned; throws an error with code 'ESRCH' once it has been reaped. */
  signal(pid: number, signal: number): void;
  mount(m: HostMount): void;
  /** Throws an error carrying the errno name in `code` (EINVAL when nothing is mounted there). */
  unmount(target: string, flags: number): void;
  /** A copy of fd `fd` of our child `pid` (pidfd_getfd): how the shim gets a pty master. */
  takeFd(pid: number, fd: number): number;
  /** Copies pty master ↔ FIFOs on a native thread, which owns and closes the three fds. */
  startPtyRelay(master: number, stdin: number, stdout: number): void;
  resizePty(master: number, cols: number, rows: number): void;
  /** Every exit of a process we spawned, exactly once per process. */
  onExit(listener: (rec: ExitRecord) => void): void;
  /**
   * cgroup v1 OOM notifications of the memory cgroup `dir`: an eventfd registered on its
   * memory.oom_control through cgroup.event_control and read on a native thread, so no Node
   * or libuv thread ever blocks on it. `listener` runs once per notification (also the one the
   * kernel sends when the cgroup is removed) until close(). Throws a NativeError naming the
   * failed step, with the errno name in `code`, when the registration fails.
   */
  watchOom(dir: string, listener: () => void): OomRegistration;
}

/** An error from the native layer: `code` is the errno name, e.g. 'ENOENT'. */
export class NativeError extends Error {
  constructor(message: string, readonly code?: string, readonly errno?: number) {
    super(message);
    this.name = 'NativeError';
  }
}
