// A payment provider that behaves like a real one, for local runs and tests: a JSON API
// with a bearer API key and Idempotency-Key headers (a retried charge is one charge),
// charges that are confirmed asynchronously by signed webhooks (retried until answered
// 2xx), refunds, voiding pending charges, and a control API that makes the next charges
// decline, never confirm (timeout), send duplicate webhooks, or capture at once but
// deliver the webhook late, or hold webhooks and deliver them out of order, or never send a
// charge's webhook (drop_webhook: the provider gave up delivering it), or stay pending until
// voided and be captured just before the void (capture_on_void); and API faults:
// the next calls answer 500 or never answer (POST /control/api-faults). State is in memory.
import { createHash, randomBytes } from "node:crypto";
import http from "node:http";
import type { Logger } from "@adminkiosk/runtime";
import { inSpan, injectTraceHeaders, SpanKind, traceHttpRoute } from "@adminkiosk/runtime";
import { z } from "zod";
import { postJson } from "../http-post.js";
import { signatureFor, signatureHeader } from "../webhook-signature.js";

export interface SimulatorOptions {
  apiKey: string;
  webhookUrl: string;
  webhookSecret: string;
  /** How long after a charge or refund its outcome is confirmed by webhook. */
  webhookDelayMs: number;
  log: Logger;
}

type ChargeStatus = "pending" | "succeeded" | "failed" | "canceled";

interface Charge {
  object: "charge";
  id: string;
  amount_minor: number;
  currency: string;
  reference: string;
  payment_method: string;
  description: string;
  status: ChargeStatus;
  failure_code: string | null;
  failure_message: string | null;
  created: number;
}

interface Refund {
  object: "refund";
  id: string;
  charge: string;
  amount_minor: number;
  reference: string;
  reason: string;
  status: "pending" | "succeeded" | "failed";
  failure_code: string | null;
  created: number;
}

const behaviors = ["succeed", "decline", "timeout", "duplicate_webhooks", "delay_webhook", "out_of_order", "capture_on_void"] as const;
type Behavior = { behavior: (typeof behaviors)[number]; declineCode: string; delayMs: number; dropWebhook?: boolean };

interface Delivery {
  event_id: string;
  type: string;
  reference: string;
  body: string;
  signature: string;
  attempts: number;
  last_status: number;
}

const chargeRequest = z.object({
  amount_minor: z.number().int().positive().max(99_999_999),
  currency: z.string().regex(/^[A-Z]{3}$/),
  reference: z.string().min(1).max(255),
  payment_method: z.string().max(255).default(""),
  description: z.string().max(500).default(""),
});
const refundRequest = z.object({
  charge: z.string().min(1),
  amount_minor: z.number().int().positive(),
  reference: z.string().min(1).max(255),
  reason: z.string().max(500).default(""),
});
const controlRequest = z.object({
  behavior: z.enum(behaviors),
  count: z.number().int().min(1).max(1000).default(1),
  decline_code: z.string().default("card_declined"),
  delay_ms: z.number().int().min(0).max(600_000).default(0),
  /** The charge succeeds (or is declined) but its webhook is never sent: only GET /v1/charges tells. */
  drop_webhook: z.boolean().default(false),
});

const apiFaultRequest = z.object({
  /** error_500: answer 500 without doing anything; hang: never answer (the socket is dropped after 60 s). */
  mode: z.enum(["error_500", "hang"]),
  count: z.number().int().min(1).max(1000).default(1),
});

/** Out-of-order webhooks are held until this many wait, or this long after the first. */
const outOfOrderBatch = 3;
const outOfOrderMaxHoldMs = 2_000;

class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

const newId = (prefix: string) => `${prefix}_${randomBytes(12).toString("hex")}`;
const now = () => Math.floor(Date.now() / 1000);

export function createSimulator(options: SimulatorOptions): http.Server {
  const { log } = options;
  const webhookUrl = new URL(options.webhookUrl);
  const charges = new Map<string, Charge>();
  const refunds = new Map<string, Refund>();
  const idempotency = new Map<string, { hash: string; status: number; body: unknown }>();
  const next: Behavior[] = [];
  const deliveries: Delivery[] = [];
  const apiFaults: ("error_500" | "hang")[] = [];
  /** Charges (capture_on_void) captured when a void arrives, with their webhook's delay. */
  const captureOnVoid = new Map<string, number>();
  /** Webhooks held for out-of-order delivery (released newest first). */
  let heldWebhooks: (() => void)[] = [];
  const releaseHeld = () => {
    const held = heldWebhooks.reverse();
    heldWebhooks = [];
    for (const send of held) send();
  };
  const timers = new Set<NodeJS.Timeout>();
  const later = (ms: number, fn: () => void) => {
    const t = setTimeout(() => {
      timers.delete(t);
      fn();
    }, ms);
    timers.add(t);
  };

  /** Sends `object`'s event, signed anew on each attempt, until payments answers 2xx (or 12 attempts). */
  const emit = (type: string, object: Charge | Refund, opts: { copies?: number; delayMs?: number; outOfOrder?: boolean } = {}) => {
    const event = { id: newId("evt"), object: "event", type, created: now(), data: { object: { ...object } } };
    const body = JSON.stringify(event);
    const delivery: Delivery = { event_id: event.id, type, reference: object.reference, body, signature: "", attempts: 0, last_status: 0 };
    deliveries.push(delivery);
    const attempt = async (n: number): Promise<void> => {
      const signature = signatureFor([options.webhookSecret], body);
      delivery.signature = signature;
      delivery.attempts++;
      let status = 0;
      try {
        // In the trace of the charge that caused it (tracing: a CLIENT span, its traceparent sent).
        const res = await inSpan(`POST webhook ${type}`, { kind: SpanKind.CLIENT, attributes: { "http.request.method": "POST", "webhook.event": type } }, () => {
          const headers: Record<string, string> = { "content-type": "application/json", [signatureHeader]: signature };
          injectTraceHeaders(headers);
          return postJson(webhookUrl, headers, body, { timeoutMs: 10_000 });
        });
        status = res.status;
      } catch (err) {
        log.warn({ eventId: event.id, err: err instanceof Error ? err.message : String(err) }, "webhook delivery failed");
      }
      delivery.last_status = status;
      if (status >= 200 && status < 300) return;
      if (n < 12) later(Math.min(30_000, 200 * 2 ** n), () => void attempt(n + 1));
    };
    const copies = opts.copies ?? 1;
    if (opts.outOfOrder) {
      heldWebhooks.push(() => void attempt(1));
      if (heldWebhooks.length >= outOfOrderBatch) releaseHeld();
      else if (heldWebhooks.length === 1) later(outOfOrderMaxHoldMs, releaseHeld);
      return;
    }
    later(opts.delayMs ?? options.webhookDelayMs, () => {
      // Duplicates: the same event twice at once, then once more a little later.
      for (let i = 0; i < copies; i++) {
        if (i < 2) void attempt(1);
        else later(150 * i, () => void attempt(1));
      }
    });
  };

  const createCharge = (body: unknown): Charge => {
    const r = chargeRequest.safeParse(body);
    if (!r.success) throw new ApiError(400, "invalid_request", r.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; "));
    const b = next.shift() ?? { behavior: "succeed", declineCode: "card_declined", delayMs: 0 };
    const charge: Charge = { object: "charge", id: newId("ch"), ...r.data, status: "pending", failure_code: null, failure_message: null, created: now() };
    charges.set(charge.id, charge);
    log.info({ chargeId: charge.id, reference: charge.reference, behavior: b.behavior }, "charge created");
    if (b.behavior === "timeout") return charge;
    if (b.behavior === "capture_on_void") {
      // Pending until payments voids it; the capture wins that race, its webhook delay_ms later.
      captureOnVoid.set(charge.id, b.delayMs);
      return { ...charge };
    }
    if (b.behavior === "delay_webhook") {
      // Captured at once; only the news is late.
      charge.status = "succeeded";
      emit("charge.succeeded", charge, { delayMs: b.delayMs });
      return { ...charge, status: "pending" };
    }
    later(options.webhookDelayMs, () => {
      if (charge.status !== "pending") return; // voided meanwhile
      if (b.behavior === "decline") {
        Object.assign(charge, { status: "failed", failure_code: b.declineCode, failure_message: `the card was declined (${b.declineCode})` });
        if (!b.dropWebhook) emit("charge.failed", charge, { delayMs: 0 });
      } else {
        charge.status = "succeeded";
        if (!b.dropWebhook) emit("charge.succeeded", charge, { delayMs: 0, copies: b.behavior === "duplicate_webhooks" ? 3 : 1, outOfOrder: b.behavior === "out_of_order" });
      }
    });
    return { ...charge };
  };

  const cancelCharge = (id: string): Charge => {
    const charge = charges.get(id);
    if (!charge) throw new ApiError(404, "no_such_charge", `no charge ${id}`);
    const captureDelayMs = captureOnVoid.get(id);
    if (captureDelayMs !== undefined && charge.status === "pending") {
      captureOnVoid.delete(id);
      charge.status = "succeeded";
      emit("charge.succeeded", charge, { delayMs: captureDelayMs });
    }
    if (charge.status === "succeeded") throw new ApiError(409, "charge_already_succeeded", `charge ${id} has succeeded; refund it instead`);
    if (charge.status === "pending") {
      charge.status = "canceled";
      emit("charge.canceled", charge);
    }
    return { ...charge };
  };

  const createRefund = (body: unknown): Refund => {
    const r = refundRequest.safeParse(body);
    if (!r.success) throw new ApiError(400, "invalid_request", r.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; "));
    const charge = charges.get(r.data.charge);
    if (!charge) throw new ApiError(404, "no_such_charge", `no charge ${r.data.charge}`);
    if (charge.status !== "succeeded") throw new ApiError(400, "charge_not_refundable", `charge ${charge.id} is ${charge.status}`);
    const refunded = [...refunds.values()].filter((x) => x.charge === charge.id && x.status !== "failed").reduce((sum, x) => sum + x.amount_minor, 0);
    if (refunded + r.data.amount_minor > charge.amount_minor) throw new ApiError(400, "amount_too_large", `at most ${charge.amount_minor - refunded} is left to refund`);
    const refund: Refund = { object: "refund", id: newId("re"), ...r.data, status: "pending", failure_code: null, created: now() };
    refunds.set(refund.id, refund);
    later(options.webhookDelayMs, () => {
      refund.status = "succeeded";
      emit("refund.succeeded", refund, { delayMs: 0 });
    });
    return { ...refund };
  };

  /** Same key and same request → the first answer; same key, another request → an error (Stripe's rules). */
  const idempotent = (key: string | undefined, path: string, body: unknown, run: () => unknown): { status: number; body: unknown } => {
    if (!key) throw new ApiError(400, "idempotency_key_required", "send an Idempotency-Key header");
    const hash = createHash("sha256").update(path).update(JSON.stringify(body)).digest("hex");
    const seen = idempotency.get(key);
    if (seen) {
      if (seen.hash !== hash) throw new ApiError(400, "idempotency_key_reused", "this Idempotency-Key was used with another request");
      return seen;
    }
    let answer: { status: number; body: unknown };
    try {
      answer = { status: 200, body: run() };
    } catch (err) {
      if (!(err instanceof ApiError) || err.status >= 500) throw err;
      answer = { status: err.status, body: { error: { code: err.code, message: err.message } } };
    }
    idempotency.set(key, { hash, ...answer });
    return answer;
  };

  const route = async (req: http.IncomingMessage, url: URL, body: unknown): Promise<{ status: number; body: unknown }> => {
    const key = req.headers["idempotency-key"];
    const idemKey = Array.isArray(key) ? key[0] : key;
    const path = url.pathname;
    if (req.method === "POST" && path === "/v1/charges") return idempotent(idemKey, path, body, () => createCharge(body));
    const cancel = /^\/v1\/charges\/([A-Za-z0-9_]+)\/cancel$/.exec(path);
    if (req.method === "POST" && cancel) return idempotent(idemKey, path, body, () => cancelCharge(cancel[1]!));
    if (req.method === "POST" && path === "/v1/refunds") return idempotent(idemKey, path, body, () => createRefund(body));
    if (req.method === "GET" && path === "/v1/charges") {
      const reference = url.searchParams.get("reference");
      return { status: 200, body: { data: [...charges.values()].filter((c) => !reference || c.reference === reference) } };
    }
    if (req.method === "GET" && path === "/v1/refunds") {
      const charge = url.searchParams.get("charge");
      return { status: 200, body: { data: [...refunds.values()].filter((r) => !charge || r.charge === charge) } };
    }
    if (req.method === "POST" && path === "/control/next-charges") {
      const c = controlRequest.safeParse(body);
      if (!c.success) throw new ApiError(400, "invalid_request", c.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; "));
      for (let i = 0; i < c.data.count; i++) next.push({ behavior: c.data.behavior, declineCode: c.data.decline_code, delayMs: c.data.delay_ms, dropWebhook: c.data.drop_webhook });
      return { status: 200, body: { queued: next.length } };
    }
    if (req.method === "POST" && path === "/control/api-faults") {
      const c = apiFaultRequest.safeParse(body);
      if (!c.success) throw new ApiError(400, "invalid_request", c.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; "));
      for (let i = 0; i < c.data.count; i++) apiFaults.push(c.data.mode);
      return { status: 200, body: { queued: apiFaults.length } };
    }
    if (req.method === "POST" && path === "/control/reset") {
      next.length = 0;
      apiFaults.length = 0;
      return { status: 200, body: { queued: 0 } };
    }
    if (req.method === "GET" && path === "/control/deliveries") {
      const reference = url.searchParams.get("reference");
      return { status: 200, body: { data: deliveries.filter((d) => !reference || d.reference === reference) } };
    }
    throw new ApiError(404, "not_found", `no route ${req.method} ${path}`);
  };

  const server = http.createServer((req, res) => {
    const reply = (status: number, body: unknown) => {
      res.writeHead(status, { "content-type": "application/json" });
      res.end(JSON.stringify(body));
    };
    const url = new URL(req.url ?? "/", "http://provider.invalid");
    if (url.pathname === "/healthz") return reply(200, { status: "ok" });
    if (req.headers.authorization !== `Bearer ${options.apiKey}`) return reply(401, { error: { code: "unauthorized", message: "a valid API key is required" } });
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      // A queued API fault takes the next call to the API (never a lookup, nor the control API).
      const fault = req.method === "POST" && url.pathname.startsWith("/v1/") ? apiFaults.shift() : undefined;
      if (fault === "error_500") return reply(500, { error: { code: "internal", message: "simulated provider failure" } });
      if (fault === "hang") {
        const t = setTimeout(() => req.socket.destroy(), 60_000);
        timers.add(t);
        return;
      }
      let body: unknown = {};
      try {
        const text = Buffer.concat(chunks).toString("utf8");
        if (text) body = JSON.parse(text);
      } catch {
        return reply(400, { error: { code: "invalid_json", message: "the body is not JSON" } });
      }
      traceHttpRoute(req.method ?? "GET", url.pathname, req.headers, () => route(req, url, body)).then(
        (answer) => reply(answer.status, answer.body),
        (err: unknown) => {
          if (err instanceof ApiError) return reply(err.status, { error: { code: err.code, message: err.message } });
          log.error({ err }, "simulator failed");
          reply(500, { error: { code: "internal", message: "internal error" } });
        },
      );
    });
  });
  server.on("close", () => {
    for (const t of timers) clearTimeout(t);
  });
  return server;
}
