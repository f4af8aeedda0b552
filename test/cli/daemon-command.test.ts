import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { BUNDLE_FILE, daemonCommand, SNAPSHOT_FILE } from '../../shim/cli/daemon-command';
import { packageRoot } from '../../shim/package-root';

// Uses the build's own dist/ (npm run build makes the bundle and the snapshot).
describe('cli: how start runs the daemon', () => {
  const dist = path.join(packageRoot(), 'dist');
  const saved = process.env.BURROW_DAEMON_FORM;
  afterEach(() => {
    if (saved === undefined) delete process.env.BURROW_DAEMON_FORM;
    else process.env.BURROW_DAEMON_FORM = saved;
  });

  // The Node the wrapper runs under containerd: PATH's, not node_modules/.bin's (npm's
  // node-linux-<arch>, which `npm run`/`npx` put first), as scripts/bundle.js builds for.
  const hostNode = (): string => {
    for (const dir of (process.env.PATH ?? '').split(':')) {
      if (!dir || dir.split(path.sep).includes('node_modules')) continue;
      const candidate = path.join(dir, 'node');
      if (fs.existsSync(candidate)) return fs.realpathSync(candidate);
    }
    throw new Error(`no node on PATH ${process.env.PATH}`);
  };

  it('prefers the snapshot built by the Node that runs it, with the daemon flags after --', () => {
    delete process.env.BURROW_DAEMON_FORM;
    const node = hostNode();
    const st = fs.statSync(node);
    assert.equal(fs.readFileSync(path.join(dist, `${SNAPSHOT_FILE}.node`), 'utf8').trim(), `${st.size}:${Math.floor(st.mtimeMs / 1000)}`);
    assert.deepEqual(daemonCommand('/x/main.js', [], node), {
      form: 'snapshot', nodeArgs: ['--snapshot-blob', path.join(dist, SNAPSHOT_FILE), '--'],
    });
  });

  it('runs the bundle with a Node binary other than the one that built the snapshot', () => {
    delete process.env.BURROW_DAEMON_FORM;
    assert.deepEqual(daemonCommand('/x/main.js', [], '/bin/sh'), {
      form: 'bundle', nodeArgs: [path.join(dist, BUNDLE_FILE)],
    });
  });

  it('runs the bundle instead when Node has options the snapshot was not built with', () => {
    delete process.env.BURROW_DAEMON_FORM;
    assert.deepEqual(daemonCommand('/x/main.js', ['--inspect']), {
      form: 'bundle', nodeArgs: ['--inspect', path.join(dist, BUNDLE_FILE)],
    });
  });

  it('runs the form BURROW_DAEMON_FORM names', () => {
    process.env.BURROW_DAEMON_FORM = 'bundle';
    assert.equal(daemonCommand('/x/main.js', []).form, 'bundle');
    process.env.BURROW_DAEMON_FORM = 'modules';
    assert.deepEqual(daemonCommand('/x/main.js', []), { form: 'modules', nodeArgs: ['/x/main.js'] });
  });
});
