// Which address a call comes from, for the login and enrollment limits and the audit log.
//
// The rule: the socket's peer address, unless TRUST_PROXY is on; then the address the edge
// puts in `x-adminkiosk-client-address`. The edge (envoy/envoy.yaml) overwrites that header
// on every request with the client address it trusts (the downstream address, or the one
// its configured trusted hops put in x-forwarded-for), so no client can choose it through
// the edge. A caller that reaches auth's port directly could, so TRUST_PROXY belongs only
// where the edge is the only way in (Istio: auth's AuthorizationPolicy). x-forwarded-for is
// never read here: its entries are as good as the proxies that wrote them, and which of them
// to believe depends on how many proxies there are, which only the edge is configured with.
import { isIP } from "node:net";
import type { Interceptor } from "@connectrpc/connect";
import { requestKey } from "@adminkiosk/runtime";

export const clientAddressHeader = "x-adminkiosk-client-address";

/** The trusted client address in `headers`, if there is one that is an IP address. */
export function addressFromEdge(headers: Headers): string | undefined {
  const value = headers.get(clientAddressHeader)?.trim();
  return value && isIP(value) ? value : undefined;
}

/**
 * With `trustProxy`, replaces the call's peer (the socket address the runtime recorded) by
 * the address the edge vouches for. Without it, the header is ignored. Calls that did not
 * come through the edge (no header: in-cluster callers, probes) keep the socket address.
 */
export function clientAddressInterceptor(trustProxy: boolean): Interceptor {
  return (next) => async (req) => {
    const info = req.contextValues.get(requestKey);
    const address = trustProxy ? addressFromEdge(req.header) : undefined;
    // A copy: the principal is set on it by the access check, which runs after this.
    if (info && address) req.contextValues.set(requestKey, { ...info, peer: address });
    return next(req);
  };
}
