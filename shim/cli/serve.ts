// The long-lived shim server: the Task and Sandbox services on ttrpc (or gRPC when the runtime
// options asked for it, see start-options.ts), on the socket `start` handed over as fd 3 (or,
// started in place from the snapshot, the one it listens on already). Exits once a Shutdown or
// ShutdownSandbox leaves no container and no pod sandbox.

import * as fs from 'fs';
import * as net from 'net';
import { FfiNativeRuntime } from '../native/ffi-native';
import { lookupService } from '../protocol/proto-registry';
import { GrpcServer } from '../protocol/grpc-server';
import { TtrpcServer } from '../protocol/ttrpc-server';
import { CgroupfsDriver } from '../sandbox/cgroups/cgroupfs-driver';
import { ExitRouter } from '../sandbox/exit-router';
import { StateStore } from '../sandbox/state-store';
import { EventPublisher } from '../service/events-publisher';
import { SANDBOX_SERVICE, SandboxService } from '../service/sandbox-service';
import { TaskService } from '../service/task-service';
import type { ShimFlags } from './flags';
import { createLogger } from './logging';

const LISTEN_FD = 3;
// containerd 2.x asks for task.v3 first and falls back to v2 on Unimplemented; the messages
// are identical, so one implementation serves both names.
const TASK_SERVICES = ['containerd.task.v2.Task', 'containerd.task.v3.Task'];

export async function serve(flags: ShimFlags, listening?: net.Server): Promise<void> {
  const logger = createLogger({ debug: flags.debug, id: flags.id, namespace: flags.namespace });
  process.on('uncaughtException', (err) => logger.error('uncaught exception', { error: err.stack ?? err.message }));
  process.on('unhandledRejection', (err) =>
    logger.error('unhandled rejection', { error: (err as Error)?.stack ?? String(err) }),
  );

  if (!['', 'ttrpc', 'grpc'].includes(flags.protocol)) {
    throw new Error(`serve: -protocol ${JSON.stringify(flags.protocol)} is neither ttrpc nor grpc`);
  }
  const native = new FfiNativeRuntime();
  const publisher = new EventPublisher({
    namespace: flags.namespace,
    ttrpcAddress: process.env.TTRPC_ADDRESS,
    publishBinary: flags.publishBinary,
    containerdAddress: flags.address,
    logger,
  });
  const listener = listening ?? net.createServer();
  // One set of handlers, either transport: the servers share addService/serve/close.
  const server = flags.protocol === 'grpc' ? new GrpcServer({ logger }) : new TtrpcServer({ logger });

  let stopping = false;
  const stop = async (reason: string) => {
    if (stopping) return;
    stopping = true;
    logger.info('shim shutting down', { reason });
    listener.close();
    if (flags.socket) fs.rmSync(flags.socket, { force: true });
    await publisher.close(5000);
    await server.close();
    process.exit(0);
  };

  const sandboxDeps = { native, store: new StateStore(), exits: new ExitRouter(native, logger), logger, cgroups: new CgroupfsDriver() };
  // A pod sandbox shim (sandboxer = "shim") outlives its containers: Shutdown of the last task
  // does not end it, only ShutdownSandbox of its last sandbox with no task left does.
  const stopWhenIdle = (reason: string) => {
    if (service.containerCount === 0 && sandboxes.sandboxCount === 0) void stop(reason);
  };
  const service = new TaskService({
    namespace: flags.namespace,
    sandboxDeps,
    events: publisher,
    logger,
    onShutdown: () => stopWhenIdle('shutdown requested with no containers left'),
  });
  const sandboxes = new SandboxService({
    namespace: flags.namespace,
    sandboxDeps,
    logger,
    onShutdown: () => stopWhenIdle('last pod sandbox shut down'),
  });
  const handlers = service.handlers();
  const definition = lookupService('containerd.task.v2.Task');
  for (const name of TASK_SERVICES) server.addService(name, definition, handlers);
  server.addService(SANDBOX_SERVICE, lookupService(SANDBOX_SERVICE), sandboxes.handlers());

  server.serve(listener);
  if (!listening) listener.listen({ fd: LISTEN_FD });
  // Containers survive a stopped shim, as with runc; containerd's `delete` cleans them up.
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
  logger.info('shim started', { id: flags.id, pid: process.pid, socket: flags.socket, protocol: flags.protocol || 'ttrpc' });
}
