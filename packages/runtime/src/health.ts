// Health as the gRPC health protocol (grpc.health.v1) and plain HTTP. A service is
// SERVING only while every dependency it cannot work without answers its probe;
// during shutdown it reports NOT_SERVING so load balancers stop sending calls.
import { EventEmitter, on } from "node:events";
import { hostname } from "node:os";
import { create, toBinary } from "@bufbuild/protobuf";
import { durationFromMs, timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { NatsConnection } from "@nats-io/transport-node";
import { ServiceHealthEventSchema } from "@adminkiosk/proto/adminkiosk/ops/v1/health_events_pb";
import { Code, ConnectError, type ConnectRouter, type ServiceImpl } from "@connectrpc/connect";
import {
  Health,
  HealthCheckResponse_ServingStatus as ServingStatus,
  HealthCheckResponseSchema,
} from "@adminkiosk/proto/grpc/health/v1/health_pb";
import type { Logger } from "./logger.js";
import { ensureStream } from "./nats.js";
import { opsSubjects } from "./subjects.js";

export { ServingStatus };

export interface DependencyProbe {
  name: string;
  /** Resolves when the dependency answers; rejects (or times out) when it does not. */
  check: () => Promise<unknown>;
}

export interface HealthMonitor {
  /** Overall status; "" and every registered service name share it. */
  status(): ServingStatus;
  /** Name → last probe error (undefined when healthy). */
  dependencies(): Record<string, string | undefined>;
  /** Runs every probe once now. */
  probe(): Promise<ServingStatus>;
  start(): void;
  /** Reports NOT_SERVING from now on (shutdown). */
  drain(): void;
  /** Whether drain() was called. */
  draining(): boolean;
  stop(): void;
  onChange(listener: (status: ServingStatus) => void): () => void;
}

export function createHealthMonitor(probes: DependencyProbe[], intervalMs: number, log: Logger): HealthMonitor {
  const failures = new Map<string, string | undefined>(probes.map((p) => [p.name, "not probed yet"]));
  const events = new EventEmitter();
  events.setMaxListeners(0);
  let current = ServingStatus.NOT_SERVING;
  let draining = false;
  let timer: NodeJS.Timeout | undefined;

  const recompute = () => {
    const next = !draining && [...failures.values()].every((f) => f === undefined) ? ServingStatus.SERVING : ServingStatus.NOT_SERVING;
    if (next !== current) {
      current = next;
      log.info({ status: ServingStatus[next], dependencies: Object.fromEntries(failures) }, "health changed");
      events.emit("change", next);
    }
    return current;
  };

  const probeOne = async (p: DependencyProbe) => {
    try {
      await withTimeout(p.check(), Math.max(500, Math.min(intervalMs, 5_000)));
      failures.set(p.name, undefined);
    } catch (err) {
      failures.set(p.name, err instanceof Error ? err.message : String(err));
    }
  };

  const monitor: HealthMonitor = {
    status: () => current,
    dependencies: () => Object.fromEntries(failures),
    async probe() {
      await Promise.all(probes.map(probeOne));
      return recompute();
    },
    start() {
      // Until it first serves, a starting process probes again soon (100 ms, doubling up to the
      // interval): its first probe usually runs before its clients have connected (ioredis
      // refuses commands while connecting), and it must not announce NOT_SERVING for a whole
      // interval for that — a service_not_serving rule would count every start as an outage.
      let starting = true;
      let retryMs = Math.min(100, intervalMs);
      const loop = async () => {
        if ((await monitor.probe()) === ServingStatus.SERVING || draining) starting = false;
        const next = starting ? retryMs : intervalMs;
        retryMs = Math.min(retryMs * 2, intervalMs);
        timer = setTimeout(loop, next);
        timer.unref();
      };
      void loop();
    },
    drain() {
      draining = true;
      recompute();
    },
    draining: () => draining,
    stop() {
      clearTimeout(timer);
      events.emit("stop");
    },
    onChange(listener) {
      events.on("change", listener);
      return () => events.off("change", listener);
    },
  };
  return monitor;
}

async function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Registers grpc.health.v1.Health for the given service names (and ""). */
export function registerHealth(router: ConnectRouter, monitor: HealthMonitor, serviceNames: string[]) {
  router.service(Health, healthImplementation(monitor, serviceNames));
}

/** grpc.health.v1.Health's handlers, for Connect (above) and the grpc-js server (grpc.ts). */
export function healthImplementation(monitor: HealthMonitor, serviceNames: string[]): ServiceImpl<typeof Health> {
  const known = new Set(["", ...serviceNames]);
  const statusFor = (service: string) => {
    if (!known.has(service)) throw new ConnectError(`unknown service "${service}"`, Code.NotFound);
    return create(HealthCheckResponseSchema, { status: monitor.status() });
  };
  return {
    check: (req) => statusFor(req.service),
    async *watch(req, ctx) {
      if (!known.has(req.service)) {
        yield create(HealthCheckResponseSchema, { status: ServingStatus.SERVICE_UNKNOWN });
        return;
      }
      yield statusFor(req.service);
      const changes = new EventEmitter();
      const off = monitor.onChange((status) => changes.emit("status", status));
      try {
        for await (const [status] of on(changes, "status", { signal: ctx.signal })) {
          yield create(HealthCheckResponseSchema, { status });
        }
      } catch (err) {
        if (!ctx.signal.aborted) throw err;
      } finally {
        off();
      }
    },
    list: () => ({
      statuses: Object.fromEntries([...known].map((name) => [name, create(HealthCheckResponseSchema, { status: monitor.status() })])),
    }),
  };
}

export interface HealthAnnouncer {
  /** This process's instance id in the announcements. */
  readonly instance: string;
  /** Announces the current status once more (a graceful shutdown: draining) and stops the heartbeat. */
  stop(): void;
}

/**
 * Announces the monitor's status on NATS (stream OPS, ops.health.<service>: a
 * ServiceHealthEvent) at each change and every `intervalMs` as a heartbeat, with a ttl of
 * three intervals (a dead process says nothing: its silence past the ttl is its NOT_SERVING).
 * Core NATS publishes, no acknowledgement awaited: a lost heartbeat is covered by the next.
 * Until NATS answers nothing is sent; the service serves regardless.
 */
export function announceHealth(o: { nats: NatsConnection | Promise<NatsConnection>; monitor: HealthMonitor; service: string; intervalMs: number; log: Logger }): HealthAnnouncer {
  const started = new Date();
  const instance = `${hostname()}/${process.pid}/${started.getTime()}`;
  const subject = opsSubjects.health(o.service);
  const ttl = durationFromMs(o.intervalMs * 3);
  let nc: NatsConnection | undefined;
  let warned = false;
  const announce = () => {
    if (!nc || nc.isClosed()) return;
    const failed = Object.fromEntries(Object.entries(o.monitor.dependencies()).filter((e): e is [string, string] => e[1] !== undefined));
    const event = create(ServiceHealthEventSchema, {
      service: o.service,
      instance,
      serving: o.monitor.status() === ServingStatus.SERVING,
      failedProbes: failed,
      draining: o.monitor.draining(),
      time: timestampFromDate(new Date()),
      startTime: timestampFromDate(started),
      ttl,
    });
    try {
      nc.publish(subject, toBinary(ServiceHealthEventSchema, event));
    } catch (err) {
      if (!warned) o.log.warn({ err }, "could not announce health on NATS");
      warned = true;
    }
  };
  void Promise.resolve(o.nats)
    .then(async (c) => {
      nc = c;
      await ensureStream(c, opsSubjects.stream).catch((err: unknown) => o.log.warn({ err }, "could not create stream OPS; health announcements go nowhere until it exists"));
      announce();
    })
    .catch(() => {});
  const off = o.monitor.onChange(() => announce());
  const timer = setInterval(announce, o.intervalMs);
  timer.unref();
  return {
    instance,
    stop() {
      clearInterval(timer);
      off();
      announce();
    },
  };
}
