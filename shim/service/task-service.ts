// containerd.task.v2.Task (and v3, same messages) mapped onto sandboxes, one per container id.
// Owns the event order containerd's clients rely on: create → start → exit → delete.

import type { Logger } from '../log/logger';
import { Code, RpcError } from '../protocol/status';
import type { UnaryHandler } from '../protocol/ttrpc-server';
import { validateId } from '../sandbox/ids';
import type { RootfsMount } from '../sandbox/rootfs';
import { ExitInfo, Sandbox, SandboxDeps } from '../sandbox/sandbox';
import type { SandboxStatus } from '../sandbox/state-store';
import { ZERO_TIME } from '../sandbox/timestamp';
import { packAny } from '../protocol/proto-registry';
import { handlersOf } from './method-table';

export interface EventSink {
  publish(topic: string, typeName: string, event: object): void;
}

export interface TaskServiceOptions {
  namespace: string;
  sandboxDeps: SandboxDeps;
  events: EventSink;
  logger: Logger;
  /** Called after a Shutdown finds no containers left: the daemon may exit. */
  onShutdown: () => void;
}

// containerd.v1.types.Status
const STATUS_CODES: Record<SandboxStatus, number> = { creating: 1, created: 1, running: 2, stopped: 3, paused: 4, pausing: 5 };

interface Entry {
  sandbox?: Sandbox;
  /** Start plus its TaskStart event: an exit waits for it so TaskExit never comes first. */
  starting?: Promise<unknown>;
  /** Settles once TaskExit has been published. */
  exitPublished?: Promise<void>;
  /** A Delete is under way: a concurrent one must not destroy twice nor publish a second TaskDelete. */
  deleting?: boolean;
  /** Per exec: its Start plus TaskExecStarted, and the publication of its TaskExit. */
  execStarting: Map<string, Promise<unknown>>;
  execExitPublished: Map<string, Promise<void>>;
}

type Req = Record<string, any>;

export class TaskService {
  private readonly entries = new Map<string, Entry>();

  constructor(private readonly opts: TaskServiceOptions) {}

  get containerCount(): number {
    return this.entries.size;
  }

  /** The handlers, each turning thrown errors into the right status code. */
  handlers(): Record<string, UnaryHandler> {
    return handlersOf({
      Create: (r) => this.create(r),
      Start: (r) => this.start(r),
      State: (r) => this.state(r),
      Wait: (r) => this.wait(r),
      Kill: (r) => this.kill(r),
      Delete: (r) => this.delete(r),
      Pids: (r) => this.pids(r),
      CloseIO: (r) => this.closeIO(r),
      ResizePty: (r) => this.resizePty(r),
      Connect: (r) => this.connect(r),
      Shutdown: (r) => this.shutdown(r),
      Exec: (r) => this.exec(r),
      Pause: (r) => this.pause(r),
      Resume: (r) => this.resume(r),
      Checkpoint: () => this.unimplemented('Checkpoint'),
      Update: (r) => this.update(r),
      Stats: (r) => this.stats(r),
    }, this.opts.logger, (req) => ({ id: req.id, exec_id: req.exec_id }));
  }

  private async unimplemented(method: string): Promise<never> {
    // Checkpoint/restore (CRIU) is not part of Burrow: containerd treats Unimplemented as "unsupported".
    throw new RpcError(Code.Unimplemented, `${method} is not supported by burrow`);
  }

  private sandboxOf(id: string): Sandbox {
    const sb = this.entries.get(id)?.sandbox;
    if (!sb) throw new RpcError(Code.NotFound, `container ${id}: container not created`);
    return sb;
  }

  private entryOf(id: string): Entry & { sandbox: Sandbox } {
    this.sandboxOf(id);
    return this.entries.get(id) as Entry & { sandbox: Sandbox };
  }

  private async exec(req: Req): Promise<undefined> {
    const id: string = req.id;
    const execId: string = req.exec_id;
    const entry = this.entryOf(id);
    let processSpec: unknown;
    try {
      processSpec = JSON.parse(Buffer.from(req.spec?.value ?? []).toString('utf8'));
    } catch (err) {
      throw new RpcError(Code.InvalidArgument, `container ${id} exec ${execId}: process spec is not JSON: ${(err as Error).message}`);
    }
    const exec = entry.sandbox.addExec(execId, processSpec, {
      stdin: req.stdin ?? '',
      stdout: req.stdout ?? '',
      stderr: req.stderr ?? '',
      terminal: !!req.terminal,
    });
    entry.execExitPublished.set(
      execId,
      exec.exited.then(async (x) => {
        const started = entry.execStarting.get(execId);
        if (!started) return;
        // An exec that failed to start published no TaskExecStarted and gets no TaskExit.
        if ((await started.then(() => true, () => false)) === false) return;
        // An OOM kill of this process is reported before its exit (CRI reads both).
        entry.sandbox?.checkOom();
        this.opts.events.publish('/tasks/exit', 'containerd.events.TaskExit', {
          container_id: id,
          id: execId,
          pid: x.pid,
          exit_status: x.exitStatus,
          exited_at: x.exitedAt,
        });
      }),
    );
    this.opts.events.publish('/tasks/exec-added', 'containerd.events.TaskExecAdded', { container_id: id, exec_id: execId });
    return undefined;
  }

  private async create(req: Req): Promise<object> {
    const id: string = req.id;
    validateId(id);
    if (this.entries.has(id)) throw new RpcError(Code.AlreadyExists, `container ${id}: already exists`);
    if (req.checkpoint) throw new RpcError(Code.Unimplemented, `container ${id}: checkpoint restore is not supported`);
    const entry: Entry = { execStarting: new Map(), execExitPublished: new Map() };
    // Reserve the id across the await so a concurrent Create of the same id is refused.
    this.entries.set(id, entry);
    let sandbox: Sandbox;
    try {
      sandbox = await Sandbox.create(this.opts.sandboxDeps, {
        id,
        namespace: this.opts.namespace,
        bundle: req.bundle,
        rootfsMounts: (req.rootfs ?? []) as RootfsMount[],
        stdio: { stdin: req.stdin ?? '', stdout: req.stdout ?? '', stderr: req.stderr ?? '', terminal: !!req.terminal },
      });
    } catch (err) {
      this.entries.delete(id);
      throw err;
    }
    entry.sandbox = sandbox;
    entry.exitPublished = sandbox.wait().then(async (info) => {
      await entry.starting?.catch(() => undefined);
      // containerd expects the execs' exits before the init's (runc's shim since 1.6.36/1.7).
      await Promise.all(sandbox.runningExecs().map((e) => entry.execExitPublished.get(e.execId)));
      // An OOM kill of the init is reported before its exit, as with runc, so that CRI's
      // OOMKilled reason is in place when it learns of the exit.
      sandbox.checkOom();
      this.opts.events.publish('/tasks/exit', 'containerd.events.TaskExit', {
        container_id: id,
        id,
        pid: info.pid,
        exit_status: info.exitStatus,
        exited_at: info.exitedAt,
      });
    });
    this.opts.events.publish('/tasks/create', 'containerd.events.TaskCreate', {
      container_id: id,
      bundle: req.bundle,
      rootfs: req.rootfs ?? [],
      io: { stdin: req.stdin, stdout: req.stdout, stderr: req.stderr, terminal: !!req.terminal },
      checkpoint: req.checkpoint ?? '',
      pid: sandbox.pid,
    });
    // From now until Delete (runc's shim starts its OOM watch right after create, too).
    sandbox.watchOom(() => this.opts.events.publish('/tasks/oom', 'containerd.events.TaskOOM', { container_id: id }));
    this.opts.logger.info('container created', { id, pid: sandbox.pid });
    return { pid: sandbox.pid };
  }

  private async start(req: Req): Promise<object> {
    const entry = this.entryOf(req.id);
    const sandbox = entry.sandbox;
    const execId: string = req.exec_id ?? '';
    if (execId) {
      sandbox.exec(execId);
      const starting = (async () => {
        const pid = await sandbox.startExec(execId);
        this.opts.events.publish('/tasks/exec-started', 'containerd.events.TaskExecStarted', {
          container_id: req.id,
          exec_id: execId,
          pid,
        });
        return pid;
      })();
      entry.execStarting.set(execId, starting);
      return { pid: await starting };
    }
    const starting = (async () => {
      const pid = await sandbox.start();
      this.opts.events.publish('/tasks/start', 'containerd.events.TaskStart', { container_id: req.id, pid });
      return pid;
    })();
    entry.starting = starting;
    return { pid: await starting };
  }

  private async state(req: Req): Promise<object> {
    const sandbox = this.sandboxOf(req.id);
    if (req.exec_id) {
      const e = sandbox.exec(req.exec_id);
      // While the container is paused (or pausing) so is every process in it (runc's shim).
      const containerStatus = sandbox.record.status;
      const status = containerStatus === 'paused' || containerStatus === 'pausing' ? STATUS_CODES[containerStatus] : STATUS_CODES[e.status];
      return {
        id: e.execId,
        bundle: sandbox.record.bundle,
        pid: e.pid,
        status,
        stdin: e.stdio.stdin,
        stdout: e.stdio.stdout,
        stderr: e.stdio.stderr,
        terminal: e.stdio.terminal,
        exit_status: e.exit?.exitStatus ?? 0,
        exited_at: e.exit?.exitedAt ?? ZERO_TIME,
        exec_id: e.execId,
      };
    }
    const rec = sandbox.record;
    return {
      id: rec.id,
      bundle: rec.bundle,
      pid: rec.pid,
      status: STATUS_CODES[rec.status],
      stdin: rec.stdio.stdin,
      stdout: rec.stdio.stdout,
      stderr: rec.stdio.stderr,
      terminal: rec.stdio.terminal,
      exit_status: rec.exitStatus ?? 0,
      exited_at: rec.exitedAt ?? ZERO_TIME,
      exec_id: '',
    };
  }

  private async wait(req: Req): Promise<object> {
    const sandbox = this.sandboxOf(req.id);
    const info = req.exec_id ? await sandbox.exec(req.exec_id).exited : await sandbox.wait();
    return { exit_status: info.exitStatus, exited_at: info.exitedAt };
  }

  private async kill(req: Req): Promise<undefined> {
    const sandbox = this.sandboxOf(req.id);
    if (req.exec_id) sandbox.signalExec(req.exec_id, req.signal);
    else await sandbox.kill(req.signal, !!req.all);
    return undefined;
  }

  private async pause(req: Req): Promise<undefined> {
    const sandbox = this.sandboxOf(req.id);
    await sandbox.pause();
    this.opts.events.publish('/tasks/paused', 'containerd.events.TaskPaused', { container_id: req.id });
    this.opts.logger.info('container paused', { id: req.id });
    return undefined;
  }

  private async resume(req: Req): Promise<undefined> {
    const sandbox = this.sandboxOf(req.id);
    await sandbox.resume();
    this.opts.events.publish('/tasks/resumed', 'containerd.events.TaskResumed', { container_id: req.id });
    this.opts.logger.info('container resumed', { id: req.id });
    return undefined;
  }

  /** resources: JSON linux.resources (type_url …/runtime-spec/1/LinuxResources); annotations are not used, as by runc. */
  private async update(req: Req): Promise<undefined> {
    const sandbox = this.sandboxOf(req.id);
    const value = req.resources?.value;
    if (!value || value.length === 0) {
      throw new RpcError(Code.InvalidArgument, `container ${req.id}: update: no resources given`);
    }
    let resources: unknown;
    try {
      resources = JSON.parse(Buffer.from(value).toString('utf8'));
    } catch (err) {
      throw new RpcError(
        Code.InvalidArgument,
        `container ${req.id}: update: resources (${req.resources.type_url}) are not JSON: ${(err as Error).message}`,
      );
    }
    sandbox.update(resources);
    return undefined;
  }

  private async stats(req: Req): Promise<object> {
    const { typeName, metrics } = this.sandboxOf(req.id).stats();
    return { stats: packAny(typeName, metrics) };
  }

  private async delete(req: Req): Promise<object> {
    const id: string = req.id;
    const entry = this.entryOf(id);
    const sandbox = entry.sandbox;
    if (req.exec_id) {
      // runc's shim publishes no event for an exec's delete; containerd does not expect one.
      const x = sandbox.deleteExec(req.exec_id);
      await entry.execExitPublished.get(req.exec_id);
      entry.execStarting.delete(req.exec_id);
      entry.execExitPublished.delete(req.exec_id);
      return { pid: x.pid, exit_status: x.exitStatus, exited_at: x.exitedAt };
    }
    if (entry.deleting) throw new RpcError(Code.NotFound, `container ${id}: already being deleted`);
    entry.deleting = true;
    let info: ExitInfo;
    try {
      info = await sandbox.destroy();
    } catch (err) {
      entry.deleting = false;
      throw err;
    }
    await entry.exitPublished;
    this.entries.delete(id);
    this.opts.events.publish('/tasks/delete', 'containerd.events.TaskDelete', {
      container_id: id,
      pid: info.pid,
      exit_status: info.exitStatus,
      exited_at: info.exitedAt,
      id: '',
    });
    this.opts.logger.info('container deleted', { id, pid: info.pid, exitStatus: info.exitStatus });
    return { pid: info.pid, exit_status: info.exitStatus, exited_at: info.exitedAt };
  }

  private async pids(req: Req): Promise<object> {
    const sandbox = this.sandboxOf(req.id);
    const execOf = new Map(sandbox.runningExecs().map((e) => [e.pid, e.execId]));
    return {
      processes: sandbox.pids().map((pid) => {
        const execId = execOf.get(pid);
        // ctr task ps and containerd show which pid is which exec, as with runc.
        return execId ? { pid, info: packAny('containerd.runc.v1.ProcessDetails', { exec_id: execId }) } : { pid };
      }),
    };
  }

  private async closeIO(req: Req): Promise<undefined> {
    const sandbox = this.sandboxOf(req.id);
    const exec = req.exec_id ? sandbox.exec(req.exec_id) : undefined;
    if (req.stdin) (exec ?? sandbox).closeStdin();
    return undefined;
  }

  private async resizePty(req: Req): Promise<undefined> {
    const sandbox = this.sandboxOf(req.id);
    // Without a terminal there is nothing to resize: runc's shim answers OK as well.
    (req.exec_id ? sandbox.exec(req.exec_id) : sandbox).resizePty(req.width, req.height);
    return undefined;
  }

  private async connect(req: Req): Promise<object> {
    const sb = this.entries.get(req.id)?.sandbox;
    return { shim_pid: process.pid, task_pid: sb?.pid ?? 0, version: '' };
  }

  private async shutdown(_req: Req): Promise<undefined> {
    if (this.entries.size === 0) setImmediate(this.opts.onShutdown);
    return undefined;
  }
}
