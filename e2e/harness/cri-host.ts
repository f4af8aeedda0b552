// What a CRI-enabled private containerd puts on the host besides its own dirs,
// and how to find and remove it: the CRI plugin's config, the CNI network
// (bridge, veths, host-local IPAM, libcni's result cache), the pods' network
// namespaces (/var/run/netns/cni-*) and the pod cgroups the kubelet-like
// helpers in e2e/cri/pod.ts put under a per-instance cgroup root.
//
// Ownership is never guessed from a name pattern alone: a netns belongs to an
// instance when one of its sandbox bundles names it, or when its veth's peer
// is a port of the instance's own bridge. Other containerd instances on the
// host (the system one, concurrent test runs) are left alone.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { run } from './command';
import { readMountInfo } from './mounts';

/** `cri` option of PrivateContainerd.start. */
export interface CriOptions {
  /** `sandbox_image`: the pause image. Default PAUSE_REF (built by e2e/harness/pause-image.ts). */
  sandboxImage?: string;
  /** IPv4 /24 for pod addresses. Default 10.88.<n>.0/24, <n> derived from the instance name. */
  subnet?: string;
  /**
   * Put pod netns bind mounts under the CRI state dir (`netns_mounts_under_state_dir`) instead of
   * /var/run/netns/cni-<uuid>. Default false: where containerd puts them on a real node.
   */
  netnsUnderStateDir?: boolean;
  /**
   * `key = value` TOML lines for the CRI plugin; they replace the defaults. Written with 1.x
   * names (`[plugins."io.containerd.grpc.v1.cri"]`); on 2.x each key goes to the plugin that
   * now holds it (images, runtime or the gRPC service; `sandbox_image` to `pinned_images.sandbox`).
   */
  pluginKeys?: string[];
  /**
   * containerd 2.x only: the `sandboxer` of the `burrow` runtime handler: `podsandbox` (default:
   * containerd runs a pause container through the Task API) or `shim` (Burrow's Sandbox API).
   */
  burrowSandboxer?: 'podsandbox' | 'shim';
  /** Runtime handlers to register (default CRI_HANDLERS); e.g. an installer test starts without `burrow`. */
  handlers?: readonly CriHandler[];
}

/** Runtime handler names the CRI config defines (RuntimeClass handlers). */
export const CRI_HANDLERS = ['runc', 'burrow'] as const;
export type CriHandler = (typeof CRI_HANDLERS)[number];

export const CNI_BIN_DIR = '/usr/lib/cni';
/** containerd 1.6's fixed netns dir (when netns_mounts_under_state_dir = false); /var/run → /run. */
export const HOST_NETNS_DIR = '/run/netns';
/** libcni's default cache dir; containerd 1.6 does not configure another one. */
export const CNI_CACHE_RESULTS_DIR = '/var/lib/cni/results';
/** The loopback network containerd's go-cni always adds (`cni.WithLoNetwork`). */
const LOOPBACK_NET = 'cni-loopback';
const CONFLIST_NAME = '10-burrow-e2e.conflist';

/** Everything derived from the instance for its CRI setup. */
export interface CriHost {
  instance: string;
  sandboxImage: string;
  subnet: string;
  /** CNI network name (also the host-local IPAM sub-dir and libcni cache file prefix). */
  network: string;
  /** Linux bridge the pods' veths attach to (<= 15 chars). */
  bridge: string;
  confDir: string;
  conflistFile: string;
  ipamDataDir: string;
  /** Netns mount dir containerd uses with this config. */
  netnsDir: string;
  /** Default pod log root for e2e/cri/pod.ts (kubelet uses /var/log/pods). */
  podLogDir: string;
  /** cgroupfs path under which e2e/cri/pod.ts puts pod cgroups (kubelet's --cgroup-root). */
  cgroupRoot: string;
  criStateDir: string;
}

function hashOf(s: string): Buffer {
  return crypto.createHash('sha256').update(s).digest();
}

export function criHost(instance: string, instanceDir: string, state: string, opts: CriOptions = {}): CriHost {
  const h = hashOf(instance);
  const subnet = opts.subnet ?? `10.88.${1 + (h.readUInt16BE(0) % 250)}.0/24`;
  if (!/^\d+\.\d+\.\d+\.0\/24$/.test(subnet)) throw new Error(`cri.subnet "${subnet}" must be an IPv4 /24`);
  const criStateDir = path.join(state, 'io.containerd.grpc.v1.cri');
  const confDir = path.join(instanceDir, 'cni', 'net.d');
  return {
    instance,
    sandboxImage: opts.sandboxImage ?? PAUSE_REF_DEFAULT,
    subnet,
    network: `burrow-e2e-${instance}`,
    bridge: `bw-${h.toString('hex').slice(0, 8)}`,
    confDir,
    conflistFile: path.join(confDir, CONFLIST_NAME),
    ipamDataDir: path.join(instanceDir, 'cni', 'ipam'),
    netnsDir: opts.netnsUnderStateDir ? path.join(criStateDir, 'netns') : HOST_NETNS_DIR,
    podLogDir: path.join(instanceDir, 'pod-logs'),
    cgroupRoot: `/burrow-e2e-${instance}`,
    criStateDir,
  };
}

/** Name of the pause image e2e/harness/pause-image.ts builds (re-exported there as PAUSE_REF). */
export const PAUSE_REF_DEFAULT = 'docker.io/burrow/pause:1.0';

/** The CNI network: one bridge, host-local IPAM, nothing that touches iptables or host sysctls. */
export function renderConflist(h: CriHost): string {
  return `${JSON.stringify({
    cniVersion: '1.0.0',
    name: h.network,
    plugins: [
      {
        type: 'bridge',
        bridge: h.bridge,
        // No address on the bridge: no host route into the subnet and no
        // net.ipv4.ip_forward change (the bridge plugin sets it for gateways).
        isGateway: false,
        ipMasq: false,
        hairpinMode: false,
        ipam: {
          type: 'host-local',
          ranges: [[{ subnet: h.subnet }]],
          dataDir: h.ipamDataDir,
        },
      },
    ],
  }, null, 2)}\n`;
}

/** Keys of 1.x's CRI plugin that 2.x moved to `io.containerd.grpc.v1.cri` (the gRPC service). */
const V3_SERVICE_KEYS = new Set([
  'disable_tcp_service', 'stream_server_address', 'stream_server_port', 'stream_idle_timeout', 'enable_tls_streaming',
]);
/** Keys of 1.x's CRI plugin that 2.x moved to `io.containerd.cri.v1.images`. */
const V3_IMAGE_KEYS = new Set([
  'snapshotter', 'disable_snapshot_annotations', 'discard_unpacked_layers', 'max_concurrent_downloads',
  'image_pull_progress_timeout', 'image_pull_with_sync_fs', 'stats_collect_period',
]);
/** Keys 2.x dropped (cgroups are always on there). */
const V3_DROPPED_KEYS = new Set(['disable_cgroup']);

/**
 * The CRI plugin's configuration: `[plugins."io.containerd.grpc.v1.cri"]` and below for
 * config version 2 (containerd 1.6, 1.7); the `io.containerd.cri.v1.images` /
 * `io.containerd.cri.v1.runtime` / `io.containerd.grpc.v1.cri` split for version 3 (2.x).
 */
export function renderCriConfig(h: CriHost, opts: CriOptions = {}, configVersion: 2 | 3 = 2): string {
  const q = (s: string): string => JSON.stringify(s);
  const keys = new Map<string, string>([
    ['sandbox_image', q(h.sandboxImage)],
    // The CRI plugin gives the pause container oomScoreAdj -998; writing a value
    // below the current one needs CAP_SYS_RESOURCE, which this machine lacks.
    ['restrict_oom_score_adj', 'true'],
    // Never load the cri-containerd.apparmor.d profile into the host's kernel.
    ['disable_apparmor', 'true'],
    // cgroups stay on: kubelet-like pods get cgroupsPath and resources.
    ['disable_cgroup', 'false'],
    ['enable_selinux', 'false'],
    ['disable_tcp_service', 'true'],
    // Streaming (Exec/Attach/PortForward URLs) on loopback only; ExecSync does not use it.
    ['stream_server_address', q('127.0.0.1')],
    ['stream_server_port', q('0')],
    ['netns_mounts_under_state_dir', opts.netnsUnderStateDir ? 'true' : 'false'],
  ]);
  // pluginKeys override the defaults above (TOML refuses a key defined twice).
  for (const line of opts.pluginKeys ?? []) {
    const m = /^\s*([A-Za-z0-9_]+)\s*=\s*(.+?)\s*$/.exec(line);
    if (!m) throw new Error(`cri.pluginKeys: "${line}" is not a \`key = value\` line`);
    keys.set(m[1], m[2]);
  }
  if (configVersion === 3) return renderCriConfigV3(h, keys, opts);
  if (opts.burrowSandboxer !== undefined) {
    throw new Error(`cri.burrowSandboxer needs containerd 2.x (config version 3); 1.x has no sandboxer setting`);
  }
  const p = '[plugins."io.containerd.grpc.v1.cri"';
  return [
    `${p}]`,
    ...[...keys].map(([k, v]) => `  ${k} = ${v}`),
    '',
    `${p}.containerd]`,
    `  snapshotter = ${q('overlayfs')}`,
    `  default_runtime_name = ${q('runc')}`,
    '',
    `${p}.containerd.runtimes.runc]`,
    `  runtime_type = ${q('io.containerd.runc.v2')}`,
    '',
    `${p}.containerd.runtimes.runc.options]`,
    // cgroup v1 host without systemd: cgroupfs paths.
    '  SystemdCgroup = false',
    '',
    ...((opts.handlers ?? CRI_HANDLERS).includes('burrow')
      ? [
          `${p}.containerd.runtimes.burrow]`,
          `  runtime_type = ${q('io.containerd.burrow.v2')}`,
          `  pod_annotations = [${q('*')}]`,
          `  container_annotations = [${q('*')}]`,
          '',
        ]
      : []),
    `${p}.cni]`,
    `  bin_dir = ${q(CNI_BIN_DIR)}`,
    `  conf_dir = ${q(h.confDir)}`,
    '  max_conf_num = 1',
    `  conf_template = ${q('')}`,
    '',
  ].join('\n');
}

function renderCriConfigV3(h: CriHost, keys: Map<string, string>, opts: CriOptions): string {
  const q = (s: string): string => JSON.stringify(s);
  const service: string[] = [];
  const images: string[] = [];
  const runtime: string[] = [];
  let sandboxImage = q(h.sandboxImage);
  for (const [k, v] of keys) {
    if (k === 'sandbox_image') sandboxImage = v;
    else if (V3_DROPPED_KEYS.has(k)) continue;
    else if (V3_SERVICE_KEYS.has(k)) service.push(`  ${k} = ${v}`);
    else if (V3_IMAGE_KEYS.has(k)) images.push(`  ${k} = ${v}`);
    else runtime.push(`  ${k} = ${v}`);
  }
  if (!images.some((l) => /^\s*snapshotter\s*=/.test(l))) images.push(`  snapshotter = ${q('overlayfs')}`);
  const img = '[plugins."io.containerd.cri.v1.images"';
  const rt = '[plugins."io.containerd.cri.v1.runtime"';
  return [
    '[plugins."io.containerd.grpc.v1.cri"]',
    ...service,
    '',
    `${img}]`,
    ...images,
    '',
    `${img}.pinned_images]`,
    `  sandbox = ${sandboxImage}`,
    '',
    `${rt}]`,
    ...runtime,
    '',
    `${rt}.containerd]`,
    `  default_runtime_name = ${q('runc')}`,
    '',
    `${rt}.containerd.runtimes.runc]`,
    `  runtime_type = ${q('io.containerd.runc.v2')}`,
    `  sandboxer = ${q('podsandbox')}`,
    '',
    `${rt}.containerd.runtimes.runc.options]`,
    '  SystemdCgroup = false',
    '',
    ...((opts.handlers ?? CRI_HANDLERS).includes('burrow')
      ? [
          `${rt}.containerd.runtimes.burrow]`,
          `  runtime_type = ${q('io.containerd.burrow.v2')}`,
          `  sandboxer = ${q(opts.burrowSandboxer ?? 'podsandbox')}`,
          `  pod_annotations = [${q('*')}]`,
          `  container_annotations = [${q('*')}]`,
          '',
        ]
      : []),
    `${rt}.cni]`,
    `  bin_dirs = [${q(CNI_BIN_DIR)}]`,
    `  conf_dir = ${q(h.confDir)}`,
    '  max_conf_num = 1',
    `  conf_template = ${q('')}`,
    '',
  ].join('\n');
}

/** Write the conflist (before containerd starts: the CRI plugin loads it at start-up and on change). */
export function writeCniConfig(h: CriHost): void {
  fs.mkdirSync(h.confDir, { recursive: true });
  fs.mkdirSync(h.ipamDataDir, { recursive: true });
  fs.mkdirSync(h.podLogDir, { recursive: true });
  fs.writeFileSync(h.conflistFile, renderConflist(h));
}

/**
 * The CRI setup an instance dir was started with, read back from its conflist
 * (so a crashed run's leftovers can be found by the next start()), or undefined.
 */
export function readCriHost(instance: string, instanceDir: string, state: string): CriHost | undefined {
  const confDir = path.join(instanceDir, 'cni', 'net.d');
  let conf: { name?: string; plugins?: { bridge?: string; ipam?: { ranges?: { subnet?: string }[][]; dataDir?: string } }[] };
  try {
    conf = JSON.parse(fs.readFileSync(path.join(confDir, CONFLIST_NAME), 'utf8'));
  } catch {
    return undefined;
  }
  const bridge = conf.plugins?.[0];
  const subnet = bridge?.ipam?.ranges?.[0]?.[0]?.subnet;
  const h = criHost(instance, instanceDir, state, { subnet });
  return {
    ...h,
    network: conf.name ?? h.network,
    bridge: bridge?.bridge ?? h.bridge,
    ipamDataDir: bridge?.ipam?.dataDir ?? h.ipamDataDir,
  };
}

// ---- discovery -------------------------------------------------------------

function safeReaddir(dir: string): string[] {
  try {
    return fs.readdirSync(dir).sort();
  } catch {
    return [];
  }
}

/** IPs host-local reserved for this network: file name = IP, content = `<container id>\r\n<ifname>`. */
export function ipamReservations(h: CriHost): { ip: string; containerId: string; file: string }[] {
  const dir = path.join(h.ipamDataDir, h.network);
  return safeReaddir(dir)
    .filter((n) => /^\d+\.\d+\.\d+\.\d+$/.test(n))
    .map((ip) => {
      const file = path.join(dir, ip);
      let containerId = '';
      try {
        containerId = fs.readFileSync(file, 'utf8').split(/\r?\n/)[0].trim();
      } catch {
        // released meanwhile
      }
      return { ip, containerId, file };
    });
}

/**
 * Host-side ifindexes of the veth peers of the interfaces inside a netns file
 * (`link_index` of a veth whose peer lives in another namespace), [] if it cannot be entered.
 */
async function netnsPeerIndexes(netnsFile: string): Promise<number[]> {
  const r = await run('nsenter', [`--net=${netnsFile}`, '--', 'ip', '-j', 'link', 'show'], { timeoutMs: 10_000 });
  if (r.code !== 0) return [];
  try {
    const links = JSON.parse(r.stdout) as { link_index?: number; link_netnsid?: number }[];
    return links.filter((l) => l.link_netnsid !== undefined && l.link_index !== undefined).map((l) => l.link_index as number);
  } catch {
    return [];
  }
}

/** Network namespace paths named by this instance's task bundles (pause containers join by path). */
export function bundleNetnsPaths(bundleDirs: readonly string[]): string[] {
  const out = new Set<string>();
  for (const dir of bundleDirs) {
    try {
      const spec = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8')) as {
        linux?: { namespaces?: { type?: string; path?: string }[] };
      };
      for (const ns of spec.linux?.namespaces ?? []) {
        if (ns.type === 'network' && ns.path && !ns.path.startsWith('/proc/')) out.add(ns.path.replace(/^\/var\/run\//, '/run/'));
      }
    } catch {
      // no spec (bundle half made or half removed)
    }
  }
  return [...out];
}

/**
 * This instance's pod netns files: those its bundles name, and those whose veth
 * peer is a port of this instance's bridge (bridge names are per instance).
 */
export async function ownedNetns(h: CriHost, bundleDirs: readonly string[]): Promise<string[]> {
  const owned = new Set(bundleNetnsPaths(bundleDirs).filter((p) => fs.existsSync(p)));
  const ports = new Set((await bridgePortLinks(h)).map((l) => l.ifindex));
  if (ports.size > 0) {
    const candidates = [HOST_NETNS_DIR, path.join(h.criStateDir, 'netns')]
      .flatMap((d) => safeReaddir(d).filter((n) => n.startsWith('cni-')).map((n) => path.join(d, n)))
      .filter((p) => !owned.has(p));
    for (const p of candidates) {
      if ((await netnsPeerIndexes(p)).some((i) => ports.has(i))) owned.add(p);
    }
  }
  return [...owned].sort();
}

interface IpLink {
  ifindex: number;
  ifname: string;
  master?: string;
  link_type?: string;
  linkinfo?: { info_kind?: string };
}

async function ipLinks(args: string[]): Promise<IpLink[]> {
  const r = await run('ip', ['-j', '-d', 'link', 'show', ...args], { timeoutMs: 10_000 });
  if (r.code !== 0) return [];
  try {
    return JSON.parse(r.stdout) as IpLink[];
  } catch {
    return [];
  }
}

export async function bridgeExists(h: CriHost): Promise<boolean> {
  return (await ipLinks(['dev', h.bridge])).length > 0;
}

async function bridgePortLinks(h: CriHost): Promise<IpLink[]> {
  if (!(await bridgeExists(h))) return [];
  return ipLinks(['master', h.bridge]);
}

/** Host ends of pod veths attached to this instance's bridge. */
export async function bridgePorts(h: CriHost): Promise<string[]> {
  return (await bridgePortLinks(h)).map((l) => l.ifname).sort();
}

/** libcni's cached ADD results for this network and for the loopback network of its sandboxes. */
export function cniCacheFiles(h: CriHost, sandboxIds: Iterable<string>): string[] {
  const ids = new Set(sandboxIds);
  return safeReaddir(CNI_CACHE_RESULTS_DIR)
    .filter((n) => {
      if (n.startsWith(`${h.network}-`)) return true;
      const m = /^cni-loopback-(.+)-lo$/.exec(n);
      return m !== null && ids.has(m[1]);
    })
    .map((n) => path.join(CNI_CACHE_RESULTS_DIR, n));
}

/** Sandbox ids this instance knows of: CRI state dirs, IPAM reservations, this network's cache files. */
export function knownSandboxIds(h: CriHost, bundleIds: readonly string[]): string[] {
  const ids = new Set<string>(bundleIds);
  for (const n of safeReaddir(path.join(h.criStateDir, 'sandboxes'))) ids.add(n);
  for (const r of ipamReservations(h)) if (r.containerId) ids.add(r.containerId);
  const prefix = `${h.network}-`;
  for (const n of safeReaddir(CNI_CACHE_RESULTS_DIR)) {
    const m = n.startsWith(prefix) ? /^(.+)-[^-]+$/.exec(n.slice(prefix.length)) : null;
    if (m) ids.add(m[1]);
  }
  return [...ids];
}

/** Cgroup dirs below the instance's pod cgroup root in every hierarchy, deepest first. */
export function podCgroupDirs(h: CriHost, hierarchies: readonly string[]): string[] {
  const out: string[] = [];
  const walk = (dir: string): void => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) if (e.isDirectory()) walk(path.join(dir, e.name));
    out.push(dir);
  };
  for (const hier of hierarchies) walk(path.join(hier, h.cgroupRoot));
  return out;
}

/** Leak-check entries: `netns` and `cni` categories of e2e/harness/leaks.ts. */
export async function criLeakEntries(
  h: CriHost | undefined,
  bundleDirs: readonly string[],
  bundleIds: readonly string[],
): Promise<{ netns: string[]; cni: string[] }> {
  if (!h) return { netns: [], cni: [] };
  const netns = await ownedNetns(h, bundleDirs);
  const cni = [
    ...(await bridgePorts(h)).map((p) => `veth ${p} on ${h.bridge}`),
    ...ipamReservations(h).map((r) => `ipam ${r.file} (${r.containerId})`),
    ...cniCacheFiles(h, knownSandboxIds(h, bundleIds)),
  ];
  return { netns, cni };
}

/**
 * Remove what the instance's pods left on the host network side. Call after the
 * instance's processes are dead (then nothing but a bind mount keeps a netns alive).
 * Returns what could not be removed.
 */
export async function cleanupCriHost(
  h: CriHost,
  bundleDirs: readonly string[],
  bundleIds: readonly string[],
  hierarchies: readonly string[],
): Promise<string[]> {
  const problems: string[] = [];
  const ports = await bridgePorts(h);
  const ids = knownSandboxIds(h, bundleIds);

  for (const ns of await ownedNetns(h, bundleDirs)) {
    const mounted = readMountInfo().some((m) => m.mountPoint === ns);
    if (mounted) {
      const r = await run('umount', [ns], { timeoutMs: 15_000 });
      if (r.code !== 0) await run('umount', ['-l', ns], { timeoutMs: 15_000 });
    }
    if (readMountInfo().some((m) => m.mountPoint === ns)) {
      problems.push(`netns ${ns} still mounted`);
      continue;
    }
    fs.rmSync(ns, { force: true });
  }

  // A veth pair goes away with its netns, asynchronously (the kernel frees
  // namespaces from a work queue); delete the host ends that linger.
  const deadline = Date.now() + 3_000;
  let left = ports;
  while (left.length > 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
    const now = new Set(await bridgePorts(h));
    left = left.filter((p) => now.has(p));
  }
  for (const p of left) await run('ip', ['link', 'del', p], { timeoutMs: 10_000 });
  if (await bridgeExists(h)) {
    const r = await run('ip', ['link', 'del', h.bridge], { timeoutMs: 10_000 });
    if (r.code !== 0 && (await bridgeExists(h))) problems.push(`bridge ${h.bridge}: ${r.stderr.trim()}`);
  }

  for (const f of cniCacheFiles(h, ids)) fs.rmSync(f, { force: true });
  // The IPAM data dir and the conflist live in the instance dir, removed with it.

  for (const dir of podCgroupDirs(h, hierarchies)) {
    try {
      fs.rmdirSync(dir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') problems.push(`cgroup ${dir}: ${(e as Error).message}`);
    }
  }
  return problems;
}
