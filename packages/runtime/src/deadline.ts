// Deadlines: connect-node aborts the handler's signal when the caller's deadline
// (grpc-timeout / connect-timeout-ms) passes, but a unary handler that ignores the
// signal would still answer late with success. This interceptor answers at the
// deadline with DeadlineExceeded (or Canceled when the caller left), so a caller
// never waits past its deadline. Streaming handlers end through ctx.signal.
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";

export function deadlineInterceptor(): Interceptor {
  return (next) => async (req) => {
    if (req.stream) return next(req);
    const signal = req.signal;
    const reason = () => ConnectError.from(signal.reason ?? new ConnectError("the operation was aborted", Code.Canceled));
    if (signal.aborted) throw reason();
    let onAbort: (() => void) | undefined;
    const aborted = new Promise<never>((_, reject) => {
      onAbort = () => reject(reason());
      signal.addEventListener("abort", onAbort, { once: true });
    });
    try {
      return await Promise.race([next(req), aborted]);
    } finally {
      if (onAbort) signal.removeEventListener("abort", onAbort);
    }
  };
}
