// The pod sandbox ("pause") image, built by the project: native/pause is a tiny
// static Rust program (holds the pod's namespaces, reaps zombies, exits 0 on
// SIGINT/SIGTERM), packed like e2e/harness/image.ts packs busybox: a
// deterministic single-layer OCI archive, imported with `ctr images import`.
// Nothing is pulled: the CRI plugin's `sandbox_image` names this image.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describeResult, run } from './command';
import type { PrivateContainerd } from './containerd';
import { PAUSE_REF_DEFAULT } from './cri-host';
import { BuiltImage, IMAGE_PATH_ENV, ociArch } from './image';
import { repoRoot } from './paths';
import { assertStaticBinary, cachedOciArchive, sha256 } from './oci-archive';

/** The name the CRI config's `sandbox_image` uses (PrivateContainerd `cri` default). */
export const PAUSE_REF = PAUSE_REF_DEFAULT;
/** CRI's namespace in containerd. */
export const CRI_NAMESPACE = 'k8s.io';


export interface BuiltPauseImage extends BuiltImage {
  ref: string;
  /** The static binary that is /pause in the image. */
  binary: string;
}


/** rustup's cargo when there is one (as scripts/test.sh prefers it), else cargo on PATH. */
function cargoCommand(): string {
  const rustup = path.join(process.env.HOME ?? os.homedir(), '.cargo', 'bin', 'cargo');
  return fs.existsSync(rustup) ? rustup : 'cargo';
}


/** `cargo build --release --offline` in native/pause; returns the static binary. */
export async function buildPauseBinary(): Promise<string> {
  const crate = path.join(repoRoot(), 'native', 'pause');
  const targetDir = path.join(crate, 'target');
  const cargo = cargoCommand();
  const args = ['build', '--release', '--offline', '--target-dir', targetDir];
  const r = await run(cargo, args, {
    cwd: crate,
    // Explicit, so that a RUSTFLAGS in the caller's environment cannot drop
    // crt-static (RUSTFLAGS overrides build.rustflags of .cargo/config.toml).
    env: { RUSTFLAGS: '-C target-feature=+crt-static', CARGO_TARGET_DIR: undefined },
    timeoutMs: 600_000,
  });
  if (r.code !== 0) throw new Error(`building native/pause: ${describeResult(cargo, args, r)}`);
  const bin = path.join(targetDir, 'release', 'pause');
  assertStaticBinary(bin);
  return bin;
}

/** Build (or reuse from .e2e/images/) the pause image's OCI archive. */
export async function buildPauseImage(ref: string = PAUSE_REF): Promise<BuiltPauseImage> {
  const binary = await buildPauseBinary();
  const arch = ociArch();
  const key = sha256(Buffer.concat([fs.readFileSync(binary), Buffer.from(`pause-layout-v1 ${arch} ${ref}`)])).slice(0, 16);
  return cachedOciArchive(
    {
      name: 'pause',
      key,
      // Like registry.k8s.io/pause: the layer holds /pause and nothing else.
      fill: (rootfs) => {
        fs.copyFileSync(binary, path.join(rootfs, 'pause'));
        fs.chmodSync(path.join(rootfs, 'pause'), 0o755);
      },
      ref,
      architecture: arch,
      // The image config of registry.k8s.io/pause:3.x: ENTRYPOINT ["/pause"], USER 65535:65535.
      imageConfig: { User: '65535:65535', Env: [IMAGE_PATH_ENV], Entrypoint: ['/pause'], WorkingDir: '/' },
      createdBy: 'burrow e2e harness: native/pause (static)',
    },
    { ref, binary },
  );
}

/**
 * Import the pause image into `c` (namespace k8s.io by default, where the CRI
 * plugin looks) under `ref` (default: the instance's sandbox_image), and check
 * that it is listed and unpacked.
 */
export async function importPauseImage(
  c: PrivateContainerd,
  ref: string = c.cri?.sandboxImage ?? PAUSE_REF,
  namespace: string = CRI_NAMESPACE,
): Promise<BuiltPauseImage> {
  const img = await buildPauseImage(ref);
  const imp = await c.ctr(['images', 'import', img.archive], { namespace, timeoutSec: 120 });
  if (imp.code !== 0) {
    throw new Error(`ctr images import ${img.archive} into ${c.name}/${namespace}: ${describeResult('ctr', [], imp)}`);
  }
  const ls = await c.ctr(['images', 'ls', '-q'], { namespace });
  if (!ls.stdout.split('\n').includes(ref)) {
    throw new Error(`after import, ${ref} missing from \`ctr -n ${namespace} images ls\` in ${c.name}: ${ls.stdout}${ls.stderr}`);
  }
  const snaps = await c.ctr(['snapshots', '--snapshotter', 'overlayfs', 'ls'], { namespace });
  if (!snaps.stdout.includes(img.layerDigest)) {
    throw new Error(`after import, snapshot ${img.layerDigest} (${ref}) missing in ${c.name}/${namespace}:\n${snaps.stdout}${snaps.stderr}`);
  }
  return img;
}
