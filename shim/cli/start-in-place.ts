// `start` and the daemon in one Node process, started from the daemon's snapshot by
// bin/containerd-shim-burrow-v2: it listens, prints the address, lets go of containerd's
// stdout and stderr (so containerd's `start` returns once the wrapper exits) and goes on as the
// daemon. A container start then waits for one Node start instead of two (`start`, then the
// daemon it spawns).

import * as fs from 'fs';
import * as path from 'path';
import type { ShimFlags } from './flags';
import { serve } from './serve';
import { announce, listenOrJoin, oomScoreAboveContainerd, planStart, recordAddress } from './start';

/**
 * The action word the wrapper gives it instead of `start`: `ps` shows a daemon for what it is,
 * and Go's flag package, like parseFlags, takes the first word as the action.
 */
export const START_DAEMON = 'start-daemon';

/**
 * Makes `fd` refer to the first of `files` that opens (Node has no dup2: the lowest free
 * descriptor is the one just closed).
 */
function reopen(fd: number, files: readonly [string, number][]): void {
  fs.closeSync(fd);
  let failure: unknown;
  for (const [file, flags] of files) {
    let got: number;
    try {
      got = fs.openSync(file, flags);
    } catch (err) {
      failure = err;
      continue;
    }
    if (got === fd) return;
    fs.closeSync(got);
    throw new Error(`reopening fd ${fd} as ${JSON.stringify(file)} gave fd ${got}`);
  }
  throw failure;
}

/** Returns the exit status, or -1 once it runs as the daemon. */
export async function startInPlace(flags: ShimFlags): Promise<number> {
  // As start.ts: containerd's stdin read to EOF (runtime options, BootstrapParams), the
  // transport and the start output decided before listening.
  const plan = planStart(flags);
  if (typeof plan === 'number') return plan;
  const { bundle, sock, protocol } = plan;
  const server = await listenOrJoin(sock);
  if (!server) {
    // The group's daemon runs already: this process was only `start`.
    announce(plan);
    return 0;
  }
  try {
    fs.chmodSync(sock, 0o600);
    // This process inherited containerd's value through the wrapper (its parent is gone by now).
    oomScoreAboveContainerd('self', 'self');
    recordAddress(plan);
  } catch (err) {
    server.close();
    fs.rmSync(sock, { force: true });
    throw err;
  }
  fs.writeSync(1, plan.output);
  const devNull: [string, number] = ['/dev/null', fs.constants.O_WRONLY];
  reopen(1, [devNull]);
  // Read to EOF already; the daemon keeps nothing of containerd's.
  reopen(0, [['/dev/null', fs.constants.O_RDONLY]]);
  // The daemon logs to the bundle's log FIFO, which containerd holds open for reading; without
  // a reader (not run by containerd) it runs without a log.
  reopen(2, [[path.join(bundle, 'log'), fs.constants.O_WRONLY | fs.constants.O_NONBLOCK], devNull]);
  await serve({ ...flags, socket: sock, protocol, action: 'serve' }, server);
  return -1;
}
