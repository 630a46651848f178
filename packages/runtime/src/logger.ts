// pino JSON logs; secrets are redacted by path wherever they appear.
import { pino, type Logger } from "pino";

export type { Logger };

export function createLogger(service: string, level: string): Logger {
  return pino({
    level,
    base: { service },
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
