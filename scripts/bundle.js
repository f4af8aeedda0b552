#!/usr/bin/env node
// Build step, after tsc and gen-protos: the daemon's faster forms (see shim/cli/daemon-command.ts).
//   dist/shim.bundle.js     every shim module in one file (ffi-rs, a native addon, stays outside)
//   dist/shim-daemon.blob   a V8 startup snapshot of the daemon, built and checked with the Node
//                           the wrapper runs (BURROW_NODE, or PATH's); .json/.node say which.
// `--snapshot-only --node BIN --blob FILE`: only the snapshot, for another node binary (the
// payload's, installer/build-payload.ts).
'use strict';

const { spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');

const root = path.join(__dirname, '..');
const dist = path.join(root, 'dist');
const common = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  logLevel: 'warning',
  // Line numbers in daemon stack traces stay meaningful.
  sourcemap: 'linked',
};

// The snapshot builder can load only Node's built-in modules: ffi-rs goes through
// shim/cli/lazy-addon.ts, loaded on first use after the snapshot is deserialized.
// So is @grpc/grpc-js, which loads node:http2 (the snapshot builder fails on node:http).
const LAZY = { 'ffi-rs': 'lazyFfiRs', '@grpc/grpc-js': 'lazyGrpcJs' };
const lazyAddon = {
  name: 'lazy-modules',
  setup(build) {
    build.onResolve({ filter: /^(ffi-rs|@grpc\/grpc-js)$/ }, (args) => ({ path: args.path, namespace: 'lazy-module' }));
    build.onLoad({ filter: /.*/, namespace: 'lazy-module' }, (args) => ({
      contents: `module.exports = require('./shim/cli/lazy-addon').${LAZY[args.path]};`,
      resolveDir: root,
      loader: 'js',
    }));
  },
};

function nodeEnv() {
  const env = { ...process.env };
  for (const k of ['NODE_OPTIONS', 'NODE_EXTRA_CA_CERTS', 'NODE_PATH']) delete env[k];
  return env;
}

/**
 * The Node the wrapper runs for containerd: BURROW_NODE, or `node` on PATH — not the one in
 * node_modules/.bin that `npm run` puts first (the npm package node-linux-<arch>, which the
 * payload ships), since a snapshot loads only into the binary that built it.
 */
function hostNode() {
  if (process.env.BURROW_NODE) return process.env.BURROW_NODE;
  for (const dir of (process.env.PATH ?? '').split(':')) {
    if (!dir || dir.split(path.sep).includes('node_modules')) continue;
    const candidate = path.join(dir, 'node');
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      return fs.realpathSync(candidate);
    } catch {
      // not here
    }
  }
  return process.execPath;
}

/**
 * Builds `blob` from the bundled snapshot entry with `node`, checks that a daemon starts from
 * it, and writes beside it which binary built it (`.json`: version; `.node`: size and mtime as
 * `stat -L -c %s:%Y` shows them, for the wrapper, which cannot ask Node without starting it).
 */
function buildSnapshot(node, entry, blob) {
  const tmp = `${blob}.${process.pid}.tmp`;
  fs.rmSync(`${blob}.json`, { force: true });
  fs.rmSync(`${blob}.node`, { force: true });
  const built = spawnSync(node, ['--snapshot-blob', tmp, '--build-snapshot', entry], {
    cwd: path.dirname(blob), env: nodeEnv(), encoding: 'utf8',
  });
  if (built.status !== 0) {
    fs.rmSync(tmp, { force: true });
    throw new Error(`building the daemon snapshot with ${node} failed (exit ${built.status}):\n${built.stderr}`);
  }
  // A daemon from the snapshot must start: it refuses actions other than start-daemon and serve, with exit 2.
  const check = spawnSync(node, ['--snapshot-blob', tmp, '--', '-namespace', 'n', '-id', 'x', 'delete'], {
    env: nodeEnv(), encoding: 'utf8',
  });
  if (check.status !== 2 || !/runs `start-daemon` and `serve`/.test(check.stderr)) {
    fs.rmSync(tmp, { force: true });
    throw new Error(`the daemon snapshot does not start with ${node} (exit ${check.status}): ${check.stderr}`);
  }
  fs.renameSync(tmp, blob);
  const version = spawnSync(node, ['--version'], { env: nodeEnv(), encoding: 'utf8' }).stdout.trim();
  fs.writeFileSync(`${blob}.json`, `${JSON.stringify({ node: version, arch: process.arch, platform: process.platform })}\n`);
  const st = fs.statSync(node);
  fs.writeFileSync(`${blob}.node`, `${st.size}:${Math.floor(st.mtimeMs / 1000)}\n`);
  return version;
}

async function main() {
  const args = process.argv.slice(2);
  const opt = (name) => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const entry = path.join(dist, 'shim-daemon-snapshot.js');
  const mb = (f) => (fs.statSync(f).size / 1e6).toFixed(1);
  // For installer/build-payload.ts: the snapshot for the node binary the payload ships.
  if (args.includes('--snapshot-only')) {
    const blob = path.resolve(opt('--blob'));
    const version = buildSnapshot(path.resolve(opt('--node')), entry, blob);
    console.log(`bundle: wrote ${blob} (${mb(blob)} MB, node ${version})`);
    return;
  }
  // esbuild only here: the payload's build needs none.
  const esbuild = require('esbuild');
  const bundle = path.join(dist, 'shim.bundle.js');
  await esbuild.build({ ...common, entryPoints: [path.join(root, 'shim/cli/main.ts')], outfile: bundle, external: ['ffi-rs'] });
  await esbuild.build({ ...common, entryPoints: [path.join(root, 'shim/cli/snapshot-entry.ts')], outfile: entry, plugins: [lazyAddon], minifyWhitespace: true, minifySyntax: true });
  const blob = path.join(dist, 'shim-daemon.blob');
  const version = buildSnapshot(hostNode(), entry, blob);
  console.log(`bundle: wrote dist/shim.bundle.js (${mb(bundle)} MB), dist/shim-daemon.blob (${mb(blob)} MB, node ${version})`);
}

main().catch((err) => {
  console.error(`bundle: ${err.message}`);
  process.exit(1);
});
