// The devices a container may use: the spec's linux.resources.devices followed by runc's
// default rules, reduced to the state the v1 devices controller ends up in (runc's
// devices emulator), so it can be written from scratch and checked against devices.list.

import { invalidArgument } from '../errors';
import type { DeviceFilterRules } from '../native-api';
import type { OciDevice } from '../oci-spec';
import type { DeviceRule } from './resources';

/** A device cgroup's state: default allow (blacklist) or deny (whitelist), plus exceptions. */
export interface DeviceState {
  defaultAllow: boolean;
  /** "c 1:3 rwm" style exceptions (major/minor `*` for any), sorted. */
  exceptions: string[];
}

interface DefaultRule {
  /** The device node it is for: a spec device at the same path replaces it (runc). */
  path?: string;
  rule: DeviceRule;
}

const rwm = (type: 'b' | 'c', major: number, minor: number, access = 'rwm', path?: string): DefaultRule => ({
  path,
  rule: { allow: true, type, major, minor, access },
});

/** runc's specconv.AllowedDevices, in its order. */
export const RUNC_DEFAULT_DEVICE_RULES: readonly DefaultRule[] = [
  // mknod of any device node: opening it is what the rules below decide.
  rwm('c', -1, -1, 'm'),
  rwm('b', -1, -1, 'm'),
  rwm('c', 1, 3, 'rwm', '/dev/null'),
  rwm('c', 1, 8, 'rwm', '/dev/random'),
  rwm('c', 1, 7, 'rwm', '/dev/full'),
  rwm('c', 5, 0, 'rwm', '/dev/tty'),
  rwm('c', 1, 5, 'rwm', '/dev/zero'),
  rwm('c', 1, 9, 'rwm', '/dev/urandom'),
  // /dev/pts/*, /dev/ptmx
  rwm('c', 136, -1),
  rwm('c', 5, 2),
  // /dev/net/tun: kept by runc for compatibility (opencontainers/runc#3468).
  rwm('c', 10, 200),
];

/** The full rule list runc applies: the spec's, then its defaults not replaced by linux.devices. */
export function effectiveDeviceRules(specRules: DeviceRule[], linuxDevices: OciDevice[] = []): DeviceRule[] {
  const specPaths = new Set(linuxDevices.map((d) => d.path));
  return [...specRules, ...RUNC_DEFAULT_DEVICE_RULES.filter((d) => !d.path || !specPaths.has(d.path)).map((d) => d.rule)];
}

const num = (n: number) => (n < 0 ? '*' : String(n));

/** "c 1:3 rwm": a rule as devices.allow/devices.deny/devices.list spell it. */
export function ruleString(r: { type: string; major: number; minor: number; access: string }): string {
  return `${r.type} ${num(r.major)}:${num(r.minor)} ${r.access}`;
}

const ACCESS_ORDER = 'rwm';
const sortAccess = (s: Iterable<string>) => [...new Set(s)].sort((a, b) => ACCESS_ORDER.indexOf(a) - ACCESS_ORDER.indexOf(b)).join('');

/**
 * Applies the rules in order, as the kernel (and runc's emulator) do: a type-`a` rule resets
 * everything (allow → allow all, deny → deny all); other rules add exceptions against the
 * default or take access away from an exception of exactly the same device. Like runc, a rule
 * that would punch a hole into a wildcard exception is refused: cgroup v1 would silently ignore it.
 * Starts from deny-all, as runc's target state does.
 */
export function deviceState(rules: DeviceRule[]): DeviceState {
  let defaultAllow = false;
  let ex = new Map<string, Set<string>>();
  for (const [i, r] of rules.entries()) {
    if (r.type === 'a') {
      defaultAllow = r.allow;
      ex = new Map();
      continue;
    }
    const key = `${r.type} ${num(r.major)}:${num(r.minor)}`;
    // allow in a whitelist and deny in a blacklist add; the other two remove.
    if (r.allow !== defaultAllow) {
      const set = ex.get(key) ?? new Set<string>();
      for (const a of r.access) set.add(a);
      ex.set(key, set);
      continue;
    }
    for (const partial of [`${r.type} *:${num(r.minor)}`, `${r.type} ${num(r.major)}:*`, `${r.type} *:*`]) {
      if (partial === key) continue;
      const have = ex.get(partial);
      if (have && [...r.access].some((a) => have.has(a))) {
        throw invalidArgument(
          `linux.resources.devices[${i}]: rule "${ruleString(r)}" cannot take access away from the wildcard ` +
            `rule "${partial} ${sortAccess(have)}" with the cgroup devices controller`,
        );
      }
    }
    const set = ex.get(key);
    if (!set) continue;
    for (const a of r.access) set.delete(a);
    if (set.size === 0) ex.delete(key);
  }
  const exceptions = [...ex.entries()].map(([k, set]) => `${k} ${sortAccess(set)}`).sort();
  return { defaultAllow, exceptions };
}

/** True when the rules restrict nothing. */
export function allowsAll(state: DeviceState): boolean {
  return state.defaultAllow && state.exceptions.length === 0;
}

/**
 * The writes that turn a new v1 devices cgroup into `state`: reset the default with a type-`a`
 * rule, then one exception per write (the kernel parses one rule per write).
 */
export function v1DeviceWrites(state: DeviceState): Array<{ file: 'devices.allow' | 'devices.deny'; value: string }> {
  const reset: 'devices.allow' | 'devices.deny' = state.defaultAllow ? 'devices.allow' : 'devices.deny';
  const except: 'devices.allow' | 'devices.deny' = state.defaultAllow ? 'devices.deny' : 'devices.allow';
  return [{ file: reset, value: 'a *:* rwm' }, ...state.exceptions.map((value) => ({ file: except, value }))];
}

/**
 * What devices.list must then say: a whitelist lists exactly its exceptions; a blacklist
 * shows only "a *:* rwm" (the kernel does not list deny exceptions).
 */
export function expectedDevicesList(state: DeviceState): string[] {
  return state.defaultAllow ? ['a *:* rwm'] : [...state.exceptions];
}

/** `state` as the cgroup v2 device program takes it (exceptions parsed back, `*` as -1). */
export function deviceFilterRules(state: DeviceState): DeviceFilterRules {
  return {
    defaultAllow: state.defaultAllow,
    exceptions: state.exceptions.map((e) => {
      const m = /^([bc]) (\*|\d+):(\*|\d+) ([rwm]+)$/.exec(e);
      if (!m) throw new Error(`device rule ${JSON.stringify(e)} cannot be put in a device program`);
      const n = (s: string) => (s === '*' ? -1 : Number(s));
      return { type: m[1] as 'b' | 'c', major: n(m[2]), minor: n(m[3]), access: m[4] };
    }),
  };
}
