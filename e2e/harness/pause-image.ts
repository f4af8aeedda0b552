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
import { buildDir, repoRoot } from './paths';
import { sha256, writeOciArchive } from './oci-archive';

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

/**
 * No program interpreter (PT_INTERP) and no needed shared library (DT_NEEDED):
 * the image has no libc and no loader. Static-pie binaries keep a PT_DYNAMIC
 * for self-relocation, so that alone is not a failure.
 */
export function assertStaticBinary(file: string): void {
  const b = fs.readFileSync(file);
  if (b.readUInt32BE(0) !== 0x7f454c46 || b[4] !== 2 || b[5] !== 1) {
    throw new Error(`${file} is not a 64-bit little-endian ELF binary`);
  }
  const phoff = Number(b.readBigUInt64LE(0x20));
  const phentsize = b.readUInt16LE(0x36);
  const phnum = b.readUInt16LE(0x38);
  for (let i = 0; i < phnum; i++) {
    const ph = phoff + i * phentsize;
    const type = b.readUInt32LE(ph);
    if (type === 3 /* PT_INTERP */) throw new Error(`${file} is dynamically linked (has PT_INTERP)`);
    if (type === 2 /* PT_DYNAMIC */) {
      const off = Number(b.readBigUInt64LE(ph + 0x08));
      const size = Number(b.readBigUInt64LE(ph + 0x20));
      for (let d = off; d + 16 <= off + size; d += 16) {
        const tag = b.readBigInt64LE(d);
        if (tag === 0n) break;
        if (tag === 1n /* DT_NEEDED */) throw new Error(`${file} needs shared libraries (DT_NEEDED)`);
      }
    }
  }
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
  const bin = fs.readFileSync(binary);
  const arch = ociArch();
  const key = sha256(Buffer.concat([bin, Buffer.from(`pause-layout-v1 ${arch} ${ref}`)])).slice(0, 16);
  const imagesDir = buildDir('images');
  const archive = path.join(imagesDir, `pause-${key}.oci.tar`);
  const metaFile = `${archive}.json`;
  if (fs.existsSync(archive) && fs.existsSync(metaFile)) {
    return JSON.parse(fs.readFileSync(metaFile, 'utf8')) as BuiltPauseImage;
  }

  const work = fs.mkdtempSync(path.join(imagesDir, `.build-pause-${key}-`));
  try {
    // Like registry.k8s.io/pause: the layer holds /pause and nothing else.
    const rootfs = path.join(work, 'rootfs');
    fs.mkdirSync(rootfs);
    fs.copyFileSync(binary, path.join(rootfs, 'pause'));
    fs.chmodSync(path.join(rootfs, 'pause'), 0o755);

    // The image config of registry.k8s.io/pause:3.x: ENTRYPOINT ["/pause"], USER 65535:65535.
    const packed = await writeOciArchive({
      rootfs,
      work,
      ref,
      architecture: arch,
      imageConfig: { User: '65535:65535', Env: [IMAGE_PATH_ENV], Entrypoint: ['/pause'], WorkingDir: '/' },
      createdBy: 'burrow e2e harness: native/pause (static)',
    });
    const tmpArchive = packed.file;
    const { manifestDigest, configDigest, layerDigest } = packed;

    const built: BuiltPauseImage = {
      ref,
      binary,
      archive,
      manifestDigest,
      configDigest,
      layerDigest,
      architecture: arch,
    };
    fs.renameSync(tmpArchive, archive);
    fs.writeFileSync(metaFile, JSON.stringify(built, null, 2));
    return built;
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
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
