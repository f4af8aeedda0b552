// The NativeRuntime backed by native/ (Rust cdylib) through ffi-rs.
//
// Every call is short and non-blocking; waiting happens on pipes that Node reads as streams:
// the child's report pipe (ready / failure / execve done) and the reaper's exit-record pipe.

import * as fs from 'fs';
import * as net from 'net';
import * as path from 'path';
import * as util from 'util';
import { DataType, define, open } from 'ffi-rs';
import type { LaunchPlan } from '../sandbox/launch-plan';
import {
  DeviceFilterRules,
  ExitRecord,
  HostMount,
  NativeError,
  NativeRuntime,
  OomRegistration,
  SpawnedProcess,
} from '../sandbox/native-api';
import { packageRoot } from '../package-root';

const LIBRARY = 'burrow_native';
const OUT_SIZE = 4096;
const CLD_EXITED = 1;

type NativeFns = {
  spawn(plan: string, out: Buffer): number;
  reaperFd(): number;
  signal(pid: number, sig: number): number;
  mount(m: HostMount): number;
  umount(target: string, flags: number): number;
  takeFd(pid: number, fd: number): number;
  ptyRelay(master: number, stdin: number, stdout: number): number;
  resizePty(master: number, cols: number, rows: number): number;
  oomFd(): number;
  oomRegister(dir: string, out: Buffer): number;
  oomUnregister(token: number): number;
  oomRegistered(): number;
  deviceFilter(dir: string, rulesJson: string, out: Buffer): number;
  devicePrograms(dir: string, out: Buffer): number;
  bpfProgramExists(id: number): number;
};

function libraryPath(): string {
  return (
    process.env.BURROW_NATIVE_LIB ??
    path.join(packageRoot(), 'native', 'target', 'release', 'libburrow_native.so')
  );
}

function loadLibrary(): NativeFns {
  const lib = libraryPath();
  if (!fs.existsSync(lib)) {
    throw new NativeError(`native library ${JSON.stringify(lib)} not found: run \`npm run build\``);
  }
  open({ library: LIBRARY, path: lib });
  const fns = define({
    burrow_spawn: {
      library: LIBRARY,
      retType: DataType.I32,
      paramsType: [DataType.String, DataType.U8Array, DataType.I32],
    },
    burrow_reaper_fd: { library: LIBRARY, retType: DataType.I32, paramsType: [] },
    burrow_signal: { library: LIBRARY, retType: DataType.I32, paramsType: [DataType.I32, DataType.I32] },
    burrow_mount: {
      library: LIBRARY,
      retType: DataType.I32,
      paramsType: [DataType.String, DataType.String, DataType.String, DataType.I64, DataType.String, DataType.String],
    },
    burrow_umount: { library: LIBRARY, retType: DataType.I32, paramsType: [DataType.String, DataType.I32] },
    burrow_take_fd: { library: LIBRARY, retType: DataType.I32, paramsType: [DataType.I32, DataType.I32] },
    burrow_pty_relay: {
      library: LIBRARY,
      retType: DataType.I32,
      paramsType: [DataType.I32, DataType.I32, DataType.I32],
    },
    burrow_resize_pty: {
      library: LIBRARY,
      retType: DataType.I32,
      paramsType: [DataType.I32, DataType.I32, DataType.I32],
    },
    burrow_oom_fd: { library: LIBRARY, retType: DataType.I32, paramsType: [] },
    burrow_oom_register: {
      library: LIBRARY,
      retType: DataType.I32,
      paramsType: [DataType.String, DataType.U8Array, DataType.I32],
    },
    burrow_oom_unregister: { library: LIBRARY, retType: DataType.I32, paramsType: [DataType.I32] },
    burrow_oom_registered: { library: LIBRARY, retType: DataType.I32, paramsType: [] },
    burrow_cgroup_device_filter: {
      library: LIBRARY,
      retType: DataType.I32,
      paramsType: [DataType.String, DataType.String, DataType.U8Array, DataType.I32],
    },
    burrow_cgroup_device_programs: {
      library: LIBRARY,
      retType: DataType.I32,
      paramsType: [DataType.String, DataType.U8Array, DataType.I32],
    },
    burrow_bpf_program_exists: { library: LIBRARY, retType: DataType.I32, paramsType: [DataType.I32] },
  });
  return {
    spawn: (plan, out) => fns.burrow_spawn([plan, out, out.length]),
    reaperFd: () => fns.burrow_reaper_fd([]),
    signal: (pid, sig) => fns.burrow_signal([pid, sig]),
    mount: (m) => fns.burrow_mount([m.source, m.target, m.fstype, m.flags, m.data, m.chdir ?? '']),
    umount: (target, flags) => fns.burrow_umount([target, flags]),
    takeFd: (pid, fd) => fns.burrow_take_fd([pid, fd]),
    ptyRelay: (master, stdin, stdout) => fns.burrow_pty_relay([master, stdin, stdout]),
    resizePty: (master, cols, rows) => fns.burrow_resize_pty([master, cols, rows]),
    oomFd: () => fns.burrow_oom_fd([]),
    oomRegister: (dir, out) => fns.burrow_oom_register([dir, out, out.length]),
    oomUnregister: (token) => fns.burrow_oom_unregister([token]),
    oomRegistered: () => fns.burrow_oom_registered([]),
    deviceFilter: (dir, rulesJson, out) => fns.burrow_cgroup_device_filter([dir, rulesJson, out, out.length]),
    devicePrograms: (dir, out) => fns.burrow_cgroup_device_programs([dir, out, out.length]),
    bpfProgramExists: (id) => fns.burrow_bpf_program_exists([id]),
  };
}

export function errnoName(errno: number): string {
  return util.getSystemErrorMap().get(-errno)?.[0] ?? `errno ${errno}`;
}

export function errnoMessage(errno: number): string {
  return util.getSystemErrorMap().get(-errno)?.[1] ?? `errno ${errno}`;
}

function cString(buf: Buffer): string {
  const end = buf.indexOf(0);
  return buf.toString('utf8', 0, end < 0 ? buf.length : end);
}

/** A control-pipe message (native/src/control.rs): command byte, u32 LE length, payload. */
function controlMessage(cmd: string, payload: Buffer = Buffer.alloc(0)): Buffer {
  const head = Buffer.alloc(5);
  head.write(cmd, 0, 'latin1');
  head.writeUInt32LE(payload.length, 1);
  return Buffer.concat([head, payload]);
}

/** Parses the child's report stream (native/src/report.rs) and writes its control pipe. */
class ChildReport implements SpawnedProcess {
  private buffered = Buffer.alloc(0);
  private phase: 'setup' | 'waiting' | 'released' | 'done' = 'setup';
  private readyPromise: Promise<void>;
  private pausedPromise: Promise<void>;
  private releasePromise?: Promise<void>;
  private settleReady!: (err?: Error) => void;
  private settlePaused!: (err?: Error) => void;
  private childTerminalFd?: number;
  private settleRelease?: (err?: Error) => void;
  private readonly socket: net.Socket;

  constructor(
    readonly pid: number,
    syncFd: number,
    private controlFd: number,
    private readonly id: string,
    private readonly waitsForStart: boolean,
  ) {
    this.readyPromise = new Promise<void>((resolve, reject) => {
      this.settleReady = (err) => (err ? reject(err) : resolve());
    });
    this.pausedPromise = new Promise<void>((resolve, reject) => {
      this.settlePaused = (err) => (err ? reject(err) : resolve());
    });
    // A rejection nobody awaited yet must not crash the shim; callers still see it.
    this.readyPromise.catch(() => undefined);
    this.pausedPromise.catch(() => undefined);
    this.socket = new net.Socket({ fd: syncFd, readable: true, writable: false });
    this.socket.on('data', (chunk) => this.onData(chunk));
    this.socket.on('end', () => this.onEnd());
    this.socket.on('error', (err) => this.fail(new NativeError(`container ${id}: report pipe: ${err.message}`)));
  }

  ready(): Promise<void> {
    return this.readyPromise;
  }

  terminalFd(): number | undefined {
    return this.childTerminalFd;
  }

  paused(): Promise<void> {
    return this.pausedPromise;
  }

  resume(state: Buffer): void {
    this.send(controlMessage('C', state), 'resume');
  }

  private send(msg: Buffer, what: string): void {
    try {
      // Small messages into an otherwise empty pipe: the write never blocks.
      fs.writeSync(this.controlFd, msg);
    } catch (err) {
      this.fail(new NativeError(`container ${this.id}: ${what} process ${this.pid}: ${(err as Error).message}`));
    }
  }

  release(state: Buffer = Buffer.alloc(0)): Promise<void> {
    if (this.releasePromise) return this.releasePromise;
    if (this.phase !== 'waiting' || this.controlFd < 0) {
      return Promise.reject(new NativeError(`container ${this.id}: process ${this.pid} is not waiting to start`));
    }
    this.releasePromise = new Promise<void>((resolve, reject) => {
      this.settleRelease = (err) => (err ? reject(err) : resolve());
    });
    this.phase = 'released';
    this.send(controlMessage('S', state), 'release');
    this.closeControl();
    return this.releasePromise;
  }

  abandon(): void {
    // Whoever still waits for this process (a Start racing a Delete) must not wait forever.
    this.fail(new NativeError(`container ${this.id}: process ${this.pid} was abandoned before it started`));
    this.socket.destroy();
  }

  private closeControl(): void {
    if (this.controlFd >= 0) {
      try {
        fs.closeSync(this.controlFd);
      } catch {
        // Already closed: nothing left to release.
      }
      this.controlFd = -1;
    }
  }

  private onData(chunk: Buffer): void {
    this.buffered = Buffer.concat([this.buffered, chunk]);
    while (this.buffered.length > 0) {
      const kind = this.buffered[0];
      if (kind === 0x54 /* T */) {
        if (this.buffered.length < 5) return;
        this.childTerminalFd = this.buffered.readUInt32LE(1);
        this.buffered = this.buffered.subarray(5);
        continue;
      }
      if (kind === 0x48 /* H */) {
        this.buffered = this.buffered.subarray(1);
        this.settlePaused();
        continue;
      }
      if (kind === 0x52 /* R */) {
        this.buffered = this.buffered.subarray(1);
        if (this.phase === 'setup') {
          this.phase = 'waiting';
          this.settleReady();
        }
        continue;
      }
      if (kind === 0x45 /* E */) {
        if (this.buffered.length < 7) return;
        const errno = this.buffered.readUInt32LE(1);
        const len = this.buffered.readUInt16LE(5);
        if (this.buffered.length < 7 + len) return;
        const what = this.buffered.toString('utf8', 7, 7 + len);
        this.buffered = this.buffered.subarray(7 + len);
        this.fail(
          errno === 0
            ? new NativeError(what)
            : new NativeError(`${what}: ${errnoMessage(errno)}`, errnoName(errno), errno),
        );
        continue;
      }
      this.fail(new NativeError(`container ${this.id}: unexpected byte ${kind} on report pipe`));
      return;
    }
  }

  private onEnd(): void {
    if (this.phase === 'setup') {
      if (!this.waitsForStart) {
        // Plans that do not wait for start report nothing on success: execve closed the pipe.
        this.phase = 'done';
        this.settleReady();
      } else {
        this.fail(new NativeError(`container ${this.id}: process ${this.pid} exited during setup`));
      }
    } else if (this.phase === 'released') {
      this.phase = 'done';
      this.settleRelease?.();
    }
    this.socket.destroy();
  }

  private fail(err: Error): void {
    this.settlePaused(err);
    if (this.phase === 'setup') this.settleReady(err);
    else if (this.phase === 'released') this.settleRelease?.(err);
    this.phase = 'done';
    this.closeControl();
  }
}

export class FfiNativeRuntime implements NativeRuntime {
  private readonly fns: NativeFns;
  private readonly listeners: Array<(rec: ExitRecord) => void> = [];
  private reaperStream?: net.Socket;
  private oomStream?: net.Socket;
  /** OOM registration token → its listener (native/src/oom.rs). */
  private readonly oomListeners = new Map<number, () => void>();

  constructor() {
    this.fns = loadLibrary();
  }

  spawn(plan: LaunchPlan): SpawnedProcess {
    this.startReaper();
    const out = Buffer.alloc(OUT_SIZE);
    const pid = this.fns.spawn(JSON.stringify(plan), out);
    const text = cString(out);
    if (pid <= 0) throw new NativeError(text || `container ${plan.id}: spawn failed`);
    const r = JSON.parse(text) as { pid: number; syncFd: number; controlFd: number };
    return new ChildReport(r.pid, r.syncFd, r.controlFd, plan.id, plan.waitForStart);
  }

  signal(pid: number, signal: number): void {
    const rc = this.fns.signal(pid, signal);
    if (rc < 0) throw new NativeError(`signal ${signal} to pid ${pid}: ${errnoMessage(-rc)}`, errnoName(-rc), -rc);
  }

  mount(m: HostMount): void {
    const rc = this.fns.mount(m);
    if (rc < 0) {
      throw new NativeError(
        `mount ${m.fstype} ${JSON.stringify(m.source)} on ${JSON.stringify(m.target)}: ${errnoMessage(-rc)}`,
        errnoName(-rc),
        -rc,
      );
    }
  }

  unmount(target: string, flags: number): void {
    const rc = this.fns.umount(target, flags);
    if (rc < 0) throw new NativeError(`unmount ${JSON.stringify(target)}: ${errnoMessage(-rc)}`, errnoName(-rc), -rc);
  }

  takeFd(pid: number, fd: number): number {
    const rc = this.fns.takeFd(pid, fd);
    if (rc < 0) throw new NativeError(`take fd ${fd} of pid ${pid}: ${errnoMessage(-rc)}`, errnoName(-rc), -rc);
    return rc;
  }

  startPtyRelay(master: number, stdin: number, stdout: number): void {
    if (this.fns.ptyRelay(master, stdin, stdout) < 0) throw new NativeError('cannot start the pty relay thread');
  }

  resizePty(master: number, cols: number, rows: number): void {
    const rc = this.fns.resizePty(master, cols, rows);
    if (rc < 0) throw new NativeError(`resize pty: ${errnoMessage(-rc)}`, errnoName(-rc), -rc);
  }

  watchOom(dir: string, listener: () => void): OomRegistration {
    this.startOomMonitor();
    const out = Buffer.alloc(OUT_SIZE);
    const token = this.fns.oomRegister(dir, out);
    if (token < 0) {
      const step = cString(out) || 'register';
      throw new NativeError(
        `OOM notifications of memory cgroup ${dir}: ${step}: ${errnoMessage(-token)}`,
        errnoName(-token),
        -token,
      );
    }
    this.oomListeners.set(token, listener);
    let closed = false;
    return {
      close: () => {
        if (closed) return;
        closed = true;
        // A record already in the pipe finds no listener any more and is dropped.
        this.oomListeners.delete(token);
        this.fns.oomUnregister(token);
      },
    };
  }

  attachDeviceFilter(dir: string, rules: DeviceFilterRules): number {
    const out = Buffer.alloc(OUT_SIZE);
    const id = this.fns.deviceFilter(dir, JSON.stringify(rules), out);
    if (id < 0) {
      throw new NativeError(`cgroup ${dir}: device rules: ${cString(out) || errnoMessage(-id)}`, errnoName(-id), -id);
    }
    return id;
  }

  /** Ids of the device programs attached to the cgroup v2 directory `dir` (tests, leak checks). */
  devicePrograms(dir: string): number[] {
    const out = Buffer.alloc(OUT_SIZE);
    const rc = this.fns.devicePrograms(dir, out);
    if (rc < 0) throw new NativeError(`cgroup ${dir}: ${cString(out) || errnoMessage(-rc)}`, errnoName(-rc), -rc);
    return cString(out).split(' ').filter(Boolean).map(Number);
  }

  /** Whether the bpf program with this id still exists (leak checks). */
  bpfProgramExists(id: number): boolean {
    const rc = this.fns.bpfProgramExists(id);
    if (rc < 0) throw new NativeError(`bpf program ${id}: ${errnoMessage(-rc)}`, errnoName(-rc), -rc);
    return rc === 1;
  }

  /** Live OOM registrations in the native monitor (for leak checks). */
  oomRegistrations(): number {
    return this.fns.oomRegistered();
  }

  private startOomMonitor(): void {
    if (this.oomStream) return;
    const fd = this.fns.oomFd();
    if (fd < 0) throw new NativeError('cannot start the native OOM monitor thread');
    let pending = Buffer.alloc(0);
    const stream = new net.Socket({ fd, readable: true, writable: false });
    // Like the reaper's: it must never keep an otherwise finished shim alive.
    stream.unref();
    stream.on('data', (chunk) => {
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= 8) {
        const token = pending.readUInt32LE(0);
        pending = pending.subarray(8);
        this.oomListeners.get(token)?.();
      }
    });
    this.oomStream = stream;
  }

  onExit(listener: (rec: ExitRecord) => void): void {
    this.startReaper();
    this.listeners.push(listener);
  }

  private startReaper(): void {
    if (this.reaperStream) return;
    const fd = this.fns.reaperFd();
    if (fd < 0) throw new NativeError('cannot start the native reaper thread');
    let pending = Buffer.alloc(0);
    const stream = new net.Socket({ fd, readable: true, writable: false });
    // The reaper must never keep an otherwise finished shim alive.
    stream.unref();
    stream.on('data', (chunk) => {
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= 12) {
        const pid = pending.readInt32LE(0);
        const code = pending.readInt32LE(4);
        const status = pending.readInt32LE(8);
        pending = pending.subarray(12);
        const exitStatus = code === CLD_EXITED ? status : code === 0 ? status : 128 + status;
        for (const l of this.listeners) l({ pid, exitStatus });
      }
    });
    this.reaperStream = stream;
  }
}
