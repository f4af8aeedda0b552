// What an install added to the host, recorded in <installDir>/install-state.json before each
// step takes effect, so that uninstall (even after a failed or repeated install) reverses
// exactly those steps and nothing else.
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { InstallerError } from './errors';

export const STATE_FILE = 'install-state.json';

/** A config file the installer changed. */
export interface ConfigFileRecord {
  path: string;
  /** Copy of the bytes before the first install touched it; null when the installer created the file. */
  backup: string | null;
  /** sha256 of the bytes the installer last wrote. */
  writtenSha256: string;
}

export interface InstallState {
  formatVersion: 1;
  handler: string;
  runtimeType: string;
  installDir: string;
  /** The install dir did not exist before. */
  createdInstallDir: boolean;
  /** Payload release dirs (under installDir/releases) the installer copied. */
  releases: string[];
  current: string | null;
  configFiles: ConfigFileRecord[];
  /** The `imports` entry added to the main config (containerd 2.x), if any. */
  addedImport: string | null;
  /** Dirs the installer created for the drop-in, deepest last. */
  createdDirs: string[];
  shimLink: { path: string; target: string } | null;
  nodeLabel: { node: string; key: string; before: string | null } | null;
}

export function sha256(data: string | Buffer): string {
  return crypto.createHash('sha256').update(data).digest('hex');
}

export function statePath(installDir: string): string {
  return path.join(installDir, STATE_FILE);
}

export function readState(installDir: string): InstallState | undefined {
  const file = statePath(installDir);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  try {
    const st = JSON.parse(text) as InstallState;
    if (st.formatVersion !== 1) throw new Error(`formatVersion ${String(st.formatVersion)}`);
    return st;
  } catch (e) {
    throw new InstallerError(`install state ${file} is unreadable (${(e as Error).message}); not touching anything`);
  }
}

/** Written with rename, so a crash never leaves half a state file. */
export function writeState(st: InstallState): void {
  writeFileAtomic(statePath(st.installDir), `${JSON.stringify(st, null, 2)}\n`, 0o600);
}

/** Replaces `file` through a temp file and rename in the same dir; keeps the old file's mode. */
export function writeFileAtomic(file: string, content: string | Buffer, defaultMode = 0o644): void {
  let mode = defaultMode;
  try {
    mode = fs.statSync(file).mode & 0o7777;
  } catch {
    // new file
  }
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.burrow-${process.pid}.tmp`);
  try {
    fs.writeFileSync(tmp, content, { mode });
    fs.chmodSync(tmp, mode);
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw new InstallerError(`cannot write ${file}: ${(e as Error).message}`);
  }
}
