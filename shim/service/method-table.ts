// The one place a service's methods become transport handlers: whatever a method throws
// reaches containerd as a status code (error-codes.ts), and the failure is logged once, at
// debug for the answers containerd expects in normal operation (NotFound, Unimplemented).

import type { Logger } from '../log/logger';
import type { UnaryHandler } from '../protocol/rpc-service';
import { Code } from '../protocol/status';
import { toRpcError } from './error-codes';

type Req = Record<string, any>;

export type Method = (req: Req) => Promise<object | undefined>;

/**
 * Handlers for `methods`; a failure of one is logged as `<name> failed` with the fields
 * `about(req)` names (the ids the request is for), its code and message.
 */
export function handlersOf(
  methods: Record<string, Method>,
  logger: Logger,
  about: (req: Req) => Record<string, unknown>,
): Record<string, UnaryHandler> {
  const out: Record<string, UnaryHandler> = {};
  for (const [name, fn] of Object.entries(methods)) {
    out[name] = async (req: Req) => {
      try {
        return await fn(req);
      } catch (err) {
        const rpc = toRpcError(err);
        const level = rpc.code === Code.NotFound || rpc.code === Code.Unimplemented ? 'debug' : 'warn';
        logger[level](`${name} failed`, { ...about(req), code: rpc.code, error: rpc.message });
        throw rpc;
      }
    };
  }
  return out;
}
