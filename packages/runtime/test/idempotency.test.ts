// The idempotency primitive's pure parts: the key rule, the request hash and which
// outcomes are stored with a key (and replayed) and which never are.
import { describe, expect, it } from "vitest";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { CreatePaymentIntentRequestSchema, RefundPaymentRequestSchema } from "@adminkiosk/proto/adminkiosk/payments/v1/payments_pb";
import { ReserveRequestSchema } from "@adminkiosk/proto/adminkiosk/catalog/v1/catalog_pb";
import { BadRequestSchema } from "@adminkiosk/proto/google/rpc/error_details_pb";
import {
  DomainError,
  aborted,
  domainErrorToConnect,
  exhausted,
  failedPrecondition,
  invalid,
  isStoredRefusal,
  notFound,
  replayRefusal,
  requestHash,
  requireIdempotencyKey,
  requireSameRequest,
  storedRefusalOf,
  unavailable,
} from "../src/index.js";

/** What `fn` throws, as the Connect error a client would see. */
const caught = (fn: () => unknown): ConnectError | undefined => {
  try {
    fn();
  } catch (err) {
    return err instanceof DomainError ? domainErrorToConnect(err) : ConnectError.from(err);
  }
  return undefined;
};
const codeOf = (fn: () => unknown) => caught(fn)?.code;
const fieldOf = (fn: () => unknown) => caught(fn)?.findDetails(BadRequestSchema)[0]?.fieldViolations[0]?.field;

describe("requireIdempotencyKey", () => {
  it("takes 1–255 printable ASCII characters without spaces", () => {
    for (const ok of ["a", "order-42-pay", "~!#$%&'()*+,./:;<=>?@[]^_`{|}", "k".repeat(255), "6f1c0b8e-0d7e-4c1e-9a51-1f2a3b4c5d6e"]) expect(requireIdempotencyKey(ok)).toBe(ok);
  });

  it("refuses empty, too long, spaces, control and non-ASCII characters with InvalidArgument naming the field", () => {
    for (const bad of ["", "k".repeat(256), "has space", "tab\tbed", "new\nline", "ünïcode", "\u007f"]) {
      expect(codeOf(() => requireIdempotencyKey(bad))).toBe(Code.InvalidArgument);
      expect(fieldOf(() => requireIdempotencyKey(bad))).toBe("idempotency_key");
    }
    expect(caught(() => requireIdempotencyKey("", "reservation_id"))?.rawMessage).toMatch(/^reservation_id: /);
  });
});

describe("requestHash", () => {
  const request = create(CreatePaymentIntentRequestSchema, { idempotencyKey: "k1", orderId: "o1", kioskId: "kiosk-a", amountMinor: 1250n, currency: "EUR" });

  it("is the method and the message without its key", () => {
    const hash = requestHash("CreatePaymentIntent", CreatePaymentIntentRequestSchema, request);
    expect(hash).toHaveLength(32);
    expect(requestHash("CreatePaymentIntent", CreatePaymentIntentRequestSchema, { ...request, idempotencyKey: "another" })).toEqual(hash);
    expect(requestHash("CreatePaymentIntent", CreatePaymentIntentRequestSchema, { ...request, amountMinor: 1251n })).not.toEqual(hash);
    expect(requestHash("ConfirmPaymentIntent", CreatePaymentIntentRequestSchema, request)).not.toEqual(hash);
  });

  it("tells apart two RPCs whose messages encode alike", () => {
    const refund = create(RefundPaymentRequestSchema, { idempotencyKey: "k1" });
    const empty = create(CreatePaymentIntentRequestSchema, { idempotencyKey: "k1" });
    expect(requestHash("RefundPayment", RefundPaymentRequestSchema, refund)).not.toEqual(requestHash("CreatePaymentIntent", CreatePaymentIntentRequestSchema, empty));
  });

  it("leaves out the field the key lives in (catalog's reservation_id)", () => {
    const a = create(ReserveRequestSchema, { reservationId: "r1", kioskId: "k", items: [{ sku: "A", quantity: 1n }] });
    expect(requestHash("Reserve", ReserveRequestSchema, a, "reservationId")).toEqual(requestHash("Reserve", ReserveRequestSchema, { ...a, reservationId: "r2" }, "reservationId"));
  });

  it("a different request under a used key is InvalidArgument naming the key's field", () => {
    const h1 = requestHash("M", CreatePaymentIntentRequestSchema, request);
    const h2 = requestHash("M", CreatePaymentIntentRequestSchema, { ...request, orderId: "o2" });
    expect(() => requireSameRequest(h1, h1)).not.toThrow();
    expect(codeOf(() => requireSameRequest(h1, h2))).toBe(Code.InvalidArgument);
    expect(fieldOf(() => requireSameRequest(h1, h2))).toBe("idempotency_key");
    expect(fieldOf(() => requireSameRequest(h1, h2, "reservation_id"))).toBe("reservation_id");
  });
});

describe("which outcomes are stored with a key", () => {
  it("stores the request's own refusals, from the domain or from upstream", () => {
    for (const err of [
      invalid("amount_minor", "too much"),
      notFound("order x not found"),
      failedPrecondition("payment intent p is failed"),
      exhausted("out of stock", { reason: "OUT_OF_STOCK", domain: "catalog.adminkiosk" }),
      new ConnectError("taken", Code.AlreadyExists),
      new ConnectError("not yours", Code.PermissionDenied),
      new ConnectError("past the end", Code.OutOfRange),
      new ConnectError("no stock", Code.ResourceExhausted),
    ])
      expect(isStoredRefusal(err), String(err)).toBe(true);
  });

  it("never stores transient failures", () => {
    for (const err of [
      aborted("conflict; retry"),
      unavailable("catalog is down"),
      new ConnectError("down", Code.Unavailable),
      new ConnectError("boom", Code.Internal),
      new ConnectError("conflict", Code.Aborted),
      new ConnectError("late", Code.DeadlineExceeded),
      new ConnectError("gone", Code.Canceled),
      new ConnectError("who", Code.Unknown),
      new Error("a bug"),
    ])
      expect(isStoredRefusal(err), String(err)).toBe(false);
  });

  it("replays a stored refusal as it was (kind, message, field, reason), through JSON", () => {
    const stored = JSON.parse(JSON.stringify(storedRefusalOf(invalid("lines[0].quantity", "must be 1 or more"))));
    const again = caught(() => replayRefusal(stored));
    expect([again?.code, again?.rawMessage]).toEqual([Code.InvalidArgument, "lines[0].quantity: must be 1 or more"]);
    expect(fieldOf(() => replayRefusal(stored))).toBe("lines[0].quantity");

    const exhaustedStored = JSON.parse(JSON.stringify(storedRefusalOf(new ConnectError("out", Code.ResourceExhausted))));
    expect(exhaustedStored.kind).toBe("exhausted");
    expect(JSON.stringify(exhaustedStored)).not.toMatch(/"code"/);
    expect(codeOf(() => replayRefusal(exhaustedStored))).toBe(Code.ResourceExhausted);
  });
});
