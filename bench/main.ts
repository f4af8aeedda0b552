// `npm run bench [-- --quick] [--only lifecycle,exec,...] [--daemon-form F] [--json FILE]`: Burrow against
// containerd's runc shim on one private CRI-enabled containerd, alternating A B A B.
// Needs root and the e2e host tools; uses the shared host paths the e2e suites use, so run it
// under the e2e lock (`flock /run/burrow-e2e.lock npm run bench`).

import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CriClient } from '../e2e/cri/client';
import {
  buildDir, BUSYBOX_REF, CRI_NAMESPACE, ensureHostTools, importImage, importPauseImage, PrivateContainerd,
} from '../e2e/harness';
import * as b from './benchmarks';
import { formatReport, memoryRows, summarize, timingRow, type Report, type Row } from './report';

const ALL = ['lifecycle', 'exec', 'pod', 'burst', 'memory', 'leaks'] as const;
type Bench = (typeof ALL)[number];

interface Options {
  quick: boolean;
  /** BURROW_DAEMON_FORM for every Burrow shim (shim/cli/daemon-command.ts): to measure each form. */
  daemonForm?: string;
  only: Set<Bench>;
  json: string;
}

/** Sizes: full runs meet the minimums; quick runs keep every benchmark, smaller. */
function sizes(quick: boolean) {
  return quick
    ? { lifecyclePairs: 5, execPairs: 5, podPairs: 2, burstRounds: 1, burstCount: 30, memoryLevels: [1, 3], leakLifecycles: 10 }
    : { lifecyclePairs: 60, execPairs: 60, podPairs: 20, burstRounds: 5, burstCount: 30, memoryLevels: [1, 10, 30], leakLifecycles: 200 };
}

function parseArgs(argv: readonly string[]): Options {
  const o: Options = { quick: false, only: new Set(ALL), json: path.join(buildDir('bench'), 'latest.json') };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--quick') o.quick = true;
    else if (a === '--json') o.json = argv[++i] ?? '';
    else if (a === '--daemon-form') {
      o.daemonForm = argv[++i] ?? '';
      if (!['snapshot', 'bundle', 'modules'].includes(o.daemonForm)) throw new Error(`--daemon-form: snapshot, bundle or modules, not "${o.daemonForm}"`);
    }
    else if (a === '--only') {
      const names = (argv[++i] ?? '').split(',').filter(Boolean);
      for (const n of names) if (!(ALL as readonly string[]).includes(n)) throw new Error(`--only: unknown benchmark "${n}" (${ALL.join(', ')})`);
      o.only = new Set(names as Bench[]);
    } else throw new Error(`unknown argument "${a}"; usage: bench [--quick] [--only ${ALL.join(',')}] [--daemon-form snapshot|bundle|modules] [--json FILE]`);
  }
  return o;
}

function version(cmd: string, args: string[], re: RegExp): string {
  try {
    return re.exec(execFileSync(cmd, args, { encoding: 'utf8' }))?.[1] ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

function progress(msg: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}

async function main(): Promise<void> {
  const opts = parseArgs(process.argv.slice(2));
  const size = sizes(opts.quick);
  ensureHostTools();
  // containerd passes its environment to the shims it starts.
  const extraEnv = opts.daemonForm ? { BURROW_DAEMON_FORM: opts.daemonForm } : undefined;
  const c = await PrivateContainerd.start({ name: 'bench', cri: true, logLevel: 'info', extraEnv });
  const client = new CriClient(c.address);
  try {
    await importImage(c);
    await importPauseImage(c);
    await importImage(c, BUSYBOX_REF, CRI_NAMESPACE);
    await client.waitReady();
    const env = { c, client };
    const rows: Row[] = [];
    let memory: b.MemoryLevel[] = [];

    const step = async <T>(name: Bench, fn: () => Promise<T>): Promise<T | undefined> => {
      if (!opts.only.has(name)) return undefined;
      progress(`${name}…`);
      const t0 = Date.now();
      const r = await fn();
      progress(`${name} done in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
      return r;
    };
    const push = (t: b.TimingResult | undefined) => t && rows.push(timingRow(t));
    push(await step('lifecycle', () => b.lifecycle(c, size.lifecyclePairs)));
    push(await step('exec', () => b.exec(c, size.execPairs)));
    push(await step('pod', () => b.podStart(env, size.podPairs)));
    push(await step('burst', () => b.burst(c, size.burstRounds, size.burstCount)));
    memory = (await step('memory', () => b.memory(env, size.memoryLevels))) ?? [];
    rows.push(...memoryRows(memory));
    const leaks = await step('leaks', () => b.leaks(c, size.leakLifecycles));

    const report: Report = {
      date: new Date().toISOString(),
      machine: {
        cpus: os.cpus().length,
        node: process.version,
        containerd: version('containerd', ['--version'], /containerd\S* (v?\d[^\s]*)/),
        runc: version('runc', ['--version'], /runc version (\S+)/),
        kernel: os.release(),
      },
      quick: opts.quick,
      daemonForm: opts.daemonForm ?? 'default',
      rows,
      memory,
      leaks,
      summary: summarize(rows, leaks),
    };
    if (opts.json) fs.writeFileSync(opts.json, `${JSON.stringify(report, null, 2)}\n`);
    process.stdout.write(`${formatReport(report)}\n`);
  } finally {
    client.close();
    await c.stop();
  }
}

main().catch((err: Error) => {
  process.stderr.write(`bench failed: ${err.stack ?? err.message}\n`);
  process.exit(1);
});
