// A Kubernetes pod sandbox owned by the shim (containerd's "shim" sandboxer): Burrow's own pause
// process (native/pause, static, built with the shim) holding the pod's namespaces — network
// from the pinned netns CRI made (or the host's), and new ipc, uts (the pod's hostname), pid and
// mount namespaces — in the pod's cgroup. No pause image: the process runs from a read-only
// root holding nothing but the pause binary. It is a Sandbox like any container (same launch,
// cgroup, state and cleanup code), so the `delete` helper cleans it up after a crash too.

import * as fs from 'fs';
import * as path from 'path';
import { packageRoot } from '../package-root';
import { failedPrecondition, invalidArgument, notFound } from './errors';
import type { OciNamespace, OciSpec } from './oci-spec';
import { ExitInfo, Sandbox, SandboxDeps } from './sandbox';
import { now, Timestamp } from './timestamp';

const SIGKILL = 9;
const SIGTERM = 15;
/** The pause image's user (registry.k8s.io/pause runs as 65535:65535). */
const PAUSE_UID = 65535;
/** Burrow's files inside containerd's sandbox bundle. */
export const POD_DIR = 'burrow-pod';

/** The pause binary `npm run build` makes; BURROW_PAUSE_BINARY points elsewhere (tests). */
export function defaultPauseBinary(): string {
  return process.env.BURROW_PAUSE_BINARY || path.join(packageRoot(), 'native', 'pause', 'target', 'release', 'pause');
}

/** What a pod asks of its sandbox (from CRI's PodSandboxConfig and the netns path). */
export interface PodSettings {
  /** "" for host networking (no network namespace of its own). */
  netnsPath: string;
  hostname: string;
  cgroupParent: string;
  hostPid: boolean;
  hostIpc: boolean;
  sysctls: Record<string, string>;
}

export interface PodSandboxOptions {
  id: string;
  namespace: string;
  /** containerd's bundle for the sandbox; Burrow writes only below `<bundle>/burrow-pod`. */
  bundle: string;
  settings: PodSettings;
  pauseBinary?: string;
}

export type PodState = 'created' | 'ready' | 'stopped';

/**
 * The pod's cgroup, named as containerd's podsandbox controller names the pause container's:
 * `<parent>/<id>` for cgroupfs, `<parent slice>:cri-containerd:<id>` for systemd parents.
 */
export function podCgroupsPath(cgroupParent: string, id: string): string {
  if (cgroupParent === '') return '';
  if (cgroupParent.endsWith('.slice')) return `${path.basename(cgroupParent)}:cri-containerd:${id}`;
  return path.posix.join(cgroupParent, id);
}

/** The OCI spec of the pause process for `settings` (root.path relative to the pod dir). */
export function podSpec(id: string, s: PodSettings): OciSpec {
  if (s.netnsPath !== '' && !path.isAbsolute(s.netnsPath)) {
    throw invalidArgument(`sandbox ${id}: netns path ${JSON.stringify(s.netnsPath)} must be absolute`);
  }
  const namespaces: OciNamespace[] = [{ type: 'mount' }];
  if (!s.hostPid) namespaces.push({ type: 'pid' });
  if (!s.hostIpc) namespaces.push({ type: 'ipc' });
  if (s.netnsPath !== '') {
    namespaces.push({ type: 'network', path: s.netnsPath });
    // A pod on the host's network keeps the host's name, as with CRI's own sandboxes.
    namespaces.push({ type: 'uts' });
  }
  const spec: OciSpec = {
    ociVersion: '1.1.0',
    process: {
      terminal: false,
      user: { uid: PAUSE_UID, gid: PAUSE_UID },
      args: ['/pause'],
      env: ['PATH=/'],
      cwd: '/',
      capabilities: { bounding: [], effective: [], permitted: [] },
      noNewPrivileges: true,
    },
    root: { path: 'rootfs', readonly: true },
    mounts: [
      { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
      { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
    ],
    linux: { namespaces, maskedPaths: [], readonlyPaths: [] },
  } as OciSpec;
  if (s.netnsPath !== '' && s.hostname !== '') spec.hostname = s.hostname;
  const cgroupsPath = podCgroupsPath(s.cgroupParent, id);
  if (cgroupsPath !== '') spec.linux!.cgroupsPath = cgroupsPath;
  if (Object.keys(s.sysctls).length > 0) spec.linux!.sysctl = { ...s.sysctls };
  return spec;
}

export class PodSandbox {
  private stopping?: Promise<ExitInfo>;
  private released = false;

  private constructor(
    readonly id: string,
    readonly settings: PodSettings,
    private readonly sandbox: Sandbox,
    readonly createdAt: Timestamp,
  ) {}

  /**
   * Prepares the pause process (cloned into its namespaces and cgroup, held before execve as a
   * created container is) under `<bundle>/burrow-pod`.
   */
  static async create(deps: SandboxDeps, opts: PodSandboxOptions): Promise<PodSandbox> {
    if (!path.isAbsolute(opts.bundle)) {
      throw invalidArgument(`sandbox ${opts.id}: bundle ${JSON.stringify(opts.bundle)} must be an absolute path`);
    }
    const pauseBinary = opts.pauseBinary ?? defaultPauseBinary();
    if (!fs.existsSync(pauseBinary)) {
      throw failedPrecondition(`sandbox ${opts.id}: pause binary ${pauseBinary} is missing (built by npm run build)`);
    }
    const spec = podSpec(opts.id, opts.settings);
    if (opts.settings.netnsPath !== '' && !fs.existsSync(opts.settings.netnsPath)) {
      throw invalidArgument(`sandbox ${opts.id}: network namespace ${opts.settings.netnsPath} does not exist`);
    }
    const dir = path.join(opts.bundle, POD_DIR);
    const rootfs = path.join(dir, 'rootfs');
    try {
      fs.mkdirSync(rootfs, { recursive: true, mode: 0o755 });
      for (const d of ['proc', 'dev']) fs.mkdirSync(path.join(rootfs, d), { recursive: true, mode: 0o755 });
      fs.copyFileSync(pauseBinary, path.join(rootfs, 'pause'));
      fs.chmodSync(path.join(rootfs, 'pause'), 0o755);
      fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(spec, null, 2));
    } catch (err) {
      fs.rmSync(dir, { recursive: true, force: true });
      throw new Error(`sandbox ${opts.id}: preparing ${dir}: ${(err as Error).message}`);
    }
    let sandbox: Sandbox;
    try {
      sandbox = await Sandbox.create(deps, {
        id: opts.id,
        namespace: opts.namespace,
        bundle: dir,
        rootfsMounts: [],
        stdio: { stdin: '', stdout: '', stderr: '', terminal: false },
      });
    } catch (err) {
      fs.rmSync(dir, { recursive: true, force: true });
      throw err;
    }
    return new PodSandbox(opts.id, opts.settings, sandbox, now());
  }

  get pid(): number {
    return this.sandbox.pid;
  }

  get state(): PodState {
    const status = this.sandbox.record.status;
    if (status === 'running') return 'ready';
    if (status === 'stopped') return 'stopped';
    return 'created';
  }

  /** The pause process's exit, once it happened. */
  get exit(): { exitStatus: number; exitedAt: Timestamp } | undefined {
    const rec = this.sandbox.record;
    return rec.status === 'stopped' && rec.exitedAt ? { exitStatus: rec.exitStatus ?? 0, exitedAt: rec.exitedAt } : undefined;
  }

  async start(): Promise<number> {
    if (this.state !== 'created') throw failedPrecondition(`sandbox ${this.id} is ${this.state}, it cannot be started`);
    return this.sandbox.start();
  }

  /** Resolves when the pause process exits (the pod is gone). */
  wait(): Promise<ExitInfo> {
    return this.sandbox.wait();
  }

  /**
   * Ends the pause process — SIGTERM (it exits 0), SIGKILL after `timeoutSecs`, or at once when
   * no grace time is given — and releases its cgroup and state. Idempotent.
   */
  stop(timeoutSecs: number): Promise<ExitInfo> {
    if (!this.stopping) this.stopping = this.doStop(timeoutSecs);
    return this.stopping;
  }

  private async doStop(timeoutSecs: number): Promise<ExitInfo> {
    if (this.state === 'created') return this.release();
    if (this.state === 'ready') {
      const graceful = timeoutSecs > 0;
      this.signal(graceful ? SIGTERM : SIGKILL);
      if (graceful) {
        let timer: NodeJS.Timeout | undefined;
        const timedOut = await Promise.race([
          this.sandbox.wait().then(() => false),
          new Promise<boolean>((r) => (timer = setTimeout(() => r(true), timeoutSecs * 1000))),
        ]);
        clearTimeout(timer);
        if (timedOut) this.signal(SIGKILL);
      }
    }
    await this.sandbox.wait();
    return this.release();
  }

  private signal(sig: number): void {
    try {
      this.sandbox.signal(sig, sig === SIGKILL);
    } catch (err) {
      // Already exited: the wait below returns its exit.
      if ((err as { kind?: string }).kind !== 'not-found') throw err;
    }
  }

  private async release(): Promise<ExitInfo> {
    const info = await this.sandbox.destroy();
    this.released = true;
    return info;
  }

  get isReleased(): boolean {
    return this.released;
  }

  /** The pod cgroup's metrics (the pause process's cgroup), as Stats answers for a container. */
  stats(): { typeName: string; metrics: object } {
    if (this.released) throw notFound(`sandbox ${this.id}: stopped, it has no cgroup any more`);
    return this.sandbox.stats();
  }
}
