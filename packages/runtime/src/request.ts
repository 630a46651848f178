// What a handler knows about the call it serves: a request id (from Envoy's
// x-request-id or made here), a logger bound to it, the caller's address and,
// once the access interceptor ran, the principal.
import { randomUUID } from "node:crypto";
import { createContextKey, createContextValues, type HandlerContext } from "@connectrpc/connect";
import type http from "node:http";
import type http2 from "node:http2";
import type { Logger } from "./logger.js";
import type { Principal } from "./principal.js";

export interface RequestInfo {
  readonly id: string;
  readonly peer: string;
  log: Logger;
  principal: Principal | undefined;
}

export const requestKey = createContextKey<RequestInfo | undefined>(undefined, { description: "request info" });

export type NodeServerRequest = http.IncomingMessage | http2.Http2ServerRequest;

const requestIdPattern = /^[A-Za-z0-9._:-]{1,128}$/;

export function requestContextValues(log: Logger, trustProxy: boolean, socketPeer: (req: NodeServerRequest) => string) {
  return (req: NodeServerRequest) => {
    const header = req.headers["x-request-id"];
    const given = Array.isArray(header) ? header[0] : header;
    const id = given && requestIdPattern.test(given) ? given : randomUUID();
    const peer = (trustProxy && forwardedFor(req)) || socketPeer(req) || "unknown";
    const info: RequestInfo = { id, peer, log: log.child({ requestId: id }), principal: undefined };
    return createContextValues().set(requestKey, info);
  };
}

// The rightmost entry is the address the trusted proxy in front of us saw; entries to its
// left came from the client and could be anything.
function forwardedFor(req: NodeServerRequest): string | undefined {
  const forwarded = req.headers["x-forwarded-for"];
  const header = Array.isArray(forwarded) ? forwarded.join(",") : forwarded;
  return header?.split(",").at(-1)?.trim() || undefined;
}

/** The request info of a call; every call through createService has one. */
export function requestInfo(ctx: Pick<HandlerContext, "values">): RequestInfo {
  const info = ctx.values.get(requestKey);
  if (!info) throw new Error("request info missing: the handler was not mounted through createService");
  return info;
}
