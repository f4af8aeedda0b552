// How `start` runs the daemon, fastest form first: from the V8 startup snapshot
// (dist/shim-daemon.blob), from the one-file bundle (dist/shim.bundle.js), or from the compiled
// modules this process was started from. Built by scripts/bundle.js; each is used only when
// present, and the snapshot only with the Node binary that built it (another one may refuse to
// start from it, and by then `start` has exited).

import * as fs from 'fs';
import * as path from 'path';
import { packageRoot } from '../package-root';

export type DaemonForm = 'snapshot' | 'bundle' | 'modules';

export interface DaemonCommand {
  form: DaemonForm;
  /** Arguments to Node before the daemon's own flags. */
  nodeArgs: string[];
}

export const SNAPSHOT_FILE = 'shim-daemon.blob';
export const BUNDLE_FILE = 'shim.bundle.js';

/**
 * The snapshot only loads into the very Node binary that built it (the same version of another
 * build can refuse it): `<blob>.node` holds that binary's size and mtime, as the wrapper checks them.
 */
function snapshotUsable(blob: string, node = process.execPath): boolean {
  try {
    const built = fs.readFileSync(`${blob}.node`, 'utf8').trim();
    const st = fs.statSync(node);
    return built === `${st.size}:${Math.floor(st.mtimeMs / 1000)}` && fs.existsSync(blob);
  } catch {
    return false;
  }
}

/**
 * `BURROW_DAEMON_FORM` (snapshot, bundle or modules) picks one form, for measuring each; a
 * form that is not there falls back to the modules.
 */
export function daemonCommand(
  mainScript: string,
  execArgv: readonly string[] = process.execArgv,
  node: string = process.execPath,
): DaemonCommand {
  const want = process.env.BURROW_DAEMON_FORM as DaemonForm | undefined;
  const dist = path.join(packageRoot(), 'dist');
  const blob = path.join(dist, SNAPSHOT_FILE);
  // Node options would have to match the ones the snapshot was built with.
  if ((!want || want === 'snapshot') && execArgv.length === 0 && snapshotUsable(blob, node)) {
    return { form: 'snapshot', nodeArgs: ['--snapshot-blob', blob, '--'] };
  }
  const bundle = path.join(dist, BUNDLE_FILE);
  if ((!want || want === 'bundle') && fs.existsSync(bundle)) {
    return { form: 'bundle', nodeArgs: [...execArgv, bundle] };
  }
  return { form: 'modules', nodeArgs: [...execArgv, mainScript] };
}
