// ffi-rs, loaded on first use. The daemon's V8 startup snapshot (shim/cli/snapshot-entry.ts) is
// built by a Node that can load only its own built-in modules, and a native addon cannot be
// part of a snapshot anyway: the bundle (scripts/bundle.js) points every `import ... from
// 'ffi-rs'` here, and the snapshot's main function says how to load the real module.

import type * as FfiRs from 'ffi-rs';

let load: (id: string) => unknown = (id) => require(id);
let ffi: typeof FfiRs | undefined;
const real = (): typeof FfiRs => (ffi ??= load('ffi-rs') as typeof FfiRs);

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
