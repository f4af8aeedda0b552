// `delete`: containerd's cleanup of one container whose shim may be gone. Kill what is left,
// unmount the rootfs, forget the state, print a DeleteResponse. Idempotent.

import * as fs from 'fs';
import { FfiNativeRuntime } from '../native/ffi-native';
import { encodeMessage } from '../protocol/proto-registry';
import { forceCleanup } from '../sandbox/sandbox';
import { StateStore } from '../sandbox/state-store';
import { now } from '../sandbox/timestamp';
import type { ShimFlags } from './flags';

const SIGKILL_STATUS = 137;

export async function deleteHelper(flags: ShimFlags): Promise<number> {
  const bundle = flags.bundle || process.cwd();
  if (!flags.id || !flags.namespace) {
    process.stderr.write('delete needs -id and -namespace\n');
    return 2;
  }
  let pid = 0;
  try {
    // stderr is what containerd logs as this cleanup's warnings.
    const warn = (msg: string) => void process.stderr.write(`${msg}\n`);
    pid = await forceCleanup(new FfiNativeRuntime(), new StateStore(), flags.namespace, flags.id, bundle, warn);
  } catch (err) {
    process.stderr.write(`container ${flags.id}: cleanup of bundle ${JSON.stringify(bundle)}: ${(err as Error).message}\n`);
    return 1;
  }
  const bytes = encodeMessage('containerd.task.v2.DeleteResponse', {
    pid,
    exit_status: SIGKILL_STATUS,
    exited_at: now(),
  });
  fs.writeSync(1, bytes);
  return 0;
}
