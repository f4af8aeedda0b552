// Errors of the sandbox layer, by kind. The service layer maps kinds to gRPC status codes; the
// sandbox itself knows nothing of the wire.

export type SandboxErrorKind =
  | 'invalid-argument'
  | 'not-found'
  | 'already-exists'
  | 'failed-precondition'
  | 'internal';

export class SandboxError extends Error {
  constructor(
    readonly kind: SandboxErrorKind,
    message: string,
  ) {
    super(message);
    this.name = 'SandboxError';
  }
}

export const invalidArgument = (msg: string) => new SandboxError('invalid-argument', msg);
export const notFound = (msg: string) => new SandboxError('not-found', msg);
export const alreadyExists = (msg: string) => new SandboxError('already-exists', msg);
export const failedPrecondition = (msg: string) => new SandboxError('failed-precondition', msg);
