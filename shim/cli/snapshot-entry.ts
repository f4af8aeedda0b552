// The daemon as a V8 startup snapshot: scripts/bundle.js bundles this file and runs
// `node --snapshot-blob dist/shim-daemon.blob --build-snapshot` on it. Building it loads and
// initialises everything `serve` needs (the protobuf descriptors included), so a daemon started
// from the snapshot (`node --snapshot-blob dist/shim-daemon.blob -- <flags> serve`, see
// daemon-command.ts; or `... start-daemon`, see start-in-place.ts) skips compiling and running that code: the largest part of its start-up,
// which every container start waits for.

import * as fs from 'fs';
import { createRequire } from 'module';
import * as path from 'path';
import * as v8 from 'v8';
import { setPackageRoot } from '../package-root';
import * as protobuf from 'protobufjs';
import { lookupService, protoRoot } from '../protocol/proto-registry';
import { parseFlags, ShimFlags, UsageError } from './flags';
import { setAddonLoader } from './lazy-addon';
import { serve } from './serve';
import { START_DAEMON, startInPlace } from './start-in-place';

lookupService('containerd.task.v2.Task');
// protobufjs generates each type's encoder and decoder on first use (~20 ms for what a Create
// touches): generated here, they are part of the snapshot.
(function setupTypes(ns: protobuf.NamespaceBase): void {
  for (const nested of ns.nestedArray) {
    if (nested instanceof protobuf.Type) nested.setup();
    if (nested instanceof protobuf.Namespace) setupTypes(nested);
  }
})(protoRoot());

v8.startupSnapshot.setDeserializeMainFunction(() => {
  // The snapshot remembers the tree it was built in; the blob says where this one is.
  const i = process.execArgv.indexOf('--snapshot-blob');
  const blob = path.resolve(process.execArgv[i + 1] ?? '');
  const root = path.dirname(path.dirname(blob));
  setPackageRoot(root);
  setAddonLoader(createRequire(path.join(root, 'package.json')));
  // Run by the wrapper for `start` (as start-daemon), this process cannot tell its exit status by exiting (the
  // wrapper does not wait for it): a failure also prints `exit:<status>` where the address would be.
  const exit = (code: number): never => {
    try {
      fs.writeSync(1, `exit:${code}`);
    } catch {
      // stdout is gone: nobody to tell
    }
    process.exit(code);
  };
  let flags: ShimFlags;
  try {
    flags = parseFlags(process.argv.slice(1));
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    return exit(err instanceof UsageError ? 2 : 1);
  }
  let running: Promise<number>;
  if (flags.action === 'serve') running = serve(flags).then(() => -1);
  else if (flags.action === START_DAEMON) running = startInPlace(flags);
  else {
    process.stderr.write(`the daemon snapshot runs \`${START_DAEMON}\` and \`serve\`, not ${JSON.stringify(flags.action)}\n`);
    return exit(2);
  }
  running.then(
    (code) => {
      if (code > 0) exit(code);
      if (code === 0) process.exit(0);
    },
    (err: Error) => {
      process.stderr.write(`${err.message}\n`);
      exit(1);
    },
  );
});
