import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { packageRoot } from '../../shim/package-root';
import { SandboxError } from '../../shim/sandbox/errors';
import { buildExecPlan, buildInitPlan } from '../../shim/sandbox/launch-plan';
import { seccompPlan } from '../../shim/sandbox/seccomp';
import { defaultSpec, makeTempDir, removeTempDir } from '../fakes/fixtures';

// containerd 1.6's default profile as `ctr run --seccomp` puts it in a spec (captured with
// `ctr container info`): 349 allowed names, conditional personality/clone rules, clone3 → ENOSYS.
const DEFAULT_PROFILE = path.join(packageRoot(), 'e2e', 'fixtures', 'containerd-default-seccomp.json');

function invalid(profile: unknown, ...parts: string[]): void {
  let caught: unknown;
  try {
    seccompPlan(profile);
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof SandboxError, `expected a SandboxError for ${JSON.stringify(profile)}, got ${String(caught)}`);
  assert.equal(caught.kind, 'invalid-argument', caught.message);
  for (const p of parts) assert.ok(caught.message.includes(p), `${JSON.stringify(caught.message)} should contain ${p}`);
}

const allow = (extra: Record<string, unknown> = {}) => ({ defaultAction: 'SCMP_ACT_ALLOW', ...extra });
const rule = (extra: Record<string, unknown> = {}) => ({ names: ['mkdir'], action: 'SCMP_ACT_ERRNO', ...extra });

describe('sandbox: seccomp profile → plan', () => {
  describe('conversion', () => {
    it('no profile, or one with neither default action nor syscalls (as runc), is no filter', () => {
      assert.equal(seccompPlan(undefined), null);
      assert.equal(seccompPlan(null), null);
      assert.equal(seccompPlan({}), null);
      assert.equal(seccompPlan({ defaultAction: '', architectures: ['SCMP_ARCH_X86_64'] }), null);
    });

    it("containerd's default profile: one rule per name, arguments and errnoRet kept", () => {
      const profile = JSON.parse(fs.readFileSync(DEFAULT_PROFILE, 'utf8'));
      const plan = seccompPlan(profile)!;
      assert.equal(plan.defaultAction, 'SCMP_ACT_ERRNO');
      assert.equal(plan.defaultErrnoRet, null);
      assert.deepEqual(plan.architectures, ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32']);
      assert.equal(plan.flags, null, 'no flags field: the runtime default applies');
      const names = profile.syscalls.reduce((n: number, s: { names: string[] }) => n + s.names.length, 0);
      assert.equal(plan.syscalls.length, names);
      assert.deepEqual(
        plan.syscalls.find((s) => s.name === 'mkdir'),
        { name: 'mkdir', action: 'SCMP_ACT_ALLOW', errnoRet: null, args: [] },
      );
      assert.deepEqual(plan.syscalls.find((s) => s.name === 'clone3'), { name: 'clone3', action: 'SCMP_ACT_ERRNO', errnoRet: 38, args: [] });
      // valueTwo absent = 0: clone is allowed when (flags & mask) == 0.
      assert.deepEqual(plan.syscalls.find((s) => s.name === 'clone')!.args, [
        { index: 0, value: 2114060288, valueTwo: 0, op: 'SCMP_CMP_MASKED_EQ' },
      ]);
      const personality = plan.syscalls.filter((s) => s.name === 'personality').map((s) => s.args[0].value);
      assert.deepEqual(personality, [0, 8, 131072, 131080, 4294967295]);
    });

    it('keeps errnoRet, flags, every operator and action as given', () => {
      const plan = seccompPlan({
        defaultAction: 'SCMP_ACT_ERRNO',
        defaultErrnoRet: 38,
        flags: ['SECCOMP_FILTER_FLAG_LOG', 'SECCOMP_FILTER_FLAG_SPEC_ALLOW', 'SECCOMP_FILTER_FLAG_TSYNC'],
        syscalls: [
          { names: ['read', 'write'], action: 'SCMP_ACT_ALLOW' },
          {
            names: ['personality'],
            action: 'SCMP_ACT_TRACE',
            errnoRet: 7,
            args: ['SCMP_CMP_NE', 'SCMP_CMP_LT', 'SCMP_CMP_LE', 'SCMP_CMP_EQ', 'SCMP_CMP_GE', 'SCMP_CMP_GT', 'SCMP_CMP_MASKED_EQ'].map(
              (op, i) => ({ index: i % 6, value: i, valueTwo: 2 * i, op }),
            ),
          },
          { names: ['kill'], action: 'SCMP_ACT_KILL_PROCESS' },
        ],
      })!;
      assert.equal(plan.defaultErrnoRet, 38);
      assert.deepEqual(plan.flags, ['SECCOMP_FILTER_FLAG_LOG', 'SECCOMP_FILTER_FLAG_SPEC_ALLOW', 'SECCOMP_FILTER_FLAG_TSYNC']);
      assert.deepEqual(
        plan.syscalls.map((s) => [s.name, s.action, s.errnoRet]),
        [
          ['read', 'SCMP_ACT_ALLOW', null],
          ['write', 'SCMP_ACT_ALLOW', null],
          ['personality', 'SCMP_ACT_TRACE', 7],
          ['kill', 'SCMP_ACT_KILL_PROCESS', null],
        ],
      );
      assert.equal(plan.syscalls[2].args.length, 7);
      assert.deepEqual(plan.syscalls[2].args[6], { index: 0, value: 6, valueTwo: 12, op: 'SCMP_CMP_MASKED_EQ' });
    });

    it('an empty flags list stays empty (no flags), unlike an absent one', () => {
      assert.deepEqual(seccompPlan(allow({ flags: [] }))!.flags, []);
      assert.equal(seccompPlan(allow())!.flags, null);
    });

    it('the plan survives the JSON trip to the native side unchanged', () => {
      const plan = seccompPlan(JSON.parse(fs.readFileSync(DEFAULT_PROFILE, 'utf8')));
      assert.deepEqual(JSON.parse(JSON.stringify(plan)), plan);
    });
  });

  describe('rejections name the field', () => {
    it('unknown or unsupported actions', () => {
      invalid({ defaultAction: 'SCMP_ACT_BOGUS' }, 'linux.seccomp.defaultAction', 'unknown action "SCMP_ACT_BOGUS"');
      invalid(allow({ syscalls: [rule({ action: 'SCMP_ACT_NOPE' })] }), 'linux.seccomp.syscalls[0].action', 'SCMP_ACT_NOPE');
      invalid(allow({ syscalls: [rule(), rule({ action: 42 })] }), 'linux.seccomp.syscalls[1].action');
      invalid({ defaultAction: 'SCMP_ACT_NOTIFY' }, 'linux.seccomp.defaultAction', 'SCMP_ACT_NOTIFY is not supported');
      invalid(allow({ syscalls: [rule({ action: 'SCMP_ACT_NOTIFY' })] }), 'linux.seccomp.syscalls[0].action', 'not supported');
      invalid({ syscalls: [rule()] }, 'linux.seccomp.defaultAction is required');
    });

    it('listeners (seccomp notify) are not supported', () => {
      invalid(allow({ listenerPath: '/run/agent.sock' }), 'linux.seccomp.listenerPath', 'not supported');
      invalid(allow({ listenerMetadata: 'x' }), 'linux.seccomp.listenerMetadata', 'not supported');
      invalid(allow({ flags: ['SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV'] }), 'linux.seccomp.flags[0]', 'listeners');
    });

    it('unknown architectures and flags', () => {
      invalid(allow({ architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_VAX'] }), 'linux.seccomp.architectures[1]', 'SCMP_ARCH_VAX');
      invalid(allow({ architectures: 'SCMP_ARCH_X86_64' }), 'linux.seccomp.architectures must be an array');
      invalid(allow({ flags: ['SECCOMP_FILTER_FLAG_LOG', 'SECCOMP_FILTER_FLAG_FAST'] }), 'linux.seccomp.flags[1]', 'SECCOMP_FILTER_FLAG_FAST');
    });

    it('bad argument conditions', () => {
      const withArg = (a: Record<string, unknown>) => allow({ syscalls: [rule({ args: [{ index: 0, value: 1, op: 'SCMP_CMP_EQ', ...a }] })] });
      invalid(withArg({ op: 'SCMP_CMP_ABOUT' }), 'linux.seccomp.syscalls[0].args[0].op', 'SCMP_CMP_ABOUT');
      invalid(withArg({ index: 6 }), 'linux.seccomp.syscalls[0].args[0].index', '0 to 5');
      invalid(withArg({ index: -1 }), 'linux.seccomp.syscalls[0].args[0].index');
      invalid(withArg({ value: undefined }), 'linux.seccomp.syscalls[0].args[0].value');
      invalid(withArg({ value: -1 }), 'linux.seccomp.syscalls[0].args[0].value');
      invalid(withArg({ valueTwo: 1.5 }), 'linux.seccomp.syscalls[0].args[0].valueTwo');
      // Already rounded by JSON.parse: filtering on it would filter on another number.
      invalid(withArg({ value: 2 ** 64 }), 'linux.seccomp.syscalls[0].args[0].value', 'above 2^53');
      invalid(allow({ syscalls: [rule({ args: {} })] }), 'linux.seccomp.syscalls[0].args must be an array');
    });

    it('bad names, errnoRet and unknown fields', () => {
      invalid(allow({ syscalls: [rule({ names: 'mkdir' })] }), 'linux.seccomp.syscalls[0].names');
      invalid(allow({ syscalls: [rule({ names: ['mkdir', ''] })] }), 'linux.seccomp.syscalls[0].names[1]');
      invalid(allow({ syscalls: [rule({ errnoRet: -1 })] }), 'linux.seccomp.syscalls[0].errnoRet');
      invalid(allow({ defaultErrnoRet: 70000 }), 'linux.seccomp.defaultErrnoRet');
      invalid(allow({ syscalls: [rule({ errnoret: 1 })] }), 'linux.seccomp.syscalls[0].errnoret');
      invalid(allow({ syscalls: [rule({ args: [{ index: 0, value: 1, op: 'SCMP_CMP_EQ', valuetwo: 2 }] })] }), 'linux.seccomp.syscalls[0].args[0].valuetwo');
      invalid(allow({ includes: {} }), 'linux.seccomp.includes');
      invalid('SCMP_ACT_ALLOW', 'linux.seccomp must be an object');
      invalid(allow({ syscalls: ['mkdir'] }), 'linux.seccomp.syscalls[0] must be an object');
    });
  });

  describe('in launch plans', () => {
    let tmp: string;
    before(() => {
      tmp = makeTempDir('burrow-seccomp-');
      fs.mkdirSync(path.join(tmp, 'rootfs'));
    });
    after(() => removeTempDir(tmp));

    it('the init and its execs get the container profile', () => {
      const spec = defaultSpec();
      spec.linux!.seccomp = allow({ syscalls: [rule({ errnoRet: 1 })] });
      const init = buildInitPlan({ id: 'c1', bundle: tmp, spec, stdio: [10, 11, 12] });
      assert.deepEqual(init.seccomp!.syscalls, [{ name: 'mkdir', action: 'SCMP_ACT_ERRNO', errnoRet: 1, args: [] }]);
      const exec = buildExecPlan({
        id: 'c1',
        execId: 'e1',
        spec,
        process: { ...spec.process!, args: ['true'], noNewPrivileges: false },
        initPid: 4242,
        stdio: [10, 11, 12],
        terminal: false,
      });
      assert.deepEqual(exec.seccomp, init.seccomp);
      assert.equal(exec.noNewPrivileges, false);
    });

    it('a bad profile fails the create by field', () => {
      const spec = defaultSpec();
      spec.linux!.seccomp = allow({ syscalls: [rule({ action: 'SCMP_ACT_BOGUS' })] });
      assert.throws(() => buildInitPlan({ id: 'c1', bundle: tmp, spec, stdio: [10, 11, 12] }), /linux\.seccomp\.syscalls\[0\]\.action/);
    });
  });
});
