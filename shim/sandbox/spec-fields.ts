// Fields of the OCI spec Burrow knows. Anything else present in a spec is refused by name:
// a runtime that silently skips a field (intelRdt, ioPriority, idmapped mounts…) runs the
// container differently from what was asked.

import { invalidArgument } from './errors';
import type { OciSpec } from './oci-spec';

const KNOWN: Record<string, ReadonlySet<string>> = {
  '': new Set(['ociVersion', 'process', 'root', 'hostname', 'domainname', 'mounts', 'hooks', 'annotations', 'linux']),
  process: new Set([
    'terminal', 'consoleSize', 'user', 'args', 'env', 'cwd', 'capabilities', 'rlimits', 'noNewPrivileges',
    'apparmorProfile', 'oomScoreAdj', 'selinuxLabel',
  ]),
  'process.user': new Set(['uid', 'gid', 'umask', 'additionalGids']),
  root: new Set(['path', 'readonly']),
  linux: new Set([
    'namespaces', 'uidMappings', 'gidMappings', 'devices', 'cgroupsPath', 'resources', 'rootfsPropagation',
    'seccomp', 'sysctl', 'maskedPaths', 'readonlyPaths', 'mountLabel', 'personality',
  ]),
  mount: new Set(['destination', 'type', 'source', 'options']),
};

function isEmpty(v: unknown): boolean {
  return (
    v === undefined ||
    v === null ||
    v === '' ||
    (Array.isArray(v) && v.length === 0) ||
    (typeof v === 'object' && !Array.isArray(v) && Object.keys(v as object).length === 0)
  );
}

function check(obj: unknown, known: ReadonlySet<string>, prefix: string): void {
  if (typeof obj !== 'object' || obj === null) return;
  for (const [k, v] of Object.entries(obj)) {
    if (!known.has(k) && !isEmpty(v)) {
      throw invalidArgument(`${prefix}${k}: not supported by Burrow`);
    }
  }
}

export function rejectUnknownFields(spec: OciSpec): void {
  check(spec, KNOWN[''], '');
  check(spec.process, KNOWN.process, 'process.');
  check(spec.process?.user, KNOWN['process.user'], 'process.user.');
  check(spec.root, KNOWN.root, 'root.');
  check(spec.linux, KNOWN.linux, 'linux.');
  for (const [i, m] of (spec.mounts ?? []).entries()) check(m, KNOWN.mount, `mounts[${i}].`);
}
