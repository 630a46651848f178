// payments' RPC handlers: validate, authorize the caller's kiosk, run the intent rules
// under an idempotency key, map to the contract. Who may call each RPC is declared in
// proto/ and enforced by the runtime.
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type ConnectRouter } from "@connectrpc/connect";
import {
  CancelPaymentIntentRequestSchema,
  CancelPaymentIntentResponseSchema,
  ConfirmPaymentIntentRequestSchema,
  ConfirmPaymentIntentResponseSchema,
  CreatePaymentIntentRequestSchema,
  CreatePaymentIntentResponseSchema,
  LedgerService,
  PaymentIntentState,
  PaymentService,
  RefundPaymentRequestSchema,
  RefundPaymentResponseSchema,
} from "@adminkiosk/proto/adminkiosk/payments/v1/payments_pb";
import {
  cursorPatterns,
  decodePageToken,
  encodePageToken,
  idempotent,
  invalidArgument,
  notFound,
  pageSize,
  principalOf,
  principalScope,
  requestHash,
  requireIdempotencyKey,
  requireKioskId,
  requireText,
  requireUuid,
  type Pool,
  type PoolClient,
  type Principal,
  requireCurrency,
} from "@adminkiosk/runtime";
import { cancelIntent, confirmIntent, createIntent, requestRefund } from "./intents.js";
import { balances, entries } from "./ledger.js";
import { intentStates, toPaymentIntent, toRefund } from "./messages.js";
import type { PaymentsMetrics } from "./metrics.js";
import { intents, refunds, type IntentRow, type IntentState } from "./store.js";

export const paymentsServices = [PaymentService, LedgerService];

export interface PaymentsDeps {
  pool: Pool;
  metrics: PaymentsMetrics;
  /** Wakes the provider worker once a charge or refund waits for it. */
  wakeProviderWorker: () => void;
}

const maxAmountMinor = 99_999_999n;
const idPattern = { max: 64, pattern: /^[A-Za-z0-9_-]+$/, patternHint: "may contain only letters, digits, '_' and '-'" };
const paymentMethodRule = { max: 255, pattern: /^[A-Za-z0-9_-]+$/, patternHint: "may contain only letters, digits, '_' and '-'" };

function requireAmount(field: string, value: bigint): bigint {
  if (value < 1n || value > maxAmountMinor) throw invalidArgument(field, `must be between 1 and ${maxAmountMinor} (minor units)`);
  return value;
}

const stateNames: IntentState[] = ["requires_payment", "processing", "succeeded", "failed", "canceled", "partially_refunded", "refunded"];
const stateFromEnum = (state: PaymentIntentState) => stateNames.find((name) => intentStates[name] === state);

/** The kiosk a device caller is; undefined for people (who may see every kiosk's payments). */
const ownKiosk = (p: Principal) => (p.kind === "device" ? p.kioskId : undefined);

export function paymentsRoutes(deps: PaymentsDeps) {
  const { pool, metrics } = deps;

  /** The intent, locked, if the caller may touch it; another kiosk's intent does not exist for it. */
  const lockIntent = async (tx: PoolClient, id: string, p: Principal): Promise<IntentRow> => {
    const row = await intents.byId(tx, id, { kioskId: ownKiosk(p), forUpdate: true });
    if (!row) throw notFound(`payment intent ${id} not found`);
    return row;
  };
  const entered = (state: IntentState) => metrics.transitions.inc({ state });

  return (router: ConnectRouter) => {
    router.service(PaymentService, {
      async createPaymentIntent(req, ctx) {
        const p = principalOf(ctx);
        const key = requireIdempotencyKey(req.idempotencyKey);
        const input = {
          kioskId: requireKioskId("kiosk_id", req.kioskId),
          orderId: requireText("order_id", req.orderId, idPattern),
          amountMinor: requireAmount("amount_minor", req.amountMinor),
          currency: requireCurrency("currency", req.currency),
          description: req.description === "" ? "" : requireText("description", req.description, { max: 200 }),
          paymentMethod: req.paymentMethod === "" ? "" : requireText("payment_method", req.paymentMethod, paymentMethodRule),
        };
        const claim = { scope: principalScope(p), key, method: "CreatePaymentIntent", hash: requestHash("CreatePaymentIntent", CreatePaymentIntentRequestSchema, req) };
        let created: IntentRow | undefined;
        const res = await idempotent(pool, claim, CreatePaymentIntentResponseSchema, async (tx) => {
          created = await createIntent(tx, input);
          return create(CreatePaymentIntentResponseSchema, { paymentIntent: toPaymentIntent(created) });
        });
        if (created) {
          entered("requires_payment");
          if (created.state === "processing") submitted();
        }
        return res;
      },

      async confirmPaymentIntent(req, ctx) {
        const p = principalOf(ctx);
        const key = requireIdempotencyKey(req.idempotencyKey);
        const id = requireUuid("payment_intent_id", req.paymentIntentId);
        const paymentMethod = requireText("payment_method", req.paymentMethod, paymentMethodRule);
        const claim = { scope: principalScope(p), key, method: "ConfirmPaymentIntent", hash: requestHash("ConfirmPaymentIntent", ConfirmPaymentIntentRequestSchema, req) };
        let confirmed: IntentRow | undefined;
        const res = await idempotent(pool, claim, ConfirmPaymentIntentResponseSchema, async (tx) => {
          confirmed = await confirmIntent(tx, await lockIntent(tx, id, p), paymentMethod);
          return create(ConfirmPaymentIntentResponseSchema, { paymentIntent: toPaymentIntent(confirmed) });
        });
        if (confirmed) submitted();
        return res;
      },

      async getPaymentIntent(req, ctx) {
        const p = principalOf(ctx);
        const id = requireUuid("payment_intent_id", req.paymentIntentId);
        const row = await intents.byId(pool, id, { kioskId: ownKiosk(p) });
        if (!row) throw new ConnectError(`payment intent ${id} not found`, Code.NotFound);
        return { paymentIntent: toPaymentIntent(row), refunds: (await refunds.ofIntent(pool, id)).map(toRefund) };
      },

      async listPaymentIntents(req, ctx) {
        const p = principalOf(ctx);
        const limit = pageSize("page_size", req.pageSize);
        const before = decodePageToken("page_token", req.pageToken, { seq: cursorPatterns.integer })?.seq;
        let kioskId = req.kioskId === "" ? undefined : requireKioskId("kiosk_id", req.kioskId);
        const own = ownKiosk(p);
        if (own !== undefined) {
          if (kioskId !== undefined && kioskId !== own) throw new ConnectError("a kiosk may list only its own payments", Code.PermissionDenied);
          kioskId = own;
        }
        const state = req.state === PaymentIntentState.UNSPECIFIED ? undefined : stateFromEnum(req.state);
        if (req.state !== PaymentIntentState.UNSPECIFIED && !state) throw invalidArgument("state", "is not a payment intent state");
        const filter = { kioskId, orderId: req.orderId === "" ? undefined : requireText("order_id", req.orderId, idPattern), state };
        const rows = await intents.list(pool, filter, { limit: limit + 1, beforeSeq: before });
        const page = rows.slice(0, limit);
        const last = page.at(-1);
        return { paymentIntents: page.map(toPaymentIntent), nextPageToken: rows.length > limit && last ? encodePageToken({ seq: last.seq }) : "" };
      },

      async cancelPaymentIntent(req, ctx) {
        const p = principalOf(ctx);
        const key = requireIdempotencyKey(req.idempotencyKey);
        const id = requireUuid("payment_intent_id", req.paymentIntentId);
        const reason = req.reason === "" ? "" : requireText("reason", req.reason, { max: 200 });
        const claim = { scope: principalScope(p), key, method: "CancelPaymentIntent", hash: requestHash("CancelPaymentIntent", CancelPaymentIntentRequestSchema, req) };
        let canceled: IntentRow | undefined;
        const res = await idempotent(pool, claim, CancelPaymentIntentResponseSchema, async (tx) => {
          canceled = await cancelIntent(tx, await lockIntent(tx, id, p), reason);
          return create(CancelPaymentIntentResponseSchema, { paymentIntent: toPaymentIntent(canceled) });
        });
        if (canceled) entered("canceled");
        return res;
      },

      async refundPayment(req, ctx) {
        const p = principalOf(ctx);
        const key = requireIdempotencyKey(req.idempotencyKey);
        const id = requireUuid("payment_intent_id", req.paymentIntentId);
        const amountMinor = req.amountMinor === undefined ? undefined : requireAmount("amount_minor", req.amountMinor);
        const reason = requireText("reason", req.reason, { max: 200 });
        const claim = { scope: principalScope(p), key, method: "RefundPayment", hash: requestHash("RefundPayment", RefundPaymentRequestSchema, req) };
        let requested = false;
        const res = await idempotent(pool, claim, RefundPaymentResponseSchema, async (tx) => {
          const intent = await lockIntent(tx, id, p);
          const refund = await requestRefund(tx, intent, { amountMinor, reason, requestedBy: principalScope(p) });
          requested = true;
          return create(RefundPaymentResponseSchema, { refund: toRefund(refund), paymentIntent: toPaymentIntent(intent) });
        });
        if (requested) deps.wakeProviderWorker();
        return res;
      },
    });

    router.service(LedgerService, {
      async getLedgerBalance() {
        const rows = await balances(pool);
        const totals = new Map<string, bigint>();
        for (const r of rows) totals.set(r.currency, (totals.get(r.currency) ?? 0n) + BigInt(r.balance));
        return {
          accounts: rows.map((r) => ({ account: r.account, currency: r.currency, balanceMinor: BigInt(r.balance) })),
          totals: [...totals].map(([currency, total]) => ({ account: "", currency, balanceMinor: total })),
        };
      },

      async listLedgerEntries(req) {
        const limit = pageSize("page_size", req.pageSize);
        const after = decodePageToken("page_token", req.pageToken, { id: cursorPatterns.integer })?.id;
        const filter = {
          intentId: req.paymentIntentId === "" ? undefined : requireUuid("payment_intent_id", req.paymentIntentId),
          account: req.account === "" ? undefined : requireText("account", req.account, { max: 200 }),
        };
        const rows = await entries(pool, filter, { limit: limit + 1, afterId: after });
        const page = rows.slice(0, limit);
        const last = page.at(-1);
        return {
          entries: page.map((e) => ({
            entryId: e.id,
            transactionId: e.transaction_id,
            kind: e.kind,
            account: e.account,
            currency: e.currency,
            amountMinor: BigInt(e.amount_minor),
            paymentIntentId: e.intent_id,
            refundId: e.refund_id ?? "",
            createTime: timestampFromDate(e.created_at),
          })),
          nextPageToken: rows.length > limit && last ? encodePageToken({ id: last.id }) : "",
        };
      },
    });
  };

  function submitted() {
    entered("processing");
    deps.wakeProviderWorker();
  }
}
