/**
 * A minimal protobuf wire-format reader for the `start` helper, which runs on every container
 * start and so loads no protobuf library: it splits a message into (field number → values) and
 * leaves the meaning of each field to the caller. Only what proto3 messages can carry on the
 * wire is accepted (varint, 64-bit, length-delimited, 32-bit); groups and truncated input are
 * errors, so a caller can use "does it parse" as a signal (shim-v2.md §5.2).
 */

export type WireValue = { wire: 0; value: bigint } | { wire: 1 | 5; value: Buffer } | { wire: 2; value: Buffer };

export class WireFormatError extends Error {}

function readVarint(buf: Buffer, pos: number): [bigint, number] {
  let result = 0n;
  let shift = 0n;
  for (let i = 0; i < 10; i++) {
    if (pos >= buf.length) throw new WireFormatError(`truncated varint at byte ${pos}`);
    const b = buf[pos++];
    result |= BigInt(b & 0x7f) << shift;
    if ((b & 0x80) === 0) return [result, pos];
    shift += 7n;
  }
  throw new WireFormatError(`varint longer than 10 bytes at byte ${pos}`);
}

/** Every field of `buf`, in order; a repeated field appears once per value. */
export function readFields(buf: Buffer): Map<number, WireValue[]> {
  const out = new Map<number, WireValue[]>();
  let pos = 0;
  while (pos < buf.length) {
    const [key, next] = readVarint(buf, pos);
    pos = next;
    const field = Number(key >> 3n);
    const wire = Number(key & 7n);
    if (field === 0) throw new WireFormatError('field number 0');
    let v: WireValue;
    switch (wire) {
      case 0: {
        const [value, after] = readVarint(buf, pos);
        pos = after;
        v = { wire: 0, value };
        break;
      }
      case 1:
      case 5: {
        const len = wire === 1 ? 8 : 4;
        if (pos + len > buf.length) throw new WireFormatError(`truncated fixed${len * 8} field ${field}`);
        v = { wire, value: buf.subarray(pos, pos + len) };
        pos += len;
        break;
      }
      case 2: {
        const [len, after] = readVarint(buf, pos);
        pos = after;
        if (len > BigInt(buf.length - pos)) throw new WireFormatError(`field ${field} length ${len} runs past the end`);
        v = { wire: 2, value: buf.subarray(pos, pos + Number(len)) };
        pos += Number(len);
        break;
      }
      default:
        throw new WireFormatError(`unsupported wire type ${wire} for field ${field}`);
    }
    const list = out.get(field);
    if (list) list.push(v);
    else out.set(field, [v]);
  }
  return out;
}

/** The last value of a length-delimited field as UTF-8 (proto3: last one wins), or undefined. */
export function stringField(fields: Map<number, WireValue[]>, n: number): string | undefined {
  const b = bytesField(fields, n);
  return b === undefined ? undefined : b.toString('utf8');
}

export function bytesField(fields: Map<number, WireValue[]>, n: number): Buffer | undefined {
  const list = fields.get(n);
  if (!list) return undefined;
  const last = list[list.length - 1];
  if (last.wire !== 2) throw new WireFormatError(`field ${n} is not length-delimited`);
  return last.value;
}

/** Every value of a repeated length-delimited field. */
export function repeatedBytes(fields: Map<number, WireValue[]>, n: number): Buffer[] {
  return (fields.get(n) ?? []).map((v) => {
    if (v.wire !== 2) throw new WireFormatError(`field ${n} is not length-delimited`);
    return v.value;
  });
}
