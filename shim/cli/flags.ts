// The shim's command line, as containerd writes it (Go flag syntax: -flag value, flags before
// the action word). Also accepts --flag and -flag=value. Kept free of heavy imports: `start`
// and `delete` run on every container start and removal.

export interface ShimFlags {
  namespace: string;
  id: string;
  /** containerd's gRPC socket (`-address`). */
  address: string;
  publishBinary: string;
  bundle: string;
  /** Daemon only: the socket path the `start` helper listened on (fd 3). */
  socket: string;
  /** Daemon only: the transport `start` chose from the runtime options ('' = ttrpc). */
  protocol: string;
  debug: boolean;
  version: boolean;
  info: boolean;
  action: string;
}

const STRING_FLAGS: Record<string, keyof ShimFlags> = {
  namespace: 'namespace',
  id: 'id',
  address: 'address',
  'publish-binary': 'publishBinary',
  bundle: 'bundle',
  socket: 'socket',
  protocol: 'protocol',
};

const BOOL_FLAGS: Record<string, keyof ShimFlags> = {
  debug: 'debug',
  v: 'version',
  version: 'version',
  info: 'info',
};

export class UsageError extends Error {}

export function parseFlags(argv: readonly string[]): ShimFlags {
  const f: ShimFlags = {
    namespace: '',
    id: '',
    address: '',
    publishBinary: '',
    bundle: '',
    socket: '',
    protocol: '',
    debug: false,
    version: false,
    info: false,
    action: '',
  };
  const rec = f as unknown as Record<string, string | boolean>;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith('-') || arg === '-' || arg === '--') {
      f.action = arg === '--' ? argv[i + 1] ?? '' : arg;
      break;
    }
    const body = arg.replace(/^--?/, '');
    const eq = body.indexOf('=');
    const name = eq >= 0 ? body.slice(0, eq) : body;
    if (name in BOOL_FLAGS) {
      rec[BOOL_FLAGS[name]] = eq >= 0 ? body.slice(eq + 1) !== 'false' : true;
      continue;
    }
    const key = STRING_FLAGS[name];
    if (!key) throw new UsageError(`flag provided but not defined: -${name}`);
    if (eq >= 0) {
      rec[key] = body.slice(eq + 1);
    } else {
      if (i + 1 >= argv.length) throw new UsageError(`flag needs an argument: -${name}`);
      rec[key] = argv[++i];
    }
  }
  return f;
}

/** The flags again, as argv, for the daemon the `start` helper launches. */
export function daemonArgs(f: ShimFlags, socket: string, protocol = 'ttrpc'): string[] {
  const args = ['-namespace', f.namespace, '-id', f.id, '-address', f.address, '-socket', socket];
  if (protocol !== 'ttrpc') args.push('-protocol', protocol);
  if (f.publishBinary) args.push('-publish-binary', f.publishBinary);
  if (f.debug) args.push('-debug');
  args.push('serve');
  return args;
}
