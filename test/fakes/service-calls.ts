// What the service tests share: handlers called as a transport calls them, the failures they
// must answer with, the events they publish, and sandbox dependencies over a fake native layer.

import { strict as assert } from 'assert';
import { silentLogger } from '../../shim/log/logger';
import type { CallContext, UnaryHandler } from '../../shim/protocol/rpc-service';
import { Code, RpcError } from '../../shim/protocol/status';
import { ExitRouter } from '../../shim/sandbox/exit-router';
import type { SandboxDeps } from '../../shim/sandbox/sandbox';
import { StateStore } from '../../shim/sandbox/state-store';
import type { EventSink } from '../../shim/service/task-service';
import type { FakeNative } from './fake-native';

/** Calls `method` of `handlers` the way a transport does for `service` in `namespace`. */
export function callMethod(
  handlers: Record<string, UnaryHandler>,
  service: string,
  namespace: string,
  method: string,
  req: Record<string, unknown>,
): Promise<any> {
  const handler = handlers[method];
  assert.ok(handler, `no handler for ${method}`);
  const ctx: CallContext = { service, method, metadata: new Map(), namespace };
  return handler(req, ctx);
}

/** `p` fails with an RpcError of `code` (and a message matching `message`); returns that error. */
export async function rejectsCode(p: Promise<unknown>, code: Code, message?: RegExp): Promise<RpcError> {
  let caught: unknown;
  try {
    await p;
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof RpcError, `expected RpcError ${Code[code]}, got ${String(caught)}`);
  assert.equal(caught.code, code, `${Code[caught.code]}: ${caught.message}`);
  if (message) assert.match(caught.message, message);
  return caught;
}

export interface Published {
  topic: string;
  typeName: string;
  event: Record<string, any>;
}

/** An EventSink that keeps what was published, in order. */
export class RecordingSink implements EventSink {
  readonly events: Published[] = [];
  publish(topic: string, typeName: string, event: object): void {
    this.events.push({ topic, typeName, event: event as Record<string, any> });
  }
  get topics(): string[] {
    return this.events.map((e) => e.topic);
  }
  of(topic: string): Published[] {
    return this.events.filter((e) => e.topic === topic);
  }
}

/** Sandbox dependencies over `native`, with the state store in `stateDir` and no logging. */
export function fakeSandboxDeps(native: FakeNative, stateDir: string, extra: Partial<SandboxDeps> = {}): SandboxDeps {
  return {
    native,
    store: new StateStore(stateDir),
    exits: new ExitRouter(native, silentLogger),
    logger: silentLogger,
    ...extra,
  };
}
