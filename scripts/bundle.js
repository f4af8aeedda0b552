#!/usr/bin/env node
// Build step, after tsc and gen-protos: the daemon's faster forms (see shim/cli/daemon-command.ts).
//   dist/shim.bundle.js     every shim module in one file (ffi-rs, a native addon, stays outside)
//   dist/shim-daemon.blob   a V8 startup snapshot of the daemon, built and checked with this Node;
//                           dist/shim-daemon.blob.json says which Node that is.
'use strict';

const { spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');
const esbuild = require('esbuild');

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

async function main() {
  const bundle = path.join(dist, 'shim.bundle.js');
  await esbuild.build({ ...common, entryPoints: [path.join(root, 'shim/cli/main.ts')], outfile: bundle, external: ['ffi-rs'] });

  const entry = path.join(dist, 'shim-daemon-snapshot.js');
  await esbuild.build({ ...common, entryPoints: [path.join(root, 'shim/cli/snapshot-entry.ts')], outfile: entry, plugins: [lazyAddon] });

  const blob = path.join(dist, 'shim-daemon.blob');
  const tmp = `${blob}.${process.pid}.tmp`;
  fs.rmSync(`${blob}.json`, { force: true });
  fs.rmSync(`${blob}.node`, { force: true });
  const built = spawnSync(process.execPath, ['--snapshot-blob', tmp, '--build-snapshot', entry], {
    cwd: dist, env: nodeEnv(), encoding: 'utf8',
  });
  if (built.status !== 0) {
    fs.rmSync(tmp, { force: true });
    throw new Error(`building the daemon snapshot failed (exit ${built.status}):\n${built.stderr}`);
  }
  // A daemon from the snapshot must start: it refuses actions other than start-daemon and serve, with exit 2.
  const check = spawnSync(process.execPath, ['--snapshot-blob', tmp, '--', '-namespace', 'n', '-id', 'x', 'delete'], {
    env: nodeEnv(), encoding: 'utf8',
  });
  if (check.status !== 2 || !/runs `start-daemon` and `serve`/.test(check.stderr)) {
    fs.rmSync(tmp, { force: true });
    throw new Error(`the daemon snapshot does not start (exit ${check.status}): ${check.stderr}`);
  }
  fs.renameSync(tmp, blob);
  const info = { node: process.version, arch: process.arch, platform: process.platform };
  fs.writeFileSync(`${blob}.json`, `${JSON.stringify(info)}\n`);
  // For the wrapper, which cannot ask Node its version without starting it: the binary that
  // built the snapshot, as `stat -L -c %s:%Y` shows it.
  const st = fs.statSync(process.execPath);
  fs.writeFileSync(`${blob}.node`, `${st.size}:${Math.floor(st.mtimeMs / 1000)}\n`);
  const mb = (f) => (fs.statSync(f).size / 1e6).toFixed(1);
  console.log(`bundle: wrote dist/shim.bundle.js (${mb(bundle)} MB), dist/shim-daemon.blob (${mb(blob)} MB, node ${process.version})`);
}

main().catch((err) => {
  console.error(`bundle: ${err.message}`);
  process.exit(1);
});
