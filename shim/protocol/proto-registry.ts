/**
 * One protobufjs Root holding every message the shim speaks (protos/).
 *
 * Field names stay snake_case (keepCase) so objects look like containerd's
 * wire names: `exec_id`, `type_url`, `exited_at`.
 *
 * Loading: a JSON descriptor generated at build time (scripts/gen-protos.js →
 * dist/protos.json) loads faster than parsing .proto text, which matters on
 * every shim start. It is used only when it is at least as new as every
 * .proto file; otherwise the .proto files are parsed directly, so a stale or
 * missing descriptor can cost time but never correctness.
 */
import * as fs from 'fs';
import * as path from 'path';
import * as protobuf from 'protobufjs';
import { packageRoot } from '../package-root';

export interface AnyMessage {
  type_url: string;
  value: Uint8Array;
}

/** Decode options fixed by the shim's conventions (see decodeMessage). */
const TO_OBJECT_OPTIONS: protobuf.IConversionOptions = {
  longs: Number,
  enums: Number,
  defaults: true,
  arrays: true,
};

let cachedRoot: protobuf.Root | null = null;

export function protosDir(): string {
  return path.join(packageRoot(), 'protos');
}

/** Where scripts/gen-protos.js writes the prebuilt descriptor. */
export function descriptorPath(): string {
  return path.join(packageRoot(), 'dist', 'protos.json');
}

/** Paths (relative to dir, '/'-separated) of every .proto file under dir, sorted. */
export function listProtoFiles(dir: string = protosDir()): string[] {
  const out: string[] = [];
  const walk = (rel: string): void => {
    for (const entry of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
      const child = rel === '' ? entry.name : `${rel}/${entry.name}`;
      if (entry.isDirectory()) walk(child);
      else if (entry.name.endsWith('.proto')) out.push(child);
    }
  };
  walk('');
  return out.sort();
}

/**
 * Parses the .proto sources. Imports are resolved against protos/ (like
 * protoc -I protos); google/protobuf/* comes from protobufjs' bundled copies.
 */
export function loadProtoFiles(dir: string = protosDir()): protobuf.Root {
  const root = new protobuf.Root();
  root.resolvePath = (_origin: string, target: string): string =>
    path.isAbsolute(target) ? target : path.join(dir, target);
  root.loadSync(
    listProtoFiles(dir).map((f) => path.join(dir, f)),
    { keepCase: true },
  );
  root.resolveAll();
  return root;
}

function descriptorIsFresh(descriptor: string, dir: string): boolean {
  let descMtime: number;
  try {
    descMtime = fs.statSync(descriptor).mtimeMs;
  } catch {
    return false;
  }
  return listProtoFiles(dir).every((f) => fs.statSync(path.join(dir, f)).mtimeMs <= descMtime);
}

/** The shared Root, loaded on first use. */
export function protoRoot(): protobuf.Root {
  if (cachedRoot !== null) return cachedRoot;
  const dir = protosDir();
  const descriptor = descriptorPath();
  let root: protobuf.Root | null = null;
  if (descriptorIsFresh(descriptor, dir)) {
    try {
      root = protobuf.Root.fromJSON(JSON.parse(fs.readFileSync(descriptor, 'utf8')) as protobuf.INamespace);
    } catch {
      // A corrupt descriptor is a build artefact problem; the sources still work.
      root = null;
    }
  }
  cachedRoot = root ?? loadProtoFiles(dir);
  return cachedRoot;
}

const typeCache = new Map<string, protobuf.Type>();

/** Looks up a message type by its full name, without a leading dot. */
export function lookupType(fullName: string): protobuf.Type {
  let type = typeCache.get(fullName);
  if (type === undefined) {
    try {
      type = protoRoot().lookupType(fullName);
    } catch (err) {
      throw new Error(`proto-registry: unknown message type ${fullName}: ${(err as Error).message}`);
    }
    typeCache.set(fullName, type);
  }
  return type;
}

export function lookupService(fullName: string): protobuf.Service {
  try {
    return protoRoot().lookupService(fullName);
  } catch (err) {
    throw new Error(`proto-registry: unknown service ${fullName}: ${(err as Error).message}`);
  }
}

function isDefaultScalar(value: unknown): boolean {
  switch (typeof value) {
    case 'number':
      return value === 0;
    case 'boolean':
      return !value;
    case 'string':
      return value.length === 0;
    case 'object': {
      if (value === null) return true;
      if (value instanceof Uint8Array || Array.isArray(value)) return value.length === 0;
      // protobufjs represents 64-bit values as Long {low, high}.
      const long = value as { low?: unknown; high?: unknown };
      return long.low === 0 && long.high === 0;
    }
    default:
      return false;
  }
}

/**
 * protobufjs writes every field set on the message object, zeros included;
 * Go omits proto3 zero values. Pruning them keeps our bytes identical to
 * what containerd's own shims send (e.g. an Empty reply is 0 bytes).
 */
function pruneDefaults(type: protobuf.Type, message: protobuf.Message): void {
  const msg = message as unknown as Record<string, unknown>;
  for (const field of type.fieldsArray) {
    const name = field.name;
    if (!Object.prototype.hasOwnProperty.call(msg, name)) continue;
    const value = msg[name];
    const subtype = field.resolvedType instanceof protobuf.Type ? field.resolvedType : null;
    if (field.map) {
      const entries = value as Record<string, unknown>;
      if (Object.keys(entries).length === 0) delete msg[name];
      else if (subtype) for (const v of Object.values(entries)) pruneDefaults(subtype, v as protobuf.Message);
    } else if (field.repeated) {
      const list = value as unknown[];
      if (list.length === 0) delete msg[name];
      else if (subtype) for (const v of list) pruneDefaults(subtype, v as protobuf.Message);
    } else if (subtype) {
      // A set message field is sent even when empty, like Go's non-nil pointer.
      if (value !== null && value !== undefined) pruneDefaults(subtype, value as protobuf.Message);
    } else if (!field.hasPresence && isDefaultScalar(value)) {
      delete msg[name];
    }
  }
}

/**
 * Encodes a plain object (snake_case fields) as `typeName`. 64-bit fields take
 * numbers, decimal strings (for values above 2^53) or Long; enums take numbers
 * or names; bytes take Uint8Array/Buffer; Any is `{type_url, value}`.
 */
export function encodeMessage(typeName: string, plainObject: object): Uint8Array {
  const type = lookupType(typeName);
  const message = type.fromObject(plainObject as Record<string, unknown>);
  pruneDefaults(type, message);
  return type.encode(message).finish();
}

/**
 * Decodes into a plain object with every field present (defaults filled in),
 * 64-bit values as numbers, enums as numbers, bytes as Buffer and Any as
 * `{type_url, value}`. Unknown fields are skipped, so newer peers are fine.
 */
export function decodeMessage<T = Record<string, unknown>>(typeName: string, bytes: Uint8Array): T {
  const type = lookupType(typeName);
  return type.toObject(type.decode(bytes), TO_OBJECT_OPTIONS) as T;
}

/** Wraps a message in an Any with the bare type URL containerd 1.6 needs. */
export function packAny(typeName: string, plainObject: object): AnyMessage {
  return { type_url: typeName, value: encodeMessage(typeName, plainObject) };
}

/**
 * Decodes a protobuf Any. A `prefix/` before the type name (as 1.7+ may
 * send, e.g. `type.googleapis.com/…`) is tolerated.
 */
export function unpackAny<T = Record<string, unknown>>(any: AnyMessage): T {
  const url = any.type_url;
  const name = url.slice(url.lastIndexOf('/') + 1);
  return decodeMessage<T>(name, any.value);
}
