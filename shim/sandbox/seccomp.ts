// linux.seccomp → the seccomp part of the launch plan (native/src/seccomp.rs compiles it with
// libseccomp). Validation only: the plan keeps the spec's meaning (action, operator, flag and
// architecture names as strings), with one rule per syscall name as runc's config has it.
// Every value the native side would misread, or that Burrow cannot honour, is refused here by
// field name.

import { invalidArgument } from './errors';

export const SECCOMP_ACTIONS = [
  'SCMP_ACT_KILL',
  'SCMP_ACT_KILL_PROCESS',
  'SCMP_ACT_KILL_THREAD',
  'SCMP_ACT_TRAP',
  'SCMP_ACT_ERRNO',
  'SCMP_ACT_TRACE',
  'SCMP_ACT_ALLOW',
  'SCMP_ACT_LOG',
] as const;
export type SeccompAction = (typeof SECCOMP_ACTIONS)[number];

export const SECCOMP_OPERATORS = [
  'SCMP_CMP_NE',
  'SCMP_CMP_LT',
  'SCMP_CMP_LE',
  'SCMP_CMP_EQ',
  'SCMP_CMP_GE',
  'SCMP_CMP_GT',
  'SCMP_CMP_MASKED_EQ',
] as const;
export type SeccompOperator = (typeof SECCOMP_OPERATORS)[number];

/** The architectures of the OCI runtime spec that libseccomp (2.5) knows. */
export const SECCOMP_ARCHITECTURES = [
  'SCMP_ARCH_X86',
  'SCMP_ARCH_X86_64',
  'SCMP_ARCH_X32',
  'SCMP_ARCH_ARM',
  'SCMP_ARCH_AARCH64',
  'SCMP_ARCH_MIPS',
  'SCMP_ARCH_MIPS64',
  'SCMP_ARCH_MIPS64N32',
  'SCMP_ARCH_MIPSEL',
  'SCMP_ARCH_MIPSEL64',
  'SCMP_ARCH_MIPSEL64N32',
  'SCMP_ARCH_PPC',
  'SCMP_ARCH_PPC64',
  'SCMP_ARCH_PPC64LE',
  'SCMP_ARCH_S390',
  'SCMP_ARCH_S390X',
  'SCMP_ARCH_PARISC',
  'SCMP_ARCH_PARISC64',
  'SCMP_ARCH_RISCV64',
] as const;

/**
 * Filter flags Burrow applies. TSYNC is accepted and has no effect: it synchronizes a filter
 * to the caller's other threads, and the container's init has none.
 */
export const SECCOMP_FLAGS = ['SECCOMP_FILTER_FLAG_TSYNC', 'SECCOMP_FILTER_FLAG_LOG', 'SECCOMP_FILTER_FLAG_SPEC_ALLOW'] as const;
export type SeccompFlag = (typeof SECCOMP_FLAGS)[number];

export interface SeccompArg {
  /** Syscall argument number, 0 to 5. */
  index: number;
  /** The datum (or, for SCMP_CMP_MASKED_EQ, the mask). */
  value: number;
  /** For SCMP_CMP_MASKED_EQ, the value the masked argument must equal; otherwise unused. */
  valueTwo: number;
  op: SeccompOperator;
}

export interface SeccompRule {
  name: string;
  action: SeccompAction;
  /** errno for SCMP_ACT_ERRNO / message for SCMP_ACT_TRACE; null = EPERM, as in runc. */
  errnoRet: number | null;
  args: SeccompArg[];
}

export interface SeccompPlan {
  defaultAction: SeccompAction;
  defaultErrnoRet: number | null;
  architectures: string[];
  /** null: the spec has no flags field, and the runtime default applies (SPEC_ALLOW, as runc ≥ 1.2 and crun). */
  flags: SeccompFlag[] | null;
  syscalls: SeccompRule[];
}

const KNOWN_FIELDS = {
  seccomp: ['defaultAction', 'defaultErrnoRet', 'architectures', 'flags', 'listenerPath', 'listenerMetadata', 'syscalls'],
  syscall: ['names', 'action', 'errnoRet', 'args'],
  arg: ['index', 'value', 'valueTwo', 'op'],
};

// JSON numbers above 2^53 were already rounded when the spec was parsed: refuse rather than
// filter on a value the spec did not say.
const MAX_EXACT = Number.MAX_SAFE_INTEGER;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function rejectUnknown(obj: Record<string, unknown>, known: readonly string[], field: string): void {
  for (const k of Object.keys(obj)) {
    if (!known.includes(k)) throw invalidArgument(`${field}.${k}: not a field of the OCI seccomp profile`);
  }
}

function action(v: unknown, field: string): SeccompAction {
  if (v === 'SCMP_ACT_NOTIFY') {
    throw invalidArgument(`${field}: SCMP_ACT_NOTIFY is not supported by Burrow (no seccomp agent)`);
  }
  if (typeof v !== 'string' || !(SECCOMP_ACTIONS as readonly string[]).includes(v)) {
    throw invalidArgument(`${field}: unknown action ${JSON.stringify(v)} (expected one of ${SECCOMP_ACTIONS.join(', ')})`);
  }
  return v as SeccompAction;
}

function errnoRet(v: unknown, field: string): number | null {
  if (v === undefined || v === null) return null;
  // libseccomp keeps 16 bits of action data; the kernel caps errno values at 4095.
  if (!Number.isInteger(v) || (v as number) < 0 || (v as number) > 0xffff) {
    throw invalidArgument(`${field} must be an integer from 0 to 65535, got ${JSON.stringify(v)}`);
  }
  return v as number;
}

function datum(v: unknown, field: string): number {
  if (!Number.isInteger(v) || (v as number) < 0) {
    throw invalidArgument(`${field} must be a non-negative integer, got ${JSON.stringify(v)}`);
  }
  if ((v as number) > MAX_EXACT) {
    throw invalidArgument(`${field}: ${v} is above 2^53 and cannot be read exactly from JSON`);
  }
  return v as number;
}

function arg(v: unknown, field: string): SeccompArg {
  if (!isObject(v)) throw invalidArgument(`${field} must be an object`);
  rejectUnknown(v, KNOWN_FIELDS.arg, field);
  if (!Number.isInteger(v.index) || (v.index as number) < 0 || (v.index as number) > 5) {
    throw invalidArgument(`${field}.index must be a syscall argument number from 0 to 5, got ${JSON.stringify(v.index)}`);
  }
  if (typeof v.op !== 'string' || !(SECCOMP_OPERATORS as readonly string[]).includes(v.op)) {
    throw invalidArgument(`${field}.op: unknown operator ${JSON.stringify(v.op)} (expected one of ${SECCOMP_OPERATORS.join(', ')})`);
  }
  return {
    index: v.index as number,
    value: datum(v.value, `${field}.value`),
    valueTwo: v.valueTwo === undefined ? 0 : datum(v.valueTwo, `${field}.valueTwo`),
    op: v.op as SeccompOperator,
  };
}

function stringList(v: unknown, field: string): string[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v) || !v.every((s) => typeof s === 'string')) throw invalidArgument(`${field} must be an array of strings`);
  return v as string[];
}

/**
 * The plan for `linux.seccomp` (`field` names it in errors), or null when there is no filter:
 * no profile, or — as runc reads it — one with neither a default action nor syscalls.
 */
export function seccompPlan(seccomp: unknown, field = 'linux.seccomp'): SeccompPlan | null {
  if (seccomp === undefined || seccomp === null) return null;
  if (!isObject(seccomp)) throw invalidArgument(`${field} must be an object`);
  rejectUnknown(seccomp, KNOWN_FIELDS.seccomp, field);
  if (seccomp.listenerPath !== undefined && seccomp.listenerPath !== '') {
    throw invalidArgument(`${field}.listenerPath: seccomp notification listeners are not supported by Burrow`);
  }
  if (seccomp.listenerMetadata !== undefined && seccomp.listenerMetadata !== '') {
    throw invalidArgument(`${field}.listenerMetadata: seccomp notification listeners are not supported by Burrow`);
  }
  const rawSyscalls = seccomp.syscalls ?? [];
  if (!Array.isArray(rawSyscalls)) throw invalidArgument(`${field}.syscalls must be an array`);
  if ((seccomp.defaultAction === undefined || seccomp.defaultAction === '') && rawSyscalls.length === 0) return null;
  if (seccomp.defaultAction === undefined || seccomp.defaultAction === '') {
    throw invalidArgument(`${field}.defaultAction is required when syscalls are listed`);
  }
  const defaultAction = action(seccomp.defaultAction, `${field}.defaultAction`);
  const defaultErrnoRet = errnoRet(seccomp.defaultErrnoRet, `${field}.defaultErrnoRet`);

  const architectures = stringList(seccomp.architectures, `${field}.architectures`);
  for (const [i, a] of architectures.entries()) {
    if (!(SECCOMP_ARCHITECTURES as readonly string[]).includes(a)) {
      throw invalidArgument(`${field}.architectures[${i}]: unknown architecture ${JSON.stringify(a)}`);
    }
  }
  let flags: SeccompFlag[] | null = null;
  if (seccomp.flags !== undefined && seccomp.flags !== null) {
    flags = stringList(seccomp.flags, `${field}.flags`).map((f, i) => {
      if (f === 'SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV') {
        throw invalidArgument(`${field}.flags[${i}]: ${f} applies to notification listeners, which Burrow does not support`);
      }
      if (!(SECCOMP_FLAGS as readonly string[]).includes(f)) {
        throw invalidArgument(`${field}.flags[${i}]: unknown flag ${JSON.stringify(f)} (expected one of ${SECCOMP_FLAGS.join(', ')})`);
      }
      return f as SeccompFlag;
    });
  }

  const syscalls: SeccompRule[] = [];
  for (const [i, s] of rawSyscalls.entries()) {
    const sf = `${field}.syscalls[${i}]`;
    if (!isObject(s)) throw invalidArgument(`${sf} must be an object`);
    rejectUnknown(s, KNOWN_FIELDS.syscall, sf);
    if (!Array.isArray(s.names)) throw invalidArgument(`${sf}.names must be an array of syscall names`);
    for (const [j, n] of s.names.entries()) {
      if (typeof n !== 'string' || n === '') throw invalidArgument(`${sf}.names[${j}] must be a non-empty string`);
    }
    const act = action(s.action, `${sf}.action`);
    const ret = errnoRet(s.errnoRet, `${sf}.errnoRet`);
    if (s.args !== undefined && s.args !== null && !Array.isArray(s.args)) throw invalidArgument(`${sf}.args must be an array`);
    const args = ((s.args as unknown[] | null | undefined) ?? []).map((a, j) => arg(a, `${sf}.args[${j}]`));
    for (const name of s.names as string[]) {
      syscalls.push({ name, action: act, errnoRet: ret, args });
    }
  }

  return {
    defaultAction,
    defaultErrnoRet,
    architectures,
    flags,
    syscalls,
  };
}
