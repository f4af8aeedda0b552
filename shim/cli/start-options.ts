// What `start` learns from its stdin: containerd 1.6–2.2 write the runtime options as a
// protobuf Any (or nothing); 2.3+ write a containerd.runtime.bootstrap.v1.BootstrapParams that
// carries the options in `extensions` and the socket directory (shim-v2.md §5.2). The options
// choose the transport: `Protocol = "grpc"` in Burrow's runtime options (the CRI runtime's
// `options` table, or the file of `ctr --runtime-config-path`), ttrpc otherwise.

import * as fs from 'fs';
import * as tty from 'tty';
import { bytesField, readFields, repeatedBytes, stringField, WireFormatError } from '../protocol/wire-reader';

export type ShimProtocol = 'ttrpc' | 'grpc';
export const PROTOCOLS: readonly ShimProtocol[] = ['ttrpc', 'grpc'];

export interface AnyBytes {
  typeUrl: string;
  value: Buffer;
}

export interface StartInput {
  /** Present when containerd (2.3+) sent BootstrapParams. */
  bootstrap?: { containerdVersion: string; socketDir?: string };
  options?: AnyBytes;
}

export class OptionsError extends Error {}

/** Reads stdin to EOF; a terminal (someone running `start` by hand) counts as no input. */
export function readStdin(): Buffer {
  if (tty.isatty(0)) return Buffer.alloc(0);
  const chunks: Buffer[] = [];
  const buf = Buffer.alloc(64 * 1024);
  for (;;) {
    let n: number;
    try {
      n = fs.readSync(0, buf, 0, buf.length, null);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EAGAIN') continue;
      // No stdin at all (closed fd): no options.
      if (code === 'EBADF' || code === 'EOF') break;
      throw err;
    }
    if (n === 0) break;
    chunks.push(Buffer.from(buf.subarray(0, n)));
  }
  return Buffer.concat(chunks);
}

function decodeAny(bytes: Buffer): AnyBytes {
  const f = readFields(bytes);
  return { typeUrl: stringField(f, 1) ?? '', value: bytesField(f, 2) ?? Buffer.alloc(0) };
}

/**
 * containerd's pkg/shim just tries the BootstrapParams parse, which can misread an Any; an
 * Any's field 1 is its type URL, never the container id, so the id decides (shim-v2.md §5.2).
 */
export function parseStartInput(bytes: Buffer, id: string): StartInput {
  if (bytes.length === 0) return {};
  let fields: ReturnType<typeof readFields> | undefined;
  try {
    fields = readFields(bytes);
  } catch (err) {
    if (!(err instanceof WireFormatError)) throw err;
  }
  if (fields !== undefined) {
    let instanceId: string | undefined;
    try {
      instanceId = stringField(fields, 1);
    } catch {
      instanceId = undefined;
    }
    if (instanceId !== undefined && instanceId === id) {
      const input: StartInput = {
        bootstrap: { containerdVersion: stringField(fields, 4) ?? '', socketDir: stringField(fields, 9) || undefined },
      };
      // Extension { Any value = 1 }: Burrow's options are the first extension that is one.
      for (const ext of repeatedBytes(fields, 8)) {
        const any = bytesField(readFields(ext), 1);
        if (any !== undefined) {
          input.options = decodeAny(any);
          break;
        }
      }
      return input;
    }
  }
  try {
    return { options: decodeAny(bytes) };
  } catch (err) {
    throw new OptionsError(`runtime options on stdin (${bytes.length} bytes) are neither BootstrapParams nor a protobuf Any: ${(err as Error).message}`);
  }
}

function unquote(raw: string, where: string): string {
  if (raw.startsWith("'") && raw.endsWith("'") && raw.length >= 2) return raw.slice(1, -1);
  if (raw.startsWith('"') && raw.endsWith('"') && raw.length >= 2) {
    try {
      return JSON.parse(raw) as string;
    } catch {
      throw new OptionsError(`${where}: bad string ${raw}`);
    }
  }
  throw new OptionsError(`${where}: ${raw} is not a string (Burrow's options are strings)`);
}

// Burrow's runtime options; keys are matched without regard to case, as CRI's TOML tables are
// usually written in Go field style (Protocol) and hand-written files often are not.
const KNOWN_KEYS = ['protocol'];

/**
 * The top-level `key = "string"` pairs of a TOML document — the only form Burrow's options
 * take. A table, an array or any key Burrow does not know is refused by name rather than
 * ignored, so a typo cannot silently select the default transport.
 */
export function parseOptionsToml(text: string, source: string): Record<string, string> {
  const out: Record<string, string> = {};
  text.split(/\r?\n/).forEach((line, i) => {
    const where = `${source} line ${i + 1}`;
    const t = line.replace(/^\s+|\s+$/g, '');
    if (t === '' || t.startsWith('#')) return;
    if (t.startsWith('[')) throw new OptionsError(`${where}: tables are not part of Burrow's options: ${t}`);
    const m = /^("[^"]*"|'[^']*'|[A-Za-z0-9_-]+)\s*=\s*(.*?)\s*(#[^"']*)?$/.exec(t);
    if (!m) throw new OptionsError(`${where}: expected key = "value": ${t}`);
    const key = (m[1].startsWith('"') || m[1].startsWith("'") ? m[1].slice(1, -1) : m[1]).toLowerCase();
    if (!KNOWN_KEYS.includes(key)) {
      throw new OptionsError(`${where}: unknown option ${m[1]} (Burrow knows: Protocol)`);
    }
    out[key] = unquote(m[2], where);
  });
  return out;
}

const RUNTIME_OPTIONS_TYPE = 'runtimeoptions.v1.Options';

/**
 * The transport the options ask for. CRI hands a non-runc runtime its `options` table as
 * runtimeoptions.v1.Options {type_url = 1, config_path = 2, config_body = 3 (TOML)}; ctr's
 * --runtime-config-path sets config_path. Options of any other type (e.g. runc's, from
 * `ctr run --no-pivot`) carry nothing for Burrow.
 */
export function protocolFromOptions(options: AnyBytes | undefined, readFile = (p: string) => fs.readFileSync(p, 'utf8')): ShimProtocol {
  if (!options) return 'ttrpc';
  const name = options.typeUrl.slice(options.typeUrl.lastIndexOf('/') + 1);
  if (name !== RUNTIME_OPTIONS_TYPE) return 'ttrpc';
  const f = readFields(options.value);
  const configPath = stringField(f, 2) ?? '';
  const configBody = stringField(f, 3) ?? '';
  let text: string;
  let source: string;
  if (configPath !== '') {
    source = `runtime options file ${JSON.stringify(configPath)}`;
    try {
      text = readFile(configPath);
    } catch (err) {
      throw new OptionsError(`${source}: ${(err as Error).message}`);
    }
  } else {
    source = 'runtime options (config_body)';
    text = configBody;
  }
  const protocol = parseOptionsToml(text, source).protocol?.toLowerCase() ?? 'ttrpc';
  if (!PROTOCOLS.includes(protocol as ShimProtocol)) {
    throw new OptionsError(`${source}: Protocol ${JSON.stringify(protocol)} is neither "ttrpc" nor "grpc"`);
  }
  return protocol as ShimProtocol;
}
