// Shared fixtures of the sandbox, service and cli tests: containerd's default OCI spec, temp
// bundles, and fd counting for leak checks.

import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { packageRoot } from '../../shim/package-root';
import type { OciSpec } from '../../shim/sandbox/oci-spec';

const FIXTURE = path.join(packageRoot(), 'e2e', 'fixtures', 'runc-default-config.json');

/** A fresh copy of the config.json containerd generates by default (`ctr run`, runc shim). */
export function defaultSpec(): OciSpec {
  return JSON.parse(fs.readFileSync(FIXTURE, 'utf8')) as OciSpec;
}

export function makeTempDir(prefix = 'burrow-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export function removeTempDir(dir: string | undefined): void {
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
}

export interface Bundle {
  bundle: string;
  /** Where root.path points: an existing directory. */
  rootfs: string;
  spec: OciSpec;
}

/**
 * `<parent>/<name>` with a config.json from the default spec (changed by `mutate`), and
 * root.path pointing at an existing directory `<parent>/<name>/rootfs`.
 */
export function makeBundle(parent: string, name = 'bundle', mutate?: (spec: OciSpec) => void): Bundle {
  const bundle = path.join(parent, name);
  const rootfs = path.join(bundle, 'rootfs');
  fs.mkdirSync(rootfs, { recursive: true });
  const spec = defaultSpec();
  spec.root = { path: rootfs };
  mutate?.(spec);
  fs.writeFileSync(path.join(bundle, 'config.json'), JSON.stringify(spec, null, 2));
  return { bundle, rootfs, spec };
}

/** Number of fds this process has open right now. */
export function openFdCount(): number {
  return fs.readdirSync('/proc/self/fd').length;
}

/** Resolves after pending immediates and promise jobs have run `rounds` times. */
export async function settle(rounds = 5): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise((r) => setImmediate(r));
}

/** Polls `cond` until it holds, failing with `what` after `timeoutMs`. */
export async function waitUntil(cond: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
