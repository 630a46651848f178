// The outermost interceptor: per-RPC Prometheus metrics (grpc-prometheus's metric
// names and label values, so stock dashboards work), one log line per call, the request id echoed back, and
// unexpected errors turned into a clean Connect error. Stack traces and SQL stay in
// the log; callers see a code, a message and the request id.
import { Code, ConnectError, type Interceptor, type StreamResponse, type UnaryResponse } from "@connectrpc/connect";
import type { DescMethod } from "@bufbuild/protobuf";
import { Counter, Histogram, type Registry } from "prom-client";
import { DomainError, domainErrorToConnect } from "./errors.js";
import type { Logger } from "./logger.js";
import { requestKey } from "./request.js";

export interface RpcMetrics {
  started: Counter<"grpc_service" | "grpc_method" | "grpc_type">;
  handled: Counter<"grpc_service" | "grpc_method" | "grpc_type" | "grpc_code">;
  seconds: Histogram<"grpc_service" | "grpc_method" | "grpc_type" | "grpc_code">;
}

export function createRpcMetrics(registry: Registry): RpcMetrics {
  const labelNames = ["grpc_service", "grpc_method", "grpc_type"] as const;
  return {
    started: new Counter({ name: "grpc_server_started_total", help: "RPCs started on the server.", labelNames, registers: [registry] }),
    handled: new Counter({
      name: "grpc_server_handled_total",
      help: "RPCs completed on the server, by status code.",
      labelNames: [...labelNames, "grpc_code"],
      registers: [registry],
    }),
    seconds: new Histogram({
      name: "grpc_server_handling_seconds",
      help: "Time from the start of an RPC to its end, by status code.",
      labelNames: [...labelNames, "grpc_code"],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 120],
      registers: [registry],
    }),
  };
}

const codeNames: Record<number, string> = Object.fromEntries(
  Object.entries(Code)
    .filter(([, v]) => typeof v === "number")
    .map(([k, v]) => [v, k]),
);
export const codeName = (code: Code | undefined) => (code === undefined ? "OK" : (codeNames[code] ?? String(code)));

/** Maps errors that are not ConnectErrors: domain errors by their kind, database states we know, else Internal. */
export function toConnectError(err: unknown, requestId: string): ConnectError {
  if (err instanceof ConnectError) return err;
  if (err instanceof DomainError) return domainErrorToConnect(err);
  // PostgreSQL SQLSTATE, Node error codes (ERR_..., ECONNREFUSED), whatever the error carries.
  const errorCode = typeof err === "object" && err !== null && "code" in err ? String(err.code) : "";
  // The caller closed its stream (a client cancelling, a tool like buf curl hanging up).
  if (errorCode === "ERR_STREAM_PREMATURE_CLOSE" || errorCode === "ERR_HTTP2_STREAM_CANCEL" || errorCode === "ERR_HTTP2_INVALID_STREAM")
    return new ConnectError("the caller went away", Code.Canceled, undefined, undefined, err);
  if (errorCode === "23505") return new ConnectError("already exists", Code.AlreadyExists, undefined, undefined, err);
  if (errorCode === "40001" || errorCode === "40P01") return new ConnectError("conflicting concurrent update; retry", Code.Aborted, undefined, undefined, err);
  if (errorCode === "57014") return new ConnectError("the operation timed out", Code.DeadlineExceeded, undefined, undefined, err);
  if (["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "57P01", "57P03", "08006", "08001"].includes(errorCode) || isConnectionLoss(err))
    return new ConnectError("a dependency is unavailable; retry later", Code.Unavailable, undefined, undefined, err);
  return new ConnectError(`internal error (request id ${requestId})`, Code.Internal, undefined, undefined, err);
}

function isConnectionLoss(err: unknown): boolean {
  const message = err instanceof Error ? err.message : "";
  // pg and ioredis (with its offline queue off, a down Redis fails commands at once).
  return /Connection terminated|connect ECONNREFUSED|Connection is closed|timeout exceeded when trying to connect|Stream isn't writeable|enableOfflineQueue/i.test(
    message,
  );
}

// grpc-prometheus's grpc_type values, so stock dashboards and alerts apply.
const grpcType = { unary: "unary", server_streaming: "server_stream", client_streaming: "client_stream", bidi_streaming: "bidi_stream" } as const;

export function observeInterceptor(metrics: RpcMetrics): Interceptor {
  return (next) => async (req) => {
    const info = req.contextValues.get(requestKey);
    const requestId = info?.id ?? "";
    const finish = observeCall(metrics, req.method, () => info?.log, requestId);
    let res: UnaryResponse | StreamResponse;
    try {
      res = await next(req);
    } catch (err) {
      throw finish(err);
    }
    res.header.set("x-request-id", requestId);
    if (!res.stream) {
      finish();
      return res;
    }
    return { ...res, message: observeStream(res.message, finish) };
  };
}

/**
 * Starts observing one call (grpc_server_started_total); the returned function ends it:
 * the handled counter and duration by code, one log line, and the error as the caller
 * sees it (toConnectError, with the request id in its metadata). Shared by the Connect
 * interceptor above and the grpc-js server (grpc.ts).
 */
export function observeCall(metrics: RpcMetrics, method: DescMethod, log: () => Logger | undefined, requestId: string): (err?: unknown) => ConnectError | undefined {
  const labels = { grpc_service: method.parent.typeName, grpc_method: method.name, grpc_type: grpcType[method.methodKind] };
  metrics.started.inc(labels);
  const start = process.hrtime.bigint();
  return (err?: unknown) => {
    const connectErr = err === undefined ? undefined : toConnectError(err, requestId);
    const code = codeName(connectErr?.code);
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    metrics.handled.inc({ ...labels, grpc_code: code });
    metrics.seconds.observe({ ...labels, grpc_code: code }, seconds);
    const l = log();
    const fields = { rpc: `${method.parent.typeName}/${method.name}`, code, ms: Math.round(seconds * 1000) };
    if (!connectErr) l?.info(fields, "rpc");
    // A refusal with a retry pushback (admission control) is the server saying "later", not a failure.
    else if (connectErr.code === Code.Internal || connectErr.code === Code.Unknown || (connectErr.code === Code.Unavailable && !connectErr.metadata.has("grpc-retry-pushback-ms")))
      l?.error({ ...fields, err: connectErr.cause ?? connectErr }, "rpc failed");
    else l?.info({ ...fields, reason: connectErr.rawMessage }, "rpc refused");
    if (connectErr) connectErr.metadata.set("x-request-id", requestId);
    return connectErr;
  };
}

async function* observeStream<T>(messages: AsyncIterable<T>, finish: (err?: unknown) => ConnectError | undefined): AsyncIterable<T> {
  let done = false;
  try {
    yield* messages;
    done = true;
    finish();
  } catch (err) {
    done = true;
    throw finish(err);
  } finally {
    // The caller went away mid-stream (cancelled, deadline, connection lost).
    if (!done) finish(new ConnectError("the caller cancelled the stream", Code.Canceled));
  }
}
