// One port per service serves everything: Connect, gRPC and gRPC-Web over HTTP/2
// (prior knowledge, as gRPC clients and buf curl speak it) and HTTP/1.1 (curl,
// browsers), plus /metrics, /healthz, /readyz and any plain routes a service adds.
import http from "node:http";
import http2 from "node:http2";
import { setMaxListeners } from "node:events";
import net from "node:net";
import { Duplex } from "node:stream";
import type { DescService } from "@bufbuild/protobuf";
import type { ConnectRouter, Interceptor } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { collectDefaultMetrics, Gauge, Registry } from "prom-client";
import { accessInterceptor } from "./access.js";
import { registerConsumerMetrics, type DurableConsumer } from "./consumer.js";
import { deadLetterRoutes, deadLetterServices } from "./dead-letters.js";
import { deadlineInterceptor } from "./deadline.js";
import { createGrpcConnections, type GrpcServerOptions, type GrpcServiceHandlers } from "./grpc.js";
import { announceHealth, createHealthMonitor, registerHealth, ServingStatus, type DependencyProbe, type HealthAnnouncer, type HealthMonitor } from "./health.js";
import type { NatsConnection } from "./nats.js";
import type { Logger } from "./logger.js";
import { createRpcMetrics, observeInterceptor } from "./observe.js";
import { poolGauge } from "./postgres.js";
import { registerReflection } from "./reflection.js";
import { requestContextValues } from "./request.js";
import { registerResilienceMetrics } from "./resilience.js";
import type { TokenVerifier } from "./tokens.js";
import { flushTracing, initTracing, traceHttpRoute, tracingInterceptor, type TracingSettings } from "./tracing.js";

export type HttpRoute = (req: http.IncomingMessage | http2.Http2ServerRequest, res: http.ServerResponse | http2.Http2ServerResponse) => void | Promise<void>;

export interface ServiceOptions {
  name: string;
  log: Logger;
  /** The services `routes` registers; reflection and health list them. */
  services: DescService[];
  routes: (router: ConnectRouter) => void;
  verifyToken: TokenVerifier;
  probes: DependencyProbe[];
  config: { READ_MAX_BYTES: number; MAX_TIMEOUT_MS: number; HEALTH_PROBE_INTERVAL_MS: number; SHUTDOWN_GRACE_MS: number; HEALTH_ANNOUNCE_INTERVAL_MS?: number } & TracingSettings;
  /**
   * The service's NATS connection, when it has one: its serving status is announced on it
   * (health.ts announceHealth: stream OPS, at each change and as a heartbeat). Without it
   * nothing is announced.
   */
  nats?: NatsConnection | Promise<NatsConnection>;
  /** Plain HTTP GET routes by exact path (e.g. auth's JWKS). */
  httpRoutes?: Record<string, HttpRoute>;
  /** Plain HTTP POST routes by exact path (payments' provider webhooks); they read the body themselves. */
  httpPostRoutes?: Record<string, HttpRoute>;
  /**
   * Plain HTTP routes by path prefix, for any method (the route answers 405 to those it does
   * not serve): fleet's artifact upload and ranged downloads under /v1/artifacts.
   */
  httpPrefixRoutes?: Record<string, HttpRoute>;
  /** Trust x-forwarded-for (only behind Envoy/the mesh). */
  trustProxy?: boolean;
  interceptors?: Interceptor[];
  /**
   * The service's durable JetStream consumers (consumer.ts): their metrics are registered
   * and adminkiosk.ops.v1.DeadLetterService is mounted to list and replay their dead letters.
   */
  consumers?: DurableConsumer[];
  /**
   * Methods served with @grpc/grpc-js (grpc.ts) instead of connect-node. When given, every
   * HTTP/2 (prior knowledge) connection is served by grpc-js: these handlers plus
   * grpc.health.v1 and reflection, gRPC protocol only; HTTP/1.1 (curl, /metrics, /readyz,
   * Connect and gRPC-Web unary calls) stays with connect-node. For a service whose load is
   * long-lived streams (link's kiosks).
   */
  grpc?: GrpcServiceHandlers[];
  /** Admission control for some grpc-js methods (grpc.ts GrpcServerOptions.admission); its metrics are registered. */
  admission?: GrpcServerOptions["admission"];
}

export interface RunningService {
  readonly url: string;
  readonly port: number;
  readonly health: HealthMonitor;
  readonly metrics: Registry;
  /** Graceful shutdown: NOT_SERVING, stop accepting, drain in-flight calls, then close. */
  close(): Promise<void>;
}

export async function startService(options: ServiceOptions, host: string, port: number): Promise<RunningService> {
  const { log, config } = options;
  await initTracing(options.name, config);
  const metrics = new Registry();
  metrics.setDefaultLabels({ service: options.name });
  collectDefaultMetrics({ register: metrics });
  registerResilienceMetrics(metrics);
  const health = createHealthMonitor(options.probes, config.HEALTH_PROBE_INTERVAL_MS, log);
  // Readiness as a metric, so alerts see NOT_SERVING where they cannot see probes (compose).
  new Gauge({
    name: "adminkiosk_health_serving",
    help: "1 while the service reports SERVING (all required dependencies answer), else 0.",
    registers: [metrics],
    collect() {
      this.set(health.status() === ServingStatus.SERVING ? 1 : 0);
    },
  });
  const consumers = options.consumers ?? [];
  if (consumers.length > 0) registerConsumerMetrics(metrics);
  metrics.registerMetric(poolGauge);
  const services = consumers.length > 0 ? [...options.services, ...deadLetterServices] : options.services;
  const shutdown = new AbortController();
  // Every in-flight call listens on it.
  setMaxListeners(0, shutdown.signal);
  const peers = new WeakMap<object, string>();

  const rpcMetrics = createRpcMetrics(metrics);
  const rpc = connectNodeAdapter({
    routes: (router) => {
      options.routes(router);
      if (consumers.length > 0) deadLetterRoutes(consumers)(router);
      registerHealth(router, health, services.map((s) => s.typeName));
      registerReflection(router, services);
    },
    interceptors: [
      // First, so the call's log line (observe) and everything after it carry its trace ids.
      tracingInterceptor(),
      observeInterceptor(rpcMetrics),
      deadlineInterceptor(),
      ...(options.interceptors ?? []),
      accessInterceptor(options.verifyToken),
    ],
    contextValues: requestContextValues(log, options.trustProxy ?? false, (req) =>
      "stream" in req ? (req.stream.session ? (peers.get(req.stream.session) ?? "") : "") : (req.socket.remoteAddress ?? ""),
    ),
    readMaxBytes: config.READ_MAX_BYTES,
    writeMaxBytes: 16 * 1024 * 1024,
    maxTimeoutMs: config.MAX_TIMEOUT_MS,
    shutdownSignal: shutdown.signal,
  });

  const plain: Record<string, HttpRoute> = {
    "/metrics": async (_req, res) => {
      res.writeHead(200, { "content-type": metrics.contentType });
      res.end(await metrics.metrics());
    },
    // Liveness: the process answers.
    "/healthz": (_req, res) => {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ status: "ok" }));
    },
    // Readiness: the dependencies answer.
    "/readyz": (_req, res) => {
      const serving = health.status() === ServingStatus.SERVING;
      res.writeHead(serving ? 200 : 503, { "content-type": "application/json" });
      res.end(JSON.stringify({ status: ServingStatus[health.status()], dependencies: health.dependencies() }));
    },
    ...options.httpRoutes,
  };
  const handler = (req: http.IncomingMessage | http2.Http2ServerRequest, res: http.ServerResponse | http2.Http2ServerResponse) => {
    const path = (req.url ?? "/").split("?")[0] ?? "/";
    const prefix = Object.keys(options.httpPrefixRoutes ?? {}).find((p) => path === p || path.startsWith(`${p}/`));
    const route = prefix ? options.httpPrefixRoutes![prefix] : req.method === "GET" ? plain[path] : req.method === "POST" ? options.httpPostRoutes?.[path] : undefined;
    if (!route) return rpc(req, res);
    (req.method === "POST" || prefix ? traceHttpRoute(req.method ?? "GET", prefix ?? path, req.headers, () => route(req, res)) : Promise.resolve(route(req, res))).catch((err: unknown) => {
      log.error({ err, path }, "http route failed");
      if (!res.headersSent) res.writeHead(500);
      res.end();
    });
  };

  const h1 = http.createServer(handler);
  // Many long-lived streams share a connection behind a proxy (link's kiosks behind Envoy):
  // Node's default 10 MB per-session budget would refuse new streams long before the CPU is busy.
  const h2 = http2.createServer({ maxSessionMemory: 256 }, handler);
  const sessions = new Set<http2.Http2Session>();
  let connectingPeer = "";
  h2.on("session", (s) => {
    sessions.add(s);
    peers.set(s, connectingPeer);
    s.once("close", () => sessions.delete(s));
  });
  options.admission?.admission.registerMetrics(metrics);
  const grpcConnections = options.grpc
    ? createGrpcConnections({
        log,
        metrics: rpcMetrics,
        verifyToken: options.verifyToken,
        handlers: options.grpc,
        health,
        services,
        readMaxBytes: config.READ_MAX_BYTES,
        writeMaxBytes: 16 * 1024 * 1024,
        maxTimeoutMs: config.MAX_TIMEOUT_MS,
        trustProxy: options.trustProxy ?? false,
        admission: options.admission,
      })
    : undefined;
  // The HTTP/2 connections grpc-js serves (closed on shutdown like h2's sessions).
  const grpcSockets = new Set<Duplex>();
  const listener = net.createServer((socket) => {
    // RPC frames are small and latency-bound; Nagle's algorithm would hold them back
    // (with delayed ACKs, ~40 ms per call through the replaying stream below).
    socket.setNoDelay(true);
    socket.on("error", () => socket.destroy());
    socket.once("data", (first) => {
      // HTTP/2 with prior knowledge opens with "PRI * HTTP/2.0"; anything else is HTTP/1.x.
      if (first.subarray(0, 3).toString("latin1") !== "PRI") {
        socket.pause();
        socket.unshift(first);
        h1.emit("connection", socket);
        socket.resume();
        return;
      }
      // grpc-js's connections get a stream that replays the bytes read here. Node's http2 takes
      // the socket itself: it reads what is buffered (unshifted) before its native handle (a JS stream in between cost catalog ~9 %
      // of its CPU under bench:orders, issue 13). The session is created synchronously, so the
      // peer address recorded here is the one the "session" listener above sees.
      if (grpcConnections) {
        const duplex = replaying(socket, first);
        grpcSockets.add(duplex);
        duplex.once("close", () => grpcSockets.delete(duplex));
        grpcConnections.inject(duplex);
        return;
      }
      connectingPeer = socket.remoteAddress ?? "";
      socket.pause();
      socket.unshift(first);
      h2.emit("connection", socket);
      connectingPeer = "";
    });
  });
  await new Promise<void>((resolve, reject) => {
    listener.once("error", reject);
    listener.listen(port, host, () => resolve());
  });
  const address = listener.address();
  const boundPort = typeof address === "object" && address ? address.port : port;
  health.start();
  await health.probe();
  const announcer: HealthAnnouncer | undefined = options.nats
    ? announceHealth({ nats: options.nats, monitor: health, service: options.name, intervalMs: config.HEALTH_ANNOUNCE_INTERVAL_MS ?? 10_000, log })
    : undefined;
  const url = `http://${host.includes(":") ? `[${host}]` : host}:${boundPort}`;
  log.info({ url, services: services.map((s) => s.typeName), status: ServingStatus[health.status()] }, "listening");

  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      log.info("shutting down: draining");
      health.drain();
      // Says so on NATS (draining), so nobody waits for a heartbeat that will not come.
      announcer?.stop();
      const stopped = new Promise<void>((resolve) => listener.close(() => resolve()));
      for (const s of sessions) s.close();
      grpcConnections?.drain();
      h1.closeIdleConnections();
      const grace = new Promise<void>((resolve) => setTimeout(resolve, config.SHUTDOWN_GRACE_MS).unref());
      await Promise.race([
        Promise.all([stopped, ...[...sessions].map((s) => new Promise((r) => s.once("close", r))), ...[...grpcSockets].map((d) => new Promise((r) => d.once("close", r)))]),
        grace,
      ]);
      // Whatever still runs (long streams) is told to end, then cut.
      shutdown.abort();
      for (const s of sessions) s.destroy();
      grpcConnections?.destroy();
      for (const d of grpcSockets) d.destroy();
      h1.closeAllConnections();
      health.stop();
      await flushTracing();
      log.info("shut down");
    })());

  return { url, port: boundPort, health, metrics, close };
}

/** A duplex that first yields `first`, then whatever `socket` receives, and writes to `socket` (with its addresses, for the peer). */
function replaying(socket: net.Socket, first: Buffer): Duplex {
  const duplex = new Duplex({
    read: () => void socket.resume(),
    write: (chunk: Buffer, encoding, callback) => void socket.write(chunk, encoding, callback),
    // http2 hands over a flush's frames (HEADERS, DATA, trailers, of every stream ready) at
    // once: one writev to the socket instead of a write each (~4 per unary call before).
    writev: (chunks, callback) => {
      socket.cork();
      chunks.forEach(({ chunk, encoding }, i) => socket.write(chunk, encoding as BufferEncoding, i === chunks.length - 1 ? callback : undefined));
      socket.uncork();
    },
    final: (callback) => void socket.end(callback),
    destroy: (err, callback) => {
      socket.destroy(err ?? undefined);
      callback(err);
    },
  });
  Object.assign(duplex, { remoteAddress: socket.remoteAddress, remotePort: socket.remotePort, localAddress: socket.localAddress, localPort: socket.localPort });
  duplex.push(first);
  socket.on("data", (chunk) => {
    if (!duplex.push(chunk)) socket.pause();
  });
  socket.on("end", () => duplex.push(null));
  socket.on("close", () => duplex.destroy());
  return duplex;
}

/**
 * Calls `stop` on SIGTERM or SIGINT, then exits. A second signal exits at once.
 */
export function onShutdownSignal(log: Logger, stop: () => Promise<void>) {
  let stopping = false;
  const handle = (signal: NodeJS.Signals) => {
    if (stopping) process.exit(1);
    stopping = true;
    log.info({ signal }, "signal received");
    stop().then(
      // The spans of the last calls go out before the process does (a no-op without tracing).
      () => void flushTracing().then(() => process.exit(0)),
      (err: unknown) => {
        log.error({ err }, "shutdown failed");
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", handle);
  process.on("SIGINT", handle);
}
