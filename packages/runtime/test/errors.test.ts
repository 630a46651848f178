// DomainError → Connect: the code for each kind, the message as it was, field violations
// as google.rpc.BadRequest and the reason as google.rpc.ErrorInfo; and back (refusalOf).
import { describe, expect, it } from "vitest";
import { Code, ConnectError } from "@connectrpc/connect";
import { BadRequestSchema, ErrorInfoSchema } from "@adminkiosk/proto/google/rpc/error_details_pb";
import {
  DomainError,
  aborted,
  alreadyExists,
  domainErrorToConnect,
  exhausted,
  failedPrecondition,
  invalid,
  invalidArgument,
  kindCodes,
  notFound,
  outOfRange,
  permissionDenied,
  refusalOf,
  toConnectError,
  unavailable,
} from "../src/index.js";

describe("DomainError mapped to Connect", () => {
  it("gives each kind its code and keeps the message", () => {
    const cases: [DomainError, Code][] = [
      [invalid("items[0].quantity", "must be between 1 and 1000"), Code.InvalidArgument],
      [notFound("order x not found"), Code.NotFound],
      [alreadyExists("order o already has payment intent p"), Code.AlreadyExists],
      [failedPrecondition("payment intent p is failed"), Code.FailedPrecondition],
      [exhausted("only 0 of X available"), Code.ResourceExhausted],
      [permissionDenied("a kiosk may only act for itself"), Code.PermissionDenied],
      [outOfRange("past the end"), Code.OutOfRange],
      [aborted("conflicting change; retry"), Code.Aborted],
      [unavailable("catalog is down"), Code.Unavailable],
    ];
    expect(new Set(cases.map(([e]) => e.kind))).toEqual(new Set(Object.keys(kindCodes)));
    for (const [err, code] of cases) {
      const c = domainErrorToConnect(err);
      expect(c.code).toBe(code);
      expect(c.rawMessage).toBe(err.message);
    }
  });

  it("an invalid field is exactly what invalidArgument gives: message and BadRequest", () => {
    const fromDomain = domainErrorToConnect(invalid("amount_minor", "is more than what is left to refund (5)"));
    const fromHandler = invalidArgument("amount_minor", "is more than what is left to refund (5)");
    expect(fromDomain.rawMessage).toBe(fromHandler.rawMessage);
    expect(fromDomain.findDetails(BadRequestSchema)[0]?.fieldViolations.map((v) => [v.field, v.description])).toEqual([["amount_minor", "is more than what is left to refund (5)"]]);
    expect(fromDomain.findDetails(ErrorInfoSchema)).toEqual([]);
  });

  it("carries an ErrorInfo reason, domain and metadata", () => {
    const c = domainErrorToConnect(exhausted("items[0].quantity: only 0 of A available", { reason: "OUT_OF_STOCK", domain: "catalog.adminkiosk", metadata: { sku: "A" } }));
    const info = c.findDetails(ErrorInfoSchema)[0];
    expect([info?.reason, info?.domain, info?.metadata]).toEqual(["OUT_OF_STOCK", "catalog.adminkiosk", { sku: "A" }]);
    expect(c.findDetails(BadRequestSchema)).toEqual([]);
  });

  it("is what the runtime's interceptor answers for a domain error; other errors keep their mapping", () => {
    expect(toConnectError(notFound("reservation r not found"), "req-1").code).toBe(Code.NotFound);
    const connect = new ConnectError("as it was", Code.Unauthenticated);
    expect(toConnectError(connect, "req-1")).toBe(connect);
    expect(toConnectError(new Error("boom"), "req-1").code).toBe(Code.Internal);
  });
});

describe("refusalOf", () => {
  it("reads a domain error and an upstream Connect refusal alike", () => {
    const info = { reason: "SEAT_UNAVAILABLE", domain: "catalog.adminkiosk", metadata: { seat_id: "A-1" } };
    expect(refusalOf(failedPrecondition("seat A-1 is sold", info))).toEqual({ kind: "failedPrecondition", message: "seat A-1 is sold", violations: [], info });
    const upstream = domainErrorToConnect(failedPrecondition("seat A-1 is sold", info));
    expect(refusalOf(upstream)).toEqual({ kind: "failedPrecondition", message: "seat A-1 is sold", violations: [], info });
    expect(refusalOf(invalidArgument("reason", "must not be empty"))).toEqual({ kind: "invalid", message: "reason: must not be empty", violations: [{ field: "reason", description: "must not be empty" }] });
  });

  it("is undefined for what is not a refusal", () => {
    expect(refusalOf(new Error("boom"))).toBeUndefined();
    expect(refusalOf(new ConnectError("internal", Code.Internal))).toBeUndefined();
    expect(refusalOf(new ConnectError("late", Code.DeadlineExceeded))).toBeUndefined();
  });
});
