// Calls from one service to another, made one way everywhere:
//   - a transport per upstream (serviceTransport) whose interceptor sends a request id
//     (never an empty one) and a credential: the calling service's own service token,
//     unless the call carries a person's authorization on purpose;
//   - per-call options (callOptions) taken from the call being served: its request id,
//     its remaining deadline less a margin (a default where there is none), its abort
//     signal, and, only where the upstream must judge the person (onBehalf), their
//     authorization header.
// A service never keeps or reuses a credential it was handed: what it does on its own
// (orders' completion worker) it does as itself.
import { randomUUID } from "node:crypto";
import { Code, ConnectError, createClient, type CallOptions, type HandlerContext, type Interceptor, type Transport } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { timestampMs } from "@bufbuild/protobuf/wkt";
import { ServiceIdentityService } from "@adminkiosk/proto/adminkiosk/auth/v1/auth_pb";
import { requestKey } from "./request.js";
import { traceClientCall } from "./tracing.js";
import { resilienceInterceptor, type ResilienceOptions } from "./resilience.js";

/** A service's own credential: a service token from auth, renewed before it expires. */
export interface ServiceCredentials {
  readonly service: string;
  token(): Promise<string>;
}

export interface ServiceCredentialsOptions {
  /** auth's base URL. */
  authUrl: string;
  /** This service's name, as auth's SERVICE_SECRETS lists it. */
  service: string;
  secret: string;
  /** How long to wait for auth (default 5 s). */
  timeoutMs?: number;
}

/** A token and the span it is valid for (ms since the epoch). */
export interface ObtainedToken {
  token: string;
  issuedAt: number;
  expiresAt: number;
}

/**
 * Keeps a token from `obtain`: handed out until less than a third of its lifetime (and at
 * least `minLeftMs`) is left, then obtained again, one request at a time. Whoever holds
 * it never sends a token about to expire. Used for services' own tokens and by tests.
 */
export function keptToken(obtain: () => Promise<ObtainedToken>, minLeftMs = 0): () => Promise<string> {
  let held: { token: string; renewAt: number } | undefined;
  let inflight: Promise<string> | undefined;
  const keep = (t: ObtainedToken) => {
    held = { token: t.token, renewAt: t.expiresAt - Math.max(minLeftMs, (t.expiresAt - t.issuedAt) / 3) };
    return t.token;
  };
  return async () => {
    if (held && Date.now() < held.renewAt) return held.token;
    inflight ??= obtain()
      .then(keep)
      .finally(() => {
        inflight = undefined;
      });
    return inflight;
  };
}

/** Obtains this service's token from auth and keeps it (keptToken). */
export function serviceCredentials(options: ServiceCredentialsOptions): ServiceCredentials {
  const identity = createClient(ServiceIdentityService, createGrpcTransport({ baseUrl: options.authUrl }));
  const token = keptToken(async () => {
    try {
      const issuedAt = Date.now();
      const res = await identity.issueServiceToken(
        { service: options.service, secret: options.secret },
        { timeoutMs: options.timeoutMs ?? 5_000, headers: { "x-request-id": randomUUID() } },
      );
      return { token: res.accessToken, issuedAt, expiresAt: res.expireTime ? timestampMs(res.expireTime) : issuedAt + 60_000 };
    } catch (err) {
      const e = ConnectError.from(err);
      // A refused secret is a deployment error; anything else may pass. Either way the
      // call that needed the token cannot be made now.
      throw new ConnectError(`${options.service} could not obtain its service token from auth: ${e.rawMessage}`, Code.Unavailable, undefined, undefined, err);
    }
  });
  return { service: options.service, token };
}

/**
 * Every outbound call gets a request id (a new one where the caller set none or an
 * empty one) and, unless it carries an authorization of its own, the service's token.
 */
export function outboundInterceptor(credentials?: ServiceCredentials): Interceptor {
  return (next) => async (req) => {
    if (!req.header.get("x-request-id")) req.header.set("x-request-id", randomUUID());
    if (!req.header.get("authorization") && credentials) req.header.set("authorization", `Bearer ${await credentials.token()}`);
    // A CLIENT span (tracing.ts) whose traceparent goes with the call; just next(req) when tracing is off.
    return traceClientCall(req, () => next(req));
  };
}

/**
 * A gRPC transport to another service, with the outbound interceptor and the upstream's
 * resilience policies (resilience.ts: bulkhead, retries of idempotent calls, breaker),
 * named by `resilience.upstream` (default: the URL's host:port).
 */
export function serviceTransport(baseUrl: string, credentials?: ServiceCredentials, resilience: ResilienceOptions = {}): Transport {
  const upstream = resilience.upstream ?? new URL(baseUrl).host;
  return createGrpcTransport({ baseUrl, interceptors: [outboundInterceptor(credentials), resilienceInterceptor({ ...resilience, upstream })] });
}

export interface CallOptionsSettings {
  /** The deadline when the served call has none, and for work no call asked for (5 s). */
  timeoutMs?: number;
  /** Kept back from the caller's remaining deadline, to answer it in time (100 ms). */
  marginMs?: number;
  /** Send the served call's authorization on: the upstream judges the person, not this service. */
  onBehalf?: boolean;
}

/** Options for a call made while serving `ctx` (or, without one, for background work). */
export function callOptions(ctx: HandlerContext | undefined, settings: CallOptionsSettings = {}): CallOptions {
  const fallback = settings.timeoutMs ?? 5_000;
  if (!ctx) return { timeoutMs: fallback };
  const headers: Record<string, string> = {};
  const id = ctx.values.get(requestKey)?.id;
  if (id) headers["x-request-id"] = id;
  if (settings.onBehalf) {
    const authorization = ctx.requestHeader.get("authorization");
    if (authorization) headers["authorization"] = authorization;
  }
  const remaining = ctx.timeoutMs();
  const timeoutMs = remaining === undefined ? fallback : Math.max(1, remaining - (settings.marginMs ?? 100));
  return { headers, timeoutMs, signal: ctx.signal };
}
