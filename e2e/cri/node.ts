// A Kubernetes node in miniature for one describe block: a private CRI-enabled containerd
// with its images imported and a ready CRI client, and the shape every CRI case shares
// (pods made through the case, torn down after it, the host checked for leftovers).
import {
  assertNoLeaks,
  BUSYBOX_REF,
  containerdForSuite,
  CRI_NAMESPACE,
  importImage,
  importPauseImage,
  PrivateContainerd,
  PrivateContainerdOptions,
  snapshotHost,
  SuiteContainerd,
} from '../harness';
import { CriClient } from './client';
import { ContainerOptions, createContainer, Pod, runPod, RunPodOptions, teardown } from './pod';

export interface CriNodeOptions extends PrivateContainerdOptions {
  /** Import the pause image (sandbox_image). Default true; pods Burrow's Sandbox service runs need none. */
  pauseImage?: boolean;
  /** Import busybox (BUSYBOX_REF) into k8s.io for app containers. Default true. */
  busybox?: boolean;
  /** Import busybox into containerd's default namespace as well, for ctr. Default false. */
  ctrBusybox?: boolean;
}

/** What the block's hooks and cases use; valid once its before() hook has run. */
export interface CriNode extends SuiteContainerd {
  readonly client: CriClient;
  /** A fresh CRI connection after a restart of containerd: the old channel points at the dead daemon's socket. */
  reconnect(): Promise<void>;
}

/**
 * containerdForSuite with the CRI (`cri: true` unless `opts.cri` says more): the images
 * imported and a CRI client that is ready, closed before the daemon stops.
 */
export function criNode(opts: CriNodeOptions): CriNode {
  const { pauseImage = true, busybox = true, ctrBusybox = false, ...startOptions } = opts;
  let client: CriClient | undefined;
  const suite = containerdForSuite({
    cri: true,
    ...startOptions,
    busybox: ctrBusybox,
    setUp: async (c) => {
      if (pauseImage) await importPauseImage(c);
      if (busybox) await importImage(c, BUSYBOX_REF, CRI_NAMESPACE);
      client = new CriClient(c.address);
      await client.waitReady();
    },
    tearDown: () => client?.close(),
  });
  return {
    get c(): PrivateContainerd {
      return suite.c;
    },
    get client(): CriClient {
      if (!client) throw new Error(`no CRI client for containerd ${opts.name}: its before() hook failed or has not run`);
      return client;
    },
    async reconnect(): Promise<void> {
      client?.close();
      client = new CriClient(suite.c.address);
      await client.waitReady();
    },
  };
}

export interface PodCase {
  /** RunPodSandbox of `<name>-<handler>` under the instance's pod log and cgroup roots. */
  pod(name: string, opts?: Partial<RunPodOptions>): Promise<Pod>;
  /** CreateContainer + StartContainer. */
  run(pod: Pod, opts: ContainerOptions): Promise<string>;
  /** StopPodSandbox + RemovePodSandbox + pod cgroup now, so that the case can check what is left. */
  teardown(pod: Pod): Promise<void>;
  /** The case removed the pod itself. */
  forget(pod: Pod): void;
}

export interface PodCaseOptions {
  /** How long the leak check waits for asynchronous cleanup. Default assertNoLeaks's. */
  settleMs?: number;
  /** Added to the failure message; given the ids of the pods and containers the case made. */
  explain?: (ids: readonly string[]) => string;
}

/**
 * Run `body`, tear down the pods it left (all at once), then check the host for leftovers
 * against a snapshot taken before. Done in the case, not in hooks: a failing hook would skip
 * the other cases. Errors of all three are reported together, as the first one.
 */
export async function podCase(
  node: CriNode,
  handler: string,
  body: (k: PodCase) => Promise<void>,
  opts: PodCaseOptions = {},
): Promise<void> {
  const baseline = await snapshotHost(node.c);
  const live = new Map<string, Pod>();
  const ids: string[] = [];
  const errors: unknown[] = [];
  const k: PodCase = {
    pod: async (name, podOpts = {}) => {
      const p = await runPod(node.client, {
        name: `${name}-${handler}`, handler, logRoot: node.c.cri?.podLogDir, cgroupRoot: node.c.cri?.cgroupRoot, ...podOpts,
      });
      live.set(p.id, p);
      ids.push(p.id);
      return p;
    },
    run: async (pod, containerOpts) => {
      const id = await createContainer(node.client, pod.id, pod.config, containerOpts);
      ids.push(id);
      await node.client.startContainer(id);
      return id;
    },
    teardown: async (pod) => {
      await teardown(node.client, pod);
      live.delete(pod.id);
    },
    forget: (pod) => {
      live.delete(pod.id);
    },
  };
  try {
    await body(k);
  } catch (e) {
    errors.push(e);
  }
  const down = await Promise.allSettled([...live.values()].map((p) => teardown(node.client, p)));
  for (const d of down) if (d.status === 'rejected') errors.push(d.reason);
  await assertNoLeaks(node.c, baseline, { settleMs: opts.settleMs }).catch((e) => errors.push(e));
  if (errors.length === 0) return;
  const text = errors.map((e) => (e instanceof Error ? e.message : String(e))).join('\n--- and then ---\n');
  const first = errors[0] instanceof Error ? errors[0] : new Error(String(errors[0]));
  first.message = text + (opts.explain?.(ids) ?? '');
  throw first;
}
