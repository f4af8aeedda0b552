// `bin/burrow-host-check` of a payload, run by the installer on the host from the installed
// release: loads the native library the way the shim does (ffi-rs, with the payload's lib/ on
// the library path), so a host that lacks something the shim needs (a too old glibc, libstdc++
// for node) fails the install with the loader's message, before containerd is told about it.
import * as path from 'path';
import { open } from 'ffi-rs';

const root = path.resolve(__dirname, '..', '..');
const lib = path.join(root, 'native', 'target', 'release', 'libburrow_native.so');
open({ library: 'burrow_native', path: lib });
const glibc = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header?.glibcVersionRuntime;
process.stdout.write(`host check: node ${process.version}, glibc ${glibc ?? 'unknown'}, ${lib} loads\n`);
