// One origin for everything: the app calls /adminkiosk.<service>.v1.<Service>/<Method> on
// the host that served it, and that host (npm start's web server, Vite in dev, Envoy in
// deployment) forwards each prefix to its service.
//
// The Api is made at start with nothing of Connect or protobuf in it: the transports live in
// the platform chunk (platform.tsx), requested here at once and awaited by the first call.
import type { Transport } from "@connectrpc/connect";
import type { Platform } from "./platform";
import { Session } from "./session";

export interface Api {
  session: Session;
  /** Carries the session's access token; what every page uses. */
  transport: Transport;
  /** The platform chunk, loaded once (the same promise every time). */
  platform(): Promise<Platform>;
  /** The platform once loaded (always, under a signed-in page: RequireSession waits for it). */
  loaded(): Platform | undefined;
}

export function createApi(baseUrl: string = window.location.origin): Api {
  let platform: Promise<Platform> | undefined;
  let loaded: Platform | undefined;
  const load = (): Promise<Platform> =>
    (platform ??= import("./platform").then(
      (m) => (loaded = m.createPlatform(baseUrl, session)),
      (err: unknown) => {
        platform = undefined; // a chunk that could not be fetched is asked for again next time
        throw err;
      },
    ));
  const session: Session = new Session(() => load().then((p) => p.calls));
  const transport: Transport = {
    unary: ((...args: Parameters<Transport["unary"]>) => load().then((p) => p.transport.unary(...args))) as Transport["unary"],
    stream: ((...args: Parameters<Transport["stream"]>) => load().then((p) => p.transport.stream(...args))) as Transport["stream"],
  };
  // Fetched while the shell paints, not before it.
  void load().catch(() => undefined);
  return { session, transport, platform: load, loaded: () => loaded };
}
