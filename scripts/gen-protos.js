#!/usr/bin/env node
// Build step: writes dist/protos.json, a protobufjs JSON descriptor of every
// file under protos/. The shim loads it instead of parsing .proto text on each
// start (see shim/protocol/proto-registry.ts). Run after `tsc`, because it uses
// the compiled registry so both paths share one loader.
'use strict';

const fs = require('fs');
const path = require('path');

const registryPath = path.join(__dirname, '..', 'dist', 'shim', 'protocol', 'proto-registry.js');
if (!fs.existsSync(registryPath)) {
  console.error(`gen-protos: ${registryPath} not found; run tsc first`);
  process.exit(1);
}
const registry = require(registryPath);

const root = registry.loadProtoFiles();
const out = registry.descriptorPath();
fs.mkdirSync(path.dirname(out), { recursive: true });
// Write to a temp file and rename so a concurrently starting shim never reads half a file.
const tmp = `${out}.${process.pid}.tmp`;
fs.writeFileSync(tmp, JSON.stringify(root.toJSON()));
fs.renameSync(tmp, out);
console.log(`gen-protos: wrote ${path.relative(process.cwd(), out)} (${registry.listProtoFiles().length} files)`);
