// containerd's config.toml as data: which schema version it is, where the CRI runtimes live in
// it, and the edits that register (or unregister) the Burrow runtime handler. Pure functions over
// file contents; reading and writing files is install.ts's job.
//
// Where the registration goes depends on how containerd merges `imports`:
// - containerd 1.6/1.7 merge imported files section by section: a drop-in that names
//   `plugins."io.containerd.grpc.v1.cri"` replaces the main file's whole CRI section (sandbox
//   image, CNI, other runtimes: containerd issue 5837). So on 1.x the runtime table is written
//   into the main config itself.
// - containerd 2.x merges plugin tables key by key (containerd PR 9982), so the runtime goes into
//   a drop-in file of its own, of the same config version as the main file (newer 2.x releases
//   refuse a drop-in whose version is higher than the root's), and the main file only gains an
//   `imports` entry when none of its patterns already covers the drop-in.
import * as path from 'path';
import { parse, stringify } from 'smol-toml';
import { ContainerdVersion } from './containerd-version';
import { InstallerError } from './errors';

export type ConfigVersion = 2 | 3;
type Table = Record<string, unknown>;

/** The CRI plugin that owns `containerd.runtimes` in each config version. */
export const CRI_RUNTIME_PLUGIN: Record<ConfigVersion, string> = {
  2: 'io.containerd.grpc.v1.cri',
  3: 'io.containerd.cri.v1.runtime',
};

export interface RuntimeRegistration {
  /** RuntimeClass handler name: the key under `containerd.runtimes`. */
  handler: string;
  /** `io.containerd.burrow.v2`: containerd looks for `containerd-shim-burrow-v2` on its PATH. */
  runtimeType: string;
  /** Pod annotations (globs) containerd copies into the OCI spec of the pod's containers. */
  podAnnotations: string[];
  /** Container annotations (globs) containerd copies into the OCI spec. */
  containerAnnotations: string[];
}

export const DEFAULT_REGISTRATION: RuntimeRegistration = {
  handler: 'burrow',
  runtimeType: 'io.containerd.burrow.v2',
  podAnnotations: ['*'],
  containerAnnotations: ['*'],
};

/** A config file parsed and checked: its schema version and its tables. */
export interface ParsedConfig {
  path: string;
  version: ConfigVersion;
  data: Table;
}

function isTable(v: unknown): v is Table {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date);
}

/**
 * Parses a containerd config; refuses what this installer cannot edit safely: invalid TOML,
 * version 1 (no `version` key: containerd 1.x's legacy schema, whose plugin names differ) and
 * versions it does not know.
 */
export function parseConfig(file: string, text: string): ParsedConfig {
  let data: Table;
  try {
    // Integers as BigInt and floats as numbers, so that writing the file back keeps each
    // value's TOML type (1 stays an integer, 1.0 a float).
    data = parse(text, { integersAsBigInt: true }) as Table;
  } catch (e) {
    throw new InstallerError(`containerd config ${file} is not valid TOML: ${(e as Error).message.split('\n')[0]}`);
  }
  const raw = data.version;
  if (raw === undefined) {
    throw new InstallerError(
      `containerd config ${file} has no \`version\` key (config version 1), which this installer does not edit; ` +
        'convert it with `containerd config migrate` (containerd 2.x) or write `version = 2` for containerd 1.6/1.7',
    );
  }
  const version = typeof raw === 'bigint' ? Number(raw) : raw;
  if (version !== 2 && version !== 3) {
    throw new InstallerError(`containerd config ${file} has version = ${String(raw)}; only versions 2 and 3 are supported`);
  }
  return { path: file, version, data };
}

/** Serialises a config table with a real TOML writer (comments and layout of the input are not kept). */
export function renderConfig(data: Table): string {
  return stringify(data, { numbersAsFloat: true });
}

/** The config version containerd `v` can load, checked against what the file declares. */
export function checkCompatible(cfg: ParsedConfig, v: ContainerdVersion): void {
  if (cfg.version === 3 && v.major < 2) {
    throw new InstallerError(
      `containerd config ${cfg.path} is version 3, but containerd ${v.raw} reads versions 1 and 2 only`,
    );
  }
  if (v.major > 2) {
    throw new InstallerError(`containerd ${v.raw} is newer than this installer knows (1.6, 1.7, 2.x)`);
  }
  if (v.major === 1 && v.minor < 6) {
    throw new InstallerError(`containerd ${v.raw} is too old: Burrow needs containerd 1.6 or newer`);
  }
}

/** Where the runtime table lives, as the chain of keys from the document root. */
export function runtimeKeyPath(version: ConfigVersion, handler: string): string[] {
  return ['plugins', CRI_RUNTIME_PLUGIN[version], 'containerd', 'runtimes', handler];
}

/** The runtime table Burrow registers. */
export function runtimeTable(reg: RuntimeRegistration): Table {
  return {
    runtime_type: reg.runtimeType,
    pod_annotations: [...reg.podAnnotations],
    container_annotations: [...reg.containerAnnotations],
  };
}

function getPath(data: Table, keys: string[]): unknown {
  let cur: unknown = data;
  for (const k of keys) {
    if (!isTable(cur)) return undefined;
    cur = cur[k];
  }
  return cur;
}

/** A deep copy of a parsed TOML document (BigInts, dates and arrays included). */
function cloneTable(t: Table): Table {
  const copy = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(copy);
    if (isTable(v)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, copy(x)]));
    return v;
  };
  return copy(t) as Table;
}

function setPath(data: Table, keys: string[], value: unknown): void {
  let cur = data;
  for (const k of keys.slice(0, -1)) {
    const next = cur[k];
    if (next === undefined) cur[k] = {};
    else if (!isTable(next)) throw new InstallerError(`\`${keys.slice(0, keys.indexOf(k) + 1).join('.')}\` is not a table`);
    cur = cur[k] as Table;
  }
  cur[keys[keys.length - 1]] = value;
}

/** Deletes keys[-1] and then every table on the way up that this left empty. */
function deletePath(data: Table, keys: string[]): void {
  const parents: Table[] = [data];
  for (const k of keys.slice(0, -1)) {
    const next = parents[parents.length - 1][k];
    if (!isTable(next)) return;
    parents.push(next);
  }
  delete parents[parents.length - 1][keys[keys.length - 1]];
  for (let i = parents.length - 1; i > 0; i--) {
    if (Object.keys(parents[i]).length > 0) break;
    delete parents[i - 1][keys[i - 1]];
  }
}

function sameValue(a: unknown, b: unknown): boolean {
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => sameValue(x, b[i]));
  if (isTable(a) && isTable(b)) {
    const ka = Object.keys(a).sort();
    const kb = Object.keys(b).sort();
    return sameValue(ka, kb) && ka.every((k) => sameValue(a[k], b[k]));
  }
  return a === b;
}

/**
 * The runtime table already at `keys`, checked: absent, ours (same runtime_type), or someone
 * else's handler of that name, which is never overwritten.
 */
function existingRuntime(cfg: ParsedConfig, keys: string[], reg: RuntimeRegistration): Table | undefined {
  const cur = getPath(cfg.data, keys);
  if (cur === undefined) return undefined;
  if (!isTable(cur)) throw new InstallerError(`${cfg.path}: \`${keys.join('.')}\` is not a table`);
  if (cur.runtime_type !== reg.runtimeType) {
    throw new InstallerError(
      `${cfg.path} already defines runtime handler "${reg.handler}" with runtime_type ` +
        `${JSON.stringify(cur.runtime_type)}, not "${reg.runtimeType}"; choose another handler name`,
    );
  }
  return cur;
}

/** A file the registration writes: its new content, or null to delete it. */
export interface FileEdit {
  path: string;
  content: string | null;
}

export interface RegistrationPlan {
  mode: 'in-place' | 'drop-in';
  version: ConfigVersion;
  /** Only the files whose content changes; empty when the handler is registered already. */
  edits: FileEdit[];
}

/** The drop-in file for a handler, in the drop-in dir (default: `conf.d` beside the main config). */
export function dropInPath(mainConfig: string, handler: string, dropInDir?: string): string {
  return path.join(dropInDir ?? path.join(path.dirname(mainConfig), 'conf.d'), `${handler}.toml`);
}

/**
 * containerd resolves each `imports` entry relative to the importing file's directory and
 * expands it with Go's filepath.Glob; this says whether one of `patterns` names `file`.
 */
export function importsCover(configFile: string, patterns: readonly string[], file: string): boolean {
  return patterns.some((p) => {
    const abs = path.isAbsolute(p) ? p : path.join(path.dirname(configFile), p);
    return globToRegExp(abs).test(file);
  });
}

/** filepath.Match syntax: `*` and `?` never cross `/`, `[...]` classes, `\` escapes. */
function globToRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const end = glob.indexOf(']', i + 1);
      if (end < 0) return /$^/; // a malformed pattern matches nothing (Glob reports ErrBadPattern)
      let cls = glob.slice(i + 1, end);
      if (cls.startsWith('^')) cls = `^${cls.slice(1)}`;
      re += `[${cls.replace(/\\/g, '\\\\')}]`;
      i = end;
    } else if (c === '\\' && i + 1 < glob.length) re += `\\${glob[++i]}`;
    else re += c.replace(/[.+^${}()|\\/]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

function importsOf(cfg: ParsedConfig): string[] {
  const imp = cfg.data.imports;
  if (imp === undefined) return [];
  if (!Array.isArray(imp) || !imp.every((x) => typeof x === 'string')) {
    throw new InstallerError(`${cfg.path}: \`imports\` is not an array of strings`);
  }
  return imp as string[];
}

/** The drop-in document: only the runtime table, under the same config version as the main file. */
export function renderDropIn(version: ConfigVersion, reg: RuntimeRegistration): string {
  const doc: Table = { version: BigInt(version) };
  setPath(doc, runtimeKeyPath(version, reg.handler), runtimeTable(reg));
  return renderConfig(doc);
}

/**
 * What registering `reg` changes. `dropIn` is the current content of the drop-in file (null if
 * absent); on containerd 1.x it is ignored.
 */
export function planRegistration(
  cfg: ParsedConfig,
  v: ContainerdVersion,
  reg: RuntimeRegistration,
  dropIn: { path: string; content: string | null },
): RegistrationPlan {
  checkCompatible(cfg, v);
  const keys = runtimeKeyPath(cfg.version, reg.handler);
  const want = runtimeTable(reg);
  if (v.major < 2) {
    const cur = existingRuntime(cfg, keys, reg);
    if (cur !== undefined && Object.entries(want).every(([k, x]) => sameValue(cur[k], x))) return { mode: 'in-place', version: cfg.version, edits: [] };
    const data = cloneTable(cfg.data);
    // Keep options the operator added to our table (e.g. a custom io_type); set ours.
    setPath(data, keys, { ...(cur ?? {}), ...want });
    return { mode: 'in-place', version: cfg.version, edits: [{ path: cfg.path, content: renderConfig(data) }] };
  }

  // containerd 2.x: the main file may not define the handler itself (its table would merge with
  // the drop-in's and uninstall could not take ours out cleanly).
  const own = getPath(cfg.data, keys);
  if (own !== undefined) {
    throw new InstallerError(
      `${cfg.path} defines runtime handler "${reg.handler}" itself; remove it there (Burrow registers it in ${dropIn.path})`,
    );
  }
  const edits: FileEdit[] = [];
  const content = renderDropIn(cfg.version, reg);
  if (dropIn.content !== content) {
    if (dropIn.content !== null) {
      const other = parseConfig(dropIn.path, dropIn.content);
      existingRuntime(other, runtimeKeyPath(other.version, reg.handler), reg);
    }
    edits.push({ path: dropIn.path, content });
  }
  const imports = importsOf(cfg);
  if (!importsCover(cfg.path, imports, dropIn.path)) {
    const data = cloneTable(cfg.data);
    data.imports = [...imports, dropIn.path];
    edits.push({ path: cfg.path, content: renderConfig(data) });
  }
  return { mode: 'drop-in', version: cfg.version, edits };
}

/**
 * What unregistering changes when the files are no longer exactly what the installer wrote
 * (an operator edited them since): the runtime table and our `imports` entry taken out, the
 * rest of their edits kept. When the files are untouched, install.ts restores the backup instead.
 */
export function planUnregistration(
  cfg: ParsedConfig,
  reg: RuntimeRegistration,
  addedImport: string | null,
): FileEdit | null {
  const keys = runtimeKeyPath(cfg.version, reg.handler);
  const data = cloneTable(cfg.data);
  let changed = false;
  if (getPath(data, keys) !== undefined) {
    existingRuntime(cfg, keys, reg);
    deletePath(data, keys);
    changed = true;
  }
  if (addedImport !== null) {
    const imports = importsOf(cfg);
    if (imports.includes(addedImport)) {
      const rest = imports.filter((p) => p !== addedImport);
      if (rest.length > 0) data.imports = rest;
      else delete data.imports;
      changed = true;
    }
  }
  return changed ? { path: cfg.path, content: renderConfig(data) } : null;
}

/** Whether a config (main file on 1.x, drop-in on 2.x) registers the handler. */
export function registersHandler(cfg: ParsedConfig, handler: string): boolean {
  return getPath(cfg.data, runtimeKeyPath(cfg.version, handler)) !== undefined;
}
