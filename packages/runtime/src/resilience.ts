// Resilience policies for calls from one service to another (issue 16), in one place,
// with cockatiel. Every transport serviceTransport makes carries one upstream's policies:
//   - a bulkhead: at most `maxConcurrent` calls in flight to the upstream and `queue`
//     waiting; past that a call fails at once with Unavailable, so one slow dependency
//     holds a bounded share of the service's sockets, memory and callers;
//   - bounded retries with a capped, jittered backoff, only for idempotent methods and
//     only on Unavailable (connection refused or reset, a replica going away, the upstream
//     saying so); never past the caller's deadline (callOptions sets it: each retry gets
//     what is left of it);
//   - an upstream call ending Canceled while its caller's signal is not aborted (the
//     connection was reset under it) is Unavailable naming the upstream, "catalog is
//     unavailable: connection reset (…)": Canceled is kept for the caller's own cancel;
//   - a circuit breaker: after `consecutiveFailures` failed calls (Unavailable or
//     DeadlineExceeded; an answer such as NotFound is the upstream working) calls fail
//     fast with Unavailable naming the upstream; after `halfOpenAfterMs` one call probes
//     it, and a success closes it again.
// Idempotent means: the method's proto idempotency_level (NO_SIDE_EFFECTS, IDEMPOTENT),
// a read by this API's naming (Get…, List…), or a method the client lists in `idempotent`
// because the upstream makes it so (Reserve by reservation id, CreatePaymentIntent by
// its idempotency key). Anything else is tried once: a write that may have happened is
// never sent twice by the transport. Streams pass through untouched.
// Metrics (registerResilienceMetrics, done by startService): adminkiosk_upstream_breaker_state,
// adminkiosk_upstream_breaker_rejections_total, adminkiosk_upstream_retries_total,
// adminkiosk_upstream_bulkhead_rejections_total, adminkiosk_upstream_in_flight.
import type { DescMethod } from "@bufbuild/protobuf";
import { MethodOptions_IdempotencyLevel } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import {
  BrokenCircuitError,
  BulkheadRejectedError,
  CircuitState,
  ConsecutiveBreaker,
  DelegateBackoff,
  IsolatedCircuitError,
  TaskCancelledError,
  bulkhead,
  circuitBreaker,
  handleWhen,
  retry,
  wrap,
  type CircuitBreakerPolicy,
  type BulkheadPolicy,
} from "cockatiel";
import { Counter, Gauge, type Registry } from "prom-client";
import { backoffDelay } from "./backoff.js";

export interface ResilienceOptions {
  /** Names the upstream in errors, logs and metrics ("catalog"). Default: the URL's host:port. */
  upstream?: string;
  /** Methods the upstream makes idempotent beyond reads and proto idempotency levels. */
  idempotent?: Iterable<DescMethod>;
  /** Retries after the first attempt, for idempotent calls (2). */
  retries?: number;
  /** The first retry's delay (50 ms), doubling to at most maxBackoffMs (1 s), each drawn from [d/2, d]. */
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  /** Failed calls in a row that open the breaker (5). */
  consecutiveFailures?: number;
  /** How long an open breaker fails fast before one call probes the upstream (5 s). */
  halfOpenAfterMs?: number;
  /** Calls in flight to this upstream (64), and waiting for a slot (256). */
  maxConcurrent?: number;
  queue?: number;
}

export const resilienceDefaults = {
  retries: 2,
  initialBackoffMs: 50,
  maxBackoffMs: 1_000,
  consecutiveFailures: 5,
  halfOpenAfterMs: 5_000,
  maxConcurrent: 64,
  queue: 256,
} as const;

/** The policies of this process's upstreams, by name, for the gauges. */
const live = new Map<string, UpstreamPolicies & { maxConcurrent: number }>();

// ---- metrics: one set per process, added to each service's registry by startService.

const metrics = {
  state: new Gauge({
    name: "adminkiosk_upstream_breaker_state",
    help: "The circuit breaker for calls to an upstream service: 0 closed, 1 open (failing fast), 2 half-open (probing), 3 isolated.",
    labelNames: ["upstream"],
    registers: [],
    collect() {
      for (const p of live.values()) this.set({ upstream: p.upstream }, stateValue[p.breaker.state]);
    },
  }),
  rejections: new Counter({
    name: "adminkiosk_upstream_breaker_rejections_total",
    help: "Calls to an upstream failed fast (Unavailable) because its breaker was open.",
    labelNames: ["upstream"],
    registers: [],
  }),
  opened: new Counter({
    name: "adminkiosk_upstream_breaker_opened_total",
    help: "Times an upstream's breaker opened.",
    labelNames: ["upstream"],
    registers: [],
  }),
  retries: new Counter({
    name: "adminkiosk_upstream_retries_total",
    help: "Retries of idempotent calls to an upstream after Unavailable.",
    labelNames: ["upstream", "method"],
    registers: [],
  }),
  bulkheadRejections: new Counter({
    name: "adminkiosk_upstream_bulkhead_rejections_total",
    help: "Calls to an upstream refused (Unavailable) because too many were in flight and queued.",
    labelNames: ["upstream"],
    registers: [],
  }),
  inFlight: new Gauge({
    name: "adminkiosk_upstream_in_flight",
    help: "Calls to an upstream in flight (bulkhead slots taken).",
    labelNames: ["upstream"],
    registers: [],
    collect() {
      for (const p of live.values()) this.set({ upstream: p.upstream }, p.maxConcurrent - p.bulkhead.executionSlots);
    },
  }),
};

const metricNames = {
  adminkiosk_upstream_breaker_state: "state",
  adminkiosk_upstream_breaker_rejections_total: "rejections",
  adminkiosk_upstream_breaker_opened_total: "opened",
  adminkiosk_upstream_retries_total: "retries",
  adminkiosk_upstream_bulkhead_rejections_total: "bulkheadRejections",
  adminkiosk_upstream_in_flight: "inFlight",
} as const satisfies Record<string, keyof typeof metrics>;

/** Adds the upstream metrics to a service's registry (startService does). */
export function registerResilienceMetrics(registry: Registry): void {
  for (const [name, m] of Object.entries(metricNames)) if (!registry.getSingleMetric(name)) registry.registerMetric(metrics[m]);
}

const stateValue: Record<CircuitState, number> = {
  [CircuitState.Closed]: 0,
  [CircuitState.Open]: 1,
  [CircuitState.HalfOpen]: 2,
  [CircuitState.Isolated]: 3,
};

// ---- policies

/** One upstream's policies, for tests and health: the breaker's state. */
export interface UpstreamPolicies {
  readonly upstream: string;
  readonly breaker: CircuitBreakerPolicy;
  readonly bulkhead: BulkheadPolicy;
}

const readName = /^(Get|List)[A-Z]/;

/** Whether the transport may send `method` again after Unavailable. */
export function isIdempotent(method: DescMethod, declared: ReadonlySet<DescMethod> = new Set()): boolean {
  return method.idempotency !== MethodOptions_IdempotencyLevel.IDEMPOTENCY_UNKNOWN || readName.test(method.name) || declared.has(method);
}

/** What counts against the upstream's health: it did not answer. */
const failed = (err: unknown) => err instanceof ConnectError && (err.code === Code.Unavailable || err.code === Code.DeadlineExceeded);

/**
 * An upstream call that ends Canceled although its caller did not cancel it: the connection
 * to the upstream was reset mid-call (connect-node reads a session torn down under the stream,
 * or an HTTP/2 RST_STREAM CANCEL, as Canceled, and a TCP reset, ECONNRESET, as Aborted). Canceled must mean "the caller
 * cancelled", so this is Unavailable naming the upstream: retried where the method is
 * idempotent, counted by the breaker, and answered on as Unavailable (which kiosks retry).
 */
function resetAsUnavailable(err: unknown, signal: AbortSignal, upstream: string): unknown {
  if (signal.aborted || !(err instanceof ConnectError)) return err;
  if (err.code !== Code.Canceled && !(err.code === Code.Aborted && causedByReset(err))) return err;
  return new ConnectError(`${upstream} is unavailable: connection reset (${err.rawMessage})`, Code.Unavailable, err.metadata, undefined, err);
}

/** Whether a node error with code ECONNRESET is in the error's cause chain (connect-node reads it as Aborted). */
function causedByReset(err: unknown): boolean {
  for (let e: unknown = err, n = 0; e instanceof Error && n < 10; e = e.cause, n++) if ((e as { code?: unknown }).code === "ECONNRESET") return true;
  return false;
}

/** grpc-timeout's value for `ms` (connect sets it once from the call's timeout; a retry sends what is left). */
const grpcTimeout = (ms: number) => `${Math.max(1, Math.ceil(ms))}m`;
const timeoutUnits: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1_000, m: 1, u: 1e-3, n: 1e-6 };
function parseGrpcTimeout(value: string | null): number | undefined {
  const m = value ? /^(\d{1,8})([HMSmun])$/.exec(value) : null;
  return m ? Number(m[1]) * timeoutUnits[m[2]!]! : undefined;
}

/**
 * The interceptor carrying one upstream's policies (serviceTransport puts it on every
 * transport it makes). `onPolicies` hands the policies out (tests, health).
 */
export function resilienceInterceptor(options: ResilienceOptions & { upstream: string }, onPolicies?: (p: UpstreamPolicies) => void): Interceptor {
  const o = { ...resilienceDefaults, ...options };
  const upstream = o.upstream;
  const declared = new Set(options.idempotent ?? []);
  const breaker = circuitBreaker(handleWhen(failed), {
    halfOpenAfter: o.halfOpenAfterMs,
    breaker: new ConsecutiveBreaker(o.consecutiveFailures),
  });
  const bulk = bulkhead(o.maxConcurrent, o.queue);
  live.set(upstream, { upstream, breaker, bulkhead: bulk, maxConcurrent: o.maxConcurrent });
  breaker.onBreak(() => metrics.opened.inc({ upstream }));
  bulk.onReject(() => metrics.bulkheadRejections.inc({ upstream }));
  onPolicies?.({ upstream, breaker, bulkhead: bulk });

  const openError = (err: BrokenCircuitError | IsolatedCircuitError) => {
    const last = breaker.lastFailure;
    const why = last && "error" in last ? ` (last: ${ConnectError.from(last.error).rawMessage})` : "";
    return new ConnectError(`${upstream} is unavailable: its circuit breaker is open after ${o.consecutiveFailures} failed calls in a row${why}; failing fast until it answers again`, Code.Unavailable, undefined, undefined, err);
  };

  return (next) => async (req) => {
    if (req.stream) return next(req);
    const idempotent = isIdempotent(req.method, declared);
    const signal = req.signal;
    const budget = parseGrpcTimeout(req.header.get("grpc-timeout"));
    const deadline = budget === undefined ? undefined : Date.now() + budget;
    const retryPolicy = retry(
      handleWhen((err) => idempotent && !signal.aborted && err instanceof ConnectError && err.code === Code.Unavailable),
      {
        maxAttempts: idempotent ? o.retries : 0,
        // Never sleeps past the caller's deadline: at worst it wakes at it, and the attempt fails at once.
        backoff: new DelegateBackoff<{ attempt: number }>(({ attempt }) => {
          const d = backoffDelay(attempt, { initialMs: o.initialBackoffMs, maxMs: o.maxBackoffMs, jitter: 0.5 });
          return deadline === undefined ? d : Math.max(0, Math.min(d, deadline - Date.now()));
        }),
      },
    );
    retryPolicy.onRetry(() => metrics.retries.inc({ upstream, method: req.method.name }));
    try {
      return await wrap(bulk, retryPolicy, breaker).execute(async ({ signal: s }) => {
        if (s.aborted || signal.aborted) throw ConnectError.from(signal.reason ?? new ConnectError("the operation was aborted", Code.Canceled));
        if (deadline !== undefined && req.header.has("grpc-timeout")) req.header.set("grpc-timeout", grpcTimeout(deadline - Date.now()));
        try {
          return await next(req);
        } catch (err) {
          throw resetAsUnavailable(err, signal, upstream);
        }
      }, signal);
    } catch (err) {
      if (err instanceof BrokenCircuitError || err instanceof IsolatedCircuitError) {
        metrics.rejections.inc({ upstream });
        throw openError(err);
      }
      if (err instanceof BulkheadRejectedError)
        throw new ConnectError(`${upstream} is busy: ${o.maxConcurrent} calls in flight and ${o.queue} waiting from this replica; try again`, Code.Unavailable, undefined, undefined, err);
      if (err instanceof TaskCancelledError) throw ConnectError.from(signal.reason ?? new ConnectError("the operation was aborted", Code.Canceled));
      // Name the upstream where it did not answer, so the caller's caller reads who is down.
      if (err instanceof ConnectError && err.code === Code.Unavailable && !err.rawMessage.startsWith(upstream))
        throw new ConnectError(`${upstream} is unavailable: ${err.rawMessage}`, err.code, err.metadata, undefined, err);
      throw err;
    }
  };
}
