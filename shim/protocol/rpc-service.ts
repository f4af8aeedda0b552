/**
 * What both transports (ttrpc-server.ts, grpc-server.ts) share: the handler signature the
 * service layer implements once, the per-call context, and the method table read from a
 * proto service, so one implementation is served identically over ttrpc and gRPC.
 */
import type * as protobuf from 'protobufjs';

export interface Logger {
  debug(msg: string, meta?: object): void;
  info(msg: string, meta?: object): void;
  warn(msg: string, meta?: object): void;
  error(msg: string, meta?: object): void;
}

export interface CallContext {
  service: string;
  method: string;
  /** Request metadata; a key may repeat. */
  metadata: Map<string, string[]>;
  /** containerd's namespace (ttrpc: `containerd-namespace-ttrpc`, gRPC: `containerd-namespace`), if sent. */
  namespace?: string;
  /** Absolute deadline (Date.now() scale), if the caller set one. */
  deadlineMs?: number;
}

// The request/response shapes are defined by the .proto method signature.
export type UnaryHandler = (request: any, ctx: CallContext) => Promise<any>;

export interface MethodEntry {
  requestType: string;
  responseType: string;
}

/**
 * The unary methods of `service` with their message types. Streaming methods are left out
 * (neither transport implements streams); calls to them get Unimplemented.
 */
export function unaryMethods(name: string, service: protobuf.Service, logger: Logger): Map<string, MethodEntry> {
  const methods = new Map<string, MethodEntry>();
  for (const method of service.methodsArray) {
    if (method.requestStream || method.responseStream) {
      logger.warn('rpc: skipping streaming method', { service: name, method: method.name });
      continue;
    }
    method.resolve();
    const req = method.resolvedRequestType;
    const res = method.resolvedResponseType;
    if (req === null || res === null) {
      throw new Error(`rpc: ${name}/${method.name}: unresolved request or response type`);
    }
    methods.set(method.name, { requestType: stripDot(req.fullName), responseType: stripDot(res.fullName) });
  }
  return methods;
}

function stripDot(fullName: string): string {
  return fullName.startsWith('.') ? fullName.slice(1) : fullName;
}
