// The shim payload on the host: <installDir>/releases/<id>/ (a copy of the payload dir, which
// carries its own node binary), <installDir>/current → that release, and the shim's name on
// containerd's PATH as a symlink to <installDir>/current/bin/containerd-shim-burrow-v2.
// Releases are never changed in place: a running shim keeps reading the files of the release it
// started from while a newer one is installed.
import * as fs from 'fs';
import * as path from 'path';
import { InstallerError } from './errors';

export const SHIM_BINARY = 'containerd-shim-burrow-v2';
/** bin/ of a payload: loads the native library as the shim does (host-check.ts). */
export const HOST_CHECK = 'burrow-host-check';
export const MANIFEST = 'manifest.json';

/** manifest.json at the payload's root, written by build-payload.ts. */
export interface PayloadManifest {
  /** sha256 over every file's path and content: the release dir name. */
  id: string;
  burrowVersion: string;
  nodeVersion: string;
  arch: string;
  files: Record<string, string>;
}

export function readManifest(payloadDir: string): PayloadManifest {
  const file = path.join(payloadDir, MANIFEST);
  let m: PayloadManifest;
  try {
    m = JSON.parse(fs.readFileSync(file, 'utf8')) as PayloadManifest;
  } catch (e) {
    throw new InstallerError(`payload ${payloadDir} has no readable ${MANIFEST} (${(e as Error).message}); build it with \`npm run payload\``);
  }
  if (!/^[0-9a-f]{64}$/.test(m.id) || typeof m.files !== 'object') {
    throw new InstallerError(`payload manifest ${file} is malformed`);
  }
  return m;
}

/** The release dir of a manifest under installDir. */
export function releaseDir(installDir: string, m: PayloadManifest): string {
  return path.join(installDir, 'releases', m.id.slice(0, 16));
}

/**
 * Copies the payload into its release dir unless a complete copy is there already (the
 * manifest is copied last, so its presence means the copy finished). Returns whether it copied.
 */
export function copyRelease(payloadDir: string, dest: string): boolean {
  if (fs.existsSync(path.join(dest, MANIFEST))) return false;
  const tmp = `${dest}.partial`;
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.mkdirSync(path.dirname(dest), { recursive: true, mode: 0o755 });
  try {
    // Timestamps matter: the shim uses dist/protos.json only while it is newer than protos/.
    fs.cpSync(payloadDir, tmp, {
      recursive: true,
      preserveTimestamps: true,
      verbatimSymlinks: true,
      filter: (src) => path.relative(payloadDir, src) !== MANIFEST,
    });
    fs.copyFileSync(path.join(payloadDir, MANIFEST), path.join(tmp, MANIFEST));
    fs.rmSync(dest, { recursive: true, force: true });
    fs.renameSync(tmp, dest);
  } catch (e) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw new InstallerError(`cannot copy payload ${payloadDir} to ${dest}: ${(e as Error).message}`);
  }
  return true;
}

/** Points `link` at `target` atomically (symlink beside it, then rename). */
export function replaceSymlink(link: string, target: string): void {
  const tmp = path.join(path.dirname(link), `.${path.basename(link)}.burrow-${process.pid}`);
  fs.rmSync(tmp, { force: true });
  fs.symlinkSync(target, tmp);
  fs.renameSync(tmp, link);
}

/** Where `link` points, or undefined when it is not a symlink (or absent). */
export function readSymlink(link: string): string | undefined {
  try {
    return fs.readlinkSync(link);
  } catch {
    return undefined;
  }
}

/**
 * Pids of live processes running a file under `dir` (shims started from an installed release):
 * uninstall must not pull the files from under them. Reads /proc, so in the DaemonSet it needs
 * the host's pid namespace.
 */
export function processesUsing(dir: string): number[] {
  const out: number[] = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const exe = fs.readlinkSync(`/proc/${name}/exe`).replace(/ \(deleted\)$/, '');
      if (exe === dir || exe.startsWith(`${dir}/`)) out.push(Number(name));
    } catch {
      // gone, or a kernel thread
    }
  }
  return out;
}
