// Watching a container's memory cgroup for OOM kills, to publish TaskOOM as containerd's runc
// shim does (CRI sets a container's reason to OOMKilled from it).
//
// cgroup v1: an eventfd registered on memory.oom_control, read on a native thread (NativeRuntime
// .watchOom); each notification is checked against the oom_kill counter of memory.oom_control.
// cgroup v2: inotify on memory.events (fs.watch: libuv's inotify handle, on the event loop),
// one report per increase of oom_kill, as containerd's v2 watcher.
//
// check() reads the counter synchronously: the service calls it right before publishing a
// TaskExit, so the OOM of a killed process is reported before its exit even when the
// notification itself is still on its way.

import * as fs from 'fs';
import * as path from 'path';
import type { Logger } from '../../log/logger';
import type { NativeRuntime, OomRegistration } from '../native-api';
import { isNotFound, readKeyValues } from './stat-files';

export interface OomWatchOptions {
  id: string;
  version: 1 | 2;
  /** The memory cgroup: v1 its directory in the memory hierarchy, v2 the container's cgroup. */
  dir: string;
  native: Pick<NativeRuntime, 'watchOom'>;
  logger: Logger;
  /** Called once per OOM kill observed (never after close()). */
  onOom: () => void;
}

interface Counters {
  /** oom_kill; undefined on v1 kernels before 4.13, whose memory.oom_control lacks it. */
  kills?: bigint;
  /** v1: under_oom with the OOM killer disabled: the cgroup is stuck at its limit, nobody is killed. */
  stuck: boolean;
}

// The kernel signals the v1 eventfd before it counts the kill in oom_kill (memcg OOM notify,
// then the OOM killer): a notification that finds no new kill looks again after these delays.
const RECHECK_MS = [10, 50, 250, 1000];

export class OomWatcher {
  private kills: bigint;
  private stuck: boolean;
  private registration?: OomRegistration;
  private watcher?: fs.FSWatcher;
  private recheck?: NodeJS.Timeout;
  private closed = false;

  private constructor(private readonly opts: OomWatchOptions) {
    const now = this.read();
    if (!now) throw new Error(`container ${opts.id}: watch for OOM kills: ${this.counterFile()} does not exist`);
    this.kills = now.kills ?? 0n;
    this.stuck = now.stuck;
  }

  /** Starts watching; throws (with the id and the path) when the cgroup cannot be watched. */
  static start(opts: OomWatchOptions): OomWatcher {
    const w = new OomWatcher(opts);
    if (opts.version === 1) {
      w.registration = opts.native.watchOom(opts.dir, () => w.notified());
    } else {
      try {
        // Not persistent: an OOM watch alone must not keep the shim running.
        w.watcher = fs.watch(w.counterFile(), { persistent: false }, () => w.check());
      } catch (err) {
        throw new Error(`container ${opts.id}: watch ${w.counterFile()} for OOM kills: ${(err as Error).message}`);
      }
      w.watcher.on('error', (err) => {
        opts.logger.debug('OOM watch ended', { id: opts.id, file: w.counterFile(), error: err.message });
        w.close();
      });
    }
    return w;
  }

  private counterFile(): string {
    return path.join(this.opts.dir, this.opts.version === 1 ? 'memory.oom_control' : 'memory.events');
  }

  /** The counters now; undefined once the cgroup is gone. */
  private read(): Counters | undefined {
    let kv: Map<string, bigint>;
    try {
      kv = readKeyValues(this.opts.dir, path.basename(this.counterFile()));
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
    if (this.opts.version === 2) return { kills: kv.get('oom_kill') ?? 0n, stuck: false };
    return { kills: kv.get('oom_kill'), stuck: kv.get('under_oom') === 1n && kv.get('oom_kill_disable') === 1n };
  }

  /** Reports an OOM kill that happened since the last report, if any; true if it reported one. */
  check(): boolean {
    if (this.closed) return false;
    let now: Counters | undefined;
    try {
      now = this.read();
    } catch (err) {
      this.opts.logger.warn('cannot read the OOM counter', { id: this.opts.id, file: this.counterFile(), error: (err as Error).message });
      return false;
    }
    if (!now) return false;
    const killed = now.kills !== undefined && now.kills > this.kills;
    const newlyStuck = now.stuck && !this.stuck;
    if (now.kills !== undefined) this.kills = now.kills;
    this.stuck = now.stuck;
    if (killed || newlyStuck) this.report();
    return killed || newlyStuck;
  }

  /**
   * After a notification without a new kill: looks again a little later, since the kill is
   * counted after the notification. A kill that an exit's check() already reported is not
   * reported again (the counter does not rise a second time).
   */
  private recheckLater(attempt = 0): void {
    if (this.closed || attempt >= RECHECK_MS.length) return;
    clearTimeout(this.recheck);
    this.recheck = setTimeout(() => {
      if (!this.check()) this.recheckLater(attempt + 1);
    }, RECHECK_MS[attempt]);
    // A pending look must not keep the shim alive.
    this.recheck.unref();
  }

  /** A v1 eventfd notification: an OOM, or the cgroup being removed. */
  private notified(): void {
    if (this.closed) return;
    // The kernel also signals the eventfd when the cgroup goes away (runc checks the same way).
    if (!fs.existsSync(path.join(this.opts.dir, 'cgroup.event_control'))) {
      this.close();
      return;
    }
    let now: Counters | undefined;
    try {
      now = this.read();
    } catch {
      now = undefined;
    }
    if (now && now.kills === undefined) {
      // A kernel without the oom_kill counter: every notification is an OOM, as for containerd.
      this.report();
      return;
    }
    if (!this.check()) this.recheckLater();
  }

  private report(): void {
    this.opts.logger.info('OOM kill in the container\'s cgroup', { id: this.opts.id, dir: this.opts.dir });
    try {
      this.opts.onOom();
    } catch (err) {
      this.opts.logger.warn('OOM report failed', { id: this.opts.id, error: (err as Error).message });
    }
  }

  /** Stops watching and releases the eventfd or inotify watch; idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.recheck);
    this.registration?.close();
    this.watcher?.close();
  }
}
