/**
 * gRPC status codes as carried in ttrpc's Status message. containerd maps
 * these to its errdefs classes (errdefs.FromGRPC), so the numeric value is
 * what decides e.g. whether a failed Kill counts as "already gone".
 */
export enum Code {
  OK = 0,
  Canceled = 1,
  Unknown = 2,
  InvalidArgument = 3,
  DeadlineExceeded = 4,
  NotFound = 5,
  AlreadyExists = 6,
  PermissionDenied = 7,
  ResourceExhausted = 8,
  FailedPrecondition = 9,
  Aborted = 10,
  OutOfRange = 11,
  Unimplemented = 12,
  Internal = 13,
  Unavailable = 14,
  DataLoss = 15,
  Unauthenticated = 16,
}

/** An error that must reach the ttrpc peer with a specific status code. */
export class RpcError extends Error {
  readonly code: Code;

  constructor(code: Code, message: string) {
    super(message);
    this.name = 'RpcError';
    this.code = code;
  }
}

export interface StatusLike {
  code: Code;
  message: string;
}

/**
 * Maps anything a handler may throw to a wire status. Only RpcError chooses
 * its code: a plain Error becoming Unknown mirrors how Go's ttrpc treats
 * non-status errors, which containerd reads as errdefs.ErrUnknown.
 */
export function statusFromError(err: unknown): StatusLike {
  if (err instanceof RpcError) {
    return { code: err.code, message: err.message };
  }
  if (err instanceof Error) {
    return { code: Code.Unknown, message: err.message };
  }
  return { code: Code.Unknown, message: typeof err === 'string' ? err : String(err) };
}
