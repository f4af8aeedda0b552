// An exec: a further process in a running container (ctr task exec, CRI ExecSync). Registered
// by Exec, spawned by Start, waited, signalled and deleted by its exec id.

import { alreadyExists, failedPrecondition, notFound } from './errors';
import type { ExitRouter } from './exit-router';
import { validateId } from './ids';
import { buildExecPlan, validateExecProcess } from './launch-plan';
import type { NativeRuntime, SpawnedProcess } from './native-api';
import type { OciProcess, OciSpec } from './oci-spec';
import { ProcessIO, StdioConfig } from './stdio';
import { Terminal } from './terminal';
import { now, Timestamp } from './timestamp';

export type ExecStatus = 'created' | 'running' | 'stopped';

export interface ExecExit {
  pid: number;
  exitStatus: number;
  exitedAt: Timestamp;
}

export interface ExecContext {
  containerId: string;
  spec: OciSpec;
  initPid: number;
  native: NativeRuntime;
  exits: ExitRouter;
  /** Puts the process in the container's cgroup before it runs user code. */
  join(pid: number): void;
}

const SIGKILL = 9;

export class ExecProcess {
  status: ExecStatus = 'created';
  pid = 0;
  exit?: ExecExit;
  readonly exited: Promise<ExecExit>;
  private settle!: (e: ExecExit) => void;
  private proc?: SpawnedProcess;
  private io?: ProcessIO;
  private terminal?: Terminal;
  readonly process: OciProcess;

  constructor(
    readonly execId: string,
    processSpec: unknown,
    readonly stdio: StdioConfig,
  ) {
    validateId(execId, 'exec id');
    this.process = validateExecProcess(processSpec, execId);
    // Clients Wait before Start: the promise exists from registration on.
    this.exited = new Promise((resolve) => (this.settle = resolve));
  }

  async start(ctx: ExecContext): Promise<number> {
    if (this.status !== 'created') throw failedPrecondition(`exec ${this.execId} is ${this.status}, it cannot be started`);
    try {
      this.io = ProcessIO.open(this.stdio, `container ${ctx.containerId} exec ${this.execId}`);
      const plan = buildExecPlan({
        id: ctx.containerId,
        execId: this.execId,
        spec: ctx.spec,
        process: this.process,
        initPid: ctx.initPid,
        stdio: this.io.fds,
        terminal: this.stdio.terminal,
      });
      this.proc = ctx.native.spawn(plan);
      this.pid = this.proc.pid;
      void ctx.exits.watch(this.pid).then((rec) => this.finish(rec.exitStatus));
      this.io.releaseChildEnds();
      await this.proc.ready();
      if (this.stdio.terminal) {
        this.terminal = Terminal.attach(ctx.native, this.proc, this.io, `container ${ctx.containerId} exec ${this.execId}`);
      }
      ctx.join(this.pid);
      await this.proc.release();
    } catch (err) {
      this.abort(ctx);
      throw err;
    }
    if (this.status === 'created') this.status = 'running';
    return this.pid;
  }

  private abort(ctx: ExecContext): void {
    this.proc?.abandon();
    if (this.pid > 0) {
      try {
        ctx.native.signal(this.pid, SIGKILL);
      } catch {
        // Already gone: its exit record settles `exited`.
      }
    } else {
      this.finish(255);
    }
    this.io?.close();
    this.terminal?.close();
  }

  private finish(exitStatus: number): void {
    if (this.exit) return;
    this.exit = { pid: this.pid, exitStatus, exitedAt: now() };
    this.status = 'stopped';
    this.settle(this.exit);
  }

  signal(native: NativeRuntime, signal: number): void {
    if (this.status === 'created') throw failedPrecondition(`exec ${this.execId}: process not created`);
    if (this.status === 'stopped') throw notFound(`exec ${this.execId}: process already finished`);
    try {
      native.signal(this.pid, signal);
    } catch (err) {
      if ((err as { code?: string }).code === 'ESRCH') throw notFound(`exec ${this.execId}: process already finished`);
      throw err;
    }
  }

  closeStdin(): void {
    this.io?.closeStdin();
  }

  resizePty(cols: number, rows: number): void {
    this.terminal?.resize(cols, rows);
  }

  /** Drops everything the shim holds for this exec (its container is being removed). */
  dispose(): void {
    this.terminal?.close();
    this.io?.close();
    this.proc?.abandon();
  }

  /** Forgets the exec; a running one must be stopped first. */
  release(): ExecExit {
    if (this.status === 'running') throw failedPrecondition(`exec ${this.execId}: cannot delete a running process`);
    this.terminal?.close();
    this.io?.close();
    this.proc?.abandon();
    // Deleting an exec that never started: it will never run.
    if (!this.exit) this.finish(0);
    return this.exit!;
  }
}

/** The exec table of one container. */
export class ExecTable {
  private readonly execs = new Map<string, ExecProcess>();

  add(exec: ExecProcess): void {
    if (this.execs.has(exec.execId)) throw alreadyExists(`id ${exec.execId}: already exists`);
    this.execs.set(exec.execId, exec);
  }

  get(containerId: string, execId: string): ExecProcess {
    const e = this.execs.get(execId);
    if (!e) throw notFound(`container ${containerId}: process does not exist ${execId}`);
    return e;
  }

  remove(execId: string): void {
    this.execs.delete(execId);
  }

  all(): ExecProcess[] {
    return [...this.execs.values()];
  }
}
