// The benchmarks. Each runs Burrow and runc alternately (A B A B …) on the same containerd, so
// that load from outside the run (other builds on this machine) falls on both alike.

import { CriClient } from '../e2e/cri/client';
import { runContainer, runPod, teardown, type Pod } from '../e2e/cri/pod';
import {
  BUSYBOX_REF, diffSnapshots, LEAK_CATEGORIES, sleep, snapshotHost, type LeakCategory, type PrivateContainerd,
} from '../e2e/harness';
import { ctrOk, removeContainer } from './ctr';
import { pssKb, rssKb, RUNTIMES, shimPids, type Runtime, type RuntimeName } from './runtimes';

export type Samples = Record<RuntimeName, number[]>;

export interface TimingResult {
  name: string;
  /** What one sample is. */
  what: string;
  samples: Samples;
}

export interface MemoryLevel {
  pods: number;
  shims: Record<RuntimeName, number>;
  /** Sum of the PSS of every shim process of the runtime, kB. */
  totalPssKb: Record<RuntimeName, number>;
  totalRssKb: Record<RuntimeName, number>;
}

export interface LeakResult {
  lifecycles: number;
  counts: Record<RuntimeName, Record<LeakCategory, number>>;
  /** What was left, by runtime (empty when clean). */
  leftovers: Record<RuntimeName, string[]>;
}

const emptySamples = (): Samples => ({ burrow: [], runc: [] });
let serial = 0;
const uniqueId = (prefix: string, rt: Runtime): string => `${prefix}-${rt.name}-${process.pid}-${++serial}`;

/** `ctr run --rm <image> <id> /bin/true`: the whole life of a container, as a user sees it. */
async function lifecycleOnce(c: PrivateContainerd, rt: Runtime): Promise<number> {
  return ctrOk(c, ['run', '--rm', '--runtime', rt.type, BUSYBOX_REF, uniqueId('lc', rt), '/bin/true']);
}

export async function lifecycle(c: PrivateContainerd, pairs: number, warmup = 2): Promise<TimingResult> {
  const samples = emptySamples();
  for (let i = 0; i < warmup; i++) for (const rt of RUNTIMES) await lifecycleOnce(c, rt);
  for (let i = 0; i < pairs; i++) for (const rt of RUNTIMES) samples[rt.name].push(await lifecycleOnce(c, rt));
  return { name: 'lifecycle', what: 'ctr run --rm busybox /bin/true, ms', samples };
}

/** `ctr task exec /bin/true` into a running container of each runtime. */
export async function exec(c: PrivateContainerd, pairs: number, warmup = 2): Promise<TimingResult> {
  const samples = emptySamples();
  const ids = new Map<RuntimeName, string>();
  try {
    for (const rt of RUNTIMES) {
      const id = uniqueId('exec', rt);
      await ctrOk(c, ['run', '-d', '--runtime', rt.type, BUSYBOX_REF, id, 'sleep', '3600']);
      ids.set(rt.name, id);
    }
    let n = 0;
    const once = (rt: Runtime) => ctrOk(c, ['task', 'exec', '--exec-id', `e${++n}`, ids.get(rt.name) as string, '/bin/true']);
    for (let i = 0; i < warmup; i++) for (const rt of RUNTIMES) await once(rt);
    for (let i = 0; i < pairs; i++) for (const rt of RUNTIMES) samples[rt.name].push(await once(rt));
  } finally {
    for (const id of ids.values()) await removeContainer(c, id);
  }
  return { name: 'exec', what: 'ctr task exec /bin/true into a running container, ms', samples };
}

export interface CriEnv {
  c: PrivateContainerd;
  client: CriClient;
}

async function startPod(env: CriEnv, rt: Runtime, name: string): Promise<Pod> {
  const pod = await runPod(env.client, {
    name, handler: rt.handler, logRoot: env.c.cri?.podLogDir, cgroupRoot: env.c.cri?.cgroupRoot,
  });
  try {
    const id = await runContainer(env.client, pod, { name: 'app', image: BUSYBOX_REF, command: ['sleep', '3600'] });
    for (;;) {
      const st = (await env.client.containerStatus(id)).status;
      if (st?.state === 'CONTAINER_RUNNING') break;
      if (st?.state !== 'CONTAINER_CREATED') throw new Error(`pod ${name}: container ${id} is ${st?.state}, not running`);
      await sleep(5);
    }
  } catch (e) {
    await teardown(env.client, pod).catch(() => undefined);
    throw e;
  }
  return pod;
}

/** CRI RunPodSandbox + CreateContainer + StartContainer until the container runs; teardown untimed. */
export async function podStart(env: CriEnv, pairs: number, warmup = 1): Promise<TimingResult> {
  const samples = emptySamples();
  const once = async (rt: Runtime): Promise<number> => {
    const t0 = process.hrtime.bigint();
    const pod = await startPod(env, rt, `ps-${rt.name}-${++serial}`);
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    await teardown(env.client, pod);
    return ms;
  };
  for (let i = 0; i < warmup; i++) for (const rt of RUNTIMES) await once(rt);
  for (let i = 0; i < pairs; i++) for (const rt of RUNTIMES) samples[rt.name].push(await once(rt));
  return { name: 'pod start', what: 'CRI RunPodSandbox+CreateContainer+StartContainer until running, ms', samples };
}

/** `count` containers started at once (`ctr run -d`, each its own shim): time until all run. */
export async function burst(c: PrivateContainerd, rounds: number, count: number): Promise<TimingResult> {
  const samples = emptySamples();
  for (let r = 0; r < rounds; r++) {
    for (const rt of RUNTIMES) {
      const ids = Array.from({ length: count }, () => uniqueId('burst', rt));
      const t0 = process.hrtime.bigint();
      const results = await Promise.allSettled(
        ids.map((id) => ctrOk(c, ['run', '-d', '--runtime', rt.type, BUSYBOX_REF, id, 'sleep', '3600'])),
      );
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      await Promise.all(ids.map((id) => removeContainer(c, id)));
      const failed = results.filter((x): x is PromiseRejectedResult => x.status === 'rejected');
      if (failed.length > 0) throw new Error(`burst of ${count} ${rt.name} containers: ${failed.length} failed: ${failed[0].reason}`);
      samples[rt.name].push(ms);
    }
  }
  return { name: `burst ${count}`, what: `${count} concurrent ctr run -d, until all run, ms`, samples };
}

/** Sum of PSS (and RSS) of a runtime's shims: the median of three readings, 300 ms apart. */
async function shimMemory(c: PrivateContainerd, rt: Runtime): Promise<{ shims: number; pss: number; rss: number }> {
  const readings: { shims: number; pss: number; rss: number }[] = [];
  for (let i = 0; i < 3; i++) {
    if (i > 0) await sleep(300);
    let pss = 0;
    let rss = 0;
    const pids = shimPids(c, rt);
    for (const pid of pids) {
      try {
        pss += pssKb(pid);
        rss += rssKb(pid);
      } catch {
        // exited between listing and reading
      }
    }
    readings.push({ shims: pids.length, pss, rss });
  }
  readings.sort((a, b) => a.pss - b.pss);
  return readings[1];
}

/** Pods (pause + a sleeping busybox) of both runtimes, grown to each level; shim PSS at each. */
export async function memory(env: CriEnv, levels: readonly number[]): Promise<MemoryLevel[]> {
  const pods: Pod[] = [];
  const out: MemoryLevel[] = [];
  try {
    let have = 0;
    for (const level of levels) {
      for (; have < level; have++) {
        for (const rt of RUNTIMES) pods.push(await startPod(env, rt, `mem-${rt.name}-${have}`));
      }
      await sleep(1000); // let start-up garbage be collected, as in a pod that has been running a while
      const m = { burrow: await shimMemory(env.c, RUNTIMES[0]), runc: await shimMemory(env.c, RUNTIMES[1]) };
      for (const rt of RUNTIMES) {
        if (m[rt.name].shims !== level) {
          throw new Error(`${level} ${rt.name} pods should have ${level} shims, found ${m[rt.name].shims}`);
        }
      }
      out.push({
        pods: level,
        shims: { burrow: m.burrow.shims, runc: m.runc.shims },
        totalPssKb: { burrow: m.burrow.pss, runc: m.runc.pss },
        totalRssKb: { burrow: m.burrow.rss, runc: m.runc.rss },
      });
    }
  } finally {
    for (const p of pods) await teardown(env.client, p).catch(() => undefined);
  }
  return out;
}

/** `lifecycles` ctr run --rm per runtime, then what is left on the host compared with before. */
export async function leaks(c: PrivateContainerd, lifecycles: number, settleMs = 10_000): Promise<LeakResult> {
  const counts = {} as LeakResult['counts'];
  const leftovers = {} as LeakResult['leftovers'];
  for (const rt of RUNTIMES) {
    const shimBinaries = ['containerd-shim-burrow-v2', 'containerd-shim-runc-v2'];
    const before = await snapshotHost(c, { shimBinaries });
    for (let i = 0; i < lifecycles; i++) await lifecycleOnce(c, rt);
    const deadline = Date.now() + settleMs;
    let left: string[];
    for (;;) {
      left = diffSnapshots(before, await snapshotHost(c, { shimBinaries }));
      if (left.length === 0 || Date.now() >= deadline) break;
      await sleep(250);
    }
    const byCat = Object.fromEntries(LEAK_CATEGORIES.map((k) => [k, 0])) as Record<LeakCategory, number>;
    for (const l of left) byCat[l.slice(0, l.indexOf(':')) as LeakCategory]++;
    counts[rt.name] = byCat;
    leftovers[rt.name] = left;
  }
  return { lifecycles, counts, leftovers };
}
