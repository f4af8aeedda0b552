import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { SandboxError } from '../../shim/sandbox/errors';
import { DEFAULT_STATE_ROOT, SandboxRecord, StateStore, stateRoot } from '../../shim/sandbox/state-store';
import { makeTempDir, removeTempDir } from '../fakes/fixtures';

function record(id: string, namespace = 'default', extra: Partial<SandboxRecord> = {}): SandboxRecord {
  return {
    id,
    namespace,
    bundle: `/run/containerd/io.containerd.runtime.v2.task/${namespace}/${id}`,
    rootfs: `/run/containerd/io.containerd.runtime.v2.task/${namespace}/${id}/rootfs`,
    rootfsMounted: true,
    pid: 4242,
    pidStartTime: '123456',
    privatePidNamespace: true,
    status: 'created',
    createdAt: '2024-01-01T00:00:00.000Z',
    stdio: { stdin: '', stdout: '/fifo/out', stderr: '/fifo/err', terminal: false },
    ...extra,
  };
}

function assertInvalidId(fn: () => unknown, id: string): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof SandboxError, String(err));
    assert.equal(err.kind, 'invalid-argument');
    assert.ok(err.message.includes(JSON.stringify(id)), err.message);
    return true;
  });
}

describe('sandbox: StateStore', () => {
  let root: string;
  let store: StateStore;

  beforeEach(() => {
    root = makeTempDir('burrow-state-');
    store = new StateStore(root);
  });

  afterEach(() => removeTempDir(root));

  it('keeps each sandbox under <root>/<namespace>/<id>', () => {
    assert.equal(store.dir('k8s.io', 'abc'), path.join(root, 'k8s.io', 'abc'));
  });

  it('claims a directory once; a second claim reports that it exists', () => {
    assert.equal(store.claim('default', 'c1'), true);
    assert.ok(fs.statSync(path.join(root, 'default', 'c1')).isDirectory());
    assert.equal(fs.statSync(path.join(root, 'default', 'c1')).mode & 0o777, 0o700);
    assert.equal(store.claim('default', 'c1'), false);
    // The same id in another namespace is another sandbox.
    assert.equal(store.claim('other', 'c1'), true);
  });

  it('saves and loads a record', () => {
    const rec = record('c1', 'default', { exitStatus: 137, exitedAt: { seconds: 1700000000, nanos: 5 }, status: 'stopped' });
    store.claim('default', 'c1');
    store.save(rec);
    assert.deepEqual(store.load('default', 'c1'), rec);
    const file = path.join(root, 'default', 'c1', 'state.json');
    assert.deepEqual(JSON.parse(fs.readFileSync(file, 'utf8')), rec);
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
  });

  it('overwrites atomically and leaves no temp file behind', () => {
    store.claim('default', 'c1');
    store.save(record('c1'));
    store.save(record('c1', 'default', { status: 'running' }));
    assert.equal(store.load('default', 'c1')!.status, 'running');
    assert.deepEqual(fs.readdirSync(path.join(root, 'default', 'c1')), ['state.json']);
  });

  it('load of an unknown sandbox is undefined', () => {
    assert.equal(store.load('default', 'nope'), undefined);
    store.claim('default', 'claimed');
    assert.equal(store.load('default', 'claimed'), undefined, 'claimed but never saved');
  });

  it('lists the sandboxes of a namespace that have a state file', () => {
    assert.deepEqual(store.list('default'), []);
    for (const id of ['b', 'a', 'c']) {
      store.claim('default', id);
      if (id !== 'c') store.save(record(id));
    }
    store.claim('other', 'x');
    store.save(record('x', 'other'));
    assert.deepEqual(store.list('default').sort(), ['a', 'b']);
    assert.deepEqual(store.list('other'), ['x']);
    assert.deepEqual(store.list('empty'), []);
  });

  it('removes a sandbox and its emptied namespace directory', () => {
    store.claim('default', 'a');
    store.save(record('a'));
    store.claim('default', 'b');
    store.save(record('b'));
    store.remove('default', 'a');
    assert.equal(fs.existsSync(path.join(root, 'default', 'a')), false);
    assert.deepEqual(store.list('default'), ['b']);
    store.remove('default', 'b');
    assert.equal(fs.existsSync(path.join(root, 'default')), false);
    // Idempotent.
    assert.doesNotThrow(() => store.remove('default', 'b'));
    // And a new claim recreates the namespace directory.
    assert.equal(store.claim('default', 'b'), true);
  });

  it('rejects ids and namespaces that are not identifiers', () => {
    for (const bad of ['..', '../x', 'a/b', '/etc', '.']) {
      assertInvalidId(() => store.claim('default', bad), bad);
      assertInvalidId(() => store.claim(bad, 'c1'), bad);
      assertInvalidId(() => store.load('default', bad), bad);
      assertInvalidId(() => store.remove('default', bad), bad);
      assertInvalidId(() => store.save(record(bad)), bad);
      assertInvalidId(() => store.list(bad), bad);
    }
    assert.deepEqual(fs.readdirSync(root), [], 'nothing was created');
  });

  it('reports the file path when a save fails', () => {
    // Never claimed: the directory does not exist.
    const file = path.join(root, 'default', 'c1', 'state.json');
    assert.throws(() => store.save(record('c1')), (err: Error) => {
      assert.ok(err.message.includes(JSON.stringify(file)), err.message);
      assert.match(err.message, /ENOENT/);
      return true;
    });
  });

  it('reports the file path when a state file cannot be parsed', () => {
    store.claim('default', 'c1');
    const file = path.join(root, 'default', 'c1', 'state.json');
    fs.writeFileSync(file, '{"id": "c1", ');
    assert.throws(() => store.load('default', 'c1'), (err: Error) => {
      assert.ok(err.message.includes(`parsing sandbox metadata file ${JSON.stringify(file)}`), err.message);
      return true;
    });
  });

  it('reports the file path when a state file cannot be read', () => {
    store.claim('default', 'c1');
    const file = path.join(root, 'default', 'c1', 'state.json');
    fs.mkdirSync(file);
    assert.throws(() => store.load('default', 'c1'), (err: Error) => {
      assert.ok(err.message.includes(`reading sandbox metadata file ${JSON.stringify(file)}`), err.message);
      assert.match(err.message, /EISDIR/);
      return true;
    });
  });

  it('takes its root from BURROW_ROOT, defaulting to /run/burrow', () => {
    const saved = process.env.BURROW_ROOT;
    try {
      delete process.env.BURROW_ROOT;
      assert.equal(stateRoot(), DEFAULT_STATE_ROOT);
      assert.equal(DEFAULT_STATE_ROOT, '/run/burrow');
      process.env.BURROW_ROOT = root;
      assert.equal(new StateStore().root, root);
    } finally {
      if (saved === undefined) delete process.env.BURROW_ROOT;
      else process.env.BURROW_ROOT = saved;
    }
  });
});
