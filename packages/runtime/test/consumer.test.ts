// The durable consumer's pure parts: redelivery backoff, and which failures are permanent
// (dead-lettered at once), transient (retried up to maxDeliver) or an unavailable
// dependency (retried, never dead-lettered). No PostgreSQL or NATS needed.
import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { KioskTelemetryEventSchema } from "@adminkiosk/proto/adminkiosk/link/v1/events_pb";
import { backoffDelay, classifyFailure, decodeEvent, describeError, PermanentError } from "../src/index.js";

const pgError = (code: string, message = "boom") => Object.assign(new Error(message), { code });

describe("backoffDelay", () => {
  it("doubles from initialMs and stops at maxMs", () => {
    const o = { initialMs: 500, maxMs: 30_000 };
    expect([1, 2, 3, 4, 5, 6, 7, 8, 20, 1000].map((n) => backoffDelay(n, o))).toEqual([500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000, 30000]);
  });
  it("defaults to 250 ms up to 5 s, and treats attempt 0 or less as the first", () => {
    expect([0, -3, 1, 2, 5, 6].map((n) => backoffDelay(n))).toEqual([250, 250, 250, 500, 4000, 5000]);
  });
  it("jitter shortens a delay by at most its share, never lengthens it", () => {
    const o = { initialMs: 1000, maxMs: 1000, jitter: 0.2 };
    expect(backoffDelay(1, o, () => 0)).toBe(1000);
    expect(backoffDelay(1, o, () => 0.5)).toBe(900);
    expect(backoffDelay(1, o, () => 0.999999)).toBe(800);
  });
});

describe("classifyFailure", () => {
  it("PostgreSQL data and integrity errors (classes 22, 23) are permanent: the database refuses the message itself", () => {
    for (const code of ["22003", "22021", "22P02", "23505", "23514", "23502"]) expect(classifyFailure(pgError(code))).toEqual({ kind: "permanent", reason: "refused by the database" });
  });
  it("a PermanentError is permanent with its own reason, also as another error's cause", () => {
    expect(classifyFailure(new PermanentError("undecodable", "x"))).toEqual({ kind: "permanent", reason: "undecodable" });
    expect(classifyFailure(new Error("wrapped", { cause: new PermanentError("not ours", "x") }))).toEqual({ kind: "permanent", reason: "not ours" });
    expect(classifyFailure(new Error("wrapped", { cause: pgError("22003") })).kind).toBe("permanent");
  });
  it("a dependency that is down is 'unavailable': PostgreSQL connection and shutdown classes, sockets, pool timeouts, Connect Unavailable/DeadlineExceeded", () => {
    for (const err of [
      pgError("08006"),
      pgError("57P01"),
      pgError("53300"),
      pgError("ECONNREFUSED"),
      pgError("ECONNRESET"),
      new Error("Connection terminated unexpectedly"),
      new Error("timeout exceeded when trying to connect"),
      new AggregateError([pgError("ECONNREFUSED"), pgError("ECONNREFUSED")]),
      new ConnectError("down", Code.Unavailable),
      new ConnectError("slow", Code.DeadlineExceeded),
    ])
      expect(classifyFailure(err), String(err)).toEqual({ kind: "unavailable", reason: "unavailable" });
  });
  it("anything else is transient: retried, and dead-lettered only at maxDeliver", () => {
    for (const err of [pgError("40001"), pgError("40P01"), pgError("57014"), pgError("42P01"), new Error("order has not recorded its payment intent yet"), new ConnectError("no", Code.Internal), "a string", undefined])
      expect(classifyFailure(err), String(err)).toEqual({ kind: "transient", reason: "transient" });
  });
});

describe("decodeEvent and describeError", () => {
  it("bytes that do not decode are a PermanentError 'undecodable' naming the subject and type", () => {
    const msg = { subject: "link.kiosk.k.telemetry", data: new Uint8Array([0xff, 0xff, 0xff]) };
    let thrown: unknown;
    try {
      decodeEvent(KioskTelemetryEventSchema, msg);
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(PermanentError);
    expect((thrown as PermanentError).reason).toBe("undecodable");
    expect((thrown as Error).message).toContain("link.kiosk.k.telemetry: not a adminkiosk.link.v1.KioskTelemetryEvent");
  });
  it("an error is stored with its SQLSTATE and causes, at most 2000 characters", () => {
    expect(describeError(pgError("22003", "value out of range: overflow"))).toBe("[22003] value out of range: overflow");
    expect(describeError(new Error("outer", { cause: pgError("23514", "inner") }))).toBe("outer: caused by [23514] inner");
    expect(describeError(new Error("x".repeat(5000)))).toHaveLength(2000);
  });
});
