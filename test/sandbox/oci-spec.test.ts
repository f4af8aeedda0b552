import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { SandboxError } from '../../shim/sandbox/errors';
import { loadSpec } from '../../shim/sandbox/oci-spec';
import { defaultSpec, makeTempDir, removeTempDir } from '../fakes/fixtures';

describe('sandbox: loadSpec', () => {
  let bundle: string;
  let file: string;

  beforeEach(() => {
    bundle = makeTempDir('burrow-spec-');
    file = path.join(bundle, 'config.json');
  });

  afterEach(() => removeTempDir(bundle));

  function write(spec: unknown): void {
    fs.writeFileSync(file, typeof spec === 'string' ? spec : JSON.stringify(spec));
  }

  /** Writes `spec` changed by `mutate` and expects loadSpec to fail naming the file and `problem`. */
  function expectInvalid(problem: RegExp, mutate?: (s: Record<string, any>) => void, raw?: string): SandboxError {
    if (raw !== undefined) {
      write(raw);
    } else {
      const s = defaultSpec() as unknown as Record<string, any>;
      mutate?.(s);
      write(s);
    }
    let caught: unknown;
    try {
      loadSpec(bundle);
    } catch (err) {
      caught = err;
    }
    assert.ok(caught instanceof SandboxError, `expected a SandboxError, got ${String(caught)}`);
    assert.equal(caught.kind, 'invalid-argument');
    assert.ok(caught.message.includes(JSON.stringify(file)), `${caught.message} should name ${file}`);
    assert.match(caught.message, problem);
    return caught;
  }

  it('loads containerd\'s default spec unchanged', () => {
    write(defaultSpec());
    assert.deepEqual(loadSpec(bundle), defaultSpec());
  });

  it('fails for a missing config.json', () => {
    let caught: unknown;
    try {
      loadSpec(bundle);
    } catch (err) {
      caught = err;
    }
    assert.ok(caught instanceof SandboxError);
    assert.equal(caught.kind, 'invalid-argument');
    assert.match(caught.message, /error reading OCI spec/);
    assert.ok(caught.message.includes(JSON.stringify(file)), caught.message);
    assert.match(caught.message, /ENOENT/);
  });

  it('fails for a bundle that does not exist', () => {
    const missing = path.join(bundle, 'nope');
    assert.throws(() => loadSpec(missing), (err: SandboxError) => {
      assert.equal(err.kind, 'invalid-argument');
      assert.ok(err.message.includes(path.join(missing, 'config.json')), err.message);
      return true;
    });
  });

  it('fails for bad JSON', () => {
    expectInvalid(/error parsing OCI spec/, undefined, '{"ociVersion": "1.0.2",');
  });

  it('fails for JSON that is not an object', () => {
    expectInvalid(/not a JSON object/, undefined, '[]');
    expectInvalid(/not a JSON object/, undefined, 'null');
    expectInvalid(/not a JSON object/, undefined, '"spec"');
  });

  it('requires ociVersion', () => {
    expectInvalid(/ociVersion must be a string/, (s) => delete s.ociVersion);
  });

  it('requires process', () => {
    expectInvalid(/process is required/, (s) => delete s.process);
    expectInvalid(/process is required/, (s) => (s.process = null));
  });

  it('requires process.args as a non-empty array of strings', () => {
    expectInvalid(/process\.args must be a non-empty array of strings/, (s) => delete s.process.args);
    expectInvalid(/process\.args/, (s) => (s.process.args = []));
    expectInvalid(/process\.args/, (s) => (s.process.args = ['sh', 1]));
    expectInvalid(/process\.args/, (s) => (s.process.args = 'sh -c true'));
  });

  it('requires an absolute process.cwd', () => {
    expectInvalid(/process\.cwd must be an absolute path/, (s) => delete s.process.cwd);
    expectInvalid(/process\.cwd/, (s) => (s.process.cwd = 'work'));
  });

  it('requires integer process.user.uid and gid', () => {
    expectInvalid(/process\.user\.uid and process\.user\.gid/, (s) => delete s.process.user);
    expectInvalid(/process\.user/, (s) => (s.process.user.uid = '0'));
    expectInvalid(/process\.user/, (s) => delete s.process.user.gid);
    expectInvalid(/process\.user/, (s) => (s.process.user.gid = 1.5));
  });

  it('requires process.env to be strings', () => {
    expectInvalid(/process\.env must be an array of strings/, (s) => (s.process.env = ['A=1', 2]));
    expectInvalid(/process\.env/, (s) => (s.process.env = 'A=1'));
  });

  it('requires root.path', () => {
    expectInvalid(/root\.path is required/, (s) => delete s.root);
    expectInvalid(/root\.path is required/, (s) => (s.root = { path: '' }));
    expectInvalid(/root\.path is required/, (s) => (s.root = { path: 7 }));
  });

  it('checks the shape of mounts', () => {
    expectInvalid(/mounts must be an array/, (s) => (s.mounts = {}));
    expectInvalid(/mounts\[2\]\.destination is required/, (s) => delete s.mounts[2].destination);
    expectInvalid(/mounts\[0\]\.destination is required/, (s) => (s.mounts[0] = 'proc'));
    expectInvalid(/mounts\[1\]\.options must be an array/, (s) => (s.mounts[1].options = 'nosuid'));
  });

  it('checks the shape of linux and linux.namespaces', () => {
    expectInvalid(/linux must be an object/, (s) => (s.linux = 'yes'));
    expectInvalid(/linux must be an object/, (s) => (s.linux = null));
    expectInvalid(/linux\.namespaces must be an array/, (s) => (s.linux.namespaces = { pid: {} }));
  });
});
