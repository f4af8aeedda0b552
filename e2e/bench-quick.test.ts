// `npm run bench -- --quick` end to end: every benchmark runs for Burrow and runc and the output
// has its shape, and neither runtime leaves anything behind. Timing targets are for the full
// benchmark on a quiet machine (README, Performance), never asserted here.

import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { buildDir, ensureHostTools, repoRoot, run } from './harness';
import type { Report } from '../bench/report';

const RUNTIMES = ['burrow', 'runc'] as const;

describe('bench --quick: Burrow against runc, every benchmark', function () {
  this.timeout(600_000);
  let out = '';
  let report: Report;

  before(async function () {
    ensureHostTools();
    const json = path.join(buildDir('bench'), 'quick-test.json');
    fs.rmSync(json, { force: true });
    const r = await run(process.execPath, [path.join(repoRoot(), 'dist', 'bench', 'main.js'), '--quick', '--json', json], {
      timeoutMs: 540_000,
    });
    assert.equal(r.code, 0, `bench --quick failed:\n${r.stderr}\n${r.stdout}`);
    out = r.stdout;
    report = JSON.parse(fs.readFileSync(json, 'utf8')) as Report;
  });

  it('prints a row per timed benchmark with n, medians, min-max and the ratio', function () {
    for (const name of ['lifecycle', 'exec', 'pod start', 'burst 30']) {
      const row = report.rows.find((x) => x.name === name);
      assert.ok(row, `no ${name} row in ${JSON.stringify(report.rows.map((x) => x.name))}`);
      for (const rt of RUNTIMES) {
        const s = row[rt];
        assert.ok(s.n >= 1 && s.min > 0 && s.min <= s.median && s.median <= s.max, `${name} ${rt}: ${JSON.stringify(s)}`);
      }
      assert.equal(row.burrow.n, row.runc.n, `${name}: A B alternation gives as many samples of each`);
      assert.ok(Math.abs(row.ratio - row.burrow.median / row.runc.median) < 1e-9);
      assert.match(out, new RegExp(`^${name} +ms +${row.burrow.n} +[0-9.]+ \\[[0-9.]+-[0-9.]+\\] +[0-9.]+ \\[[0-9.]+-[0-9.]+\\] +${row.ratio.toFixed(2)} +<=`, 'm'));
    }
  });

  it('measures the PSS of every shim at each pod count: one shim per pod for both runtimes', function () {
    assert.deepEqual(report.memory.map((m) => m.pods), [1, 3]);
    for (const m of report.memory) {
      for (const rt of RUNTIMES) {
        assert.equal(m.shims[rt], m.pods, `${rt} shims at ${m.pods} pods`);
        assert.ok(m.totalPssKb[rt] > 0 && m.totalPssKb[rt] <= m.totalRssKb[rt], `${rt} at ${m.pods} pods: ${JSON.stringify(m)}`);
      }
      assert.match(out, new RegExp(`^pss/pod@${m.pods} +${m.pods} +[0-9.]+ MB`, 'm'));
    }
  });

  it('leaves nothing behind after its lifecycles, for either runtime', function () {
    const leaks = report.leaks;
    assert.ok(leaks && leaks.lifecycles > 0, 'the leak benchmark ran');
    for (const rt of RUNTIMES) {
      assert.deepEqual(leaks.leftovers[rt], [], `${rt} left things behind`);
      assert.ok(Object.values(leaks.counts[rt]).every((n) => n === 0));
    }
  });

  it('ends with one summary line of every ratio and the leak counts', function () {
    const lines = out.trimEnd().split('\n');
    const last = lines[lines.length - 1];
    assert.equal(lines.filter((l) => l.startsWith('SUMMARY ')).length, 1);
    const pairs = Object.fromEntries(last.replace(/^SUMMARY /, '').split(' ').map((p) => p.split('=')));
    assert.deepEqual(Object.keys(pairs), [
      'lifecycle', 'exec', 'pod-start', 'burst-30', 'pss/pod@1', 'pss/pod@3', 'leaks-burrow', 'leaks-runc',
    ]);
    for (const [k, v] of Object.entries(pairs)) assert.match(String(v), /^\d+(\.\d+)?$/, `${k}=${v}`);
    assert.equal(pairs['leaks-burrow'], '0');
    assert.equal(pairs['leaks-runc'], '0');
  });
});
