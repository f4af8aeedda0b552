import { strict as assert } from 'assert';
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { pathToFileURL } from 'url';
import { SandboxError } from '../../shim/sandbox/errors';
import { ProcessIO, StdioConfig } from '../../shim/sandbox/stdio';
import { makeTempDir, openFdCount, removeTempDir } from '../fakes/fixtures';

const { O_RDONLY, O_WRONLY, O_RDWR, O_NONBLOCK } = fs.constants;
// Not in fs.constants; <fcntl.h>.
const O_ACCMODE = 0o3;

interface OpenFd {
  fd: number;
  flags: number;
}

/** Our fds open on `file`, with their open flags from /proc/self/fdinfo. */
function fdsOn(file: string): OpenFd[] {
  const out: OpenFd[] = [];
  for (const name of fs.readdirSync('/proc/self/fd')) {
    let target: string;
    try {
      target = fs.readlinkSync(`/proc/self/fd/${name}`);
    } catch {
      continue; // the directory fd readdir used, closed meanwhile
    }
    if (target !== file) continue;
    const info = fs.readFileSync(`/proc/self/fdinfo/${name}`, 'utf8');
    const flags = parseInt(/^flags:\s+([0-7]+)$/m.exec(info)![1], 8);
    out.push({ fd: Number(name), flags });
  }
  return out.sort((a, b) => a.fd - b.fd);
}

type ReadResult = { data: string } | 'EOF' | 'EAGAIN';

/** One read on a non-blocking fd: data, end of file (no writer left) or nothing yet. */
function tryRead(fd: number): ReadResult {
  const buf = Buffer.alloc(4096);
  try {
    const n = fs.readSync(fd, buf, 0, buf.length, null);
    return n === 0 ? 'EOF' : { data: buf.toString('utf8', 0, n) };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EAGAIN') return 'EAGAIN';
    throw err;
  }
}

function assertInvalid(fn: () => unknown, ...parts: string[]): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof SandboxError, String(err));
    assert.equal(err.kind, 'invalid-argument');
    for (const p of parts) assert.ok(err.message.includes(p), `${JSON.stringify(err.message)} should name ${p}`);
    return true;
  });
}

describe('sandbox: ProcessIO', () => {
  let dir: string;
  let ios: ProcessIO[];
  let ours: number[];

  beforeEach(() => {
    dir = makeTempDir('burrow-stdio-');
    ios = [];
    ours = [];
  });

  afterEach(() => {
    for (const io of ios) io.close();
    for (const fd of ours) {
      try {
        fs.closeSync(fd);
      } catch {
        // closed by the test already
      }
    }
    removeTempDir(dir);
  });

  function fifo(name: string): string {
    const p = path.join(dir, name);
    execFileSync('mkfifo', ['-m', '0600', p]);
    return p;
  }

  function open(cfg: Partial<StdioConfig>): ProcessIO {
    const io = ProcessIO.open({ stdin: '', stdout: '', stderr: '', terminal: false, ...cfg }, 'container c1');
    ios.push(io);
    return io;
  }

  /** An fd the test opened itself (closed in afterEach unless the test closes it). */
  function own(p: string, flags: number): number {
    const fd = fs.openSync(p, flags);
    ours.push(fd);
    return fd;
  }

  function closeOwn(fd: number): void {
    fs.closeSync(fd);
    ours.splice(ours.indexOf(fd), 1);
  }

  it('gives the child /dev/null (-1) for empty paths and opens nothing', () => {
    const before = openFdCount();
    const io = open({});
    assert.deepEqual(io.fds, [-1, -1, -1]);
    assert.equal(openFdCount(), before);
  });

  describe('stdout and stderr FIFOs', () => {
    it('opens a writer for the child and a non-blocking keep-alive reader', () => {
      const out = fifo('out');
      const before = openFdCount();
      const io = open({ stdout: out });
      assert.equal(io.fds[0], -1);
      assert.equal(io.fds[2], -1);
      assert.ok(io.fds[1] >= 0);
      const fds = fdsOn(out);
      assert.equal(fds.length, 2, JSON.stringify(fds));
      assert.equal(openFdCount(), before + 2);
      const writer = fds.find((f) => f.fd === io.fds[1])!;
      assert.equal(writer.flags & O_ACCMODE, O_WRONLY);
      const reader = fds.find((f) => f.fd !== io.fds[1])!;
      assert.equal(reader.flags & O_ACCMODE, O_RDONLY);
      assert.ok(reader.flags & O_NONBLOCK, 'the keep-alive reader must never block');
    });

    it('delivers what the child writes, and EOF once the shim lets go', () => {
      const out = fifo('out');
      const io = open({ stdout: out });
      const client = own(out, O_RDONLY | O_NONBLOCK);
      fs.writeSync(io.fds[1], 'hello from the container');
      assert.deepEqual(tryRead(client), { data: 'hello from the container' });
      assert.equal(tryRead(client), 'EAGAIN', 'no EOF while the child end is open');

      io.releaseChildEnds();
      assert.equal(fdsOn(out).length, 2, 'the keep-alive reader and the client reader stay');
      io.close();
      assert.deepEqual(fdsOn(out).map((f) => f.fd), [client], 'only the client reader is left');
      assert.equal(tryRead(client), 'EOF');
    });

    it('keeps writes from failing while the client reader is gone', () => {
      const out = fifo('out');
      const io = open({ stdout: out });
      const first = own(out, O_RDONLY | O_NONBLOCK);
      closeOwn(first);
      // Without the keep-alive reader this is EPIPE.
      assert.equal(fs.writeSync(io.fds[1], 'buffered'), 8);
      const again = own(out, O_RDONLY | O_NONBLOCK);
      assert.deepEqual(tryRead(again), { data: 'buffered' });
    });

    it('shares one writer when stderr is the same FIFO as stdout', () => {
      const out = fifo('out');
      const io = open({ stdout: out, stderr: out });
      assert.equal(io.fds[2], io.fds[1]);
      assert.equal(fdsOn(out).length, 2);
    });

    it('opens stderr on its own FIFO', () => {
      const out = fifo('out');
      const err = fifo('err');
      const io = open({ stdout: out, stderr: err });
      assert.notEqual(io.fds[2], io.fds[1]);
      assert.equal(fdsOn(err).length, 2);
      const errClient = own(err, O_RDONLY | O_NONBLOCK);
      const outClient = own(out, O_RDONLY | O_NONBLOCK);
      fs.writeSync(io.fds[2], 'oops');
      assert.deepEqual(tryRead(errClient), { data: 'oops' });
      assert.equal(tryRead(outClient), 'EAGAIN');
    });

    it('appends to an existing regular file given as a plain path', () => {
      const file = path.join(dir, 'plain.log');
      fs.writeFileSync(file, 'a');
      const io = open({ stdout: file });
      fs.writeSync(io.fds[1], 'b');
      io.close();
      assert.equal(fs.readFileSync(file, 'utf8'), 'ab');
    });
  });

  describe('stdin FIFO', () => {
    function setup(): { io: ProcessIO; input: string; client: number; probe: number } {
      const input = fifo('in');
      const io = open({ stdin: input });
      assert.ok(io.fds[0] >= 0);
      assert.equal(io.fds[1], -1);
      const fds = fdsOn(input);
      assert.equal(fds.length, 2, 'a reader for the child and the shim\'s own writer');
      const child = fds.find((f) => f.fd === io.fds[0])!;
      assert.equal(child.flags & O_ACCMODE, O_RDONLY);
      assert.equal(child.flags & O_NONBLOCK, 0, 'the child reads stdin blocking');
      assert.equal(fds.find((f) => f.fd !== io.fds[0])!.flags & O_ACCMODE, O_RDWR);
      // The client (containerd's cio) writes; a probe reader tells EOF from "no data yet".
      const client = own(input, O_WRONLY | O_NONBLOCK);
      const probe = own(input, O_RDONLY | O_NONBLOCK);
      return { io, input, client, probe };
    }

    it('passes what the client writes to the child', () => {
      const { io, client } = setup();
      fs.writeSync(client, 'ping\n');
      const buf = Buffer.alloc(64);
      const n = fs.readSync(io.fds[0], buf, 0, buf.length, null);
      assert.equal(buf.toString('utf8', 0, n), 'ping\n');
    });

    it('gives EOF only after the client closed its writer and then CloseIO', () => {
      const { io, client, probe } = setup();
      assert.equal(tryRead(probe), 'EAGAIN');
      closeOwn(client);
      assert.equal(tryRead(probe), 'EAGAIN', 'the shim\'s writer still holds stdin open');
      io.closeStdin();
      assert.equal(tryRead(probe), 'EOF');
      // Safe to read blocking now: no writer is left, so the child's end sees EOF too.
      assert.equal(fs.readSync(io.fds[0], Buffer.alloc(8), 0, 8, null), 0);
    });

    it('gives EOF only after CloseIO and then the client closed its writer', () => {
      const { io, client, probe } = setup();
      io.closeStdin();
      io.closeStdin(); // idempotent
      assert.equal(tryRead(probe), 'EAGAIN', 'the client can still write (re-attach)');
      fs.writeSync(client, 'late');
      assert.deepEqual(tryRead(probe), { data: 'late' });
      closeOwn(client);
      assert.equal(tryRead(probe), 'EOF');
    });

    it('closes every stdin fd on close()', () => {
      const { io, input, client, probe } = setup();
      io.close();
      assert.deepEqual(fdsOn(input).map((f) => f.fd), [client, probe].sort((a, b) => a - b));
    });
  });

  describe('file:// URIs', () => {
    it('appends stdout and stderr to the file, creating its directory', () => {
      const file = path.join(dir, 'logs dir', 'nested', 'c1.log');
      const uri = pathToFileURL(file).href;
      assert.ok(uri.includes('%20'), uri);
      const first = open({ stdout: uri, stderr: uri });
      assert.equal(first.fds[2], first.fds[1]);
      fs.writeSync(first.fds[1], 'one\n');
      first.close();
      const second = open({ stdout: uri, stderr: '' });
      assert.equal(second.fds[2], second.fds[1], 'the stderr string is ignored for file://');
      fs.writeSync(second.fds[2], 'two\n');
      second.close();
      assert.equal(fs.readFileSync(file, 'utf8'), 'one\ntwo\n');
      assert.equal(fs.statSync(file).mode & 0o777, 0o644 & ~process.umask());
    });
  });

  describe('rejections', () => {
    it('rejects binary:// logging, naming the URI, without leaking fds', () => {
      const input = fifo('in');
      const before = openFdCount();
      assertInvalid(() => open({ stdin: input, stdout: 'binary:///usr/bin/logger?tag=x' }), 'container c1', 'binary://', '/usr/bin/logger');
      assert.equal(openFdCount(), before);
    });

    it('rejects other unknown schemes', () => {
      assertInvalid(() => open({ stdout: 'syslog://localhost' }), 'syslog://');
    });

    it('with a terminal, hands the FIFOs to the relay and gives the child none', () => {
      const before = openFdCount();
      const io = open({ stdin: fifo('tin'), stdout: fifo('tout'), terminal: true });
      assert.deepEqual(io.fds, [-1, -1, -1]);
      const relay = io.handOverToRelay();
      assert.ok(relay.stdin >= 0 && relay.stdout >= 0);
      // A second hand-over gets nothing: the relay owns the fds now.
      assert.deepEqual(io.handOverToRelay(), { stdin: -1, stdout: -1 });
      io.close();
      fs.closeSync(relay.stdin);
      fs.closeSync(relay.stdout);
      assert.equal(openFdCount(), before);
    });

    it('with a terminal, refuses a file:// stdout and leaves no fd open', () => {
      const before = openFdCount();
      assertInvalid(() => open({ stdout: `file://${path.join(dir, 'log')}`, terminal: true }), 'only FIFOs');
      assert.equal(openFdCount(), before);
    });

    it('fails for a missing stdout or stderr FIFO and leaves no fd open', () => {
      const input = fifo('in');
      const out = fifo('out');
      const missing = path.join(dir, 'gone-stderr');
      const before = openFdCount();
      assertInvalid(() => open({ stdin: input, stdout: out, stderr: missing }), missing, 'ENOENT');
      assert.equal(openFdCount(), before);
      assert.deepEqual(fdsOn(input), []);
      assert.deepEqual(fdsOn(out), []);
    });

    it('fails for a missing stdin FIFO and leaves no fd open', () => {
      const missing = path.join(dir, 'gone-stdin');
      const before = openFdCount();
      assertInvalid(() => open({ stdin: missing, stdout: fifo('out') }), 'stdin', missing);
      assert.equal(openFdCount(), before);
    });
  });
});
