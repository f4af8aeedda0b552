// Packs a root filesystem directory as a single-layer OCI image archive (an OCI image layout in
// a tar) that `ctr images import` accepts: deterministic (sorted names, fixed times, numeric
// root ownership), so the same input gives the same digests.

import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describeResult, run } from './command';

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
