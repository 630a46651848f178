// Every call carries an x-request-id the services log and echo back, so an error shown to
// a person can name the request for support, even when no response arrived at all.
import { ConnectError, type Interceptor } from "@connectrpc/connect";

export const requestIdHeader = "x-request-id";

function newRequestId(): string {
  // crypto.randomUUID exists only in secure contexts (https, localhost).
  if (typeof crypto.randomUUID === "function") return crypto.randomUUID();
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("");
}

export const requestIdInterceptor: Interceptor = (next) => async (req) => {
  const id = newRequestId();
  req.header.set(requestIdHeader, id);
  try {
    return await next(req);
  } catch (err) {
    const error = ConnectError.from(err);
    // The service's own id wins (a proxy may have replaced ours); without a response, ours.
    if (!error.metadata.has(requestIdHeader)) error.metadata.set(requestIdHeader, id);
    throw error;
  }
};
