// Asks containerd's CRI plugin which runtime handlers it serves: RuntimeService.Status with
// verbose set. containerd 1.6/1.7 answer with their CRI config as JSON in info["config"]
// (`containerd.runtimes` keyed by handler); containerd 2.x also fills `runtime_handlers`.
// The proto is the subset of k8s.io/cri-api runtime/v1 this needs, with its field numbers.
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import * as protobuf from 'protobufjs';

const STATUS_PROTO = `
syntax = "proto3";
package runtime.v1;
service RuntimeService {
  rpc Status(StatusRequest) returns (StatusResponse) {}
}
message StatusRequest { bool verbose = 1; }
message RuntimeCondition { string type = 1; bool status = 2; string reason = 3; string message = 4; }
message RuntimeStatus { repeated RuntimeCondition conditions = 1; }
message RuntimeHandler { string name = 1; }
message StatusResponse {
  RuntimeStatus status = 1;
  map<string, string> info = 2;
  repeated RuntimeHandler runtime_handlers = 3;
}
`;

interface StatusResponse {
  status: { conditions: { type: string; status: boolean }[] } | null;
  info: Record<string, string>;
  runtime_handlers: { name: string }[];
}

export interface CriRuntimeStatus {
  /** Handler names containerd's CRI plugin serves. */
  handlers: string[];
  runtimeReady: boolean;
}

let serviceCtor: grpc.ServiceClientConstructor | undefined;

function service(): grpc.ServiceClientConstructor {
  if (!serviceCtor) {
    const root = protobuf.parse(STATUS_PROTO, { keepCase: true }).root;
    const def = protoLoader.fromJSON(root.toJSON(), { keepCase: true, defaults: true, longs: String });
    const pkg = grpc.loadPackageDefinition(def) as unknown as { runtime: { v1: { RuntimeService: grpc.ServiceClientConstructor } } };
    serviceCtor = pkg.runtime.v1.RuntimeService;
  }
  return serviceCtor;
}

/** Handler names from a verbose Status answer (both shapes above). */
export function handlersOf(res: Pick<StatusResponse, 'info' | 'runtime_handlers'>): string[] {
  const names = new Set((res.runtime_handlers ?? []).map((h) => h.name).filter((n) => n !== ''));
  const config = res.info?.config;
  if (config) {
    try {
      const parsed = JSON.parse(config) as { containerd?: { runtimes?: Record<string, unknown> } };
      for (const n of Object.keys(parsed.containerd?.runtimes ?? {})) names.add(n);
    } catch {
      // not JSON: only runtime_handlers count
    }
  }
  return [...names].sort();
}

export function criStatus(socket: string, timeoutMs = 10_000): Promise<CriRuntimeStatus> {
  const Ctor = service();
  const client = new Ctor(`unix://${socket}`, grpc.credentials.createInsecure(), {
    'grpc.max_receive_message_length': 16 * 1024 * 1024,
  });
  return new Promise<CriRuntimeStatus>((resolve, reject) => {
    type StatusCall = (
      req: { verbose: boolean },
      md: grpc.Metadata,
      opts: grpc.CallOptions,
      cb: (err: grpc.ServiceError | null, res: StatusResponse) => void,
    ) => void;
    const status = (client as unknown as { Status: StatusCall }).Status;
    status.call(
      client,
      { verbose: true },
      new grpc.Metadata(),
      { deadline: Date.now() + timeoutMs },
      (err: grpc.ServiceError | null, res: StatusResponse) => {
        client.close();
        if (err) reject(new Error(`CRI Status on ${socket}: ${grpc.status[err.code] ?? err.code}: ${err.details}`));
        else {
          const conds = res.status?.conditions ?? [];
          resolve({ handlers: handlersOf(res), runtimeReady: conds.some((c) => c.type === 'RuntimeReady' && c.status) });
        }
      },
    );
  });
}
