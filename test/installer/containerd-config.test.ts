// Registration at the file level, for both config versions: fixtures of containerd 1.6 (its own
// `config default`), an operator's 1.7 config, containerd 2.1 and 2.2 (version 3).
import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { parse } from 'smol-toml';
import {
  DEFAULT_REGISTRATION, importsCover, parseConfig, planRegistration, planUnregistration, registersHandler, renderDropIn,
  runtimeKeyPath,
} from '../../installer/containerd-config';
import { ContainerdVersion, parseContainerdVersion } from '../../installer/containerd-version';
import { InstallerError } from '../../installer/errors';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const FIXTURES = path.join(ROOT, 'test', 'installer', 'fixtures');
const fixture = (name: string): string => fs.readFileSync(path.join(FIXTURES, name), 'utf8');

const V1_6 = parseContainerdVersion('containerd github.com/containerd/containerd 1.6.20~ds1 1.6.20~ds1-1+deb12u3');
const V1_7 = parseContainerdVersion('containerd containerd.io 1.7.25 bcc810d6b9066471b0b6fa75f557a15a1cbf31bb');
const V2_1 = parseContainerdVersion('containerd github.com/containerd/containerd/v2 v2.1.4 75cb2b7193e4e490e9fbdc236c0e811ccaba3376');
const MAIN = '/etc/containerd/config.toml';
const DROP = '/etc/containerd/conf.d/burrow.toml';

/** A parsed TOML document as plain objects (smol-toml's tables have a null prototype). */
function toml(text: string): Record<string, unknown> {
  const plain = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(plain);
    if (v && typeof v === 'object' && !(v instanceof Date)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]));
    return v;
  };
  return plain(parse(text, { integersAsBigInt: true })) as Record<string, unknown>;
}

function plan(text: string, v: ContainerdVersion, dropContent: string | null = null) {
  return planRegistration(parseConfig(MAIN, text), v, DEFAULT_REGISTRATION, { path: DROP, content: dropContent });
}

/** The document with `keys` removed, for comparing "everything else is unchanged". */
function without(doc: Record<string, unknown>, keys: string[]): Record<string, unknown> {
  const copy = structuredClone(doc);
  let cur: Record<string, unknown> = copy;
  for (const k of keys.slice(0, -1)) cur = cur[k] as Record<string, unknown>;
  delete cur[keys[keys.length - 1]];
  return copy;
}

describe('containerd version', function () {
  it('reads Debian, Docker and containerd 2 version lines', function () {
    assert.deepEqual([V1_6.major, V1_6.minor, V1_6.patch], [1, 6, 20]);
    assert.deepEqual([V1_7.major, V1_7.minor, V1_7.patch], [1, 7, 25]);
    assert.deepEqual([V2_1.major, V2_1.minor, V2_1.patch, V2_1.raw], [2, 1, 4, 'v2.1.4']);
  });
  it('refuses output that is not containerd\'s', function () {
    assert.throws(() => parseContainerdVersion('dockerd 24.0'), InstallerError);
    assert.throws(() => parseContainerdVersion('containerd x y'), /cannot read the containerd version/);
  });
});

describe('containerd config: parsing and refusals', function () {
  it('refuses invalid TOML, version 1, unknown versions, naming the file', function () {
    assert.throws(() => parseConfig(MAIN, 'version = 2\n[plugins\n'), /\/etc\/containerd\/config\.toml is not valid TOML/);
    assert.throws(() => parseConfig(MAIN, 'version = 2\nversion = 3\n'), /not valid TOML/);
    assert.throws(() => parseConfig(MAIN, '[plugins.cri]\n'), /has no `version` key \(config version 1\)/);
    assert.throws(() => parseConfig(MAIN, 'version = 4\n'), /version = 4; only versions 2 and 3/);
    assert.throws(() => parseConfig(MAIN, 'version = "2"\n'), /only versions 2 and 3/);
  });
  it('refuses version 3 on containerd 1.x, containerd older than 1.6 or newer than 2.x', function () {
    const v3 = fixture('containerd-2.1-v3.toml');
    assert.throws(() => plan(v3, V1_7), /is version 3, but containerd 1\.7\.25 reads versions 1 and 2 only/);
    assert.throws(() => plan(fixture('containerd-1.6-default.toml'), parseContainerdVersion('containerd x 1.5.9 abc')), /too old/);
    assert.throws(() => plan(v3, parseContainerdVersion('containerd x v3.0.0 abc')), /newer than this installer knows/);
  });
  it('refuses a handler of the same name with another runtime_type, in the main config or the drop-in', function () {
    const taken = `${fixture('containerd-1.7-v2-edited.toml')}\n[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.burrow]\n  runtime_type = "io.containerd.runc.v2"\n`;
    assert.throws(() => plan(taken, V1_7), /already defines runtime handler "burrow" with runtime_type "io\.containerd\.runc\.v2"/);
    const otherDrop = 'version = 3\n[plugins."io.containerd.cri.v1.runtime".containerd.runtimes.burrow]\nruntime_type = "io.containerd.kata.v2"\n';
    assert.throws(() => plan(fixture('containerd-2.1-v3.toml'), V2_1, otherDrop), /io\.containerd\.kata\.v2/);
  });
});

describe('containerd config version 2 (containerd 1.6/1.7): in the main file', function () {
  for (const [name, v] of [['containerd-1.6-default.toml', V1_6], ['containerd-1.7-v2-edited.toml', V1_7]] as const) {
    it(`${name}: adds exactly the runtime table, keeps every other value and its type, then is idempotent`, function () {
      const text = fixture(name);
      const p = plan(text, v);
      assert.equal(p.mode, 'in-place');
      assert.equal(p.version, 2);
      assert.equal(p.edits.length, 1);
      assert.equal(p.edits[0].path, MAIN);
      const after = toml(p.edits[0].content!);
      const before = toml(text);
      const keys = runtimeKeyPath(2, 'burrow');
      assert.deepEqual(keys, ['plugins', 'io.containerd.grpc.v1.cri', 'containerd', 'runtimes', 'burrow']);
      assert.deepEqual(without(after, keys), before);
      const table = keys.reduce<unknown>((t, k) => (t as Record<string, unknown>)[k], after);
      assert.deepEqual(table, { runtime_type: 'io.containerd.burrow.v2', pod_annotations: ['*'], container_annotations: ['*'] });
      // Once registered, a second plan changes nothing.
      assert.deepEqual(plan(p.edits[0].content!, v).edits, []);
      // And unregistering gives the same data back.
      const un = planUnregistration(parseConfig(MAIN, p.edits[0].content!), DEFAULT_REGISTRATION, null);
      assert.deepEqual(toml(un!.content!), before);
    });
  }
  it('keeps the operator\'s extra keys in our table and does not rewrite it', function () {
    const text = `${fixture('containerd-1.7-v2-edited.toml')}\n[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.burrow]\nruntime_type = "io.containerd.burrow.v2"\npod_annotations = ["*"]\ncontainer_annotations = ["*"]\nio_type = "fifo"\n`;
    assert.deepEqual(plan(text, V1_7).edits, []);
  });
  it('integers stay integers and floats stay floats', function () {
    const p = plan('version = 2\noom_score = 0\n[plugins."io.containerd.gc.v1.scheduler"]\npause_threshold = 0.02\ndeletion_threshold = 0\nx = 1.0\n', V1_6);
    const out = p.edits[0].content!;
    assert.match(out, /^oom_score = 0$/m);
    assert.match(out, /^pause_threshold = 0\.02$/m);
    assert.match(out, /^deletion_threshold = 0$/m);
    assert.match(out, /^x = 1\.0$/m);
  });
});

describe('containerd config version 3 (containerd 2.x): a drop-in', function () {
  it('containerd-2.1-v3.toml: writes conf.d/burrow.toml (version 3) and adds it to imports', function () {
    const text = fixture('containerd-2.1-v3.toml');
    const p = plan(text, V2_1);
    assert.equal(p.mode, 'drop-in');
    assert.deepEqual(p.edits.map((e) => e.path), [DROP, MAIN]);
    const drop = toml(p.edits[0].content!);
    assert.deepEqual(drop, {
      version: 3n,
      plugins: { 'io.containerd.cri.v1.runtime': { containerd: { runtimes: { burrow: { runtime_type: 'io.containerd.burrow.v2', pod_annotations: ['*'], container_annotations: ['*'] } } } } },
    });
    const main = toml(p.edits[1].content!);
    const before = toml(text);
    assert.deepEqual(main.imports, [DROP]);
    assert.deepEqual({ ...main, imports: [] }, before);
    // Registered: nothing to do the second time.
    assert.deepEqual(plan(p.edits[1].content!, V2_1, p.edits[0].content).edits, []);
    // Unregistering the main file takes out only our import entry.
    const un = planUnregistration(parseConfig(MAIN, p.edits[1].content!), DEFAULT_REGISTRATION, DROP);
    assert.deepEqual(toml(un!.content!), without(before, ['imports']));
  });
  it('containerd-2.2-v3-confd.toml: its conf.d/*.toml import covers the drop-in, so the main file is untouched', function () {
    const p = plan(fixture('containerd-2.2-v3-confd.toml'), V2_1);
    assert.deepEqual(p.edits.map((e) => e.path), [DROP]);
  });
  it('a version 2 main config on containerd 2.x gets a version 2 drop-in (never a higher version than the root)', function () {
    const p = plan(fixture('containerd-1.7-v2-edited.toml'), V2_1);
    assert.equal(p.version, 2);
    const drop = toml(p.edits[0].content!) as { version: bigint; plugins: Record<string, unknown> };
    assert.equal(drop.version, 2n);
    assert.deepEqual(Object.keys(drop.plugins), ['io.containerd.grpc.v1.cri']);
  });
  it('refuses a main config that defines the handler itself', function () {
    const text = `${fixture('containerd-2.2-v3-confd.toml')}\n[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.burrow]\nruntime_type = 'io.containerd.burrow.v2'\n`;
    assert.throws(() => plan(text, V2_1), /defines runtime handler "burrow" itself/);
  });
  it('imports patterns: relative to the config\'s dir, Go glob semantics', function () {
    assert.ok(importsCover(MAIN, ['conf.d/*.toml'], DROP));
    assert.ok(importsCover(MAIN, ['/etc/containerd/conf.d/b?rrow.toml'], DROP));
    assert.ok(importsCover(MAIN, ['/etc/containerd/conf.d/[a-c]urrow.toml'], DROP));
    assert.ok(!importsCover(MAIN, ['/etc/containerd/*.toml'], DROP), '* does not cross /');
    assert.ok(!importsCover(MAIN, ['/etc/containerd/conf.d/*.conf'], DROP));
    assert.ok(!importsCover(MAIN, [], DROP));
  });
});

describe('deploy/containerd files', function () {
  for (const v of [2, 3] as const) {
    it(`burrow-v${v}.toml is what the installer writes for config version ${v}`, function () {
      const file = fs.readFileSync(path.join(ROOT, 'deploy', 'containerd', `burrow-v${v}.toml`), 'utf8');
      const body = file.split('\n').filter((l) => !l.startsWith('#')).join('\n');
      assert.equal(body, renderDropIn(v, DEFAULT_REGISTRATION));
      assert.ok(registersHandler(parseConfig(`burrow-v${v}.toml`, file), 'burrow'));
    });
  }
});
