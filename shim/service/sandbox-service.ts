// containerd.runtime.sandbox.v1.Sandbox mapped onto pod sandboxes (shim/sandbox/pod-sandbox.ts):
// what containerd 2.x's "shim" sandboxer calls for a CRI runtime with sandboxer = "shim"
// (sandbox-api.md §3.2). The pod's containers then come through the Task service of the same
// shim, their specs pointing at the pause process's namespaces (/proc/<pid>/ns/*, from the pid
// StartSandbox and SandboxStatus return).

import type { Logger } from '../log/logger';
import { packAny, unpackAny } from '../protocol/proto-registry';
import type { UnaryHandler } from '../protocol/rpc-service';
import { Code, RpcError } from '../protocol/status';
import { validateId } from '../sandbox/ids';
import { PodSandbox, PodSettings } from '../sandbox/pod-sandbox';
import type { SandboxDeps } from '../sandbox/sandbox';
import { now, ZERO_TIME } from '../sandbox/timestamp';
import { handlersOf } from './method-table';

export const SANDBOX_SERVICE = 'containerd.runtime.sandbox.v1.Sandbox';

// CRI's SandboxStatus states (internal/cri/server/sandbox_status.go reads these words).
const READY = 'SANDBOX_READY';
const NOT_READY = 'SANDBOX_NOTREADY';

const POD_SANDBOX_CONFIG = 'runtime.v1.PodSandboxConfig';
// runtime.v1.NamespaceMode
const NAMESPACE_POD = 0;
const NAMESPACE_NODE = 2;

/** Go's GOARCH for Node's process.arch: containerd matches images by it. */
const GOARCH: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };

export interface SandboxServiceOptions {
  namespace: string;
  sandboxDeps: SandboxDeps;
  logger: Logger;
  /** Called after ShutdownSandbox removed the last sandbox: the daemon may exit if no task is left. */
  onShutdown: () => void;
  pauseBinary?: string;
}

type Req = Record<string, any>;

interface Entry {
  pod?: PodSandbox;
  /** CreateSandbox in progress (the id is reserved). */
  creating?: boolean;
}

export class SandboxService {
  private readonly entries = new Map<string, Entry>();

  constructor(private readonly opts: SandboxServiceOptions) {}

  get sandboxCount(): number {
    return this.entries.size;
  }

  handlers(): Record<string, UnaryHandler> {
    return handlersOf({
      CreateSandbox: (r) => this.create(r),
      StartSandbox: (r) => this.start(r),
      Platform: (r) => this.platform(r),
      StopSandbox: (r) => this.stop(r),
      WaitSandbox: (r) => this.wait(r),
      SandboxStatus: (r) => this.status(r),
      PingSandbox: (r) => this.ping(r),
      ShutdownSandbox: (r) => this.shutdown(r),
      SandboxMetrics: (r) => this.metrics(r),
    }, this.opts.logger, (req) => ({ sandbox_id: req.sandbox_id }));
  }

  private podOf(id: string): PodSandbox {
    const pod = this.entries.get(id)?.pod;
    if (!pod) throw new RpcError(Code.NotFound, `sandbox ${id}: not found`);
    return pod;
  }

  private async create(req: Req): Promise<object> {
    const id: string = req.sandbox_id;
    validateId(id);
    if (this.entries.has(id)) throw new RpcError(Code.AlreadyExists, `sandbox ${id}: already exists`);
    if ((req.rootfs ?? []).length > 0) {
      // The pause process runs from Burrow's own root; a rootfs (a sandbox image) has no use here.
      throw new RpcError(Code.InvalidArgument, `sandbox ${id}: rootfs mounts are not supported (Burrow's pod sandbox needs no image)`);
    }
    const settings = podSettings(id, req);
    const entry: Entry = { creating: true };
    this.entries.set(id, entry);
    try {
      entry.pod = await PodSandbox.create(this.opts.sandboxDeps, {
        id,
        namespace: this.opts.namespace,
        bundle: req.bundle_path,
        settings,
        pauseBinary: this.opts.pauseBinary,
      });
    } catch (err) {
      this.entries.delete(id);
      throw err;
    }
    entry.creating = false;
    this.opts.logger.info('pod sandbox created', { sandbox_id: id, pid: entry.pod.pid, netns: settings.netnsPath || '(host)' });
    return {};
  }

  private async start(req: Req): Promise<object> {
    const pod = this.podOf(req.sandbox_id);
    const pid = await pod.start();
    this.opts.logger.info('pod sandbox started', { sandbox_id: pod.id, pid });
    return { pid, created_at: pod.createdAt };
  }

  private async platform(req: Req): Promise<object> {
    this.podOf(req.sandbox_id);
    return { platform: { os: 'linux', architecture: GOARCH[process.arch] ?? process.arch, variant: '' } };
  }

  private async stop(req: Req): Promise<object> {
    const pod = this.podOf(req.sandbox_id);
    const info = await pod.stop(req.timeout_secs ?? 0);
    this.opts.logger.info('pod sandbox stopped', { sandbox_id: pod.id, exitStatus: info.exitStatus });
    return {};
  }

  /** Blocks until the pause process exits: CRI treats the answer as "the pod is gone". */
  private async wait(req: Req): Promise<object> {
    const info = await this.podOf(req.sandbox_id).wait();
    return { exit_status: info.exitStatus, exited_at: info.exitedAt };
  }

  private async status(req: Req): Promise<object> {
    const pod = this.podOf(req.sandbox_id);
    const exit = pod.exit;
    const out: Record<string, unknown> = {
      sandbox_id: pod.id,
      pid: pod.pid,
      state: pod.state === 'ready' ? READY : NOT_READY,
      created_at: pod.createdAt,
      exited_at: exit?.exitedAt ?? ZERO_TIME,
    };
    if (req.verbose) {
      // CRI shows this map as PodSandboxStatus.info (crictl inspectp) for shim-sandboxed pods.
      out.info = {
        pid: String(pod.pid),
        runtime: 'burrow',
        state: pod.state,
        netns: pod.settings.netnsPath,
        cgroupParent: pod.settings.cgroupParent,
      };
    }
    return out;
  }

  private async ping(req: Req): Promise<object> {
    const pod = this.podOf(req.sandbox_id);
    if (pod.state === 'stopped') throw new RpcError(Code.Unavailable, `sandbox ${pod.id}: its pause process has exited`);
    return {};
  }

  /** Stops what is left (SIGKILL) and forgets the sandbox; the shim exits once nothing else runs. */
  private async shutdown(req: Req): Promise<object> {
    const id: string = req.sandbox_id;
    const pod = this.podOf(id);
    await pod.stop(0);
    this.entries.delete(id);
    this.opts.logger.info('pod sandbox shut down', { sandbox_id: id });
    if (this.entries.size === 0) setImmediate(this.opts.onShutdown);
    return {};
  }

  private async metrics(req: Req): Promise<object> {
    const pod = this.podOf(req.sandbox_id);
    const { typeName, metrics } = pod.stats();
    return { metrics: { timestamp: now(), id: pod.id, data: packAny(typeName, metrics) } };
  }
}

/** The pod's wishes: CreateSandboxRequest.options is CRI's PodSandboxConfig (or absent for other clients). */
function podSettings(id: string, req: Req): PodSettings {
  const settings: PodSettings = {
    netnsPath: req.netns_path ?? '',
    hostname: '',
    cgroupParent: '',
    hostPid: false,
    hostIpc: false,
    sysctls: {},
  };
  const options = req.options as { type_url: string; value: Uint8Array } | null | undefined;
  if (!options || !options.type_url) return settings;
  const name = options.type_url.slice(options.type_url.lastIndexOf('/') + 1);
  if (name !== POD_SANDBOX_CONFIG) {
    throw new RpcError(Code.InvalidArgument, `sandbox ${id}: options of type ${options.type_url} are not a ${POD_SANDBOX_CONFIG}`);
  }
  let config: Req;
  try {
    config = unpackAny<Req>(options);
  } catch (err) {
    throw new RpcError(Code.InvalidArgument, `sandbox ${id}: options: ${(err as Error).message}`);
  }
  const linux = config.linux ?? {};
  const ns = linux.security_context?.namespace_options ?? {};
  settings.hostname = config.hostname ?? '';
  settings.cgroupParent = linux.cgroup_parent ?? '';
  settings.hostPid = ns.pid === NAMESPACE_NODE;
  settings.hostIpc = ns.ipc === NAMESPACE_NODE;
  settings.sysctls = { ...(linux.sysctls ?? {}) };
  // A pod user namespace (NamespaceMode POD) would need the pause and the netns inside it.
  if (ns.userns_options && ns.userns_options.mode === NAMESPACE_POD) {
    throw new RpcError(Code.InvalidArgument, `sandbox ${id}: a user namespace for the pod (userns_options mode POD) is not supported by Burrow's pod sandbox`);
  }
  if (ns.network === NAMESPACE_NODE && settings.netnsPath !== '') {
    throw new RpcError(Code.InvalidArgument, `sandbox ${id}: host networking asked, but a netns path (${settings.netnsPath}) was given`);
  }
  return settings;
}
