// Sandbox error kinds → gRPC status codes, so a "not found" never reaches containerd as
// Unknown (containerd's clients branch on these codes).

import { Code, RpcError } from '../protocol/status';
import { SandboxError, SandboxErrorKind } from '../sandbox/errors';

const CODES: Record<SandboxErrorKind, Code> = {
  'invalid-argument': Code.InvalidArgument,
  'not-found': Code.NotFound,
  'already-exists': Code.AlreadyExists,
  'failed-precondition': Code.FailedPrecondition,
  internal: Code.Internal,
};

export function toRpcError(err: unknown): RpcError {
  if (err instanceof RpcError) return err;
  if (err instanceof SandboxError) return new RpcError(CODES[err.kind], err.message);
  // runc's shim sends plain runtime failures as Unknown, and clients expect that.
  return new RpcError(Code.Unknown, err instanceof Error ? err.message : String(err));
}
