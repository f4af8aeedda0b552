// Routes the native reaper's exit records to whoever waits for that pid.

import type { ExitRecord, NativeRuntime } from './native-api';
import type { Logger } from '../log/logger';

export class ExitRouter {
  private readonly waiters = new Map<number, (rec: ExitRecord) => void>();
  // Exits of pids nobody watches yet; spawn registers synchronously, so this only holds
  // processes whose watcher was dropped (e.g. a create that failed half-way).
  private readonly unclaimed = new Map<number, ExitRecord>();

  constructor(native: NativeRuntime, private readonly logger: Logger) {
    native.onExit((rec) => this.dispatch(rec));
  }

  /** Resolves with the exit of `pid`, a process spawned through the native runtime. */
  watch(pid: number): Promise<ExitRecord> {
    const early = this.unclaimed.get(pid);
    if (early) {
      this.unclaimed.delete(pid);
      return Promise.resolve(early);
    }
    return new Promise((resolve) => this.waiters.set(pid, resolve));
  }

  private dispatch(rec: ExitRecord): void {
    const waiter = this.waiters.get(rec.pid);
    if (!waiter) {
      this.logger.debug('exit of an unwatched process', { pid: rec.pid, exitStatus: rec.exitStatus });
      this.unclaimed.set(rec.pid, rec);
      return;
    }
    this.waiters.delete(rec.pid);
    waiter(rec);
  }
}
