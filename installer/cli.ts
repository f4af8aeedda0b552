// burrow-installer: install | uninstall | daemon | coordinate-uninstall.
//
//   install / uninstall        one run, for a plain host (exit 0 on success, 1 with the reason)
//   daemon                     the DaemonSet's container: runs $BURROW_MODE (install or
//                              uninstall), then marks itself ready and sleeps until SIGTERM
//   coordinate-uninstall       the chart's pre-delete hook (see coordinate.ts)
import * as fs from 'fs';
import * as path from 'path';
import { DEFAULT_REGISTRATION, RuntimeRegistration } from './containerd-config';
import { coordinateUninstall } from './coordinate';
import { InstallerError } from './errors';
import { InstallerOptions, install, uninstall } from './install';
import { SERVICE_ACCOUNT_DIR, inClusterApi } from './kube-api';
import { parseNodeLabel } from './node-label';
import { MANIFEST } from './payload';
import { RestartMethod, restarter } from './restart';

const USAGE = `usage: burrow-installer install|uninstall|daemon|coordinate-uninstall [options]
  --payload DIR              payload to install (default: the payload this installer runs from)
  --install-dir DIR          host dir for the payload (default /opt/burrow)
  --shim-link-dir DIR        dir on containerd's PATH for the shim link (default /usr/local/bin)
  --no-shim-link             do not link the shim (containerd's PATH already has <install-dir>/current/bin)
  --config FILE              containerd config (default /etc/containerd/config.toml)
  --drop-in-dir DIR          drop-in dir on containerd 2.x (default conf.d beside --config)
  --handler NAME             RuntimeClass handler (default burrow)
  --pod-annotations LIST     comma-separated pod annotation globs passed to the shim (default *)
  --container-annotations LIST  the same for container annotations (default *)
  --host-exec "CMD ARGS"     prefix for host commands, e.g. "nsenter -t 1 -m -u -i -n -p --"
  --containerd BIN           containerd binary on the host (default containerd)
  --restart systemd|command  how to restart containerd (default systemd)
  --systemd-unit NAME        (default containerd)
  --restart-command "CMD"    the command for --restart command
  --cri-socket PATH          containerd's socket (default /run/containerd/containerd.sock)
  --wait-timeout SECONDS     for containerd to answer after a restart (default 120)
  --node-label KEY=VALUE     label set on the node once installed (default burrow.dev/runtime=installed)
  --node-name NAME           this node (default $NODE_NAME, from the downward API)
  --force                    uninstall even while Burrow shims run
  --ready-file FILE          daemon: touched once the step is done (default /tmp/burrow-ready)
  --namespace NS --daemonset NAME --timeout SECONDS   coordinate-uninstall`;

const VALUED = new Set([
  'payload', 'install-dir', 'shim-link-dir', 'config', 'drop-in-dir', 'handler', 'pod-annotations',
  'container-annotations', 'host-exec', 'containerd', 'restart', 'systemd-unit', 'restart-command', 'cri-socket',
  'wait-timeout', 'node-label', 'node-name', 'ready-file', 'namespace', 'daemonset', 'timeout',
]);
const FLAGS = new Set(['no-shim-link', 'force', 'help']);

export interface ParsedArgs {
  command: string;
  values: Map<string, string>;
  flags: Set<string>;
}

export function parseArgs(argv: readonly string[]): ParsedArgs {
  const values = new Map<string, string>();
  const flags = new Set<string>();
  let command = '';
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) {
      if (command) throw new InstallerError(`unexpected argument ${JSON.stringify(a)}\n${USAGE}`);
      command = a;
      continue;
    }
    const eq = a.indexOf('=');
    const name = a.slice(2, eq < 0 ? undefined : eq);
    if (FLAGS.has(name) && eq < 0) flags.add(name);
    else if (VALUED.has(name)) {
      const v = eq < 0 ? argv[++i] : a.slice(eq + 1);
      if (v === undefined) throw new InstallerError(`--${name} needs a value`);
      values.set(name, v);
    } else throw new InstallerError(`unknown option ${a}\n${USAGE}`);
  }
  return { command, values, flags };
}

function words(s: string): string[] {
  return s.split(/\s+/).filter((w) => w !== '');
}

function list(s: string): string[] {
  return s.split(',').map((x) => x.trim()).filter((x) => x !== '');
}

/** The payload dir this installer was copied into (dist/installer/cli.js → payload root), if it is one. */
function ownPayload(): string | undefined {
  const root = path.resolve(__dirname, '..', '..');
  return fs.existsSync(path.join(root, MANIFEST)) ? root : undefined;
}

function seconds(name: string, v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new InstallerError(`--${name} must be a positive number of seconds, not ${JSON.stringify(v)}`);
  return n * 1000;
}

export function installerOptions(a: ParsedArgs, env: NodeJS.ProcessEnv, log: (m: string) => void): InstallerOptions {
  const v = (k: string, d: string): string => a.values.get(k) ?? d;
  const payloadDir = a.values.get('payload') ?? ownPayload();
  if (!payloadDir) throw new InstallerError('--payload is required (this installer does not run from a payload)');
  const handler = v('handler', DEFAULT_REGISTRATION.handler);
  if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(handler) || handler.length > 63) {
    throw new InstallerError(`--handler ${JSON.stringify(handler)} is not a valid RuntimeClass handler (DNS label)`);
  }
  const registration: RuntimeRegistration = {
    handler,
    runtimeType: DEFAULT_REGISTRATION.runtimeType,
    podAnnotations: list(v('pod-annotations', DEFAULT_REGISTRATION.podAnnotations.join(','))),
    containerAnnotations: list(v('container-annotations', DEFAULT_REGISTRATION.containerAnnotations.join(','))),
  };
  const hostExec = words(v('host-exec', ''));
  let method: RestartMethod;
  switch (v('restart', 'systemd')) {
    case 'systemd':
      method = { kind: 'systemd', unit: v('systemd-unit', 'containerd') };
      break;
    case 'command': {
      const argv = words(v('restart-command', ''));
      if (argv.length === 0) throw new InstallerError('--restart command needs --restart-command');
      method = { kind: 'command', argv };
      break;
    }
    default:
      throw new InstallerError(`--restart must be systemd or command, not ${JSON.stringify(a.values.get('restart'))}`);
  }
  const api = inClusterApi(env);
  const node = a.values.get('node-name') ?? env.NODE_NAME;
  if (api && !node) throw new InstallerError('in a cluster the node name is needed: set NODE_NAME (downward API) or --node-name');
  const paths = ['payload', 'install-dir', 'shim-link-dir', 'config', 'drop-in-dir'];
  for (const p of paths) {
    const val = a.values.get(p);
    if (val !== undefined && !path.isAbsolute(val)) throw new InstallerError(`--${p} must be an absolute path, not ${val}`);
  }
  return {
    payloadDir: path.resolve(payloadDir),
    installDir: v('install-dir', '/opt/burrow'),
    shimLinkDir: a.flags.has('no-shim-link') ? null : v('shim-link-dir', '/usr/local/bin'),
    configPath: v('config', '/etc/containerd/config.toml'),
    dropInDir: a.values.get('drop-in-dir'),
    registration,
    hostExec,
    containerdBinary: v('containerd', 'containerd'),
    restart: restarter(method, hostExec, log),
    criSocket: v('cri-socket', '/run/containerd/containerd.sock'),
    waitTimeoutMs: seconds('wait-timeout', v('wait-timeout', '120')),
    nodeLabel: parseNodeLabel(v('node-label', 'burrow.dev/runtime=installed')),
    kube: api && node ? { api, node } : undefined,
    force: a.flags.has('force'),
    log,
  };
}

function log(msg: string): void {
  process.stdout.write(`${new Date().toISOString()} burrow-installer: ${msg}\n`);
}

/** daemon: the step, then ready until SIGTERM (the DaemonSet's pod must keep running). */
async function daemon(a: ParsedArgs): Promise<number> {
  const mode = process.env.BURROW_MODE ?? 'install';
  if (mode !== 'install' && mode !== 'uninstall') throw new InstallerError(`BURROW_MODE must be install or uninstall, not ${mode}`);
  const readyFile = a.values.get('ready-file') ?? '/tmp/burrow-ready';
  fs.rmSync(readyFile, { force: true });
  const o = installerOptions(a, process.env, log);
  if (mode === 'install') await install(o);
  else await uninstall(o);
  fs.writeFileSync(readyFile, `${mode}\n`);
  log(`${mode} done; waiting for SIGTERM`);
  await new Promise<void>((resolve) => {
    process.once('SIGTERM', resolve);
    process.once('SIGINT', resolve);
  });
  return 0;
}

export async function main(argv: readonly string[]): Promise<number> {
  const a = parseArgs(argv);
  if (a.flags.has('help') || a.command === '') {
    process.stdout.write(`${USAGE}\n`);
    return a.flags.has('help') ? 0 : 2;
  }
  switch (a.command) {
    case 'install': {
      const r = await install(installerOptions(a, process.env, log));
      log(`installed (containerd ${r.containerd.raw}; config ${r.configChanged ? 'changed' : 'unchanged'})`);
      return 0;
    }
    case 'uninstall':
      await uninstall(installerOptions(a, process.env, log));
      log('uninstalled');
      return 0;
    case 'daemon':
      return daemon(a);
    case 'coordinate-uninstall': {
      const api = inClusterApi(process.env);
      if (!api) throw new InstallerError('coordinate-uninstall runs in a cluster (no service account token found)');
      let ns = a.values.get('namespace');
      if (!ns) ns = fs.readFileSync(path.join(SERVICE_ACCOUNT_DIR, 'namespace'), 'utf8').trim();
      const ds = a.values.get('daemonset');
      if (!ds) throw new InstallerError('coordinate-uninstall needs --daemonset');
      await coordinateUninstall(api, ns, ds, seconds('timeout', a.values.get('timeout') ?? '600'), log);
      return 0;
    }
    default:
      throw new InstallerError(`unknown command ${JSON.stringify(a.command)}\n${USAGE}`);
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: Error) => {
      process.stderr.write(`burrow-installer: error: ${err instanceof InstallerError ? err.message : err.stack ?? err.message}\n`);
      process.exit(1);
    },
  );
}
