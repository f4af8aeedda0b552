// The e2e busybox image, built locally from the host's static busybox: CI
// never pulls from a registry, and a byte-identical image per busybox build
// keeps snapshots and digests stable across runs.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describeResult, run } from './command';
import type { PrivateContainerd } from './containerd';
import { assertStaticBinary, CachedArchive, cachedOciArchive, sha256 } from './oci-archive';
import { buildDir } from './paths';

export const BUSYBOX_REF = 'docker.io/burrow/busybox:latest';
export const IMAGE_PATH_ENV = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';


/** The busybox archive and its digests. */
export type BuiltImage = CachedArchive;


export function ociArch(arch: string = process.arch): string {
  const map: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };
  const a = map[arch];
  if (!a) throw new Error(`no OCI architecture for node process.arch "${arch}"`);
  return a;
}

export function findBusybox(): string {
  for (const p of ['/bin/busybox', '/usr/bin/busybox']) {
    if (fs.existsSync(p)) return fs.realpathSync(p);
  }
  throw new Error('busybox not found at /bin/busybox or /usr/bin/busybox; run scripts/setup-host.sh');
}

/** Build (or reuse from .e2e/images/) the busybox OCI archive. */
export async function buildBusyboxImage(): Promise<BuiltImage> {
  const busybox = findBusybox();
  // The image has no libc, so a dynamically linked busybox would fail with ENOENT at exec.
  assertStaticBinary(busybox, 'install busybox-static (scripts/setup-host.sh)');
  const arch = ociArch();
  // Key covers the input binary and the layout code's own version.
  const key = sha256(Buffer.concat([fs.readFileSync(busybox), Buffer.from(`layout-v1 ${arch}`)])).slice(0, 16);
  return cachedOciArchive(
    {
      name: 'busybox',
      key,
      fill: (rootfs) => populateRootfs(rootfs, busybox),
      ref: BUSYBOX_REF,
      architecture: arch,
      imageConfig: { Env: [IMAGE_PATH_ENV], Cmd: ['sh'], WorkingDir: '/' },
      createdBy: `burrow e2e harness: ${busybox}`,
    },
    {},
  );
}

export async function populateRootfs(rootfs: string, busybox: string): Promise<void> {
  const dirs: [string, number][] = [
    ['bin', 0o755], ['sbin', 0o755], ['usr/bin', 0o755], ['usr/sbin', 0o755], ['usr/local/bin', 0o755],
    ['etc', 0o755], ['root', 0o700], ['tmp', 0o1777], ['var/tmp', 0o1777], ['home', 0o755],
    ['proc', 0o555], ['sys', 0o555], ['dev', 0o755], ['run', 0o755],
  ];
  for (const [d, mode] of dirs) {
    const p = path.join(rootfs, d);
    fs.mkdirSync(p, { recursive: true });
    fs.chmodSync(p, mode); // mkdir's mode is masked by umask; tmp needs the sticky bit
  }
  fs.copyFileSync(busybox, path.join(rootfs, 'bin/busybox'));
  fs.chmodSync(path.join(rootfs, 'bin/busybox'), 0o755);

  const list = await run(busybox, ['--list-full']);
  if (list.code !== 0) throw new Error(`listing applets: ${describeResult(busybox, ['--list-full'], list)}`);
  for (const applet of list.stdout.split('\n').map((l) => l.trim()).filter(Boolean)) {
    if (applet === 'bin/busybox' || applet.includes('..')) continue;
    const link = path.join(rootfs, applet);
    fs.mkdirSync(path.dirname(link), { recursive: true });
    if (!fs.existsSync(link)) fs.symlinkSync('/bin/busybox', link);
  }

  fs.writeFileSync(path.join(rootfs, 'etc/passwd'),
    'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n');
  fs.writeFileSync(path.join(rootfs, 'etc/group'), 'root:x:0:\nnobody:x:65534:\nnogroup:x:65534:\n');
  fs.writeFileSync(path.join(rootfs, 'etc/shadow'), 'root:*:0:0:99999:7:::\nnobody:*:0:0:99999:7:::\n', { mode: 0o640 });
  // Empty placeholders: runtimes bind-mount the real ones over these.
  for (const f of ['etc/hosts', 'etc/hostname', 'etc/resolv.conf']) fs.writeFileSync(path.join(rootfs, f), '');
}

/**
 * Import the busybox image into `c` (namespace `namespace`, default c.namespace)
 * under `ref` and check that it is listed and unpacked into an overlayfs snapshot.
 */
export async function importImage(
  c: PrivateContainerd,
  ref: string = BUSYBOX_REF,
  namespace: string = c.namespace,
): Promise<BuiltImage> {
  const img = await buildBusyboxImage();
  let archive = img.archive;
  if (ref !== BUSYBOX_REF) {
    // Another name: re-label the index inside a copy of the archive.
    archive = await relabel(img, ref);
  }
  const imp = await c.ctr(['images', 'import', archive], { namespace, timeoutSec: 120 });
  if (imp.code !== 0) {
    throw new Error(`ctr images import ${archive} into ${c.name}/${namespace}: ${describeResult('ctr', [], imp)}`);
  }
  const ls = await c.ctr(['images', 'ls', '-q'], { namespace });
  if (!ls.stdout.split('\n').includes(ref)) {
    throw new Error(`after import, ${ref} missing from \`ctr -n ${namespace} images ls\` in ${c.name}: ${ls.stdout}${ls.stderr}`);
  }
  const snaps = await c.ctr(['snapshots', '--snapshotter', 'overlayfs', 'ls'], { namespace });
  if (!snaps.stdout.includes(img.layerDigest)) {
    throw new Error(
      `after import, snapshot ${img.layerDigest} (chain id of ${ref}) missing in ${c.name}/${namespace}:\n${snaps.stdout}${snaps.stderr}`,
    );
  }
  return img;
}

async function relabel(img: BuiltImage, ref: string): Promise<string> {
  const out = path.join(buildDir('images'), `busybox-${sha256(img.manifestDigest + ref).slice(0, 16)}.oci.tar`);
  if (fs.existsSync(out)) return out;
  const work = fs.mkdtempSync(path.join(buildDir('images'), '.relabel-'));
  try {
    const x = await run('tar', ['--extract', '--file', img.archive, '--directory', work]);
    if (x.code !== 0) throw new Error(`unpacking ${img.archive}: ${describeResult('tar', [], x)}`);
    const indexFile = path.join(work, 'index.json');
    const index = JSON.parse(fs.readFileSync(indexFile, 'utf8')) as { manifests: { annotations: Record<string, string> }[] };
    const last = ref.split('@')[0].split('/').pop() ?? '';
    const tag = last.includes(':') ? last.slice(last.indexOf(':') + 1) : 'latest';
    for (const m of index.manifests) {
      m.annotations['io.containerd.image.name'] = ref;
      m.annotations['org.opencontainers.image.ref.name'] = tag;
    }
    fs.writeFileSync(indexFile, JSON.stringify(index));
    const tmp = `${out}.tmp-${process.pid}`;
    const p = await run('tar', [
      '--create', '--file', tmp, '--directory', work, '--sort=name', '--mtime=@0',
      '--owner=0', '--group=0', '--numeric-owner', 'oci-layout', 'index.json', 'blobs',
    ]);
    if (p.code !== 0) throw new Error(`packing ${out}: ${describeResult('tar', [], p)}`);
    fs.renameSync(tmp, out);
    return out;
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}
