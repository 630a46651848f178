// The platform chunk: everything that talks to the services, loaded on demand so the first
// load holds only the shell (docs/web.md, "First load"). The shell's createApi requests it at
// start, without waiting for it to paint: the Connect transports and their interceptors,
// AuthService's client for the session and the protobuf runtime they bring. TanStack Query
// and the providers of the signed-in pages are providers.tsx, loaded once someone signs in.
import { Code, ConnectError, createClient, type Interceptor, type Transport } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import type { DescMethod } from "@bufbuild/protobuf";
import { AuthService } from "@adminkiosk/proto/adminkiosk/auth/v1/auth_pb";
import { canCall, isPublic, type Role } from "./access";
import { connection } from "./connection";
import { isNetworkError } from "./errors";
import { requestIdInterceptor } from "./request-id";
import type { AuthCalls, Session } from "./session";

/** Deadline for unary calls; server streams run until closed. */
const callTimeoutMs = 15_000;

export interface Platform {
  /** Public calls (the session's own); carries no access token. */
  calls: AuthCalls;
  /** Carries the session's access token; what every page uses. */
  transport: Transport;
  /** Whether `role` may call `method` (its access rule in proto/). */
  canCall(method: DescMethod, role: Role | undefined): boolean;
}

export function createPlatform(baseUrl: string, session: Session): Platform {
  const publicTransport = createConnectTransport({ baseUrl, interceptors: [connectionInterceptor, requestIdInterceptor], defaultTimeoutMs: callTimeoutMs });
  const transport = createConnectTransport({ baseUrl, interceptors: [connectionInterceptor, requestIdInterceptor, sessionInterceptor(session)], defaultTimeoutMs: callTimeoutMs });
  const calls: AuthCalls = {
    auth: createClient(AuthService, publicTransport),
    error: (message, code) => new ConnectError(message, code),
    codeOf: (err) => ConnectError.from(err).code,
    isNetworkError: (err) => isNetworkError(ConnectError.from(err)),
  };
  return { calls, transport, canCall };
}

/** Reports each call's outcome: any answer from a service, even a refusal, means it is reachable. */
const connectionInterceptor: Interceptor = (next) => async (req) => {
  try {
    const res = await next(req);
    connection.reachable();
    return res;
  } catch (err) {
    if (isNetworkError(ConnectError.from(err))) connection.unreachable();
    else connection.reachable();
    throw err;
  }
};

/**
 * Sends the access token with every non-public call. A unary call refused as
 * Unauthenticated is retried after a refresh (at most twice); streams are not retried
 * here: their hooks reopen them with a fresh token.
 */
function sessionInterceptor(session: Session): Interceptor {
  return (next) => async (req) => {
    if (isPublic(req.method)) return next(req);
    const token = await session.accessToken();
    req.header.set("authorization", `Bearer ${token}`);
    if (req.stream) return next(req);
    try {
      return await next(req);
    } catch (err) {
      if (ConnectError.from(err).code !== Code.Unauthenticated) throw err;
    }
    // Refused: the token expired, or the session ended. The first refresh may hand back a
    // token another call has just obtained; if that is refused too, refresh for real (a
    // session ended elsewhere then ends here, and the person is sent to sign in).
    let stale = token;
    for (let attempt = 1; ; attempt++) {
      const fresh = await session.refresh(stale);
      req.header.set("authorization", `Bearer ${fresh}`);
      try {
        return await next(req);
      } catch (err) {
        if (ConnectError.from(err).code !== Code.Unauthenticated || attempt === 2) throw err;
        stale = fresh;
      }
    }
  };
}
