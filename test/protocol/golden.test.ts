import { strict as assert } from 'assert';
import * as path from 'path';
import * as protobuf from 'protobufjs';
import {
  decodeMessage,
  encodeMessage,
  loadProtoFiles,
  lookupService,
  lookupType,
  packAny,
  protoRoot,
  protosDir,
  unpackAny,
} from '../../shim/protocol/proto-registry';
import { decodeHeader, encodeFrame, HEADER_LENGTH, MessageType } from '../../shim/protocol/ttrpc-frame';
import { hex } from './helpers';

const NS_KEY = 'containerd-namespace-ttrpc';
const ZERO_TIME = { seconds: -62135596800, nanos: 0 };

/** ttrpc.md §5: Connect request on stream 1 with namespace metadata. */
const CONNECT_REQUEST_FRAME = Buffer.concat([
  hex('00000050 00000001 01 00'),
  hex('0a 17'),
  Buffer.from('containerd.task.v2.Task'),
  hex('12 07'),
  Buffer.from('Connect'),
  hex('1a 05 0a 03'),
  Buffer.from('abc'),
  hex('2a 25 0a 1a'),
  Buffer.from(NS_KEY),
  hex('12 07'),
  Buffer.from('default'),
]);
const CONNECT_REPLY_FRAME = hex('00000008 00000001 02 00 12 06 08 d2 09 10 ae 2c');
const NOT_FOUND_FRAME = Buffer.concat([
  hex('00000026 00000003 02 00 0a 24 08 05 12 20'),
  Buffer.from('container not created: not found'),
]);

interface Req {
  service: string;
  method: string;
  payload: Buffer;
  timeout_nano: number;
  metadata: Array<{ key: string; value: string }>;
}
interface Resp {
  status: { code: number; message: string; details: unknown[] } | null;
  payload: Buffer;
}

describe('protocol: golden bytes (ttrpc.md §5, task-api.md §2)', () => {
  it('encodes the Connect request byte for byte', () => {
    const payload = encodeMessage('containerd.task.v2.ConnectRequest', { id: 'abc' });
    // timeout_nano 0 is given explicitly: proto3 zero values must still be omitted.
    const data = encodeMessage('ttrpc.Request', {
      service: 'containerd.task.v2.Task',
      method: 'Connect',
      payload,
      timeout_nano: 0,
      metadata: [{ key: NS_KEY, value: 'default' }],
    });
    const frame = encodeFrame(1, MessageType.Request, data);
    assert.equal(frame.length, 90);
    assert.deepEqual(frame, CONNECT_REQUEST_FRAME);
  });

  it('decodes the Connect request back', () => {
    const header = decodeHeader(CONNECT_REQUEST_FRAME);
    assert.deepEqual(header, { length: 80, streamId: 1, type: MessageType.Request, flags: 0 });
    const req = decodeMessage<Req>('ttrpc.Request', CONNECT_REQUEST_FRAME.subarray(HEADER_LENGTH));
    assert.equal(req.service, 'containerd.task.v2.Task');
    assert.equal(req.method, 'Connect');
    assert.equal(req.timeout_nano, 0);
    assert.deepEqual(req.metadata, [{ key: NS_KEY, value: 'default' }]);
    assert.deepEqual(decodeMessage('containerd.task.v2.ConnectRequest', req.payload), { id: 'abc' });
  });

  it('encodes the success reply with status omitted', () => {
    const payload = encodeMessage('containerd.task.v2.ConnectResponse', { shim_pid: 1234, task_pid: 5678, version: '' });
    const frame = encodeFrame(1, MessageType.Response, encodeMessage('ttrpc.Response', { payload }));
    assert.deepEqual(frame, CONNECT_REPLY_FRAME);
  });

  it('decodes the success reply, with and without an explicit empty status', () => {
    const plain = decodeMessage<Resp>('ttrpc.Response', CONNECT_REPLY_FRAME.subarray(HEADER_LENGTH));
    assert.equal(plain.status, null);
    assert.deepEqual(decodeMessage('containerd.task.v2.ConnectResponse', plain.payload), {
      shim_pid: 1234,
      task_pid: 5678,
      version: '',
    });
    const withStatus = decodeMessage<Resp>('ttrpc.Response', hex('0a 00 12 06 08 d2 09 10 ae 2c'));
    assert.deepEqual(withStatus.status, { code: 0, message: '', details: [] });
    assert.deepEqual(withStatus.payload, plain.payload);
  });

  it('encodes and decodes the NotFound error reply', () => {
    const data = encodeMessage('ttrpc.Response', {
      status: { code: 5, message: 'container not created: not found' },
    });
    assert.deepEqual(encodeFrame(3, MessageType.Response, data), NOT_FOUND_FRAME);
    const resp = decodeMessage<Resp>('ttrpc.Response', NOT_FOUND_FRAME.subarray(HEADER_LENGTH));
    assert.deepEqual(resp.status, { code: 5, message: 'container not created: not found', details: [] });
    assert.equal(resp.payload.length, 0);
  });

  it('encodes the zero-time Timestamp sentinel as the 10-byte varint', () => {
    const bytes = encodeMessage('google.protobuf.Timestamp', ZERO_TIME);
    assert.deepEqual(Buffer.from(bytes), hex('08 80 92 b8 c3 98 fe ff ff ff 01'));
    assert.deepEqual(decodeMessage('google.protobuf.Timestamp', bytes), ZERO_TIME);
  });

  it('round-trips DeleteResponse with the right field numbers', () => {
    const value = { pid: 42, exit_status: 137, exited_at: { seconds: 1700000000, nanos: 5 } };
    const bytes = Buffer.from(encodeMessage('containerd.task.v2.DeleteResponse', value));
    // pid=1 varint, exit_status=2 varint (137 = 89 01), exited_at=3 length-delimited.
    assert.deepEqual(bytes, hex('08 2a 10 89 01 1a 08 08 80 e2 cf aa 06 10 05'));
    assert.deepEqual(decodeMessage('containerd.task.v2.DeleteResponse', bytes), value);
  });

  it('round-trips TaskExit carrying the zero-time sentinel', () => {
    const value = { container_id: 'c1', id: 'e1', pid: 7, exit_status: 1, exited_at: ZERO_TIME };
    const bytes = Buffer.from(encodeMessage('containerd.events.TaskExit', value));
    assert.deepEqual(
      bytes,
      hex('0a 02 6331 12 02 6531 18 07 20 01 2a 0b 08 80 92 b8 c3 98 fe ff ff ff 01'),
    );
    assert.deepEqual(decodeMessage('containerd.events.TaskExit', bytes), value);
  });

  it('decodes absent fields as defaults and unknown fields are skipped', () => {
    // StateResponse with only pid (field 3) = 7, plus an unknown field 99.
    const state = decodeMessage<Record<string, unknown>>('containerd.task.v2.StateResponse', hex('18 07 98 06 01'));
    assert.equal(state.pid, 7);
    assert.equal(state.exec_id, '');
    assert.equal(state.status, 0);
    assert.equal(state.exited_at, null);
    assert.equal(state.terminal, false);
  });

  it('keeps snake_case names, Any as {type_url, value} and bytes as Buffer', () => {
    const options = packAny('containerd.runc.v1.Options', { binary_name: 'runc', systemd_cgroup: true });
    assert.equal(options.type_url, 'containerd.runc.v1.Options');
    const req = decodeMessage<{ options: { type_url: string; value: Uint8Array }; parent_checkpoint: string }>(
      'containerd.task.v2.CreateTaskRequest',
      encodeMessage('containerd.task.v2.CreateTaskRequest', { id: 'c', options }),
    );
    assert.equal(req.parent_checkpoint, '');
    assert.equal(req.options.type_url, 'containerd.runc.v1.Options');
    assert.ok(Buffer.isBuffer(req.options.value));
    assert.deepEqual(unpackAny(req.options), {
      no_pivot_root: false,
      no_new_keyring: false,
      shim_cgroup: '',
      io_uid: 0,
      io_gid: 0,
      binary_name: 'runc',
      root: '',
      criu_path: '',
      systemd_cgroup: true,
      criu_image_path: '',
      criu_work_path: '',
      task_api_address: '',
      task_api_version: 0,
    });
    // 1.7+ may prefix type URLs; unpackAny tolerates it.
    assert.equal(
      unpackAny<{ exec_id: string }>({ type_url: 'type.googleapis.com/containerd.runc.v1.ProcessDetails', value: hex('0a 01 78') }).exec_id,
      'x',
    );
  });

  it('encodes UpdateTaskRequest annotations as a map and enums by number', () => {
    const bytes = Buffer.from(
      encodeMessage('containerd.task.v2.UpdateTaskRequest', { id: 'c', annotations: { a: 'b' } }),
    );
    assert.deepEqual(bytes, hex('0a 01 63 1a 06 0a 01 61 12 01 62'));
    const st = Buffer.from(encodeMessage('containerd.task.v2.StateResponse', { status: 2 }));
    assert.deepEqual(st, hex('20 02'));
  });

  it('encodes uint64 values above 2^53 given as decimal strings', () => {
    const bytes = Buffer.from(
      encodeMessage('io.containerd.cgroups.v2.MemoryStat', { usage_limit: '18446744073709551615' }),
    );
    assert.deepEqual(bytes, hex('88 02 ff ff ff ff ff ff ff ff ff 01'));
  });

  it('lays out cgroup metrics with containerd/cgroups field numbers', () => {
    // v2: memory is field 4 (no field 3); usage is MemoryStat field 32.
    const v2 = Buffer.from(encodeMessage('io.containerd.cgroups.v2.Metrics', { memory: { usage: 5 } }));
    assert.deepEqual(v2, hex('22 03 80 02 05'));
    // v1: memory is field 4, total_inactive_file is MemoryStat field 30, usage a MemoryEntry at 33.
    const v1 = Buffer.from(
      encodeMessage('io.containerd.cgroups.v1.Metrics', {
        cpu: { usage: { total: 9 } },
        memory: { total_inactive_file: 1, usage: { usage: 2 } },
      }),
    );
    assert.deepEqual(v1, hex('1a 04 0a 02 08 09 22 08 f0 01 01 8a 02 02 10 02'));
    const stats = packAny('io.containerd.cgroups.v2.Metrics', { pids: { current: 3, limit: 10 } });
    const decoded = unpackAny<{ pids: { current: number; limit: number }; network: unknown[] }>(stats);
    assert.deepEqual(decoded.pids, { current: 3, limit: 10 });
    assert.deepEqual(decoded.network, []);
  });

  it('exposes the full Task service and every event and option type', () => {
    const task = lookupService('containerd.task.v2.Task');
    assert.deepEqual(Object.keys(task.methods).sort(), [
      'CloseIO', 'Connect', 'Create', 'Delete', 'Exec', 'Kill', 'Pause', 'Pids', 'ResizePty',
      'Resume', 'Shutdown', 'Start', 'State', 'Stats', 'Update', 'Wait', 'Checkpoint',
    ].sort());
    assert.equal(task.methods.Kill.responseType, 'google.protobuf.Empty');
    const events = lookupService('containerd.services.events.ttrpc.v1.Events');
    assert.deepEqual(Object.keys(events.methods), ['Forward']);
    for (const name of [
      'TaskCreate', 'TaskIO', 'TaskStart', 'TaskExit', 'TaskDelete', 'TaskOOM', 'TaskExecAdded',
      'TaskExecStarted', 'TaskPaused', 'TaskResumed', 'TaskCheckpointed',
    ]) {
      assert.ok(lookupType(`containerd.events.${name}`));
    }
    for (const name of [
      'containerd.types.Mount', 'containerd.v1.types.ProcessInfo', 'containerd.runc.v1.CheckpointOptions',
      'containerd.runc.v1.ProcessDetails', 'runtimeoptions.v1.Options', 'ttrpc.Status', 'ttrpc.KeyValue',
      'containerd.services.events.ttrpc.v1.Envelope', 'io.containerd.cgroups.v1.Metrics',
      'io.containerd.cgroups.v2.Metrics', 'google.protobuf.Empty',
    ]) {
      assert.ok(lookupType(name), name);
    }
    assert.throws(() => lookupType('containerd.task.v2.Nope'), /unknown message type containerd\.task\.v2\.Nope/);
  });

  it('loads the same schema from the JSON descriptor as from .proto text', () => {
    // Through JSON text, which also drops the `undefined` members toJSON() leaves around.
    const plain = (root: protobuf.Root): unknown => JSON.parse(JSON.stringify(root.toJSON()));
    const fromText = loadProtoFiles(protosDir());
    const viaJson = protobuf.Root.fromJSON(plain(fromText) as protobuf.INamespace);
    assert.deepEqual(plain(viaJson), plain(fromText));
    // Whatever path protoRoot() took, it describes the same schema.
    assert.deepEqual(plain(protoRoot()), plain(fromText));
    assert.ok(path.isAbsolute(protosDir()));
  });
});
