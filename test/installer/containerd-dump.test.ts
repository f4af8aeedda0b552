// The host's containerd (1.6, from scripts/setup-host.sh) reading configs with
// `containerd --config F config dump`, which loads and merges them as the daemon does (no root,
// no daemon): why the installer edits config.toml on containerd 1.x instead of dropping a file
// in, and that containerd reads what the installer writes with every other setting intact.
import { strict as assert } from 'assert';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { parse } from 'smol-toml';
import { DEFAULT_REGISTRATION, parseConfig, planRegistration, renderDropIn } from '../../installer/containerd-config';
import { parseContainerdVersion } from '../../installer/containerd-version';

const FIXTURES = path.resolve(__dirname, '..', '..', '..', 'test', 'installer', 'fixtures');

type Cri = { sandbox_image: string; containerd: { runtimes: Record<string, { runtime_type: string; pod_annotations?: string[] }> } };

function dump(config: string): { version: number; cri: Cri } {
  const r = spawnSync('containerd', ['--config', config, 'config', 'dump'], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, `containerd config dump: ${r.stderr}`);
  // JSON round trip: plain objects (smol-toml's tables have a null prototype).
  const doc = JSON.parse(JSON.stringify(parse(r.stdout))) as { version: number; plugins: Record<string, Cri> };
  return { version: doc.version, cri: doc.plugins['io.containerd.grpc.v1.cri'] };
}

describe('containerd 1.6 reading the configs (containerd config dump)', function () {
  this.timeout(60_000);
  let dir: string;
  let version: ReturnType<typeof parseContainerdVersion>;

  before(function () {
    const r = spawnSync('containerd', ['--version'], { encoding: 'utf8' });
    assert.equal(r.status, 0, 'containerd not installed: run scripts/setup-host.sh');
    version = parseContainerdVersion(r.stdout);
    assert.equal(version.major, 1, `these cases are about containerd 1.x; the host has ${version.raw}`);
  });
  beforeEach(function () {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'burrow-dump-'));
  });
  afterEach(function () {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('an imported drop-in replaces the main file\'s whole CRI section (so 1.x gets no drop-in)', function () {
    const main = path.join(dir, 'config.toml');
    const drop = path.join(dir, 'burrow.toml');
    fs.writeFileSync(main, [
      'version = 2', `imports = [${JSON.stringify(drop)}]`,
      '[plugins."io.containerd.grpc.v1.cri"]', '  sandbox_image = "example.com/pause:custom"',
      '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]', '  runtime_type = "io.containerd.runc.v2"', '',
    ].join('\n'));
    fs.writeFileSync(drop, renderDropIn(2, DEFAULT_REGISTRATION));
    const d = dump(main);
    assert.notEqual(d.cri.sandbox_image, 'example.com/pause:custom', 'the main file\'s sandbox_image survived the import');
    assert.deepEqual(Object.keys(d.cri.containerd.runtimes), ['burrow'], 'runc survived the import');
  });

  it('the installer\'s in-place registration of the 1.6 default config: containerd reads the handler and every other setting', function () {
    const text = fs.readFileSync(path.join(FIXTURES, 'containerd-1.6-default.toml'), 'utf8');
    const main = path.join(dir, 'config.toml');
    fs.writeFileSync(main, text);
    const before = dump(main);
    const plan = planRegistration(parseConfig(main, text), version, DEFAULT_REGISTRATION, { path: path.join(dir, 'conf.d', 'burrow.toml'), content: null });
    assert.deepEqual(plan.edits.map((e) => e.path), [main]);
    fs.writeFileSync(main, plan.edits[0].content!);
    const after = dump(main);
    assert.equal(after.version, 2);
    assert.equal(after.cri.containerd.runtimes.burrow.runtime_type, 'io.containerd.burrow.v2');
    assert.deepEqual(after.cri.containerd.runtimes.burrow.pod_annotations, ['*']);
    const rest = { ...after.cri, containerd: { ...after.cri.containerd, runtimes: { ...after.cri.containerd.runtimes } } };
    delete rest.containerd.runtimes.burrow;
    assert.deepEqual(rest, before.cri);
  });
});
