// A CRI (k8s.io/cri-api runtime.v1) client for the e2e tests: what kubelet
// sends to containerd's CRI plugin, over containerd's gRPC socket, with
// @grpc/grpc-js and the subset of the API in protos/cri/runtime/v1/api.proto.
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import * as path from 'node:path';
import { repoRoot } from '../harness/paths';
import type {
  Container, ContainerConfig, ContainerFilter, ContainerStats, ContainerStatsFilter, ContainerStatusResponse,
  ExecSyncResponse, Image, ImageSpec, Int64In, LinuxContainerResources, PodSandbox, PodSandboxConfig,
  PodSandboxFilter, PodSandboxStatusResponse, StatusResponse, VersionResponse,
} from './types';

export * from './types';

/** The API version kubelet announces in VersionRequest. */
export const CRI_API_VERSION = 'v1';

const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
};

export function criProtoFile(): string {
  return path.join(repoRoot(), 'protos', 'cri', 'runtime', 'v1', 'api.proto');
}

/** A failed CRI call: the gRPC status code (number and name) and the runtime's message. */
export class CriError extends Error {
  readonly rpc: string;
  readonly code: grpc.status;
  readonly codeName: string;
  readonly details: string;

  constructor(rpc: string, err: grpc.ServiceError) {
    const codeName = grpc.status[err.code] ?? String(err.code);
    super(`CRI ${rpc}: ${codeName} (${err.code}): ${err.details}`);
    this.name = 'CriError';
    this.rpc = rpc;
    this.code = err.code;
    this.codeName = codeName;
    this.details = err.details;
  }
}

export interface CriClientOptions {
  /** Deadline of each call unless overridden per call. Default 60 s. */
  timeoutMs?: number;
}

type Callback = (err: grpc.ServiceError | null, res: unknown) => void;
type UnaryMethod = (req: unknown, md: grpc.Metadata, opts: grpc.CallOptions, cb: Callback) => grpc.ClientUnaryCall;

let cachedDefinition: protoLoader.PackageDefinition | undefined;

function packageDefinition(): protoLoader.PackageDefinition {
  cachedDefinition ??= protoLoader.loadSync(criProtoFile(), LOADER_OPTIONS);
  return cachedDefinition;
}

/** RuntimeService and ImageService of one CRI endpoint. */
export class CriClient {
  readonly address: string;
  private readonly runtime: grpc.Client;
  private readonly images: grpc.Client;
  private readonly timeoutMs: number;

  /** `socket`: containerd's gRPC socket path, or a `unix://…` target. */
  constructor(socket: string, opts: CriClientOptions = {}) {
    this.address = socket.startsWith('unix:') ? socket : `unix://${socket}`;
    this.timeoutMs = opts.timeoutMs ?? 60_000;
    const pkg = grpc.loadPackageDefinition(packageDefinition()) as unknown as {
      runtime: { v1: { RuntimeService: grpc.ServiceClientConstructor; ImageService: grpc.ServiceClientConstructor } };
    };
    const creds = grpc.credentials.createInsecure();
    // Same message size limit kubelet uses for CRI (16 MiB).
    const channelOpts = { 'grpc.max_receive_message_length': 16 * 1024 * 1024 };
    this.runtime = new pkg.runtime.v1.RuntimeService(this.address, creds, channelOpts);
    this.images = new pkg.runtime.v1.ImageService(this.address, creds, channelOpts);
  }

  close(): void {
    this.runtime.close();
    this.images.close();
  }

  /** Any unary RPC of the two services by name, e.g. `call('runtime', 'Version', {})`. */
  call<T>(service: 'runtime' | 'image', rpc: string, request: object, timeoutMs = this.timeoutMs): Promise<T> {
    const client = service === 'runtime' ? this.runtime : this.images;
    const method = (client as unknown as Record<string, UnaryMethod | undefined>)[rpc];
    if (typeof method !== 'function') return Promise.reject(new Error(`CRI ${service} service has no RPC ${rpc}`));
    return new Promise<T>((resolve, reject) => {
      method.call(client, request, new grpc.Metadata(), { deadline: Date.now() + timeoutMs }, (err, res) => {
        if (err) reject(new CriError(rpc, err));
        else resolve(res as T);
      });
    });
  }

  // ---- RuntimeService ----

  version(version = CRI_API_VERSION): Promise<VersionResponse> {
    return this.call('runtime', 'Version', { version });
  }

  status(verbose = false): Promise<StatusResponse> {
    return this.call('runtime', 'Status', { verbose });
  }

  async runPodSandbox(config: PodSandboxConfig, runtimeHandler = '', timeoutMs?: number): Promise<string> {
    const r = await this.call<{ pod_sandbox_id: string }>(
      'runtime', 'RunPodSandbox', { config, runtime_handler: runtimeHandler }, timeoutMs,
    );
    return r.pod_sandbox_id;
  }

  async stopPodSandbox(podSandboxId: string, timeoutMs?: number): Promise<void> {
    await this.call('runtime', 'StopPodSandbox', { pod_sandbox_id: podSandboxId }, timeoutMs);
  }

  async removePodSandbox(podSandboxId: string, timeoutMs?: number): Promise<void> {
    await this.call('runtime', 'RemovePodSandbox', { pod_sandbox_id: podSandboxId }, timeoutMs);
  }

  podSandboxStatus(podSandboxId: string, verbose = false): Promise<PodSandboxStatusResponse> {
    return this.call('runtime', 'PodSandboxStatus', { pod_sandbox_id: podSandboxId, verbose });
  }

  async listPodSandbox(filter?: PodSandboxFilter): Promise<PodSandbox[]> {
    const r = await this.call<{ items: PodSandbox[] }>('runtime', 'ListPodSandbox', filter ? { filter } : {});
    return r.items;
  }

  async createContainer(podSandboxId: string, config: ContainerConfig, sandboxConfig: PodSandboxConfig): Promise<string> {
    const r = await this.call<{ container_id: string }>('runtime', 'CreateContainer', {
      pod_sandbox_id: podSandboxId,
      config,
      sandbox_config: sandboxConfig,
    });
    return r.container_id;
  }

  async startContainer(containerId: string): Promise<void> {
    await this.call('runtime', 'StartContainer', { container_id: containerId });
  }

  /** `timeoutSec`: grace period before SIGKILL (0: kill at once), as kubelet's terminationGracePeriod. */
  async stopContainer(containerId: string, timeoutSec: Int64In = 0): Promise<void> {
    const grace = Number(timeoutSec) * 1000;
    await this.call('runtime', 'StopContainer', { container_id: containerId, timeout: timeoutSec }, this.timeoutMs + grace);
  }

  async removeContainer(containerId: string): Promise<void> {
    await this.call('runtime', 'RemoveContainer', { container_id: containerId });
  }

  async listContainers(filter?: ContainerFilter): Promise<Container[]> {
    const r = await this.call<{ containers: Container[] }>('runtime', 'ListContainers', filter ? { filter } : {});
    return r.containers;
  }

  containerStatus(containerId: string, verbose = false): Promise<ContainerStatusResponse> {
    return this.call('runtime', 'ContainerStatus', { container_id: containerId, verbose });
  }

  async updateContainerResources(
    containerId: string,
    linux: LinuxContainerResources,
    annotations?: Record<string, string>,
  ): Promise<void> {
    await this.call('runtime', 'UpdateContainerResources', { container_id: containerId, linux, annotations });
  }

  /** `timeoutSec` 0 = no timeout (the runtime waits for the command); the call deadline covers it. */
  execSync(containerId: string, cmd: string[], timeoutSec = 0): Promise<ExecSyncResponse> {
    const deadline = timeoutSec > 0 ? timeoutSec * 1000 + 10_000 : this.timeoutMs;
    return this.call('runtime', 'ExecSync', { container_id: containerId, cmd, timeout: timeoutSec }, deadline);
  }

  async containerStats(containerId: string): Promise<ContainerStats | null> {
    const r = await this.call<{ stats: ContainerStats | null }>('runtime', 'ContainerStats', { container_id: containerId });
    return r.stats;
  }

  async listContainerStats(filter?: ContainerStatsFilter): Promise<ContainerStats[]> {
    const r = await this.call<{ stats: ContainerStats[] }>('runtime', 'ListContainerStats', filter ? { filter } : {});
    return r.stats;
  }

  // ---- ImageService ----

  async listImages(filter?: ImageSpec): Promise<Image[]> {
    const r = await this.call<{ images: Image[] }>('image', 'ListImages', filter ? { filter: { image: filter } } : {});
    return r.images;
  }

  /** null when the runtime does not have the image (CRI answers OK with an empty image). */
  async imageStatus(image: string, verbose = false): Promise<{ image: Image | null; info: Record<string, string> }> {
    return this.call('image', 'ImageStatus', { image: { image }, verbose });
  }

  /**
   * Poll Status until RuntimeReady and NetworkReady are true (the CRI plugin
   * loads the CNI config asynchronously after containerd answers).
   */
  async waitReady(timeoutMs = 30_000): Promise<StatusResponse> {
    const deadline = Date.now() + timeoutMs;
    let last: unknown;
    for (;;) {
      try {
        const s = await this.status(false);
        const conds = s.status?.conditions ?? [];
        const ok = (t: string): boolean => conds.some((c) => c.type === t && c.status);
        if (ok('RuntimeReady') && ok('NetworkReady')) return s;
        last = conds;
      } catch (e) {
        last = e;
      }
      if (Date.now() >= deadline) {
        throw new Error(`CRI at ${this.address} not ready within ${timeoutMs} ms; last: ${
          last instanceof Error ? last.message : JSON.stringify(last)}`);
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}
