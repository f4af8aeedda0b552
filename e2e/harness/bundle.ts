// OCI bundles for suites that hand the shim (or ctr --config) a spec of their own: containerd's
// default spec over a busybox root filesystem built on the host.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { findBusybox, populateRootfs } from './image';
import { repoRoot } from './paths';

/**
 * The config.json containerd generates by default for `ctr run` (captured from the runc
 * shim), with root.path set to `rootfs` and no terminal; a fresh copy on every call.
 */
export function defaultSpec(rootfs: string): Record<string, any> {
  const spec = JSON.parse(fs.readFileSync(path.join(repoRoot(), 'e2e/fixtures/runc-default-config.json'), 'utf8'));
  spec.root = { path: rootfs };
  spec.process.terminal = false;
  return spec;
}

/** `dir` emptied and made again, with a busybox root filesystem at `<dir>/rootfs`; returns that path. */
export async function freshBusyboxRootfs(dir: string): Promise<string> {
  fs.rmSync(dir, { recursive: true, force: true });
  const rootfs = path.join(dir, 'rootfs');
  fs.mkdirSync(rootfs, { recursive: true });
  await populateRootfs(rootfs, findBusybox());
  return rootfs;
}
