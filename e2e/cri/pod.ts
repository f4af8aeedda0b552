// Kubelet-like use of the CRI: the pod and container configs kubelet
// (kuberuntime) generates for a plain BestEffort pod, the order it calls the
// RPCs in, and how it reads container logs. Defaults follow kubelet 1.25-1.27
// with the cgroupfs driver, dnsPolicy Default, no seccomp default, no AppArmor.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { cgroupHierarchies } from '../harness/containerd';
import { sleep } from '../harness/paths';
import type { CriClient } from './client';
import type {
  ContainerConfig, ContainerStatus, LinuxContainerResources, LinuxContainerSecurityContext, Mount, NamespaceOption,
  PodSandboxConfig,
} from './types';

/** kubelet's securitycontext.defaultMaskedPaths (procMount Default). */
export const KUBELET_MASKED_PATHS = [
  '/proc/asound', '/proc/acpi', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/timer_list',
  '/proc/timer_stats', '/proc/sched_debug', '/proc/scsi', '/sys/firmware',
];
/** kubelet's securitycontext.defaultReadonlyPaths. */
export const KUBELET_READONLY_PATHS = ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'];

/** Namespaces of a pod without hostNetwork/hostPID/hostIPC/shareProcessNamespace. */
export const POD_NAMESPACES: Required<Omit<NamespaceOption, 'target_id'>> = { network: 'POD', pid: 'CONTAINER', ipc: 'POD' };

export type QosClass = 'besteffort' | 'burstable' | 'guaranteed';

export interface RunPodOptions {
  /** Pod name (metadata.name; also the hostname unless `hostname`). */
  name: string;
  /** RuntimeClass handler: `runc` or `burrow` in PrivateContainerd's CRI config. */
  handler: string;
  /** Kubernetes namespace. Default `default`. */
  namespace?: string;
  /** Pod UID. Default: a random UUID. */
  uid?: string;
  /** The pod's log dir (kubelet: /var/log/pods/<ns>_<name>_<uid>); created like kubelet does. */
  logDirectory?: string;
  /** Instead of logDirectory: the root under which `<ns>_<name>_<uid>` is made (kubelet: /var/log/pods). */
  logRoot?: string;
  hostname?: string;
  /** kubelet's --cgroup-root (cgroupfs). Default `/`. Pod cgroup: `<root>/kubepods[/<qos>]/pod<uid>`. */
  cgroupRoot?: string;
  /** Default besteffort. */
  qos?: QosClass;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  dnsConfig?: PodSandboxConfig['dns_config'];
  sysctls?: Record<string, string>;
  namespaceOptions?: NamespaceOption;
  /** Deadline of RunPodSandbox. Default: the client's. */
  timeoutMs?: number;
}

/** What runPod made: the id, and the config kubelet passes again to CreateContainer. */
export interface Pod {
  id: string;
  config: PodSandboxConfig;
  handler: string;
  /** cgroupfs path of the pod cgroup (kubelet creates and removes it). */
  cgroupParent: string;
  /** kubelet's --cgroup-root the pod cgroup is under. */
  cgroupRoot: string;
}

const pods = new Map<string, Pod>();

/** The cgroup kubelet's cgroupfs pod container manager uses for a pod. */
export function podCgroupParent(cgroupRoot: string, uid: string, qos: QosClass = 'besteffort'): string {
  const root = cgroupRoot === '/' ? '' : cgroupRoot.replace(/\/+$/, '');
  const qosPart = qos === 'guaranteed' ? '' : `/${qos}`;
  return `${root}/kubepods${qosPart}/pod${uid}`;
}

/** PodSandboxConfig as kubelet's generatePodSandboxConfig builds it. */
export function podSandboxConfig(opts: RunPodOptions & { uid: string; logDirectory: string }): PodSandboxConfig {
  const namespace = opts.namespace ?? 'default';
  const cgroupParent = podCgroupParent(opts.cgroupRoot ?? '/', opts.uid, opts.qos);
  return {
    metadata: { name: opts.name, uid: opts.uid, namespace, attempt: 0 },
    hostname: opts.hostname ?? opts.name,
    log_directory: opts.logDirectory,
    ...(opts.dnsConfig ? { dns_config: opts.dnsConfig } : {}),
    port_mappings: [],
    labels: {
      'io.kubernetes.pod.name': opts.name,
      'io.kubernetes.pod.namespace': namespace,
      'io.kubernetes.pod.uid': opts.uid,
      ...(opts.labels ?? {}),
    },
    annotations: {
      'kubernetes.io/config.seen': new Date().toISOString(),
      'kubernetes.io/config.source': 'api',
      ...(opts.annotations ?? {}),
    },
    linux: {
      cgroup_parent: cgroupParent,
      security_context: {
        namespace_options: { ...POD_NAMESPACES, ...(opts.namespaceOptions ?? {}) },
        privileged: false,
        seccomp: { profile_type: 'Unconfined' },
      },
      sysctls: opts.sysctls ?? {},
    },
  };
}

/** RunPodSandbox, the way kubelet's createPodSandbox does it (log dir first). */
export async function runPod(client: CriClient, opts: RunPodOptions): Promise<Pod> {
  const uid = opts.uid ?? crypto.randomUUID();
  const namespace = opts.namespace ?? 'default';
  const logDirectory = opts.logDirectory
    ?? path.join(opts.logRoot ?? '/var/log/pods', `${namespace}_${opts.name}_${uid}`);
  fs.mkdirSync(logDirectory, { recursive: true, mode: 0o755 });
  const config = podSandboxConfig({ ...opts, uid, logDirectory });
  const id = await client.runPodSandbox(config, opts.handler, opts.timeoutMs);
  const pod: Pod = {
    id, config, handler: opts.handler, cgroupParent: config.linux?.cgroup_parent ?? '', cgroupRoot: opts.cgroupRoot ?? '/',
  };
  pods.set(id, pod);
  return pod;
}

export interface ContainerOptions {
  name: string;
  /** Image reference; resolved to the image id with ImageStatus, as kubelet's image manager does. */
  image: string;
  command?: string[];
  args?: string[];
  env?: Record<string, string>;
  workingDir?: string;
  /** Relative to the pod's log_directory. Default `<name>/<attempt>.log`. */
  logPath?: string;
  attempt?: number;
  /** LinuxContainerResources; default BestEffort's (cpu_shares 2, cpu_period 100000, oom_score_adj 1000). */
  resources?: LinuxContainerResources;
  securityContext?: LinuxContainerSecurityContext;
  mounts?: Mount[];
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

export const BESTEFFORT_RESOURCES: LinuxContainerResources = {
  cpu_period: 100000,
  cpu_quota: 0,
  cpu_shares: 2,
  memory_limit_in_bytes: 0,
  oom_score_adj: 1000,
  cpuset_cpus: '',
  cpuset_mems: '',
  hugepage_limits: [],
  unified: {},
  memory_swap_limit_in_bytes: 0,
};

/** ContainerConfig as kubelet's generateContainerConfig builds it (no service env, no volumes). */
export function containerConfig(sandbox: PodSandboxConfig, imageId: string, opts: ContainerOptions): ContainerConfig {
  const attempt = opts.attempt ?? 0;
  return {
    metadata: { name: opts.name, attempt },
    image: { image: imageId },
    command: opts.command ?? [],
    args: opts.args ?? [],
    working_dir: opts.workingDir ?? '',
    envs: Object.entries(opts.env ?? {}).map(([key, value]) => ({ key, value })),
    mounts: opts.mounts ?? [],
    devices: [],
    labels: {
      'io.kubernetes.container.name': opts.name,
      'io.kubernetes.pod.name': sandbox.metadata.name,
      'io.kubernetes.pod.namespace': sandbox.metadata.namespace,
      'io.kubernetes.pod.uid': sandbox.metadata.uid,
      ...(opts.labels ?? {}),
    },
    annotations: {
      'io.kubernetes.container.hash': crypto.createHash('sha256').update(JSON.stringify(opts)).digest('hex').slice(0, 8),
      'io.kubernetes.container.restartCount': String(attempt),
      'io.kubernetes.container.terminationMessagePath': '/dev/termination-log',
      'io.kubernetes.container.terminationMessagePolicy': 'File',
      'io.kubernetes.pod.terminationGracePeriod': '30',
      ...(opts.annotations ?? {}),
    },
    log_path: opts.logPath ?? path.join(opts.name, `${attempt}.log`),
    stdin: false,
    stdin_once: false,
    tty: false,
    linux: {
      resources: opts.resources ?? BESTEFFORT_RESOURCES,
      security_context: opts.securityContext ?? {
        namespace_options: { ...POD_NAMESPACES },
        privileged: false,
        no_new_privs: false,
        masked_paths: KUBELET_MASKED_PATHS,
        readonly_paths: KUBELET_READONLY_PATHS,
        seccomp: { profile_type: 'Unconfined' },
      },
    },
  };
}

/** The image id kubelet puts in ContainerConfig.image (ImageStatus → Image.id); throws if absent. */
export async function resolveImage(client: CriClient, ref: string): Promise<string> {
  const st = await client.imageStatus(ref);
  if (!st.image || !st.image.id) throw new Error(`image ${ref} not present in the CRI image store (nothing is pulled)`);
  return st.image.id;
}

/** CreateContainer (not started). Returns the container id. */
export async function createContainer(
  client: CriClient,
  podId: string,
  podConfig: PodSandboxConfig,
  opts: ContainerOptions,
): Promise<string> {
  const imageId = await resolveImage(client, opts.image);
  return client.createContainer(podId, containerConfig(podConfig, imageId, opts), podConfig);
}

/** CreateContainer + StartContainer, as kubelet's startContainer does. */
export async function runContainer(client: CriClient, pod: Pod, opts: ContainerOptions): Promise<string> {
  const id = await createContainer(client, pod.id, pod.config, opts);
  await client.startContainer(id);
  return id;
}

/** Poll ContainerStatus until CONTAINER_EXITED; returns that status. */
export async function waitContainerExited(client: CriClient, containerId: string, timeoutMs = 60_000): Promise<ContainerStatus> {
  const deadline = Date.now() + timeoutMs;
  let last: ContainerStatus | null = null;
  for (;;) {
    last = (await client.containerStatus(containerId)).status;
    if (last?.state === 'CONTAINER_EXITED') return last;
    if (Date.now() >= deadline) {
      throw new Error(`container ${containerId} not exited after ${timeoutMs} ms: ${JSON.stringify(last)}`);
    }
    await sleep(100);
  }
}

export interface LogEntry {
  time: string;
  stream: 'stdout' | 'stderr';
  message: string;
}

/**
 * Parse a CRI log file (`<RFC3339Nano> <stdout|stderr> <P|F> <msg>` per line;
 * P = partial, continued by the next line of the same stream) into entries.
 */
export function readLogEntries(file: string): LogEntry[] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
  const out: LogEntry[] = [];
  const partial: Record<string, { time: string; parts: string[] }> = {};
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const m = /^(\S+) (stdout|stderr) ([PF]) ?(.*)$/.exec(line);
    if (!m) throw new Error(`${file}: not a CRI log line: ${JSON.stringify(line)}`);
    const [, time, stream, tag, msg] = m;
    const acc = (partial[stream] ??= { time, parts: [] });
    acc.parts.push(msg);
    if (tag === 'F') {
      out.push({ time: acc.time, stream: stream as LogEntry['stream'], message: acc.parts.join('') });
      delete partial[stream];
    }
  }
  for (const [stream, acc] of Object.entries(partial)) {
    out.push({ time: acc.time, stream: stream as LogEntry['stream'], message: acc.parts.join('') });
  }
  return out;
}

/** The messages of a CRI log file, in order (both streams). */
export function readLog(file: string): string[] {
  return readLogEntries(file).map((e) => e.message);
}

/** Absolute path of a container's log file (log_directory + log_path). */
export function containerLogPath(pod: Pod, containerName: string, attempt = 0): string {
  return path.join(pod.config.log_directory ?? '', containerName, `${attempt}.log`);
}

/**
 * StopPodSandbox + RemovePodSandbox (which stop and remove the pod's containers),
 * then remove the pod cgroup as kubelet's pod container manager does.
 * Errors of the RPCs are thrown after the cgroup cleanup was attempted.
 */
export async function teardown(client: CriClient, pod: Pod | string): Promise<void> {
  const p = typeof pod === 'string' ? pods.get(pod) : pod;
  const id = typeof pod === 'string' ? pod : pod.id;
  let failure: unknown;
  try {
    await client.stopPodSandbox(id);
    await client.removePodSandbox(id);
  } catch (e) {
    failure = e;
  }
  if (p?.cgroupParent) removePodCgroup(p.cgroupParent, p.cgroupRoot);
  pods.delete(id);
  if (failure) throw failure;
}

/**
 * rmdir the pod cgroup in every hierarchy; below a private cgroup root (not `/`)
 * also its parents up to and including that root once they are empty.
 */
export function removePodCgroup(cgroupParent: string, cgroupRoot = '/'): void {
  const parts = cgroupParent.split('/').filter(Boolean);
  const rootDepth = cgroupRoot.split('/').filter(Boolean).length;
  const stopAt = rootDepth === 0 ? parts.length : rootDepth;
  for (const h of cgroupHierarchies()) {
    for (let n = parts.length; n >= stopAt && n > 0; n--) {
      const dir = path.join(h, ...parts.slice(0, n));
      try {
        fs.rmdirSync(dir);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'ENOENT') continue;
        break; // busy (EBUSY/ENOTEMPTY): other pods or containers still there
      }
    }
  }
}
