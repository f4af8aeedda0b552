// Freezing and thawing a cgroup (Pause/Resume), as runc does it, waiting until the kernel
// reports the state reached. Never blocking Node: every wait is a timer or setImmediate, and
// each file access is a single short read or write on cgroupfs.
//
// v1: freezer.state FROZEN/THAWED. A cgroup whose processes keep forking may stay FREEZING:
// runc writes FROZEN again and again, thawing for a moment every 50 attempts, and gives up
// (thawing) after 1000. v2: cgroup.freeze 1/0, then cgroup.events until "frozen 1" (or 0),
// polled every 10 ms for at most 10 s, as runc.

import { readCgroupFile, writeCgroupFile } from './cgroupfs';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const yieldLoop = () => new Promise<void>((r) => setImmediate(r));

const V1_ATTEMPTS = 1000;
const V2_POLL_MS = 10;
const V2_POLLS = 1000;

export type FreezerState = 'FROZEN' | 'THAWED';

function v1State(dir: string): string {
  return readCgroupFile(dir, 'freezer.state').trim();
}

/** Freezes the v1 freezer cgroup `dir`; resolves once freezer.state reads FROZEN. */
export async function freezeV1(dir: string): Promise<void> {
  try {
    for (let i = 0; i < V1_ATTEMPTS; i++) {
      if (i % 50 === 49) {
        // New processes keep appearing: a short thaw lets the kernel catch up (runc).
        writeCgroupFile(dir, 'freezer.state', 'THAWED');
        await sleep(10);
      }
      writeCgroupFile(dir, 'freezer.state', 'FROZEN');
      if (i % 25 === 24) await yieldLoop();
      const state = v1State(dir);
      if (state === 'FROZEN') return;
      if (state !== 'FREEZING') throw new Error(`unexpected state ${state} in ${dir}/freezer.state while freezing`);
      await yieldLoop();
    }
    throw new Error(`unable to freeze ${dir}: freezer.state still FREEZING after ${V1_ATTEMPTS} attempts`);
  } catch (err) {
    // A cgroup left FREEZING or FROZEN after a failed Pause would hang the container: thaw it.
    try {
      writeCgroupFile(dir, 'freezer.state', 'THAWED');
    } catch {
      // The original error says more.
    }
    throw err;
  }
}

/** Thaws the v1 freezer cgroup `dir`; resolves once freezer.state reads THAWED. */
export async function thawV1(dir: string): Promise<void> {
  for (let i = 0; i < V1_ATTEMPTS; i++) {
    writeCgroupFile(dir, 'freezer.state', 'THAWED');
    const state = v1State(dir);
    if (state === 'THAWED') return;
    await yieldLoop();
  }
  throw new Error(`unable to thaw ${dir}: freezer.state reads ${v1State(dir)}`);
}

/** The "frozen" value of cgroup.events (v2): true once every process of the cgroup is frozen. */
export function v2Frozen(dir: string): boolean {
  const m = /^frozen (\d)$/m.exec(readCgroupFile(dir, 'cgroup.events'));
  if (!m) throw new Error(`${dir}/cgroup.events has no "frozen" line: this kernel has no cgroup v2 freezer`);
  return m[1] === '1';
}

async function setV2(dir: string, frozen: boolean): Promise<void> {
  writeCgroupFile(dir, 'cgroup.freeze', frozen ? '1' : '0');
  for (let i = 0; i < V2_POLLS; i++) {
    if (v2Frozen(dir) === frozen) return;
    await sleep(V2_POLL_MS);
  }
  throw new Error(`${dir}/cgroup.events did not say "frozen ${frozen ? 1 : 0}" within ${(V2_POLL_MS * V2_POLLS) / 1000} s`);
}

/** Freezes the v2 cgroup `dir`; resolves once cgroup.events says "frozen 1". */
export async function freezeV2(dir: string): Promise<void> {
  try {
    await setV2(dir, true);
  } catch (err) {
    try {
      writeCgroupFile(dir, 'cgroup.freeze', '0');
    } catch {
      // The original error says more.
    }
    throw err;
  }
}

/** Thaws the v2 cgroup `dir`; resolves once cgroup.events says "frozen 0". */
export async function thawV2(dir: string): Promise<void> {
  await setV2(dir, false);
}
