// pino JSON logs; secrets are redacted by path wherever they appear.
import { pino, type Logger } from "pino";
import { traceLogFields } from "./tracing.js";

export type { Logger };

/** Errors are logged as type, message, code and stack: never the objects hanging off them (a pg client, a request). */
function serializeError(err: unknown): Record<string, unknown> {
  if (!(err instanceof Error)) return { message: String(err) };
  const code = "code" in err ? err.code : undefined;
  const cause = err.cause === undefined ? undefined : serializeError(err.cause);
  return { type: err.name, message: err.message, ...(code === undefined ? {} : { code }), stack: err.stack, ...(cause ? { cause } : {}) };
}

export function createLogger(service: string, level: string): Logger {
  return pino({
    level,
    base: { service },
    // trace_id and span_id of the active span, when tracing is on (tracing.ts).
    mixin: traceLogFields,
    serializers: { err: serializeError },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: {
      paths: [
        "password",
        "*.password",
        "refreshToken",
        "*.refreshToken",
        "accessToken",
        "*.accessToken",
        "authorization",
        "*.authorization",
        "headers.authorization",
        "deviceCredential",
        "*.deviceCredential",
      ],
      censor: "[redacted]",
    },
  });
}
