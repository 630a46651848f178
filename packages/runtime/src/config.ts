// Configuration comes from the environment, is validated once at start and is then
// passed down as a typed object; nothing else in a service reads process.env.
import { z } from "zod";
import { tracingConfigShape } from "./tracing.js";

export class ConfigError extends Error {
  override name = "ConfigError";
}

/** Settings every service shares. Services extend this with their own. */
export const baseConfigShape = {
  HOST: z.string().min(1).default("127.0.0.1"),
  LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
  /** How long a SIGTERM waits for in-flight calls before closing connections. */
  SHUTDOWN_GRACE_MS: z.coerce.number().int().min(0).max(120_000).default(10_000),
  /** Largest request message a service accepts (bytes, after decompression). */
  READ_MAX_BYTES: z.coerce.number().int().min(1024).max(64 * 1024 * 1024).default(1024 * 1024),
  /** Longest deadline a caller may ask for; asking for more is InvalidArgument. Calls without a deadline have none. */
  MAX_TIMEOUT_MS: z.coerce.number().int().min(100).max(3_600_000).default(60_000),
  /** How often health probes check the service's dependencies. */
  HEALTH_PROBE_INTERVAL_MS: z.coerce.number().int().min(100).max(60_000).default(2_000),
  /**
   * How often a service with a NATS connection announces its serving status (stream OPS,
   * ops.health.<service>; health.ts); three intervals without one count as NOT_SERVING.
   */
  HEALTH_ANNOUNCE_INTERVAL_MS: z.coerce.number().int().min(100).max(300_000).default(10_000),
  /** Tracing (tracing.ts): TRACING_SAMPLE_RATIO (0 = off, the default) and TRACING_OTLP_URL. */
  ...tracingConfigShape,
};

const portMessage = "must be a port number from 0 to 65535";
export const port = (fallback: number) =>
  z.coerce.number({ error: portMessage }).int({ error: portMessage }).min(0, { error: portMessage }).max(65535, { error: portMessage }).default(fallback);
export const url = (protocols: string[]) =>
  z
    .string()
    .min(1)
    .refine((v) => {
      try {
        return protocols.includes(new URL(v).protocol);
      } catch {
        return false;
      }
    }, `must be a URL (${protocols.join(" or ")})`);

/** A duration such as "15m", "90d", "30s" or "500ms", parsed to milliseconds. */
export const duration = (fallback: string) =>
  z
    .string()
    .default(fallback)
    .transform((v, ctx) => {
      const m = /^(\d+)(ms|s|m|h|d)$/.exec(v.trim());
      if (!m) {
        ctx.addIssue({ code: "custom", message: 'must be a duration such as "500ms", "30s", "15m", "12h" or "90d"' });
        return z.NEVER;
      }
      const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as "ms" | "s" | "m" | "h" | "d"];
      return Number(m[1]) * unit;
    });

/**
 * Validates `env` against `shape`. On failure throws a ConfigError whose message is
 * one line naming every bad variable, e.g.
 * `invalid environment: AUTH_PORT: expected a number (got "abc")`.
 */
export function loadConfig<S extends z.ZodRawShape>(
  shape: S,
  env: Record<string, string | undefined> = process.env,
): z.infer<z.ZodObject<S>> {
  // Empty strings count as unset, the way shells and compose files usually mean them.
  const cleaned = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ""));
  const result = z.object(shape).safeParse(cleaned);
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => {
    const name = issue.path.join(".");
    const got = cleaned[name];
    const shown = got === undefined ? "unset" : `got ${JSON.stringify(redactIfSecret(name, got))}`;
    // zod's own wording for a coerced number ("expected number, received NaN") says little to an operator.
    const message =
      issue.code === "invalid_type" && got === undefined ? "is required"
      : issue.code === "invalid_type" && issue.expected === "number" ? "must be a number"
      : issue.message;
    return `${name}: ${message} (${shown})`;
  });
  throw new ConfigError(`invalid environment: ${problems.join("; ")}`);
}

function redactIfSecret(name: string, value: string): string {
  if (/(SECRETS?|PASSWORD|_KEY|_TOKEN)$/.test(name)) return "<redacted>";
  // URLs may carry credentials (postgres://user:password@host).
  const shown = value.replace(/\/\/[^/@\s]*@/, "//<credentials>@");
  return shown.length > 80 ? `${shown.slice(0, 77)}...` : shown;
}
