// One origin for everything: the app calls /adminkiosk.<service>.v1.<Service>/<Method> on
// the host that served it, and that host (npm start's web server, Vite in dev, Envoy in
// deployment) forwards each prefix to its service.
import { createConnectTransport } from "@connectrpc/connect-web";
import type { Transport } from "@connectrpc/connect";
import { connectionInterceptor } from "./connection";
import { requestIdInterceptor } from "./request-id";
import { Session, sessionInterceptor } from "./session";

/** Deadline for unary calls; server streams run until closed. */
const callTimeoutMs = 15_000;

export interface Api {
  session: Session;
  /** Carries the session's access token; what every page uses. */
  transport: Transport;
}

export function createApi(baseUrl: string = window.location.origin): Api {
  const publicTransport = createConnectTransport({ baseUrl, interceptors: [connectionInterceptor, requestIdInterceptor], defaultTimeoutMs: callTimeoutMs });
  const session = new Session(publicTransport);
  const transport = createConnectTransport({ baseUrl, interceptors: [connectionInterceptor, requestIdInterceptor, sessionInterceptor(session)], defaultTimeoutMs: callTimeoutMs });
  return { session, transport };
}
