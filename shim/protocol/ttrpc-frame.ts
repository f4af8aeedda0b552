/**
 * ttrpc framing: a 10-byte big-endian header (data length, stream id, type,
 * flags) followed by `length` bytes of protobuf data.
 */

export const HEADER_LENGTH = 10;
/** 4 MiB, ttrpc's messageLengthMax; both peers enforce it. */
export const MAX_MESSAGE_SIZE = 4 << 20;

export enum MessageType {
  Request = 0x01,
  Response = 0x02,
  /** ttrpc >= 1.2 streaming only; a unary server ignores it. */
  Data = 0x03,
}

export interface FrameHeader {
  /** Length of the data following the header. */
  length: number;
  streamId: number;
  type: number;
  flags: number;
}

export interface Frame extends FrameHeader {
  data: Buffer;
}

export function encodeHeader(header: FrameHeader): Buffer {
  const buf = Buffer.allocUnsafe(HEADER_LENGTH);
  writeHeader(buf, header);
  return buf;
}

export function decodeHeader(buf: Uint8Array, offset = 0): FrameHeader {
  if (buf.length - offset < HEADER_LENGTH) {
    throw new RangeError(`ttrpc: header needs ${HEADER_LENGTH} bytes, got ${buf.length - offset}`);
  }
  const view = Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  return {
    length: view.readUInt32BE(offset),
    streamId: view.readUInt32BE(offset + 4),
    type: view[offset + 8],
    flags: view[offset + 9],
  };
}

/**
 * Header and data in one buffer, so a single socket.write keeps concurrent
 * responses from interleaving on the wire.
 */
export function encodeFrame(streamId: number, type: MessageType | number, data: Uint8Array, flags = 0): Buffer {
  const buf = Buffer.allocUnsafe(HEADER_LENGTH + data.length);
  writeHeader(buf, { length: data.length, streamId, type, flags });
  buf.set(data, HEADER_LENGTH);
  return buf;
}

function writeHeader(buf: Buffer, h: FrameHeader): void {
  buf.writeUInt32BE(h.length >>> 0, 0);
  buf.writeUInt32BE(h.streamId >>> 0, 4);
  buf[8] = h.type & 0xff;
  buf[9] = h.flags & 0xff;
}

export type FrameEvent =
  | { kind: 'frame'; frame: Frame }
  /**
   * The header announced more than the maximum. The reader skips the
   * announced bytes (like Go's channel.recv) so the caller may either answer
   * and carry on, or give up on the connection.
   */
  | { kind: 'oversized'; header: FrameHeader };

/**
 * Incremental frame parser: feed it socket chunks of any size, get back
 * every frame completed by that chunk. Frame bodies are assembled into one
 * preallocated buffer so a 4 MiB message in 64 KiB chunks costs one copy.
 */
export class FrameReader {
  private readonly maxMessageSize: number;
  private readonly headerBuf = Buffer.alloc(HEADER_LENGTH);
  private headerFill = 0;
  private current: FrameHeader | null = null;
  private body: Buffer | null = null;
  private bodyFill = 0;
  /** Bytes still to drop from an oversized frame. */
  private discard = 0;

  constructor(maxMessageSize = MAX_MESSAGE_SIZE) {
    this.maxMessageSize = maxMessageSize;
  }

  /** True when no partial frame is buffered (useful to spot truncation at EOF). */
  get idle(): boolean {
    return this.headerFill === 0 && this.current === null && this.discard === 0;
  }

  push(chunk: Buffer): FrameEvent[] {
    const events: FrameEvent[] = [];
    let pos = 0;
    while (pos < chunk.length) {
      if (this.discard > 0) {
        const n = Math.min(this.discard, chunk.length - pos);
        this.discard -= n;
        pos += n;
        continue;
      }
      if (this.current === null) {
        // Fast path: a whole header inside this chunk needs no copy.
        if (this.headerFill === 0 && chunk.length - pos >= HEADER_LENGTH) {
          this.current = decodeHeader(chunk, pos);
          pos += HEADER_LENGTH;
        } else {
          const n = Math.min(HEADER_LENGTH - this.headerFill, chunk.length - pos);
          chunk.copy(this.headerBuf, this.headerFill, pos, pos + n);
          this.headerFill += n;
          pos += n;
          if (this.headerFill < HEADER_LENGTH) break;
          this.current = decodeHeader(this.headerBuf);
          this.headerFill = 0;
        }
        const header = this.current;
        if (header.length > this.maxMessageSize) {
          this.current = null;
          this.discard = header.length;
          events.push({ kind: 'oversized', header });
          continue;
        }
        if (header.length === 0) {
          this.current = null;
          events.push({ kind: 'frame', frame: { ...header, data: Buffer.alloc(0) } });
          continue;
        }
        // Whole body available: slice without copying.
        if (chunk.length - pos >= header.length) {
          const data = chunk.subarray(pos, pos + header.length);
          pos += header.length;
          this.current = null;
          events.push({ kind: 'frame', frame: { ...header, data } });
          continue;
        }
        this.body = Buffer.allocUnsafe(header.length);
        this.bodyFill = 0;
      }
      // Accumulating a body that spans chunks.
      const header = this.current;
      const body = this.body as Buffer;
      const n = Math.min(header.length - this.bodyFill, chunk.length - pos);
      chunk.copy(body, this.bodyFill, pos, pos + n);
      this.bodyFill += n;
      pos += n;
      if (this.bodyFill === header.length) {
        events.push({ kind: 'frame', frame: { ...header, data: body } });
        this.current = null;
        this.body = null;
        this.bodyFill = 0;
      }
    }
    return events;
  }
}
