import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { createLogger } from '../../shim/cli/logging';
import { makeTempDir, removeTempDir } from '../fakes/fixtures';

describe('cli: the daemon logger', () => {
  let dir: string;
  beforeEach(() => (dir = makeTempDir()));
  afterEach(() => removeTempDir(dir));

  const logTo = (debug: boolean, body: (log: ReturnType<typeof createLogger>) => void): string[] => {
    const file = path.join(dir, 'log');
    const fd = fs.openSync(file, 'w');
    try {
      body(createLogger({ debug, id: 'c1', namespace: 'k8s.io' }, fd));
    } finally {
      fs.closeSync(fd);
    }
    return fs.readFileSync(file, 'utf8').split('\n').filter(Boolean);
  };

  it('writes logfmt lines like runc\'s shim, quoting what needs it', () => {
    const [line] = logTo(false, (log) => log.info('shim started', { id: 'c1', pid: 42, socket: '/run/s x', obj: { a: 1 } }));
    assert.match(
      line,
      /^time="\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z" level=info msg="shim started" runtime=io\.containerd\.burrow\.v2 namespace=k8s\.io id=c1 pid=42 socket="\/run\/s x" obj="\{\\"a\\":1\}"$/,
    );
  });

  it('drops debug lines unless -debug, keeps the other levels', () => {
    const levels = (debug: boolean) => logTo(debug, (log) => {
      log.debug('d');
      log.info('i');
      log.warn('w');
      log.error('e', { error: 'boom' });
    }).map((l) => /level=(\w+)/.exec(l)?.[1]);
    assert.deepEqual(levels(false), ['info', 'warn', 'error']);
    assert.deepEqual(levels(true), ['debug', 'info', 'warn', 'error']);
  });

  it('drops a line it cannot write instead of throwing', () => {
    const log = createLogger({ debug: false, id: 'c1', namespace: 'default' }, 987654);
    log.error('nowhere to go');
  });
});
