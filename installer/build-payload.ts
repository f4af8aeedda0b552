// `npm run payload`: builds dist/payload/, the shim as Kubernetes nodes get it. Nodes have no
// Node.js, so the payload carries its own: the official node binary from the npm registry
// (package node-linux-<arch>, an optional dependency of this project), plus the compiled shim
// and installer, the runtime node_modules (ffi-rs with its prebuilt addon, protobufjs,
// winston, …), the protobuf descriptors and the native library. Layout, as the shim's
// packageRoot() expects it:
//
//   bin/containerd-shim-burrow-v2   the repository's wrapper: it runs node/bin/node (never PATH's),
//                                   answers `delete` and a pod's joins itself, and starts the
//                                   daemon from dist/shim-daemon.blob (built here with that node)
//   bin/burrow-installer            runs node/bin/node on dist/installer/cli.js
//   bin/burrow-host-check           loads the native library as the shim does (run at install)
//   lib/                            libraries the native library needs beyond glibc (libseccomp)
//   node/bin/node
//   package.json, dist/shim/**, dist/installer/**, dist/protos.json, protos/**
//   dist/shim.bundle.js, dist/shim-daemon.blob(.json, .node)   the daemon's faster forms
//   native/target/release/libburrow_native.so
//   node_modules/**                 the closure of package.json's dependencies
//   manifest.json                   sha256 of every file; its id names the release on the host
//
// Usage: node dist/installer/build-payload.js [--out DIR] [--node BINARY]
import { execFileSync } from 'child_process';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { MANIFEST, PayloadManifest } from './payload';
import { packageRoot as repoRoot } from '../shim/package-root';

interface PackageJson {
  name: string;
  version: string;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
}

function readJson<T>(file: string): T {
  return JSON.parse(fs.readFileSync(file, 'utf8')) as T;
}

/** Node's lookup of `name` from `fromDir`: the nearest node_modules/<name> up the tree. */
function findPackage(name: string, fromDir: string, root: string): string | undefined {
  for (let dir = fromDir; ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, 'node_modules', name);
    if (fs.existsSync(path.join(candidate, 'package.json'))) return candidate;
    if (dir === root || dir === path.dirname(dir)) return undefined;
  }
}

/** Package dirs needed at run time: dependencies (all), optional and peer ones when installed. */
export function runtimeClosure(root: string): string[] {
  const seen = new Set<string>();
  const visit = (pkgDir: string, pkg: PackageJson, isRoot: boolean): void => {
    const required = Object.keys(pkg.dependencies ?? {});
    const optional = [...Object.keys(pkg.optionalDependencies ?? {}), ...Object.keys(pkg.peerDependencies ?? {})];
    for (const [names, mustExist] of [[required, true], [optional, false]] as const) {
      for (const name of names) {
        // The project's own optional dependencies are the node binaries, copied separately.
        if (isRoot && !mustExist) continue;
        const dir = findPackage(name, pkgDir, root);
        if (!dir) {
          if (mustExist) throw new Error(`payload: ${name} (needed by ${pkg.name}) is not installed; run npm ci`);
          continue;
        }
        if (seen.has(dir)) continue;
        seen.add(dir);
        visit(dir, readJson<PackageJson>(path.join(dir, 'package.json')), false);
      }
    }
  };
  visit(root, readJson<PackageJson>(path.join(root, 'package.json')), true);
  return [...seen].sort();
}

/** The official node binary for this machine's architecture, from the npm package node-linux-<arch>. */
function defaultNodeBinary(root: string): string {
  const pkg = `node-linux-${process.arch}`;
  const dir = findPackage(pkg, root, root);
  const bin = dir && path.join(dir, 'bin', 'node');
  if (!bin || !fs.existsSync(bin)) {
    throw new Error(`payload: ${pkg} is not installed (an optional dependency: npm ci installs it on linux/${process.arch}); or pass --node`);
  }
  return bin;
}

function copyFiltered(src: string, dest: string, keep: (rel: string, isDir: boolean) => boolean): void {
  fs.cpSync(src, dest, {
    recursive: true,
    preserveTimestamps: true,
    filter: (s) => {
      const rel = path.relative(src, s);
      return rel === '' || keep(rel, fs.statSync(s).isDirectory());
    },
  });
}

// lib/ holds the shared libraries the native library needs beyond glibc (libseccomp), so the
// host needs only glibc and libstdc++ (for node); only they are found there.
const WRAPPER = (what: string, script: string): string => `#!/bin/sh
# ${what} from a Burrow payload: the payload's own node, never one on PATH. containerd passes
# its whole environment to shims; these variables would change how node starts.
unset NODE_OPTIONS NODE_EXTRA_CA_CERTS NODE_PATH NODE_REPL_EXTERNAL_MODULE
self=$(readlink -f "$0")
root=\${self%/bin/*}
LD_LIBRARY_PATH="$root/lib\${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export LD_LIBRARY_PATH
exec "$root/node/bin/node" "$root/${script}" "$@"
`;

/** Shared libraries glibc's own packages provide on every glibc host: never bundled. */
const BASE_LIBS = /^(linux-vdso|linux-gate|ld-linux[^ ]*|libc|libm|libdl|libpthread|librt|libgcc_s|libutil|libresolv)\.so/;

/** The libraries `lib` needs (ldd) that a host might lack, as [soname, path on this machine]. */
export function bundledLibraries(lib: string): [string, string][] {
  const out = execFileSync('ldd', [lib], { encoding: 'utf8' });
  const libs: [string, string][] = [];
  for (const line of out.split('\n')) {
    const m = /^\s*(\S+) => (\S+) \(0x[0-9a-f]+\)$/.exec(line);
    if (m && !BASE_LIBS.test(m[1])) libs.push([m[1], m[2]]);
    else if (/not found/.test(line)) throw new Error(`payload: ${lib} needs ${line.trim()}`);
  }
  return libs;
}

function listFiles(dir: string, rel = ''): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
    const r = rel === '' ? e.name : `${rel}/${e.name}`;
    if (e.isDirectory()) out.push(...listFiles(dir, r));
    else out.push(r);
  }
  return out;
}

export function buildPayload(out: string, nodeBinary?: string): PayloadManifest {
  const root = repoRoot();
  const pkg = readJson<PackageJson>(path.join(root, 'package.json'));
  const lib = path.join(root, 'native', 'target', 'release', 'libburrow_native.so');
  const needs = ['shim/cli/main.js', 'protos.json', 'shim.bundle.js', 'shim-daemon-snapshot.js'].map((f) => path.join(root, 'dist', f));
  for (const need of [...needs, lib]) {
    if (!fs.existsSync(need)) throw new Error(`payload: ${need} missing; run npm run build first`);
  }
  const node = nodeBinary ?? defaultNodeBinary(root);
  const tmp = `${out}.partial`;
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.mkdirSync(tmp, { recursive: true });
  try {
    fs.writeFileSync(
      path.join(tmp, 'package.json'),
      `${JSON.stringify({ name: pkg.name, version: pkg.version, private: true, description: 'Burrow shim payload' }, null, 2)}\n`,
    );
    fs.mkdirSync(path.join(tmp, 'node', 'bin'), { recursive: true });
    fs.copyFileSync(node, path.join(tmp, 'node', 'bin', 'node'));
    fs.chmodSync(path.join(tmp, 'node', 'bin', 'node'), 0o755);

    const js = (rel: string, isDir: boolean): boolean => isDir || rel.endsWith('.js');
    copyFiltered(path.join(root, 'dist', 'shim'), path.join(tmp, 'dist', 'shim'), js);
    copyFiltered(path.join(root, 'dist', 'installer'), path.join(tmp, 'dist', 'installer'), js);
    fs.copyFileSync(path.join(root, 'dist', 'protos.json'), path.join(tmp, 'dist', 'protos.json'));
    fs.copyFileSync(path.join(root, 'dist', 'shim.bundle.js'), path.join(tmp, 'dist', 'shim.bundle.js'));
    // The snapshot loads only into the node binary that built it: the one shipped here.
    execFileSync(
      process.execPath,
      [path.join(root, 'scripts', 'bundle.js'), '--snapshot-only', '--node', path.join(tmp, 'node', 'bin', 'node'), '--blob', path.join(tmp, 'dist', 'shim-daemon.blob')],
      { stdio: ['ignore', 'ignore', 'inherit'] },
    );
    // protos/ with their timestamps: dist/protos.json is used only while it is newer.
    copyFiltered(path.join(root, 'protos'), path.join(tmp, 'protos'), () => true);
    fs.utimesSync(path.join(tmp, 'dist', 'protos.json'), new Date(), new Date());
    fs.mkdirSync(path.join(tmp, 'native', 'target', 'release'), { recursive: true });
    fs.copyFileSync(lib, path.join(tmp, 'native', 'target', 'release', 'libburrow_native.so'));
    fs.mkdirSync(path.join(tmp, 'lib'));
    for (const [soname, file] of bundledLibraries(lib)) fs.copyFileSync(file, path.join(tmp, 'lib', soname));

    for (const dir of runtimeClosure(root)) {
      const rel = path.relative(root, dir);
      copyFiltered(dir, path.join(tmp, rel), (r) => {
        const parts = r.split(path.sep);
        // Nested node_modules are copied as packages of their own (when in the closure).
        return !parts.includes('node_modules') && !parts.includes('.bin');
      });
    }

    fs.mkdirSync(path.join(tmp, 'bin'));
    fs.copyFileSync(path.join(root, 'bin', 'containerd-shim-burrow-v2'), path.join(tmp, 'bin', 'containerd-shim-burrow-v2'));
    fs.chmodSync(path.join(tmp, 'bin', 'containerd-shim-burrow-v2'), 0o755);
    for (const [name, script] of [
      ['burrow-installer', 'dist/installer/cli.js'],
      ['burrow-host-check', 'dist/installer/host-check.js'],
    ]) {
      fs.writeFileSync(path.join(tmp, 'bin', name), WRAPPER(name, script), { mode: 0o755 });
    }

    const files: Record<string, string> = {};
    const h = crypto.createHash('sha256');
    for (const rel of listFiles(tmp).sort()) {
      const st = fs.statSync(path.join(tmp, rel));
      const sum = crypto.createHash('sha256').update(fs.readFileSync(path.join(tmp, rel))).digest('hex');
      files[rel] = sum;
      h.update(`${rel}\0${(st.mode & 0o777).toString(8)}\0${sum}\n`);
    }
    let nodeVersion: string | undefined;
    try {
      nodeVersion = readJson<PackageJson>(path.join(path.dirname(path.dirname(node)), 'package.json')).version;
    } catch {
      // --node from elsewhere (e.g. the installer image's own node): no package.json beside it
    }
    const manifest: PayloadManifest = {
      id: h.digest('hex'),
      burrowVersion: pkg.version,
      nodeVersion: nodeVersion ?? 'unknown',
      arch: process.arch,
      files,
    };
    fs.writeFileSync(path.join(tmp, MANIFEST), `${JSON.stringify(manifest, null, 2)}\n`);
    fs.rmSync(out, { recursive: true, force: true });
    fs.renameSync(tmp, out);
    return manifest;
  } catch (e) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
}

if (require.main === module) {
  const args = process.argv.slice(2);
  const opt = (name: string): string | undefined => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const out = path.resolve(opt('--out') ?? path.join(repoRoot(), 'dist', 'payload'));
  try {
    const m = buildPayload(out, opt('--node'));
    console.log(`payload: ${out} (id ${m.id.slice(0, 16)}, node ${m.nodeVersion}, ${Object.keys(m.files).length} files)`);
  } catch (e) {
    console.error((e as Error).message);
    process.exit(1);
  }
}
