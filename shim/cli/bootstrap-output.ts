// What `start` prints. ttrpc: the bare `unix://` address, which every containerd from 1.6 on
// reads as "ttrpc, Task API v2". gRPC: the bootstrap JSON, which only 1.7+ understand, with the
// version each generation insists on for a gRPC shim — 1.7 refuses anything above 2, 2.x's
// task client speaks gRPC only as containerd.task.v3.Task (version 3). containerd dials a gRPC
// shim with net.Dial("unix", address), so its address is the plain socket path, no scheme
// (core/runtime/v2/shim.go grpcDialContext, sandbox-api.md §4).

import { execFileSync } from 'child_process';
import * as path from 'path';
import type { ShimProtocol, StartInput } from './start-options';

export class BootstrapError extends Error {}

export interface ContainerdVersion {
  major: number;
  minor: number;
  text: string;
}

export function parseContainerdVersion(text: string): ContainerdVersion | undefined {
  const m = /(?:^|\s)v?(\d+)\.(\d+)\.\d+/.exec(text);
  return m ? { major: Number(m[1]), minor: Number(m[2]), text: `${m[1]}.${m[2]}` } : undefined;
}

/**
 * Which containerd runs us. 2.3+ say it in BootstrapParams; older ones only give the path of
 * their binary (-publish-binary), which answers `--version`. Only asked in gRPC mode, so the
 * default ttrpc start pays nothing for it.
 */
export function detectContainerd(input: StartInput, publishBinary: string): ContainerdVersion | undefined {
  if (input.bootstrap?.containerdVersion) return parseContainerdVersion(input.bootstrap.containerdVersion);
  if (!publishBinary) return undefined;
  let out: string;
  try {
    out = execFileSync(publishBinary, ['--version'], { encoding: 'utf8', timeout: 5000, stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    throw new BootstrapError(`gRPC mode: cannot tell the containerd version from ${publishBinary} --version: ${(err as Error).message}`);
  }
  const v = parseContainerdVersion(out);
  if (!v) throw new BootstrapError(`gRPC mode: no version in the output of ${publishBinary} --version: ${out.trim()}`);
  return v;
}

/**
 * The Task API version to announce for a gRPC shim under `containerd` (undefined: not run by
 * containerd, e.g. a test driving the shim directly).
 *
 * containerd 2.0 to 2.3 accept the announcement but cannot keep a gRPC shim: grpcDialContext
 * (core/runtime/v2/shim.go) creates the channel with grpc.NewClient, which starts IDLE, then
 * waits for a change away from READY and treats IDLE as "shim gone" — so the dead-shim cleanup
 * (the `delete` helper, bundle removal, the task dropped from containerd's list) fires the
 * moment the connection is made, before Create. Seen on 2.1.9: "connecting to shim" and "shim
 * disconnected" in the same millisecond. Refusing here gives the user the reason instead.
 */
export function grpcShimVersion(containerd: ContainerdVersion | undefined): number {
  if (containerd === undefined) return 3;
  if (containerd.major === 1 && containerd.minor >= 7) return 2;
  if (containerd.major === 2 && containerd.minor <= 3) {
    throw new BootstrapError(
      `gRPC mode does not work with containerd ${containerd.text}: containerd 2.0-2.3 run their dead-shim cleanup as soon as they connect to a gRPC shim (grpc.NewClient starts IDLE, which core/runtime/v2/shim.go reads as disconnected); use ttrpc (remove Protocol = "grpc" from Burrow's runtime options) or containerd 1.7`,
    );
  }
  if (containerd.major >= 2) return 3;
  throw new BootstrapError(
    `gRPC mode needs containerd 1.7 or newer (this is containerd ${containerd.text}, which dials shims over ttrpc only): remove Protocol = "grpc" from Burrow's runtime options`,
  );
}

/**
 * containerd 2.x's shim sandboxer keeps the bundles of the sandboxes it starts under this
 * plugin's state dir (`<state>/io.containerd.sandbox.controller.v1.shim/<ns>/<id>`); only 2.x
 * has it, so a `start` there may announce version 3 over ttrpc.
 */
export const SHIM_SANDBOXER_STATE = 'io.containerd.sandbox.controller.v1.shim';

export function isShimSandboxBundle(bundle: string): boolean {
  return path.basename(path.dirname(path.dirname(bundle))) === SHIM_SANDBOXER_STATE;
}

/**
 * ttrpc, version 2: the bare address. ttrpc, version 3 (a pod sandbox under 2.x's shim
 * sandboxer): the JSON, so that containerd attaches the pod's containers to this shim over
 * containerd.task.v3.Task without running `start`/`delete` for each, and sends them no Shutdown
 * (sandbox-api.md §3.3). gRPC: the JSON with the plain path.
 */
export function startOutput(protocol: ShimProtocol, socket: string, version: number): string {
  if (protocol === 'ttrpc') {
    return version >= 3 ? JSON.stringify({ version, address: `unix://${socket}`, protocol: 'ttrpc' }) : `unix://${socket}`;
  }
  return JSON.stringify({ version, address: socket, protocol: 'grpc' });
}
