// The two runtimes the differential suites run every case under: runc's shim (the yardstick)
// and Burrow, both on one private containerd.
import type { PrivateContainerd } from './containerd';
import { assertNoLeaks, BURROW_SHIM_BINARY, HostSnapshot, snapshotHost } from './leaks';

export const RUNTIMES = {
  runc: 'io.containerd.runc.v2',
  burrow: 'io.containerd.burrow.v2',
} as const;
export type RuntimeName = keyof typeof RUNTIMES;
export const RUNTIME_NAMES: RuntimeName[] = ['runc', 'burrow'];

/** Leak checks watch both shims (and what they leave: runc state, cgroups). */
export const BOTH_SHIMS = [BURROW_SHIM_BINARY, 'containerd-shim-runc-v2'];

/** Registers beforeEach/afterEach hooks: each case of the block leaves the host as it found it. */
export function leakCheckEachCase(containerd: () => PrivateContainerd): void {
  let baseline: HostSnapshot;
  beforeEach(async function () {
    baseline = await snapshotHost(containerd(), { shimBinaries: BOTH_SHIMS });
  });
  afterEach(async function () {
    await assertNoLeaks(containerd(), baseline);
  });
}
