// ffi-rs (and @grpc/grpc-js), loaded on first use. The daemon's V8 startup snapshot (shim/cli/snapshot-entry.ts) is
// built by a Node that can load only its own built-in modules, and a native addon cannot be
// part of a snapshot anyway: the bundle (scripts/bundle.js) points every `import ... from
// 'ffi-rs'` here, and the snapshot's main function says how to load the real module.

import * as fs from 'fs';
import type * as GrpcJs from '@grpc/grpc-js';
import type * as FfiRs from 'ffi-rs';

let load: (id: string) => unknown = (id) => require(id);
let ffi: typeof FfiRs | undefined;
const real = (): typeof FfiRs => (ffi ??= loadFfiRs());

/**
 * ffi-rs picks its glibc or musl binary by `process.report.getReport().header.glibcVersionRuntime`,
 * and a full diagnostic report costs ~5 ms of every daemon start: it gets the one field it reads,
 * from whether the host has a musl dynamic loader.
 */
function loadFfiRs(): typeof FfiRs {
  const report = process.report as unknown as { getReport: () => unknown } | undefined;
  if (!report) return load('ffi-rs') as typeof FfiRs;
  const getReport = report.getReport;
  let musl = false;
  try {
    musl = fs.readdirSync('/lib').some((n) => n.startsWith('ld-musl-'));
  } catch {
    // no /lib: not a musl system either
  }
  report.getReport = () => ({ header: { glibcVersionRuntime: musl ? undefined : 'host' } });
  try {
    return load('ffi-rs') as typeof FfiRs;
  } finally {
    report.getReport = getReport;
  }
}

export function setAddonLoader(fn: (id: string) => unknown): void {
  load = fn;
}

/** What shim/native/ffi-native.ts uses of ffi-rs, each read from the module once loaded. */
export const lazyFfiRs = {
  get DataType() {
    return real().DataType;
  },
  get define() {
    return real().define;
  },
  get open() {
    return real().open;
  },
};

let grpcJs: typeof GrpcJs | undefined;
const realGrpc = (): typeof GrpcJs => (grpcJs ??= load('@grpc/grpc-js') as typeof GrpcJs);

/**
 * What shim/protocol/grpc-server.ts uses of @grpc/grpc-js, loaded on first use: it loads Node's
 * http2, which the snapshot builder cannot (node:http fails in it), and only a daemon in gRPC
 * mode needs it.
 */
export const lazyGrpcJs = {
  get Server() {
    return realGrpc().Server;
  },
  get ServerCredentials() {
    return realGrpc().ServerCredentials;
  },
  get status() {
    return realGrpc().status;
  },
};
