// linux.seccomp end to end: every case runs the same container under containerd's runc shim
// (io.containerd.runc.v2, runc 1.1.5) and under Burrow, and both must give the same exit code
// and output. Custom profiles go through `ctr run --config`; containerd's own default profile
// through `ctr run --seccomp`. noNewPrivileges true and false load the filter at different
// points (right before execve / before dropping capabilities), so both are covered.

import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import {
  buildDir,
  BUSYBOX_REF,
  ensureHostTools,
  findBusybox,
  importImage,
  leakCheckEachCase,
  populateRootfs,
  PrivateContainerd,
  Result,
  RuntimeName,
  RUNTIMES,
  sleep,
} from './harness';

type Spec = Record<string, any>;
type Profile = Record<string, any>;

// Captured from `ctr run --seccomp` on containerd 1.6 (see test/sandbox/seccomp.test.ts).
const DEFAULT_PROFILE = path.join(__dirname, '../../e2e/fixtures/containerd-default-seccomp.json');
const defaultProfile = (): Profile => JSON.parse(fs.readFileSync(DEFAULT_PROFILE, 'utf8'));

const EPERM_MKDIR = "mkdir: can't create directory '/tmp/x': Operation not permitted";
// What the container reports: the failing call, its status, and that it is filtered.
const MKDIR_PROBE = 'mkdir /tmp/x; echo "mkdir rc=$?"; touch /tmp/y && echo touched; grep -E "^(Seccomp|NoNewPrivs)" /proc/self/status';

describe('seccomp: linux.seccomp under runc and Burrow', function () {
  this.timeout(240_000);
  let c: PrivateContainerd;
  let specDir: string;
  let rootfs: string;
  let n = 0;

  function specFor(id: string, profile: Profile | undefined, noNewPrivileges: boolean, script: string): Spec {
    const spec = JSON.parse(fs.readFileSync(path.join(__dirname, '../../e2e/fixtures/runc-default-config.json'), 'utf8'));
    spec.root = { path: rootfs };
    spec.process.terminal = false;
    spec.process.noNewPrivileges = noNewPrivileges;
    // stderr too: error messages are part of what must match.
    spec.process.args = ['sh', '-c', `exec 2>&1\n${script}`];
    spec.linux.cgroupsPath = `/default/${id}`;
    // The rootfs is shared by every case: writes go to a tmpfs of each container's own.
    spec.mounts.push({ destination: '/tmp', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'mode=1777', 'size=1m'] });
    if (profile) spec.linux.seccomp = profile;
    return spec;
  }

  async function runSpec(runtime: RuntimeName, profile: Profile | undefined, nnp: boolean, script: string): Promise<Result> {
    const id = `sc-${runtime}-${++n}`;
    const file = path.join(specDir, `${id}.json`);
    fs.writeFileSync(file, JSON.stringify(specFor(id, profile, nnp, script), null, 2));
    return c.ctr(['run', '--rm', '--config', file, '--runtime', RUNTIMES[runtime], id], { timeoutSec: 60 });
  }

  /** Runs the case under runc, then Burrow; asserts both exit alike with the same output. */
  async function both(name: string, go: (rt: RuntimeName) => Promise<Result>): Promise<Result> {
    const runc = await go('runc');
    const burrow = await go('burrow');
    assert.equal(
      burrow.code,
      runc.code,
      `${name}: exit code runc ${runc.code}, Burrow ${burrow.code}\nrunc: ${runc.stdout}${runc.stderr}\nBurrow: ${burrow.stdout}${burrow.stderr}`,
    );
    assert.equal(burrow.stdout, runc.stdout, `${name}: output differs\nBurrow stderr: ${burrow.stderr}`);
    return burrow;
  }

  before(async function () {
    ensureHostTools();
    c = await PrivateContainerd.start({ name: 'seccomp' });
    await importImage(c);
    specDir = buildDir('seccomp-specs');
    fs.rmSync(specDir, { recursive: true, force: true });
    rootfs = path.join(specDir, 'rootfs');
    fs.mkdirSync(rootfs, { recursive: true });
    await populateRootfs(rootfs, findBusybox());
  });

  after(async function () {
    if (c) await c.stop();
  });

  leakCheckEachCase(() => c);

  it("ctr run --seccomp: containerd's default profile is in force (Seccomp: 2)", async function () {
    const r = await both('default profile', (rt) =>
      c.ctr(['run', '--rm', '--seccomp', '--runtime', RUNTIMES[rt], BUSYBOX_REF, `sc-default-${rt}`, 'sh', '-c', 'grep Seccomp /proc/self/status; echo ok'], {
        timeoutSec: 60,
      }),
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^Seccomp:\s+2$/m);
    assert.match(r.stdout, /^ok$/m);
  });

  it('a container without linux.seccomp has no filter', async function () {
    const r = await both('no profile', (rt) => runSpec(rt, undefined, true, 'grep -E "^Seccomp:" /proc/self/status'));
    assert.equal(r.code, 0);
    assert.match(r.stdout, /^Seccomp:\s+0$/m);
  });

  for (const nnp of [true, false]) {
    describe(`noNewPrivileges ${nnp}`, function () {
      for (const [label, errnoRet, message] of [
        ['errnoRet 1', 1, EPERM_MKDIR],
        ['errnoRet unset (EPERM)', undefined, EPERM_MKDIR],
        ['errnoRet 28', 28, "mkdir: can't create directory '/tmp/x': No space left on device"],
      ] as const) {
        it(`defaultAction SCMP_ACT_ALLOW, mkdir → SCMP_ACT_ERRNO with ${label}`, async function () {
          const profile: Profile = {
            defaultAction: 'SCMP_ACT_ALLOW',
            architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'],
            syscalls: [{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO', ...(errnoRet === undefined ? {} : { errnoRet }) }],
          };
          const r = await both(label, (rt) => runSpec(rt, profile, nnp, MKDIR_PROBE));
          assert.equal(r.code, 0, r.stdout);
          assert.match(r.stdout, new RegExp(`^${message.replace(/[()]/g, '\\$&')}$`, 'm'));
          assert.match(r.stdout, /^mkdir rc=1$/m);
          assert.match(r.stdout, /^touched$/m);
          assert.match(r.stdout, /^Seccomp:\s+2$/m);
          assert.match(r.stdout, new RegExp(`^NoNewPrivs:\\s+${nnp ? 1 : 0}$`, 'm'));
        });
      }

      it('argument conditions: personality(PER_LINUX32) and some kill() signals refused', async function () {
        const profile: Profile = {
          defaultAction: 'SCMP_ACT_ALLOW',
          syscalls: [
            { names: ['personality'], action: 'SCMP_ACT_ERRNO', args: [{ index: 0, value: 8, op: 'SCMP_CMP_EQ' }] },
            // Two tests of the same argument become separate rules, either refuses (runc's
            // reading): signal 0, and SIGCHLD (17) through a mask.
            {
              names: ['kill'],
              action: 'SCMP_ACT_ERRNO',
              errnoRet: 13,
              args: [
                { index: 1, value: 1, op: 'SCMP_CMP_LT' },
                { index: 1, value: 0xff, valueTwo: 17, op: 'SCMP_CMP_MASKED_EQ' },
              ],
            },
          ],
        };
        // sh is pid 1 of its namespace: signals it has no handler for are dropped, harmlessly.
        const script = [
          'linux32 true; echo "linux32 rc=$?"',
          'linux64 true; echo "linux64 rc=$?"',
          'kill -0 $$; echo "kill -0 rc=$?"',
          'kill -CHLD $$; echo "kill -CHLD rc=$?"',
          'kill -URG $$; echo "kill -URG rc=$?"',
        ].join('\n');
        const r = await both('argument conditions', (rt) => runSpec(rt, profile, nnp, script));
        assert.equal(r.code, 0, r.stdout);
        assert.match(r.stdout, /^linux32: .*Operation not permitted$/m);
        assert.match(r.stdout, /^linux32 rc=[1-9]/m);
        assert.match(r.stdout, /^linux64 rc=0$/m);
        assert.match(r.stdout, /^kill -0 rc=[1-9]/m);
        assert.match(r.stdout, /Permission denied/);
        assert.match(r.stdout, /^kill -CHLD rc=[1-9]/m);
        assert.match(r.stdout, /^kill -URG rc=0$/m);
      });

      it("defaultAction SCMP_ACT_ERRNO: containerd's allow-list without mkdir/mkdirat", async function () {
        const profile = defaultProfile();
        for (const s of profile.syscalls) s.names = s.names.filter((name: string) => name !== 'mkdir' && name !== 'mkdirat');
        assert.equal(profile.defaultAction, 'SCMP_ACT_ERRNO');
        const r = await both('allow-list', (rt) => runSpec(rt, profile, nnp, MKDIR_PROBE));
        assert.equal(r.code, 0, r.stdout);
        assert.match(r.stdout, new RegExp(`^${EPERM_MKDIR}$`, 'm'));
        assert.match(r.stdout, /^touched$/m);
        assert.match(r.stdout, /^Seccomp:\s+2$/m);
      });

      it('execs get the container profile', async function () {
        const profile: Profile = {
          defaultAction: 'SCMP_ACT_ALLOW',
          syscalls: [{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO' }],
        };
        await both('exec', async (rt) => {
          const id = `sc-exec-${rt}-${++n}`;
          const file = path.join(specDir, `${id}.json`);
          fs.writeFileSync(file, JSON.stringify(specFor(id, profile, nnp, 'exec sleep 600'), null, 2));
          const started = await c.ctr(['run', '-d', '--config', file, '--runtime', RUNTIMES[rt], id]);
          assert.equal(started.code, 0, started.stderr);
          try {
            return await c.ctr(['task', 'exec', '--exec-id', 'probe', id, 'sh', '-c', `exec 2>&1\n${MKDIR_PROBE}`], { timeoutSec: 60 });
          } finally {
            await c.ctr(['task', 'kill', '-s', 'SIGKILL', id]);
            for (let i = 0; i < 50 && (await c.ctr(['task', 'rm', id])).code !== 0; i++) await sleep(100);
            await c.ctr(['container', 'rm', id]);
          }
        });
      });
    });
  }

  it('a profile with an unknown action fails ctr run, naming linux.seccomp, and leaves nothing', async function () {
    const profile: Profile = { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_BOGUS' }] };
    const runc = await runSpec('runc', profile, true, 'echo should not run');
    const burrow = await runSpec('burrow', profile, true, 'echo should not run');
    assert.notEqual(runc.code, 0, runc.stdout);
    assert.notEqual(burrow.code, 0, burrow.stdout);
    assert.equal(burrow.stdout, '');
    assert.match(burrow.stderr, /linux\.seccomp\.syscalls\[0\]\.action: unknown action "SCMP_ACT_BOGUS".*: invalid argument/);
  });
});
