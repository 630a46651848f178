// POST /webhooks/provider: the provider's signed events. The signature is checked over
// the raw bytes before anything is parsed; each event id is applied once, in the
// transaction that records it, so duplicates and replays change nothing twice.
//   400 malformed or stale (outside WEBHOOK_TOLERANCE), 401 bad signature, 413 too large,
//   408 a body that did not arrive within WEBHOOK_BODY_TIMEOUT (the connection is closed):
//   the provider keeps retrying those (a fresh delivery is signed anew);
//   200 applied, duplicate, or nothing of ours (the provider stops retrying).
import type http from "node:http";
import type http2 from "node:http2";
import type { HttpRoute, Logger, Pool } from "@adminkiosk/runtime";
import { afterProviderEvent, applyProviderEvent, type Applied } from "./intents.js";
import type { PaymentsMetrics } from "./metrics.js";
import type { PaymentProvider, ProviderEvent } from "./provider.js";
import { WebhookRejected } from "./webhook-signature.js";

export const webhookPath = "/webhooks/provider";
const maxBodyBytes = 64 * 1024;

type Req = http.IncomingMessage | http2.Http2ServerRequest;
type Res = http.ServerResponse | http2.Http2ServerResponse;

export function providerWebhookRoute(deps: {
  pool: Pool;
  provider: PaymentProvider;
  metrics: PaymentsMetrics;
  log: Logger;
  wakeProviderWorker: () => void;
  /** How long the body may take to arrive. */
  bodyTimeoutMs: number;
}): HttpRoute {
  const { pool, provider, metrics, log } = deps;
  const answer = (res: Res, status: number, body: Record<string, unknown>) => {
    res.writeHead(status, { "content-type": "application/json" });
    res.end(JSON.stringify(body));
  };
  return async (req, res) => {
    const body = await readBody(req, maxBodyBytes, deps.bodyTimeoutMs);
    if (body === "too_large") {
      metrics.webhooks.inc({ outcome: "too_large" });
      return answer(res, 413, { error: `body over ${maxBodyBytes} bytes` });
    }
    if (body === "timeout") {
      metrics.webhooks.inc({ outcome: "body_timeout" });
      log.warn({ timeoutMs: deps.bodyTimeoutMs }, "webhook rejected: its body did not arrive in time");
      // Answered, then the request (its socket, or its HTTP/2 stream) is closed: the rest never comes.
      res.writeHead(408, { "content-type": "application/json" });
      res.end(JSON.stringify({ error: `the body did not arrive within ${deps.bodyTimeoutMs} ms` }), () => req.destroy());
      return;
    }
    let event;
    try {
      event = provider.parseWebhook(req.headers, body);
    } catch (err) {
      if (!(err instanceof WebhookRejected)) throw err;
      metrics.webhooks.inc({ outcome: err.reason });
      log.warn({ reason: err.reason, error: err.message }, "webhook rejected");
      return answer(res, err.reason === "bad_signature" ? 401 : 400, { error: err.message });
    }
    const applied = await applyOnce(pool, event, log);
    const outcome = applied === "duplicate" ? "duplicate" : applied.outcome;
    metrics.webhooks.inc({ outcome });
    log.info({ eventId: event.eventId, type: event.type, outcome, intentId: applied === "duplicate" ? undefined : applied.intent?.id }, "webhook");
    if (applied !== "duplicate") afterProviderEvent(applied, deps);
    return answer(res, 200, { received: true, outcome });
  };
}

/**
 * Applied, then recorded with its outcome, the record and the COMMIT in one round trip (one
 * simple query, its values as escaped literals): an event id already recorded fails the INSERT,
 * which skips the COMMIT, and the effects are rolled back (a copy arriving meanwhile waits on the
 * event id, or on the intent's row lock, and finds it).
 */
async function applyOnce(pool: Pool, event: ProviderEvent, log: Logger): Promise<Applied | "duplicate"> {
  const client = await pool.connect();
  try {
    await client.query("BEGIN");
    const result = await applyProviderEvent(client, event, log);
    const lit = (v: string) => client.escapeLiteral(v);
    await client.query(`INSERT INTO provider_events (event_id, type, outcome) VALUES (${lit(event.eventId)}, ${lit(event.type)}, ${lit(result.outcome)}); COMMIT`);
    return result;
  } catch (err) {
    await client.query("ROLLBACK").catch(() => {});
    if ((err as { code?: unknown }).code === "23505" && (err as { constraint?: unknown }).constraint === "provider_events_pkey") return "duplicate";
    throw err;
  } finally {
    client.release();
  }
}

/** The body; "too_large" past `limit` bytes; "timeout" when it has not all arrived within `timeoutMs`. */
async function readBody(req: Req, limit: number, timeoutMs: number): Promise<Buffer | "too_large" | "timeout"> {
  const chunks: Buffer[] = [];
  let size = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<"timeout">((resolve) => {
    timer = setTimeout(() => resolve("timeout"), timeoutMs);
  });
  const read = (async () => {
    for await (const chunk of req) {
      const bytes = Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk));
      size += bytes.length;
      if (size > limit) return "too_large" as const;
      chunks.push(bytes);
    }
    return Buffer.concat(chunks);
  })();
  // After a timeout the request is destroyed and the read fails: nobody waits for it then.
  read.catch(() => {});
  try {
    return await Promise.race([read, late]);
  } finally {
    clearTimeout(timer);
  }
}
