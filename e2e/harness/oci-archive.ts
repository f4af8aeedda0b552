// Packs a root filesystem directory as a single-layer OCI image archive (an OCI image layout in
// a tar) that `ctr images import` accepts: deterministic (sorted names, fixed times, numeric
// root ownership), so the same input gives the same digests.

import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describeResult, run } from './command';
import { buildDir } from './paths';

const MT = {
  index: 'application/vnd.oci.image.index.v1+json',
  manifest: 'application/vnd.oci.image.manifest.v1+json',
  config: 'application/vnd.oci.image.config.v1+json',
  layer: 'application/vnd.oci.image.layer.v1.tar',
} as const;

export function sha256(data: Buffer | string): string {
  return crypto.createHash('sha256').update(data).digest('hex');
}

export interface OciArchiveInput {
  /** Directory whose contents become the one layer. */
  rootfs: string;
  /** Scratch directory for the layout (removed by the caller). */
  work: string;
  /** Full image name, e.g. docker.io/burrow/busybox:latest. */
  ref: string;
  architecture: string;
  /** The image config's `config` object: Env, Cmd, Entrypoint, User, WorkingDir… */
  imageConfig: Record<string, unknown>;
  createdBy: string;
}

export interface OciArchive {
  /** The archive, inside `work`: the caller moves it where it belongs. */
  file: string;
  manifestDigest: string;
  configDigest: string;
  layerDigest: string;
}

async function tar(args: string[], what: string): Promise<void> {
  const r = await run('tar', ['--create', '--sort=name', '--mtime=@0', '--owner=0', '--group=0', '--numeric-owner', ...args]);
  if (r.code !== 0) throw new Error(`${what}: ${describeResult('tar', args, r)}`);
}

export async function writeOciArchive(input: OciArchiveInput): Promise<OciArchive> {
  const layout = path.join(input.work, 'layout');
  const blobs = path.join(layout, 'blobs', 'sha256');
  fs.mkdirSync(blobs, { recursive: true });

  const layerTmp = path.join(input.work, 'layer.tar');
  await tar(['--file', layerTmp, '--directory', input.rootfs, '--format=gnu', ...fs.readdirSync(input.rootfs).sort()], `building the layer of ${input.ref}`);
  const layer = fs.readFileSync(layerTmp);
  const layerDigest = sha256(layer);
  fs.renameSync(layerTmp, path.join(blobs, layerDigest));

  const blob = (obj: unknown): { bytes: Buffer; digest: string } => {
    const bytes = Buffer.from(JSON.stringify(obj));
    const digest = sha256(bytes);
    fs.writeFileSync(path.join(blobs, digest), bytes);
    return { bytes, digest };
  };
  const config = blob({
    created: '1970-01-01T00:00:00Z',
    architecture: input.architecture,
    os: 'linux',
    config: input.imageConfig,
    rootfs: { type: 'layers', diff_ids: [`sha256:${layerDigest}`] },
    history: [{ created: '1970-01-01T00:00:00Z', created_by: input.createdBy }],
  });
  const manifest = blob({
    schemaVersion: 2,
    mediaType: MT.manifest,
    config: { mediaType: MT.config, digest: `sha256:${config.digest}`, size: config.bytes.length },
    layers: [{ mediaType: MT.layer, digest: `sha256:${layerDigest}`, size: layer.length }],
  });

  const last = input.ref.split('/').pop() ?? '';
  const tag = last.includes(':') ? last.slice(last.indexOf(':') + 1) : 'latest';
  fs.writeFileSync(
    path.join(layout, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MT.index,
      manifests: [
        {
          mediaType: MT.manifest,
          digest: `sha256:${manifest.digest}`,
          size: manifest.bytes.length,
          platform: { architecture: input.architecture, os: 'linux' },
          // containerd takes io.containerd.image.name as the full image name; ref.name alone
          // would need --base-name on import.
          annotations: { 'io.containerd.image.name': input.ref, 'org.opencontainers.image.ref.name': tag },
        },
      ],
    }),
  );
  fs.writeFileSync(path.join(layout, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));

  const file = path.join(input.work, 'image.oci.tar');
  await tar(['--file', file, '--directory', layout, 'oci-layout', 'index.json', 'blobs'], `packing the OCI archive of ${input.ref}`);
  return {
    file,
    manifestDigest: `sha256:${manifest.digest}`,
    configDigest: `sha256:${config.digest}`,
    layerDigest: `sha256:${layerDigest}`,
  };
}

/** What a cached archive's `.json` beside it records (image.ts's BuiltImage). */
export interface CachedArchive {
  /** OCI archive (tar of an OCI image layout) ready for `ctr images import`. */
  archive: string;
  manifestDigest: string;
  configDigest: string;
  /** Uncompressed layer digest = rootfs diff_id = snapshot chain id (single layer). */
  layerDigest: string;
  architecture: string;
}

export interface CachedArchiveInput extends Omit<OciArchiveInput, 'rootfs' | 'work'> {
  /** `.e2e/images/<name>-<key>.oci.tar`: the key covers every input of the image. */
  name: string;
  key: string;
  /** Fills the (empty, existing) root filesystem directory of the one layer. */
  fill(rootfs: string): Promise<void> | void;
}

/**
 * The archive from `.e2e/images/` when an earlier build left it (with its `.json`), else built
 * in a scratch directory and moved there; `extra` is recorded beside the digests.
 */
export async function cachedOciArchive<X extends object>(input: CachedArchiveInput, extra: X): Promise<CachedArchive & X> {
  const imagesDir = buildDir('images');
  const archive = path.join(imagesDir, `${input.name}-${input.key}.oci.tar`);
  const metaFile = `${archive}.json`;
  if (fs.existsSync(archive) && fs.existsSync(metaFile)) {
    return JSON.parse(fs.readFileSync(metaFile, 'utf8')) as CachedArchive & X;
  }
  const work = fs.mkdtempSync(path.join(imagesDir, `.build-${input.name}-${input.key}-`));
  try {
    const rootfs = path.join(work, 'rootfs');
    fs.mkdirSync(rootfs);
    await input.fill(rootfs);
    const { name: _name, key: _key, fill: _fill, ...archiveInput } = input;
    const packed = await writeOciArchive({ ...archiveInput, rootfs, work });
    const built = {
      ...extra,
      archive,
      manifestDigest: packed.manifestDigest,
      configDigest: packed.configDigest,
      layerDigest: packed.layerDigest,
      architecture: input.architecture,
    };
    fs.renameSync(packed.file, archive);
    fs.writeFileSync(metaFile, JSON.stringify(built, null, 2));
    return built;
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

/**
 * No program interpreter (PT_INTERP) and no needed shared library (DT_NEEDED):
 * the image has no libc and no loader. Static-pie binaries keep a PT_DYNAMIC
 * for self-relocation, so that alone is not a failure.
 */
export function assertStaticBinary(file: string, hint?: string): void {
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
    if (type === 3 /* PT_INTERP */) throw new Error(`${file} is dynamically linked (has PT_INTERP)${hint ? `; ${hint}` : ''}`);
    if (type === 2 /* PT_DYNAMIC */) {
      const off = Number(b.readBigUInt64LE(ph + 0x08));
      const size = Number(b.readBigUInt64LE(ph + 0x20));
      for (let d = off; d + 16 <= off + size; d += 16) {
        const tag = b.readBigInt64LE(d);
        if (tag === 0n) break;
        if (tag === 1n /* DT_NEEDED */) throw new Error(`${file} needs shared libraries (DT_NEEDED)${hint ? `; ${hint}` : ''}`);
      }
    }
  }
}
