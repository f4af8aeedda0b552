// Entry point of containerd-shim-burrow-v2. Each action is loaded lazily so that `start` and
// `delete` — run by containerd on every container start and removal — import only what they use.

import { parseFlags, ShimFlags, UsageError } from './flags';

export const RUNTIME_TYPE = 'io.containerd.burrow.v2';

async function main(argv: string[]): Promise<number> {
  let flags: ShimFlags;
  try {
    flags = parseFlags(argv);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`${err.message}\n`);
    return 2;
  }
  if (flags.version) {
    (await import('./version')).printVersion();
    return 0;
  }
  switch (flags.action) {
    case 'start':
      return (await import('./start')).start(flags);
    case 'delete':
      return (await import('./delete')).deleteHelper(flags);
    case 'serve':
      await (await import('./serve')).serve(flags);
      return -1;
    default:
      process.stderr.write(
        `usage: containerd-shim-burrow-v2 -namespace NS -address ADDR -publish-binary BIN -id ID [-debug] start|delete\n` +
          `       containerd-shim-burrow-v2 -v\n`,
      );
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    // The daemon keeps running; the helpers exit with their status.
    if (code >= 0) process.exit(code);
  },
  (err: Error) => {
    process.stderr.write(`${err.message}\n`);
    process.exit(1);
  },
);
