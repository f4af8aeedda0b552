import { strict as assert } from 'assert';
import {
  decodeHeader,
  encodeFrame,
  encodeHeader,
  FrameEvent,
  FrameReader,
  MAX_MESSAGE_SIZE,
  MessageType,
} from '../../shim/protocol/ttrpc-frame';
import { hex } from './helpers';

function frames(events: FrameEvent[]): Array<{ streamId: number; data: string }> {
  return events.map((e) => {
    assert.equal(e.kind, 'frame');
    if (e.kind !== 'frame') throw new Error('unreachable');
    return { streamId: e.frame.streamId, data: e.frame.data.toString('hex') };
  });
}

describe('protocol: ttrpc frame', () => {
  it('encodes the header big-endian', () => {
    const h = encodeHeader({ length: 0x010203, streamId: 0xfffffffd, type: MessageType.Data, flags: 0x05 });
    assert.deepEqual(h, hex('00010203 fffffffd 03 05'));
    assert.deepEqual(decodeHeader(h), { length: 0x010203, streamId: 0xfffffffd, type: 3, flags: 5 });
    assert.equal(MAX_MESSAGE_SIZE, 4194304);
  });

  it('rejects a short header buffer', () => {
    assert.throws(() => decodeHeader(Buffer.alloc(9)), /header needs 10 bytes, got 9/);
  });

  it('reassembles frames fed one byte at a time', () => {
    const wire = Buffer.concat([
      encodeFrame(1, MessageType.Request, hex('0a0b0c')),
      encodeFrame(3, MessageType.Request, Buffer.alloc(0)),
      encodeFrame(5, MessageType.Request, hex('ff')),
    ]);
    const reader = new FrameReader();
    const out: FrameEvent[] = [];
    for (const byte of wire) {
      out.push(...reader.push(Buffer.from([byte])));
    }
    assert.deepEqual(frames(out), [
      { streamId: 1, data: '0a0b0c' },
      { streamId: 3, data: '' },
      { streamId: 5, data: 'ff' },
    ]);
    assert.ok(reader.idle);
  });

  it('returns several frames from one chunk and keeps a trailing partial frame', () => {
    const a = encodeFrame(1, MessageType.Request, hex('01'));
    const b = encodeFrame(3, MessageType.Request, hex('0203'));
    const c = encodeFrame(5, MessageType.Request, hex('040506'));
    const reader = new FrameReader();
    assert.deepEqual(frames(reader.push(Buffer.concat([a, b, c.subarray(0, 12)]))), [
      { streamId: 1, data: '01' },
      { streamId: 3, data: '0203' },
    ]);
    assert.equal(reader.idle, false);
    assert.deepEqual(frames(reader.push(c.subarray(12))), [{ streamId: 5, data: '040506' }]);
  });

  it('assembles a large body split across many chunks', () => {
    const body = Buffer.alloc(1 << 20, 0xab);
    const wire = encodeFrame(7, MessageType.Response, body);
    const reader = new FrameReader();
    const out: FrameEvent[] = [];
    for (let i = 0; i < wire.length; i += 65536) out.push(...reader.push(wire.subarray(i, i + 65536)));
    assert.equal(out.length, 1);
    const ev = out[0];
    assert.ok(ev.kind === 'frame' && ev.frame.data.equals(body) && ev.frame.streamId === 7);
  });

  it('reports an oversized frame, skips its bytes and carries on', () => {
    const reader = new FrameReader(16);
    const big = encodeFrame(9, MessageType.Request, Buffer.alloc(40, 1));
    const next = encodeFrame(11, MessageType.Request, hex('aa'));
    const first = reader.push(Buffer.concat([big.subarray(0, 20)]));
    assert.deepEqual(first, [
      { kind: 'oversized', header: { length: 40, streamId: 9, type: MessageType.Request, flags: 0 } },
    ]);
    assert.deepEqual(frames(reader.push(Buffer.concat([big.subarray(20), next]))), [{ streamId: 11, data: 'aa' }]);
  });

  it('accepts exactly the maximum size', () => {
    const reader = new FrameReader(4);
    assert.deepEqual(frames(reader.push(encodeFrame(1, MessageType.Request, hex('01020304')))), [
      { streamId: 1, data: '01020304' },
    ]);
  });
});
