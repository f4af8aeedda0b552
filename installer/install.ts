// Install and uninstall, step by step. Each step is recorded in the install state before it
// takes effect, so uninstall reverses exactly what was done, also after a failed install.
//
// Order of install: read and check everything first (containerd version, config, payload) so
// that a refusal changes nothing; then payload, shim link, config (with a backup), restart,
// wait for the handler, node label. Uninstall runs it backwards.
import * as fs from 'fs';
import * as path from 'path';
import {
  ParsedConfig, RuntimeRegistration, checkCompatible, dropInPath, parseConfig, planRegistration, planUnregistration,
} from './containerd-config';
import { ContainerdVersion, parseContainerdVersion } from './containerd-version';
import { criStatus } from './cri-status';
import { InstallerError } from './errors';
import { runChecked } from './host-command';
import {
  ConfigFileRecord, InstallState, readState, sha256, statePath, writeFileAtomic, writeState,
} from './install-state';
import { KubeApi } from './kube-api';
import { NodeLabel, restoreNodeLabel, setNodeLabel } from './node-label';
import {
  HOST_CHECK, SHIM_BINARY, copyRelease, processesUsing, readManifest, readSymlink, releaseDir, replaceSymlink,
} from './payload';

export interface InstallerOptions {
  /** The payload to install (the image's /payload, or dist/payload from `npm run payload`). */
  payloadDir: string;
  /** Host dir holding releases, `current` and the install state. Default /opt/burrow. */
  installDir: string;
  /** Dir on containerd's PATH for the shim symlink (default /usr/local/bin); null: no link. */
  shimLinkDir: string | null;
  /** containerd's main config file. */
  configPath: string;
  /** Dir of the drop-in on containerd 2.x. Default: conf.d beside the main config. */
  dropInDir?: string;
  registration: RuntimeRegistration;
  /** Prefix for host commands (`nsenter -t 1 -m -u -i -n -p --` in the DaemonSet). */
  hostExec: string[];
  /** containerd's binary as the host (through hostExec) names it. */
  containerdBinary: string;
  /** Restarts containerd so it reads its config again, without killing running shims. */
  restart: () => Promise<void>;
  /** containerd's gRPC socket (CRI). */
  criSocket: string;
  /** How long to wait for containerd to answer after the restart. */
  waitTimeoutMs: number;
  nodeLabel: NodeLabel;
  /** The API server and this node's name; undefined on a plain host (labelling is skipped). */
  kube?: { api: KubeApi; node: string };
  /** Uninstall even while shims of an installed release run (their pods lose the runtime). */
  force?: boolean;
  log: (msg: string) => void;
}

export interface InstallResult {
  configChanged: boolean;
  restarted: boolean;
  containerd: ContainerdVersion;
}

async function containerdVersion(o: InstallerOptions): Promise<ContainerdVersion> {
  const out = await runChecked(o.hostExec, [o.containerdBinary, '--version'], 30_000);
  return parseContainerdVersion(out);
}

function readMainConfig(file: string): { text: string; cfg: ParsedConfig } {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new InstallerError(
      `cannot read containerd config ${file}: ${(e as Error).message}` +
        ((e as NodeJS.ErrnoException).code === 'ENOENT' ? ' (write one with `containerd config default` first)' : ''),
    );
  }
  return { text, cfg: parseConfig(file, text) };
}

function readOptional(file: string): string | null {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new InstallerError(`cannot read ${file}: ${(e as Error).message}`);
  }
}

function newState(o: InstallerOptions, createdInstallDir: boolean): InstallState {
  return {
    formatVersion: 1,
    handler: o.registration.handler,
    runtimeType: o.registration.runtimeType,
    installDir: o.installDir,
    createdInstallDir,
    releases: [],
    current: null,
    configFiles: [],
    addedImport: null,
    createdDirs: [],
    shimLink: null,
    nodeLabel: null,
  };
}

/** Polls CRI Status until `want(handlers)` holds. */
async function waitForHandlers(o: InstallerOptions, what: string, want: (handlers: string[]) => boolean): Promise<void> {
  const deadline = Date.now() + o.waitTimeoutMs;
  let last = 'no answer yet';
  while (Date.now() < deadline) {
    try {
      const st = await criStatus(o.criSocket, 5_000);
      if (st.runtimeReady && want(st.handlers)) return;
      last = `runtime ready: ${st.runtimeReady}, handlers: ${st.handlers.join(', ') || '(none)'}`;
    } catch (e) {
      last = (e as Error).message;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new InstallerError(`containerd on ${o.criSocket} did not ${what} within ${o.waitTimeoutMs} ms (last: ${last})`);
}

export async function install(o: InstallerOptions): Promise<InstallResult> {
  const reg = o.registration;
  // 1. Everything is read and checked before anything is written.
  const version = await containerdVersion(o);
  const { cfg } = readMainConfig(o.configPath);
  checkCompatible(cfg, version);
  o.log(`containerd ${version.raw}, config ${o.configPath} version ${cfg.version}`);
  const manifest = readManifest(o.payloadDir);
  const drop = dropInPath(o.configPath, reg.handler, o.dropInDir);
  const plan = planRegistration(cfg, version, reg, { path: drop, content: readOptional(drop) });

  const prior = readState(o.installDir);
  if (prior && (prior.handler !== reg.handler || prior.runtimeType !== reg.runtimeType)) {
    throw new InstallerError(
      `${statePath(o.installDir)} records handler "${prior.handler}"; uninstall it before installing "${reg.handler}"`,
    );
  }
  const st = prior ?? newState(o, !fs.existsSync(o.installDir));
  fs.mkdirSync(o.installDir, { recursive: true, mode: 0o755 });
  writeState(st);

  // 2. Payload release and `current`.
  const release = releaseDir(o.installDir, manifest);
  if (!st.releases.includes(release)) {
    st.releases.push(release);
    writeState(st);
  }
  if (copyRelease(o.payloadDir, release)) o.log(`payload ${manifest.id.slice(0, 16)} copied to ${release}`);
  const current = path.join(o.installDir, 'current');
  if (readSymlink(current) !== release) {
    st.current = current;
    writeState(st);
    replaceSymlink(current, release);
  }

  // 3. The shim's name on containerd's PATH; never replaces a file that is not our link.
  if (o.shimLinkDir !== null) {
    const link = path.join(o.shimLinkDir, SHIM_BINARY);
    const target = path.join(current, 'bin', SHIM_BINARY);
    const now = readSymlink(link);
    if (now !== target) {
      if (fs.existsSync(link) || now !== undefined) {
        throw new InstallerError(`${link} exists and is not the installer's link to ${target}; remove it or choose another --shim-link-dir`);
      }
      st.shimLink = { path: link, target };
      writeState(st);
      fs.mkdirSync(o.shimLinkDir, { recursive: true });
      replaceSymlink(link, target);
      o.log(`linked ${link} → ${target}`);
    }
  }
  // The shim must start on this host (its node binary needs the host's glibc and libstdc++),
  // by the name containerd will use, and its native library must load.
  const shim = o.shimLinkDir !== null ? path.join(o.shimLinkDir, SHIM_BINARY) : path.join(current, 'bin', SHIM_BINARY);
  const shimVersion = (await runChecked(o.hostExec, [shim, '-v'], 60_000)).trim();
  o.log(`shim runs on this host: ${shimVersion.split('\n')[0]}`);
  o.log((await runChecked(o.hostExec, [path.join(current, 'bin', HOST_CHECK)], 60_000)).trim());

  // 4. containerd's config, with a backup of each file's bytes before the first change.
  for (const edit of plan.edits) {
    const before = readOptional(edit.path);
    if (before === edit.content) continue;
    let rec: ConfigFileRecord | undefined = st.configFiles.find((r) => r.path === edit.path);
    if (!rec) {
      let backup: string | null = null;
      if (before !== null) {
        backup = `${edit.path}.burrow-backup`;
        writeFileAtomic(backup, before, 0o600);
      } else {
        for (let d = path.dirname(edit.path); !fs.existsSync(d); d = path.dirname(d)) st.createdDirs.unshift(d);
      }
      rec = { path: edit.path, backup, writtenSha256: '' };
      st.configFiles.push(rec);
    }
    if (edit.path === o.configPath && plan.mode === 'drop-in') st.addedImport = drop;
    rec.writtenSha256 = sha256(edit.content ?? '');
    writeState(st);
    fs.mkdirSync(path.dirname(edit.path), { recursive: true });
    writeFileAtomic(edit.path, edit.content ?? '');
    o.log(`${rec.backup ? `updated ${edit.path} (backup ${rec.backup})` : `created ${edit.path}`}`);
  }
  const configChanged = plan.edits.length > 0;

  // 5. containerd reads its config only at start.
  let restarted = false;
  if (configChanged) {
    o.log('restarting containerd');
    await o.restart();
    restarted = true;
  } else {
    o.log(`config already registers handler "${reg.handler}"; not restarting containerd`);
  }
  await waitForHandlers(o, `report runtime handler "${reg.handler}"`, (h) => h.includes(reg.handler));
  o.log(`containerd serves runtime handler "${reg.handler}"`);

  // 6. Only now may pods asking for the RuntimeClass be scheduled here.
  if (o.kube) {
    const before = await setNodeLabel(o.kube.api, o.kube.node, o.nodeLabel);
    if (!st.nodeLabel) {
      st.nodeLabel = { node: o.kube.node, key: o.nodeLabel.key, before: before ?? null };
      writeState(st);
    }
    o.log(`node ${o.kube.node} labelled ${o.nodeLabel.key}=${o.nodeLabel.value}`);
  } else {
    o.log('not in a cluster (no service account): node labelling skipped');
  }
  return { configChanged, restarted, containerd: version };
}

export interface UninstallResult {
  configChanged: boolean;
  restarted: boolean;
}

export async function uninstall(o: InstallerOptions): Promise<UninstallResult> {
  const st = readState(o.installDir);
  if (!st) {
    o.log(`no install state in ${o.installDir}: nothing to uninstall`);
    return { configChanged: false, restarted: false };
  }
  // Refuse while pods run on an installed release: their shims would lose their files.
  const users = processesUsing(path.join(o.installDir, 'releases'));
  if (users.length > 0 && !o.force) {
    throw new InstallerError(
      `Burrow shims are running from ${o.installDir} (pids ${users.join(', ')}): delete the pods using ` +
        `RuntimeClass handler "${st.handler}" first, or uninstall with --force`,
    );
  }
  const reg = { ...o.registration, handler: st.handler, runtimeType: st.runtimeType };

  // 1. No new pods for this node.
  if (st.nodeLabel) {
    if (!o.kube) {
      throw new InstallerError(`the install labelled node ${st.nodeLabel.node}; run uninstall where the API server is reachable`);
    }
    await restoreNodeLabel(o.kube.api, st.nodeLabel.node, st.nodeLabel.key, st.nodeLabel.before ?? undefined);
    o.log(`node ${st.nodeLabel.node}: label ${st.nodeLabel.key} restored`);
    st.nodeLabel = null;
    writeState(st);
  }

  // 2. Config files: the backup's bytes when the file is still exactly what we wrote; otherwise
  //    (edited since) only our table and import entry come out.
  let configChanged = false;
  for (const rec of [...st.configFiles].reverse()) {
    const now = readOptional(rec.path);
    if (now !== null && sha256(now) === rec.writtenSha256) {
      if (rec.backup) {
        const original = fs.readFileSync(rec.backup);
        writeFileAtomic(rec.path, original);
        o.log(`restored ${rec.path} from ${rec.backup}`);
      } else {
        fs.rmSync(rec.path);
        o.log(`removed ${rec.path}`);
      }
      configChanged = true;
    } else if (now !== null) {
      const cfg = parseConfig(rec.path, now);
      const edit = planUnregistration(cfg, reg, rec.path === o.configPath ? st.addedImport : null);
      if (edit && edit.content !== null) {
        writeFileAtomic(rec.path, edit.content);
        configChanged = true;
        o.log(`${rec.path} was edited since install: removed only handler "${reg.handler}" from it`);
      }
    }
    if (rec.backup) fs.rmSync(rec.backup, { force: true });
    st.configFiles = st.configFiles.filter((r) => r !== rec);
    writeState(st);
  }
  for (const d of [...st.createdDirs].reverse()) {
    try {
      fs.rmdirSync(d);
    } catch {
      o.log(`kept ${d}: not empty`);
    }
  }
  st.createdDirs = [];
  st.addedImport = null;
  writeState(st);

  // 3. containerd without the handler.
  let restarted = false;
  if (configChanged) {
    o.log('restarting containerd');
    await o.restart();
    restarted = true;
  }
  await waitForHandlers(o, `stop reporting runtime handler "${reg.handler}"`, (h) => !h.includes(reg.handler));
  o.log(`containerd no longer serves runtime handler "${reg.handler}"`);

  // 4. The shim link, if it is still ours; then the releases and the state.
  if (st.shimLink && readSymlink(st.shimLink.path) === st.shimLink.target) {
    fs.rmSync(st.shimLink.path);
    o.log(`removed ${st.shimLink.path}`);
  }
  st.shimLink = null;
  writeState(st);
  for (const r of st.releases) fs.rmSync(r, { recursive: true, force: true });
  if (st.current && readSymlink(st.current) !== undefined) fs.rmSync(st.current);
  const releases = path.join(o.installDir, 'releases');
  try {
    fs.rmdirSync(releases);
  } catch {
    // not ours to remove (not empty) or already gone
  }
  fs.rmSync(statePath(o.installDir));
  if (st.createdInstallDir) {
    try {
      fs.rmdirSync(o.installDir);
    } catch {
      o.log(`kept ${o.installDir}: it holds files the installer did not put there`);
    }
  }
  o.log(`removed the payload from ${o.installDir}`);
  return { configChanged, restarted };
}
