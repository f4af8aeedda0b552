// The README's demo must keep working: run it as scripts/demo.sh does (after the build).

import { strict as assert } from 'assert';
import * as path from 'path';
import { repoRoot, run } from './harness';

describe('the demo (scripts/demo.sh)', function () {
  this.timeout(300_000);

  it('runs a pod with the burrow handler through CRI and prints what its container saw', async function () {
    const r = await run(process.execPath, [path.join(repoRoot(), 'dist/e2e/demo.js')], { timeoutMs: 280_000 });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /hello from a pod run by Burrow/);
    assert.match(r.stdout, /hostname: +hello-burrow/);
    assert.match(r.stdout, /pod address: +10\.88\.\d+\.\d+\/24/);
    assert.match(r.stdout, /my pid: +1 of/);
    assert.match(r.stdout, /memory cgroup limit: 67108864/);
    assert.match(r.stdout, /container exited with 0 \(Completed\)/);
    assert.match(r.stdout, /nothing left behind/);
  });
});
