// The part of the OCI runtime spec (config.json) Burrow reads, and loading it from a bundle.

import * as fs from 'fs';
import * as path from 'path';
import { invalidArgument } from './errors';

export interface OciUser {
  uid: number;
  gid: number;
  umask?: number;
  additionalGids?: number[];
  username?: string;
}

export interface OciProcess {
  terminal?: boolean;
  user: OciUser;
  args?: string[];
  commandLine?: string;
  env?: string[];
  cwd: string;
  capabilities?: Record<string, string[]>;
  rlimits?: Array<{ type: string; hard: number; soft: number }>;
  noNewPrivileges?: boolean;
  apparmorProfile?: string;
  oomScoreAdj?: number;
  selinuxLabel?: string;
  consoleSize?: { height: number; width: number };
}

export interface OciMount {
  destination: string;
  type?: string;
  source?: string;
  options?: string[];
}

export interface OciNamespace {
  type: string;
  path?: string;
}

export interface OciDevice {
  type: string;
  path: string;
  major?: number;
  minor?: number;
  fileMode?: number;
  uid?: number;
  gid?: number;
}

export interface OciLinux {
  namespaces?: OciNamespace[];
  uidMappings?: unknown[];
  gidMappings?: unknown[];
  devices?: OciDevice[];
  cgroupsPath?: string;
  resources?: Record<string, unknown>;
  rootfsPropagation?: string;
  maskedPaths?: string[];
  readonlyPaths?: string[];
  mountLabel?: string;
  sysctl?: Record<string, string>;
  seccomp?: unknown;
  [key: string]: unknown;
}

export interface OciSpec {
  ociVersion: string;
  process?: OciProcess;
  root?: { path: string; readonly?: boolean };
  hostname?: string;
  domainname?: string;
  mounts?: OciMount[];
  hooks?: Record<string, unknown[]>;
  annotations?: Record<string, string>;
  linux?: OciLinux;
}

export const SPEC_FILE = 'config.json';

/** Reads and minimally validates `<bundle>/config.json`; every failure is invalid-argument. */
export function loadSpec(bundle: string): OciSpec {
  const file = path.join(bundle, SPEC_FILE);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw invalidArgument(`error reading OCI spec ${JSON.stringify(file)}: ${(err as Error).message}`);
  }
  let spec: unknown;
  try {
    spec = JSON.parse(text);
  } catch (err) {
    throw invalidArgument(`error parsing OCI spec ${JSON.stringify(file)}: ${(err as Error).message}`);
  }
  const problem = specProblem(spec);
  if (problem) throw invalidArgument(`invalid OCI spec ${JSON.stringify(file)}: ${problem}`);
  return spec as OciSpec;
}

function specProblem(spec: unknown): string | undefined {
  if (typeof spec !== 'object' || spec === null || Array.isArray(spec)) return 'not a JSON object';
  const s = spec as Record<string, unknown>;
  if (typeof s.ociVersion !== 'string') return 'ociVersion must be a string';
  const proc = s.process as Record<string, unknown> | undefined;
  if (typeof proc !== 'object' || proc === null) return 'process is required';
  if (!Array.isArray(proc.args) || proc.args.length === 0 || !proc.args.every((a) => typeof a === 'string')) {
    return 'process.args must be a non-empty array of strings';
  }
  if (typeof proc.cwd !== 'string' || !proc.cwd.startsWith('/')) return 'process.cwd must be an absolute path';
  const user = proc.user as Record<string, unknown> | undefined;
  if (typeof user !== 'object' || user === null || !Number.isInteger(user.uid) || !Number.isInteger(user.gid)) {
    return 'process.user.uid and process.user.gid must be integers';
  }
  if (proc.env !== undefined && (!Array.isArray(proc.env) || !proc.env.every((e) => typeof e === 'string'))) {
    return 'process.env must be an array of strings';
  }
  const root = s.root as Record<string, unknown> | undefined;
  if (typeof root !== 'object' || root === null || typeof root.path !== 'string' || root.path === '') {
    return 'root.path is required';
  }
  if (s.mounts !== undefined && !Array.isArray(s.mounts)) return 'mounts must be an array';
  for (const [i, m] of ((s.mounts as unknown[]) ?? []).entries()) {
    const mm = m as Record<string, unknown>;
    if (typeof mm !== 'object' || mm === null || typeof mm.destination !== 'string') {
      return `mounts[${i}].destination is required`;
    }
    if (mm.options !== undefined && !Array.isArray(mm.options)) return `mounts[${i}].options must be an array`;
  }
  const linux = s.linux as Record<string, unknown> | undefined;
  if (linux !== undefined && (typeof linux !== 'object' || linux === null)) return 'linux must be an object';
  if (linux?.namespaces !== undefined && !Array.isArray(linux.namespaces)) return 'linux.namespaces must be an array';
  return undefined;
}
