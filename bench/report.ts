// The printed table, the one summary line, and the JSON kept for tools (and the quick test).

import type { LeakResult, MemoryLevel, TimingResult } from './benchmarks';
import { ratio, stats, type Stats } from './stats';

/** Burrow/runc targets of issue #6 (ratios of medians; memory: PSS per pod at 30 pods). */
export const TARGETS: Record<string, number> = {
  lifecycle: 0.8,
  exec: 0.4,
  'pod start': 0.8,
  'burst 30': 0.8,
  'pss/pod@30': 1.5,
};

export interface Row {
  name: string;
  unit: string;
  burrow: Stats;
  runc: Stats;
  ratio: number;
  target?: number;
}

export interface Report {
  date: string;
  machine: { cpus: number; node: string; containerd: string; runc: string; kernel: string };
  quick: boolean;
  /** How the Burrow daemon was started (BURROW_DAEMON_FORM), `default` when not forced. */
  daemonForm: string;
  rows: Row[];
  memory: MemoryLevel[];
  /** Absent when the leak benchmark was not run (--only). */
  leaks?: LeakResult;
  /** `name=ratio` pairs of the summary line, in order. */
  summary: Record<string, number>;
}

export function timingRow(t: TimingResult): Row {
  const b = stats(t.samples.burrow);
  const r = stats(t.samples.runc);
  return { name: t.name, unit: 'ms', burrow: b, runc: r, ratio: ratio(b, r), target: TARGETS[t.name] };
}

/** One row per memory level: PSS per pod (MB); n = shims, min/max = total PSS (MB). */
export function memoryRows(levels: readonly MemoryLevel[]): Row[] {
  return levels.map((l) => {
    const mb = (kb: number) => kb / 1024;
    const one = (rt: 'burrow' | 'runc'): Stats => ({
      n: l.shims[rt],
      median: mb(l.totalPssKb[rt]) / l.pods,
      min: mb(l.totalPssKb[rt]),
      max: mb(l.totalRssKb[rt]),
    });
    const b = one('burrow');
    const r = one('runc');
    const name = `pss/pod@${l.pods}`;
    return { name, unit: 'MB', burrow: b, runc: r, ratio: b.median / r.median, target: TARGETS[name] };
  });
}

const f = (x: number): string => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2));
const pad = (s: string, n: number): string => (s.length >= n ? s : s + ' '.repeat(n - s.length));

export function formatReport(rep: Report): string {
  const out: string[] = [];
  const m = rep.machine;
  out.push(
    `burrow bench ${rep.quick ? '(quick) ' : ''}${rep.daemonForm === 'default' ? '' : `(daemon form ${rep.daemonForm}) `}` +
      `${rep.date}: ${m.cpus} CPUs, kernel ${m.kernel}, ` +
      `containerd ${m.containerd}, runc ${m.runc}, node ${m.node}`,
  );
  out.push('');
  out.push(`${pad('benchmark', 14)}${pad('unit', 6)}${pad('n', 5)}${pad('burrow median [min-max]', 28)}${pad('runc median [min-max]', 28)}${pad('burrow/runc', 13)}target`);
  for (const r of rep.rows) {
    if (r.unit === 'MB') continue;
    const cell = (s: Stats) => `${f(s.median)} [${f(s.min)}-${f(s.max)}]`;
    const verdict = r.target === undefined ? '' : `<=${r.target} ${r.ratio <= r.target ? 'met' : 'MISSED'}`;
    out.push(`${pad(r.name, 14)}${pad(r.unit, 6)}${pad(String(r.burrow.n), 5)}${pad(cell(r.burrow), 28)}${pad(cell(r.runc), 28)}${pad(r.ratio.toFixed(2), 13)}${verdict}`);
  }
  out.push('');
  out.push(`${pad('memory', 14)}${pad('pods', 6)}${pad('burrow PSS/pod (total; RSS total)', 36)}${pad('runc PSS/pod (total; RSS total)', 36)}${pad('burrow/runc', 13)}target`);
  for (const r of rep.rows) {
    if (r.unit !== 'MB') continue;
    const pods = r.name.slice(r.name.indexOf('@') + 1);
    const cell = (s: Stats) => `${f(s.median)} MB (${f(s.min)}; ${f(s.max)})`;
    const verdict = r.target === undefined ? '' : `<=${r.target} ${r.ratio <= r.target ? 'met' : 'MISSED'}`;
    out.push(`${pad(r.name, 14)}${pad(pods, 6)}${pad(cell(r.burrow), 36)}${pad(cell(r.runc), 36)}${pad(r.ratio.toFixed(2), 13)}${verdict}`);
  }
  out.push('');
  const l = rep.leaks;
  for (const rt of l ? (['burrow', 'runc'] as const) : []) {
    if (!l) break;
    const counts = Object.entries(l.counts[rt]).map(([k, v]) => `${k}=${v}`).join(' ');
    out.push(`leaks after ${l.lifecycles} lifecycles, ${pad(rt, 7)}${counts}`);
    for (const left of l.leftovers[rt].slice(0, 20)) out.push(`  ${rt} left: ${left}`);
  }
  out.push('');
  out.push(`SUMMARY ${Object.entries(rep.summary).map(([k, v]) => `${k.replace(/ /g, '-')}=${Number.isInteger(v) ? v : v.toFixed(2)}`).join(' ')}`);
  return out.join('\n');
}

export function summarize(rows: readonly Row[], leaks: LeakResult | undefined): Record<string, number> {
  const s: Record<string, number> = {};
  for (const r of rows) s[r.name] = r.ratio;
  if (!leaks) return s;
  const total = (rt: 'burrow' | 'runc') => Object.values(leaks.counts[rt]).reduce((a, b) => a + b, 0);
  s['leaks burrow'] = total('burrow');
  s['leaks runc'] = total('runc');
  return s;
}
