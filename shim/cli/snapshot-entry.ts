// The daemon as a V8 startup snapshot: scripts/bundle.js bundles this file and runs
// `node --snapshot-blob dist/shim-daemon.blob --build-snapshot` on it. Building it loads and
// initialises everything `serve` needs (the protobuf descriptors included), so a daemon started
// from the snapshot (`node --snapshot-blob dist/shim-daemon.blob -- <flags> serve`, see
// daemon-command.ts) skips compiling and running that code: the largest part of its start-up,
// which every container start waits for.

import { createRequire } from 'module';
import * as path from 'path';
import * as v8 from 'v8';
import { setPackageRoot } from '../package-root';
import { lookupService } from '../protocol/proto-registry';
import { parseFlags } from './flags';
import { setAddonLoader } from './lazy-addon';
import { serve } from './serve';

lookupService('containerd.task.v2.Task');

v8.startupSnapshot.setDeserializeMainFunction(() => {
  // The snapshot remembers the tree it was built in; the blob says where this one is.
  const i = process.execArgv.indexOf('--snapshot-blob');
  const blob = path.resolve(process.execArgv[i + 1] ?? '');
  const root = path.dirname(path.dirname(blob));
  setPackageRoot(root);
  setAddonLoader(createRequire(path.join(root, 'package.json')));
  const flags = parseFlags(process.argv.slice(1));
  if (flags.action !== 'serve') {
    process.stderr.write(`the daemon snapshot only runs \`serve\`, not ${JSON.stringify(flags.action)}\n`);
    process.exit(2);
  }
  serve(flags).catch((err: Error) => {
    process.stderr.write(`${err.stack ?? err.message}\n`);
    process.exit(1);
  });
});
