// Retrying with a capped exponential backoff, and keeping a subscription-like loop alive
// (a JetStream consumer whose stream may not exist yet, NATS that is away) with one log
// line per outage instead of one per attempt.
import type { Logger } from "./logger.js";

export interface BackoffOptions {
  /** The first delay (attempt 1). Default 250 ms. */
  initialMs?: number;
  /** The longest delay. Default 5 s. */
  maxMs?: number;
  /** Spread: each delay is drawn from [d·(1-jitter), d]. Default 0 (exactly d). */
  jitter?: number;
}

/**
 * The delay before retry number `attempt` (1, 2, …): initialMs·2^(attempt-1), at most maxMs,
 * shortened by up to `jitter` of itself so many retries that failed together spread out.
 */
export function backoffDelay(attempt: number, options: BackoffOptions = {}, random: () => number = Math.random): number {
  const { initialMs = 250, maxMs = 5_000, jitter = 0 } = options;
  const exponent = Math.min(Math.max(attempt, 1) - 1, 30);
  const full = Math.min(maxMs, initialMs * 2 ** exponent);
  return Math.round(full * (1 - jitter * random()));
}

/** Resolves after `ms`, or at once when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    timer.unref();
    signal?.addEventListener("abort", done, { once: true });
  });
}

export interface RunForeverOptions {
  log: Logger;
  /** Names the loop in its log lines ("link events", "revocations"). */
  what: string;
  /** Fields for the log lines (stream, consumer). */
  fields?: Record<string, unknown>;
  /** Ends the loop (and any backoff sleep) when aborted. */
  signal: AbortSignal;
  backoff?: BackoffOptions;
}

/**
 * Runs `session` again and again until `signal` aborts. A session sets something up
 * (which may fail: the stream does not exist yet, NATS is away), calls `ready()` once it
 * works, and returns when what it followed ended. A failure is logged once per outage
 * (warn, then debug while it lasts, and one info line when it works again) and retried
 * after a capped backoff.
 */
export async function runForever(options: RunForeverOptions, session: (ready: () => void) => Promise<void>): Promise<void> {
  const { log, what, signal } = options;
  const fields = options.fields ?? {};
  let failures = 0;
  const ready = () => {
    if (failures > 0) log.info(fields, `${what}: working again`);
    failures = 0;
  };
  while (!signal.aborted) {
    try {
      await session(ready);
      // Ended on its own (a subscription closed): set it up again, without spinning.
      await sleep(backoffDelay(1, options.backoff), signal);
    } catch (err) {
      if (signal.aborted) return;
      failures++;
      // A stream that does not exist yet is normal while the platform starts (its owner creates
      // it): one line without a stack, not a warning.
      if (failures === 1 && streamMissing(err)) log.info({ ...fields, reason: (err as Error).message }, `${what}: waiting for the stream to be created`);
      else if (failures === 1) log.warn({ err, ...fields }, `${what}: failed; retrying`);
      else log.debug({ err, ...fields, failures }, `${what}: still failing`);
      await sleep(backoffDelay(failures, options.backoff), signal);
    }
  }
}

/** JetStream's "stream not found" (API error 10059), however the client wraps it. */
export function streamMissing(err: unknown): boolean {
  const e = err as { api_error?: { err_code?: number }; message?: unknown } | undefined;
  return e?.api_error?.err_code === 10059 || (typeof e?.message === "string" && /stream not found/i.test(e.message));
}
