// Selling under contention: many buyers for the last units and seats, holds that
// expire, retries that reserve once. Only orders (as itself, naming the kiosk) reserves,
// commits and releases; kiosks read only their own kiosk's reservations.
import { fromBinary } from "@bufbuild/protobuf";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EventService, InventoryService, ReservationService, ReservationState, SeatState } from "@adminkiosk/proto/adminkiosk/catalog/v1/catalog_pb";
import { ReservationExpiredEventSchema } from "@adminkiosk/proto/adminkiosk/catalog/v1/events_pb";
import { BadRequestSchema, ErrorInfoSchema } from "@adminkiosk/proto/google/rpc/error_details_pb";
import { eventually } from "@adminkiosk/devstack";
import { failure } from "../../../test/support/auth.js";
import { createEvent, createProduct, startCatalog, type CatalogFixture } from "./fixture.js";

let f: CatalogFixture;
beforeAll(async () => {
  f = await startCatalog({ MAX_HELD_RESERVATIONS_PER_KIOSK: "100" });
  for (const sku of ["RSV-A", "RSV-B", "RSV-C"]) await createProduct(f, sku, { priceMinor: 200n });
  await createProduct(f, "RSV-CZK", { priceMinor: 5000n, currency: "CZK" });
});
afterAll(() => f?.stop());

const reservationsAs = (token: string) => f.as(ReservationService, token);
/** Reservations as the orders service, the only caller that reserves, commits and releases. */
const orders = () => f.asOrders(ReservationService);
const stockOf = async (kioskId: string, sku: string) => (await f.as(InventoryService, f.tokens.viewer).getStock({ kioskId, sku })).stock!;
const restock = (kioskId: string, sku: string, quantity: bigint) =>
  f.as(InventoryService, f.tokens.operator).restock({ kioskId, sku, quantity, reason: "test fill" });
const seatStates = async (eventId: string) =>
  Object.fromEntries((await f.as(EventService, f.tokens.viewer).getSeatAvailability({ eventId })).seats.map((s) => [s.seatId, s.state]));

/** Runs every call at once; returns the successes and the failures' codes. */
async function race<T>(calls: (() => Promise<T>)[]) {
  const results = await Promise.allSettled(calls.map((c) => c()));
  const ok = results.flatMap((r) => (r.status === "fulfilled" ? [r.value] : []));
  const errors = results.flatMap((r) => (r.status === "rejected" ? [ConnectError.from(r.reason)] : []));
  return { ok, errors };
}

describe("contention", () => {
  it("50 buyers for the last 10 units: exactly 10 succeed, the rest are ResourceExhausted, and stock reconciles", async () => {
    await restock("rsv-k1", "RSV-A", 10n);
    const { ok, errors } = await race(
      Array.from({ length: 50 }, () => () => orders().reserve({ reservationId: randomUUID(), kioskId: "rsv-k1", items: [{ sku: "RSV-A", quantity: 1n }] })),
    );
    expect(ok).toHaveLength(10);
    expect(errors).toHaveLength(40);
    for (const err of errors) {
      expect(err.code).toBe(Code.ResourceExhausted);
      expect(err.rawMessage).toMatch(/items\[0\]\.quantity: only 0 of RSV-A available at kiosk rsv-k1/);
      expect(err.findDetails(ErrorInfoSchema)[0]).toMatchObject({ reason: "OUT_OF_STOCK", metadata: { sku: "RSV-A", kiosk_id: "rsv-k1", available: "0" } });
    }
    expect(await stockOf("rsv-k1", "RSV-A")).toMatchObject({ onHand: 10n, reserved: 10n, available: 0n });

    // Half are paid, half are not: stock ends exactly at what was sold.
    const [paid, unpaid] = [ok.slice(0, 5), ok.slice(5)];
    await Promise.all(paid.map((r) => orders().commitReservation({ reservationId: r.reservation!.reservationId })));
    await Promise.all(unpaid.map((r) => orders().releaseReservation({ reservationId: r.reservation!.reservationId, reason: "payment declined" })));
    expect(await stockOf("rsv-k1", "RSV-A")).toMatchObject({ onHand: 5n, reserved: 0n, available: 5n });
  });

  it("50 buyers for the last 10 seats: exactly 10 succeed, the rest are FailedPrecondition, and seats reconcile", async () => {
    const event = await createEvent(f, 2, 10);
    // Row 1 is sold out already.
    const first = await orders().reserve({
      reservationId: randomUUID(),
      kioskId: "rsv-k2",
      seats: Array.from({ length: 10 }, (_, i) => ({ eventId: event.eventId, seatId: `A-1-${i + 1}` })),
    });
    await orders().commitReservation({ reservationId: first.reservation!.reservationId });

    const { ok, errors } = await race(
      Array.from({ length: 50 }, (_, i) => () =>
        orders().reserve({ reservationId: randomUUID(), kioskId: "rsv-k2", seats: [{ eventId: event.eventId, seatId: `A-2-${(i % 10) + 1}` }] }),
      ),
    );
    expect(ok).toHaveLength(10);
    expect(new Set(ok.map((r) => r.reservation!.seats[0]!.seatId)).size).toBe(10);
    expect(ok.every((r) => r.reservation!.totalMinor === 9000n && r.reservation!.currency === "EUR")).toBe(true);
    for (const err of errors) {
      expect(err.code).toBe(Code.FailedPrecondition);
      expect(err.findDetails(ErrorInfoSchema)[0]?.reason).toBe("SEAT_UNAVAILABLE");
    }
    const availability = await f.as(EventService, f.tokens.viewer).getSeatAvailability({ eventId: event.eventId });
    expect(availability.tiers).toEqual([
      expect.objectContaining({ tierId: "std", available: 0, held: 0, sold: 10 }),
      expect.objectContaining({ tierId: "vip", available: 0, held: 10, sold: 0 }),
    ]);
  });

  it("overlapping multi-SKU, multi-seat reservations in any order never deadlock and never oversell", async () => {
    await restock("rsv-k3", "RSV-B", 7n);
    await restock("rsv-k3", "RSV-C", 7n);
    const event = await createEvent(f, 1, 6);
    const shuffle = <T>(xs: T[]) => [...xs].sort(() => Math.random() - 0.5);
    const { ok, errors } = await race(
      Array.from({ length: 30 }, (_, i) => () =>
        orders().reserve({
          reservationId: randomUUID(),
          kioskId: "rsv-k3",
          items: shuffle([
            { sku: "RSV-B", quantity: 1n },
            { sku: "RSV-C", quantity: 1n },
          ]),
          seats: shuffle([
            { eventId: event.eventId, seatId: `A-1-${(i % 6) + 1}` },
            { eventId: event.eventId, seatId: `A-1-${((i + 1) % 6) + 1}` },
          ]),
        }),
      ),
    );
    // Only refusals, never Aborted (deadlock) or Internal.
    for (const err of errors) expect([Code.ResourceExhausted, Code.FailedPrecondition]).toContain(err.code);
    expect(ok.length).toBeGreaterThanOrEqual(1);
    expect(ok.length).toBeLessThanOrEqual(3);
    const seatsTaken = ok.flatMap((r) => r.reservation!.seats.map((s) => s.seatId));
    expect(new Set(seatsTaken).size).toBe(seatsTaken.length);
    for (const sku of ["RSV-B", "RSV-C"]) expect(await stockOf("rsv-k3", sku)).toMatchObject({ onHand: 7n, reserved: BigInt(ok.length) });
    const states = await seatStates(event.eventId);
    expect(Object.values(states).filter((s) => s === SeatState.HELD)).toHaveLength(seatsTaken.length);
  });
});

describe("holds that expire", () => {
  it("an unpaid hold expires: its seats and units are sellable again, orders hears of it, and it can no longer be committed", async () => {
    await restock("rsv-k4", "RSV-A", 1n);
    const event = await createEvent(f, 1, 2);
    const reservationId = randomUUID();
    const { reservation } = await orders().reserve({
      reservationId,
      kioskId: "rsv-k4",
      items: [{ sku: "RSV-A", quantity: 1n }],
      seats: [{ eventId: event.eventId, seatId: "A-1-1" }],
      ttlSeconds: 1,
    });
    expect(reservation).toMatchObject({ state: ReservationState.HELD, totalMinor: 200n + 3000n });
    // Held while the hold lasts: checked only if the answer came back within the second (a
    // slow machine may read it later, when the seat is rightly free again).
    const seatWhileHeld = (await seatStates(event.eventId))["A-1-1"];
    if (Date.now() < timestampDate(reservation!.expireTime!).getTime()) expect(seatWhileHeld).toBe(SeatState.HELD);

    const expired = fromBinary(ReservationExpiredEventSchema, await f.nextEvent(`catalog.reservation.${reservationId}.expired`));
    expect(expired.reservation).toMatchObject({ reservationId, kioskId: "rsv-k4", state: ReservationState.EXPIRED });
    expect(expired.reservation?.seats.map((s) => s.seatId)).toEqual(["A-1-1"]);

    expect((await seatStates(event.eventId))["A-1-1"]).toBe(SeatState.AVAILABLE);
    expect(await stockOf("rsv-k4", "RSV-A")).toMatchObject({ onHand: 1n, reserved: 0n, available: 1n });
    const late = await failure(orders().commitReservation({ reservationId }));
    expect(late.code).toBe(Code.FailedPrecondition);
    expect(late.findDetails(ErrorInfoSchema)[0]?.reason).toBe("RESERVATION_EXPIRED");

    // Someone else buys the same seat and unit.
    const next = await orders().reserve({
      reservationId: randomUUID(),
      kioskId: "rsv-k4",
      items: [{ sku: "RSV-A", quantity: 1n }],
      seats: [{ eventId: event.eventId, seatId: "A-1-1" }],
    });
    await orders().commitReservation({ reservationId: next.reservation!.reservationId });
    expect((await seatStates(event.eventId))["A-1-1"]).toBe(SeatState.SOLD);
    // The kiosk reads its own kiosk's reservation.
    expect((await reservationsAs(await f.device("rsv-k4")).getReservation({ reservationId })).reservation?.state).toBe(ReservationState.EXPIRED);
  });

  describe("before the sweeper gets to them", () => {
    // A second catalog whose sweeper does not run within these tests.
    let slow: CatalogFixture;
    beforeAll(async () => {
      slow = await startCatalog({ RESERVATION_SWEEP_MS: "60000" }, f);
    });
    afterAll(() => slow?.stop());

    it("a lapsed seat hold is free at once, and the old hold cannot sell it", async () => {
      const event = await createEvent(slow, 1, 1);
      const client = slow.asOrders(ReservationService);
      const old = randomUUID();
      await client.reserve({ reservationId: old, kioskId: "rsv-k5", seats: [{ eventId: event.eventId, seatId: "A-1-1" }], ttlSeconds: 1 });
      // Until catalog itself calls the hold lapsed (no fixed sleep); its sweeper is not running.
      await expect.poll(async () => (await client.getReservation({ reservationId: old })).reservation?.state, eventually).toBe(ReservationState.EXPIRED);
      const states = (await slow.as(EventService, slow.tokens.viewer).getSeatAvailability({ eventId: event.eventId })).seats.map((s) => s.state);
      expect(states).toEqual([SeatState.AVAILABLE]);
      const fresh = randomUUID();
      await client.reserve({ reservationId: fresh, kioskId: "rsv-k5", seats: [{ eventId: event.eventId, seatId: "A-1-1" }] });
      expect((await failure(client.commitReservation({ reservationId: old }))).code).toBe(Code.FailedPrecondition);
      await client.commitReservation({ reservationId: fresh });
      expect((await client.getReservation({ reservationId: fresh })).reservation?.state).toBe(ReservationState.COMMITTED);
    });

    it("units held by an overdue reservation are taken back when a buyer needs them", async () => {
      await createProduct(slow, "SLOW-1");
      await slow.as(InventoryService, slow.tokens.operator).restock({ kioskId: "rsv-k6", sku: "SLOW-1", quantity: 1n, reason: "fill" });
      const client = slow.asOrders(ReservationService);
      const overdue = randomUUID();
      await client.reserve({ reservationId: overdue, kioskId: "rsv-k6", items: [{ sku: "SLOW-1", quantity: 1n }], ttlSeconds: 1 });
      // Until catalog itself calls the hold lapsed (no fixed sleep); its sweeper is not running.
      await expect.poll(async () => (await client.getReservation({ reservationId: overdue })).reservation?.state, eventually).toBe(ReservationState.EXPIRED);
      const { reservation } = await client.reserve({ reservationId: randomUUID(), kioskId: "rsv-k6", items: [{ sku: "SLOW-1", quantity: 1n }] });
      expect(reservation?.state).toBe(ReservationState.HELD);
    });
  });
});

describe("the sale's lifecycle", () => {
  it("a retried Reserve reserves once; the same id with other contents is InvalidArgument naming reservation_id", async () => {
    await restock("rsv-k7", "RSV-B", 3n);
    const client = orders();
    const reservationId = randomUUID();
    const request = { reservationId, kioskId: "rsv-k7", items: [{ sku: "RSV-B", quantity: 2n }] };
    const [a, b] = await Promise.all([client.reserve(request), client.reserve(request)]);
    const c = await client.reserve({ ...request, reservationId: reservationId.toUpperCase() });
    expect(a.reservation?.createTime).toEqual(b.reservation?.createTime);
    expect(c.reservation?.reservationId).toBe(reservationId);
    expect(await stockOf("rsv-k7", "RSV-B")).toMatchObject({ reserved: 2n, available: 1n });
    const reused = await failure(client.reserve({ reservationId, kioskId: "rsv-k7", items: [{ sku: "RSV-B", quantity: 1n }] }));
    expect(reused.code).toBe(Code.InvalidArgument);
    expect(reused.findDetails(BadRequestSchema)[0]?.fieldViolations[0]?.field).toBe("reservation_id");
  });

  it("commit is idempotent and final; release is idempotent and gives units back", async () => {
    await restock("rsv-k8", "RSV-C", 4n);
    const client = orders();
    const sold = randomUUID();
    await client.reserve({ reservationId: sold, kioskId: "rsv-k8", items: [{ sku: "RSV-C", quantity: 1n }] });
    await client.commitReservation({ reservationId: sold });
    expect((await client.commitReservation({ reservationId: sold })).reservation?.state).toBe(ReservationState.COMMITTED);
    expect((await failure(client.releaseReservation({ reservationId: sold }))).code).toBe(Code.FailedPrecondition);

    const dropped = randomUUID();
    await client.reserve({ reservationId: dropped, kioskId: "rsv-k8", items: [{ sku: "RSV-C", quantity: 2n }] });
    await client.releaseReservation({ reservationId: dropped });
    expect((await client.releaseReservation({ reservationId: dropped })).reservation?.state).toBe(ReservationState.RELEASED);
    expect((await failure(client.commitReservation({ reservationId: dropped }))).code).toBe(Code.FailedPrecondition);
    expect(await stockOf("rsv-k8", "RSV-C")).toMatchObject({ onHand: 3n, reserved: 0n });
  });

  it("a kiosk holds at most MAX_HELD_RESERVATIONS_PER_KIOSK (100) live reservations: the next is ResourceExhausted and takes nothing; a commit frees a place", async () => {
    await restock("rsv-k12", "RSV-A", 105n);
    const client = orders();
    const reserveOne = () => client.reserve({ reservationId: randomUUID(), kioskId: "rsv-k12", items: [{ sku: "RSV-A", quantity: 1n }] });
    const held: string[] = [];
    for (let batch = 0; batch < 5; batch++) held.push(...(await Promise.all(Array.from({ length: 20 }, reserveOne))).map((r) => r.reservation!.reservationId));
    const refused = await failure(reserveOne());
    expect(refused.code).toBe(Code.ResourceExhausted);
    expect(refused.findDetails(ErrorInfoSchema)[0]?.reason).toBe("TOO_MANY_HOLDS");
    expect(await stockOf("rsv-k12", "RSV-A")).toMatchObject({ onHand: 105n, reserved: 100n });
    await client.commitReservation({ reservationId: held[0]! });
    expect((await reserveOne()).reservation?.state).toBe(ReservationState.HELD);
    expect(await stockOf("rsv-k12", "RSV-A")).toMatchObject({ onHand: 104n, reserved: 100n });
  });

  it("refuses what is not for sale: unknown or inactive products, unstocked SKUs, mixed currencies", async () => {
    await restock("rsv-k9", "RSV-A", 5n);
    await restock("rsv-k9", "RSV-CZK", 5n);
    const reserve = (items: { sku: string; quantity: bigint }[]) => orders().reserve({ reservationId: randomUUID(), kioskId: "rsv-k9", items });
    expect((await failure(reserve([{ sku: "NO-SUCH", quantity: 1n }]))).code).toBe(Code.NotFound);
    const unstocked = await failure(reserve([{ sku: "RSV-B", quantity: 1n }]));
    expect(unstocked.code).toBe(Code.ResourceExhausted);
    const mixed = await failure(reserve([{ sku: "RSV-A", quantity: 1n }, { sku: "RSV-CZK", quantity: 1n }]));
    expect(mixed.code).toBe(Code.FailedPrecondition);
    // All or nothing: the refused reservations left nothing reserved.
    expect(await stockOf("rsv-k9", "RSV-A")).toMatchObject({ reserved: 0n });
  });
});

describe("who may touch what", () => {
  it("only orders reserves, commits and releases: kiosks (even for themselves), people and other services are PermissionDenied", async () => {
    await restock("rsv-ka", "RSV-A", 2n);
    const reservationId = randomUUID();
    await orders().reserve({ reservationId, kioskId: "rsv-ka", items: [{ sku: "RSV-A", quantity: 1n }] });
    const one = [{ sku: "RSV-A", quantity: 1n }];

    const refused: [string, ReturnType<typeof reservationsAs>][] = [
      ["the kiosk itself", reservationsAs(await f.device("rsv-ka"))],
      ["another kiosk", reservationsAs(await f.device("rsv-kb"))],
      ["an operator", reservationsAs(f.tokens.operator)],
      ["an admin", reservationsAs(f.tokens.admin)],
      ["a viewer", reservationsAs(f.tokens.viewer)],
      ["the fleet service", f.asService("fleet", ReservationService)],
      ["the payments service", f.asService("payments", ReservationService)],
    ];
    for (const [who, client] of refused) {
      expect((await failure(client.reserve({ reservationId: randomUUID(), kioskId: "rsv-ka", items: one }))).code, `${who}: Reserve`).toBe(Code.PermissionDenied);
      expect((await failure(client.reserve({ reservationId: randomUUID(), items: one }))).code, `${who}: Reserve (no kiosk named)`).toBe(Code.PermissionDenied);
      expect((await failure(client.commitReservation({ reservationId }))).code, `${who}: CommitReservation`).toBe(Code.PermissionDenied);
      expect((await failure(client.releaseReservation({ reservationId, reason: "test" }))).code, `${who}: ReleaseReservation`).toBe(Code.PermissionDenied);
    }
    // Services other than orders do not read reservations either.
    expect((await failure(f.asService("fleet", ReservationService).getReservation({ reservationId }))).code).toBe(Code.PermissionDenied);
    // Nothing changed.
    expect((await orders().getReservation({ reservationId })).reservation?.state).toBe(ReservationState.HELD);
    expect(await stockOf("rsv-ka", "RSV-A")).toMatchObject({ reserved: 1n, available: 1n });
    // orders does what the others could not.
    expect((await orders().commitReservation({ reservationId })).reservation?.state).toBe(ReservationState.COMMITTED);
    expect(await stockOf("rsv-ka", "RSV-A")).toMatchObject({ onHand: 1n, reserved: 0n });
  });

  it("a kiosk reads its own kiosk's reservations and no other kiosk's; people and orders read any", async () => {
    await restock("rsv-kc", "RSV-A", 2n);
    const reservationId = randomUUID();
    const { reservation } = await orders().reserve({ reservationId, kioskId: "rsv-kc", items: [{ sku: "RSV-A", quantity: 1n }] });
    expect(reservation).toMatchObject({ kioskId: "rsv-kc", state: ReservationState.HELD });
    expect((await reservationsAs(await f.device("rsv-kc")).getReservation({ reservationId })).reservation?.kioskId).toBe("rsv-kc");
    expect((await failure(reservationsAs(await f.device("rsv-kb")).getReservation({ reservationId }))).code).toBe(Code.PermissionDenied);
    expect((await reservationsAs(f.tokens.viewer).getReservation({ reservationId })).reservation?.kioskId).toBe("rsv-kc");
    expect((await orders().getReservation({ reservationId })).reservation?.kioskId).toBe("rsv-kc");
    await orders().releaseReservation({ reservationId, reason: "test" });
    expect(await stockOf("rsv-kc", "RSV-A")).toMatchObject({ reserved: 0n, available: 2n });
  });

  it("bad input is InvalidArgument naming the field", async () => {
    const client = orders();
    const kioskId = "rsv-kd";
    const id = () => randomUUID();
    const one = [{ sku: "RSV-A", quantity: 1n }];
    const cases: [() => Promise<unknown>, string][] = [
      [() => client.reserve({ reservationId: "order-1", kioskId, items: one }), "reservation_id"],
      // orders names the kiosk the sale is at.
      [() => client.reserve({ reservationId: id(), items: one }), "kiosk_id"],
      [() => client.reserve({ reservationId: id(), kioskId: "rsv.kd", items: one }), "kiosk_id"],
      [() => client.reserve({ reservationId: id(), kioskId }), "items"],
      [() => client.reserve({ reservationId: id(), kioskId, items: [{ sku: "RSV-A", quantity: 0n }] }), "items[0].quantity"],
      [() => client.reserve({ reservationId: id(), kioskId, items: [...one, { sku: "bad sku", quantity: 1n }] }), "items[1].sku"],
      [() => client.reserve({ reservationId: id(), kioskId, items: [...one, ...one] }), "items[1].sku"],
      [() => client.reserve({ reservationId: id(), kioskId, seats: [{ eventId: "x", seatId: "A-1-1" }] }), "seats[0].event_id"],
      [() => client.reserve({ reservationId: id(), kioskId, items: one, ttlSeconds: 7200 }), "ttl_seconds"],
      [() => client.commitReservation({ reservationId: "" }), "reservation_id"],
      [() => client.releaseReservation({ reservationId: "" }), "reservation_id"],
    ];
    for (const [call, field] of cases) {
      const err = await failure(call());
      expect(err.code, field).toBe(Code.InvalidArgument);
      expect(err.findDetails(BadRequestSchema)[0]?.fieldViolations[0]?.field).toBe(field);
    }
  });
});
