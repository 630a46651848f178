// The payment provider, as payments sees it: an adapter interface and its HTTP
// implementation (the simulator in provider-sim/ speaks the same API). Calls carry an
// idempotency key, so a retried call is one charge or one refund at the provider;
// outcomes arrive later as signed webhooks, parsed here into ProviderEvents.
import { z } from "zod";
import { inSpan, injectTraceHeaders, SpanKind } from "@adminkiosk/runtime";
import { postJson, type PostAnswer } from "./http-post.js";
import { verifySignature, WebhookRejected, signatureHeader } from "./webhook-signature.js";

export interface ChargeRequest {
  idempotencyKey: string;
  amountMinor: bigint;
  currency: string;
  /** Ours: the payment intent id; webhooks name it. */
  reference: string;
  paymentMethod: string;
  description: string;
}

export interface RefundRequest {
  idempotencyKey: string;
  chargeId: string;
  amountMinor: bigint;
  /** Ours: the refund id. */
  reference: string;
  reason: string;
}

export type ProviderEvent =
  | {
      eventId: string;
      type: "charge.succeeded" | "charge.failed" | "charge.canceled";
      chargeId: string;
      reference: string;
      amountMinor: bigint;
      currency: string;
      failureCode: string;
      failureMessage: string;
    }
  | { eventId: string; type: "refund.succeeded" | "refund.failed"; refundId: string; chargeId: string; reference: string; amountMinor: bigint; failureCode: string }
  | { eventId: string; type: "ignored"; providerType: string };

export interface PaymentProvider {
  createCharge(request: ChargeRequest, signal?: AbortSignal): Promise<{ chargeId: string }>;
  /** Voids a charge that has not succeeded; ProviderError code "charge_already_succeeded" if it has. */
  cancelCharge(request: { idempotencyKey: string; chargeId: string }, signal?: AbortSignal): Promise<void>;
  createRefund(request: RefundRequest, signal?: AbortSignal): Promise<{ refundId: string }>;
  /** The provider's charges made for `reference` (our intent id), as it sees them now: the reconciler asks when a webhook is overdue. */
  chargesFor(reference: string, signal?: AbortSignal): Promise<ProviderCharge[]>;
  /** Verifies a webhook's signature over the raw body, then parses it; throws WebhookRejected. */
  parseWebhook(headers: Record<string, string | string[] | undefined>, body: Buffer): ProviderEvent;
}

/** A charge as the provider reports it (GET /v1/charges?reference=). */
export interface ProviderCharge {
  chargeId: string;
  status: "pending" | "succeeded" | "failed" | "canceled";
  reference: string;
  amountMinor: bigint;
  currency: string;
  failureCode: string;
  failureMessage: string;
}

/** A provider call that failed. `retryable`: the same call may be made again later. */
export class ProviderError extends Error {
  override name = "ProviderError";
  constructor(
    readonly code: string,
    message: string,
    readonly retryable: boolean,
  ) {
    super(message);
  }
}

export interface HttpProviderOptions {
  baseUrl: string;
  apiKey: string;
  /** Current secret first; a previous one while rotating. */
  webhookSecrets: string[];
  webhookToleranceMs: number;
  timeoutMs: number;
}

const errorBody = z.object({ error: z.object({ code: z.string(), message: z.string() }) });
const chargeBody = z.object({ id: z.string().min(1) });

const chargeObject = z.object({
  object: z.literal("charge"),
  id: z.string().min(1),
  reference: z.string(),
  amount_minor: z.number().int().positive(),
  currency: z.string(),
  failure_code: z.string().nullish(),
  failure_message: z.string().nullish(),
});
const refundObject = z.object({
  object: z.literal("refund"),
  id: z.string().min(1),
  charge: z.string().min(1),
  reference: z.string(),
  amount_minor: z.number().int().positive(),
  failure_code: z.string().nullish(),
});
const chargeList = z.object({ data: z.array(chargeObject.extend({ status: z.enum(["pending", "succeeded", "failed", "canceled"]) })) });
const eventBody = z.object({ id: z.string().min(1).max(255), type: z.string(), data: z.object({ object: z.unknown() }) });

/** The provider's HTTP API (JSON, bearer API key, Idempotency-Key header). */
export function httpProvider(options: HttpProviderOptions): PaymentProvider {
  /** A POST with its idempotency key, or a GET (no key, no body). */
  const call = async (path: string, idempotencyKey: string | undefined, body: unknown, signal?: AbortSignal): Promise<unknown> => {
    let res: PostAnswer;
    const method = idempotencyKey === undefined ? "GET" : "POST";
    try {
      // A CLIENT span whose traceparent the provider gets (the simulator's webhooks carry it back).
      res = await inSpan(`provider ${method} ${path.replace(/\/ch_[A-Za-z0-9_]+\//, "/{id}/").replace(/\?.*$/, "")}`, { kind: SpanKind.CLIENT, attributes: { "http.request.method": method } }, () => {
        const headers: Record<string, string> = { authorization: `Bearer ${options.apiKey}`, "content-type": "application/json", ...(idempotencyKey === undefined ? {} : { "idempotency-key": idempotencyKey }) };
        injectTraceHeaders(headers);
        return postJson(new URL(path, options.baseUrl), headers, method === "GET" ? "" : JSON.stringify(body), { timeoutMs: options.timeoutMs, method, ...(signal ? { signal } : {}) });
      });
    } catch (err) {
      throw new ProviderError("unreachable", `provider unreachable: ${err instanceof Error ? err.message : String(err)}`, true);
    }
    let json: unknown;
    try {
      json = JSON.parse(res.text);
    } catch {
      json = undefined;
    }
    if (res.ok) return json;
    const parsed = errorBody.safeParse(json);
    const code = parsed.success ? parsed.data.error.code : `http_${res.status}`;
    const message = parsed.success ? parsed.data.error.message : `provider answered ${res.status}`;
    // 409 idempotency_key_in_use: the same call is still running there; try again later.
    const retryable = res.status >= 500 || res.status === 429 || res.status === 408 || code === "idempotency_key_in_use";
    throw new ProviderError(code, message, retryable);
  };
  const expect = <T>(schema: z.ZodType<T>, value: unknown): T => {
    const parsed = schema.safeParse(value);
    if (!parsed.success) throw new ProviderError("bad_response", "the provider's answer was not understood", true);
    return parsed.data;
  };
  const secrets = options.webhookSecrets;

  return {
    async createCharge(r, signal) {
      const body = { amount_minor: Number(r.amountMinor), currency: r.currency, reference: r.reference, payment_method: r.paymentMethod, description: r.description };
      return { chargeId: expect(chargeBody, await call("/v1/charges", r.idempotencyKey, body, signal)).id };
    },
    async cancelCharge(r, signal) {
      await call(`/v1/charges/${encodeURIComponent(r.chargeId)}/cancel`, r.idempotencyKey, {}, signal);
    },
    async createRefund(r, signal) {
      const body = { charge: r.chargeId, amount_minor: Number(r.amountMinor), reference: r.reference, reason: r.reason };
      return { refundId: expect(chargeBody, await call("/v1/refunds", r.idempotencyKey, body, signal)).id };
    },
    async chargesFor(reference, signal) {
      const { data } = expect(chargeList, await call(`/v1/charges?reference=${encodeURIComponent(reference)}`, undefined, undefined, signal));
      return data.map((c) => ({
        chargeId: c.id,
        status: c.status,
        reference: c.reference,
        amountMinor: BigInt(c.amount_minor),
        currency: c.currency,
        failureCode: c.failure_code ?? "",
        failureMessage: c.failure_message ?? "",
      }));
    },
    parseWebhook(headers, body) {
      const header = headers[signatureHeader];
      verifySignature(secrets, Array.isArray(header) ? header.join(",") : header, body, options.webhookToleranceMs);
      let json: unknown;
      try {
        json = JSON.parse(body.toString("utf8"));
      } catch {
        throw new WebhookRejected("malformed", "the body is not JSON");
      }
      const event = eventBody.safeParse(json);
      if (!event.success) throw new WebhookRejected("malformed", "not a provider event");
      const { id: eventId, type } = event.data;
      if (type === "charge.succeeded" || type === "charge.failed" || type === "charge.canceled") {
        const c = chargeObject.safeParse(event.data.data.object);
        if (!c.success) throw new WebhookRejected("malformed", `${type} without a charge`);
        const o = c.data;
        return { eventId, type, chargeId: o.id, reference: o.reference, amountMinor: BigInt(o.amount_minor), currency: o.currency, failureCode: o.failure_code ?? "", failureMessage: o.failure_message ?? "" };
      }
      if (type === "refund.succeeded" || type === "refund.failed") {
        const r = refundObject.safeParse(event.data.data.object);
        if (!r.success) throw new WebhookRejected("malformed", `${type} without a refund`);
        const o = r.data;
        return { eventId, type, refundId: o.id, chargeId: o.charge, reference: o.reference, amountMinor: BigInt(o.amount_minor), failureCode: o.failure_code ?? "" };
      }
      return { eventId, type: "ignored", providerType: type };
    },
  };
}
