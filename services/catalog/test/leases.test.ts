// Leases (issue 18, docs/offline.md) on a real catalog process: leased units and seats are
// taken from everyone else, races for the last ones sell each once, a sale commits against
// a lease once however often it is sent, never past what the lease holds or its expiry,
// and the unsold rest goes back when the lease ends — returned, revoked, or its hold over.
import { randomBytes, randomUUID } from "node:crypto";
import pg from "pg";
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EventService, InventoryService, ProductService, ReservationService, SeatState } from "@adminkiosk/proto/adminkiosk/catalog/v1/catalog_pb";
import { LeaseService, LeaseState } from "@adminkiosk/proto/adminkiosk/catalog/v1/leases_pb";
import { ErrorInfoSchema } from "@adminkiosk/proto/google/rpc/error_details_pb";
import { waitFor } from "@adminkiosk/devstack";
import { failure } from "../../../test/support/auth.js";
import { startCatalog, type CatalogFixture } from "./fixture.js";

let f: CatalogFixture;
const suffix = randomBytes(3).toString("hex");
const reasonOf = (e: ConnectError) => e.findDetails(ErrorInfoSchema)[0]?.reason;

beforeAll(async () => {
  f = await startCatalog();
}, 120_000);
afterAll(async () => {
  await f?.stop();
});

async function product(sku: string, stock: Record<string, bigint>) {
  await f.as(ProductService, f.tokens.admin).createProduct({ product: { sku, name: sku, category: "snacks", priceMinor: 150n, currency: "EUR", taxRateBasisPoints: 900, active: true } });
  for (const [kioskId, quantity] of Object.entries(stock)) await f.as(InventoryService, f.tokens.operator).restock({ kioskId, sku, quantity, reason: "test" });
}
async function event(seats: number) {
  const { event } = await f.as(EventService, f.tokens.admin).createEvent({
    event: {
      name: "Match",
      venue: "Stadium",
      startTime: { seconds: BigInt(Math.floor(Date.now() / 1000) + 86_400), nanos: 0 },
      active: true,
      priceTiers: [{ tierId: "std", name: "Standard", priceMinor: 2500n, currency: "EUR" }],
      sections: [{ sectionId: "N", name: "North", rows: [{ rowId: "1", seats: Array.from({ length: seats }, (_, i) => ({ number: String(i + 1), tierId: "std" })) }] }],
    },
  });
  return { eventId: event!.eventId, seatIds: Array.from({ length: seats }, (_, i) => `N-1-${i + 1}`) };
}
const stockOf = async (kioskId: string, sku: string) => (await f.as(InventoryService, f.tokens.viewer).getStock({ kioskId, sku })).stock!;
const seatOf = async (eventId: string, seatId: string) =>
  (await f.as(EventService, f.tokens.viewer).getSeatAvailability({ eventId })).seats.find((s) => s.seatId === seatId)!.state;
const settle = (calls: Promise<unknown>[]) => Promise.allSettled(calls);

describe("leases", () => {
  it("take units and seats from everyone else; racing reservations and leases sell each of the last ones once", async () => {
    const kiosk = `lease-race-${suffix}`;
    const sku = `race-${suffix}`;
    await product(sku, { [kiosk]: 10n });
    const { eventId, seatIds } = await event(1);
    const orders = f.asOrders(ReservationService);
    const operator = f.as(LeaseService, f.tokens.operator);
    // 10 units: 15 one-unit reservations and 15 one-unit leases at once.
    const results = await settle([
      ...Array.from({ length: 15 }, () => orders.reserve({ reservationId: randomUUID(), kioskId: kiosk, items: [{ sku, quantity: 1n }] })),
      ...Array.from({ length: 15 }, () => operator.grantLease({ leaseId: randomUUID(), kioskId: kiosk, items: [{ sku, quantity: 1n }] })),
    ]);
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(10);
    for (const r of results) if (r.status === "rejected") expect(ConnectError.from(r.reason).code).toBe(Code.ResourceExhausted);
    expect(await stockOf(kiosk, sku)).toMatchObject({ onHand: 10n, reserved: 10n, available: 0n });
    // One seat: 10 kiosks' leases and 10 reservations race for it.
    const seat = [{ eventId, seatId: seatIds[0]! }];
    const seatResults = await settle([
      ...Array.from({ length: 10 }, (_, i) => operator.grantLease({ leaseId: randomUUID(), kioskId: `${kiosk}-${i}`, seats: seat })),
      ...Array.from({ length: 10 }, (_, i) => orders.reserve({ reservationId: randomUUID(), kioskId: `${kiosk}-r${i}`, seats: seat })),
    ]);
    expect(seatResults.filter((r) => r.status === "fulfilled")).toHaveLength(1);
    expect(await seatOf(eventId, seatIds[0]!)).toBe(SeatState.HELD);
  });

  it("commit a sale once per sale id, never beyond what the lease holds or after its expiry; the unsold rest goes back on return", async () => {
    const kiosk = `lease-sell-${suffix}`;
    const sku = `sell-${suffix}`;
    await product(sku, { [kiosk]: 5n });
    const { eventId, seatIds } = await event(2);
    const device = await f.device(kiosk);
    const { lease } = await f.as(LeaseService, device).grantLease({ leaseId: randomUUID(), items: [{ sku, quantity: 3n }], seats: [{ eventId, seatId: seatIds[0]! }], ttlSeconds: 600 });
    expect(lease).toMatchObject({ kioskId: kiosk, state: LeaseState.ACTIVE, createdBy: `device:${kiosk}` });
    const leases = f.asOrders(LeaseService);
    const sale = { leaseId: lease!.leaseId, kioskId: kiosk, saleId: randomUUID(), items: [{ sku, quantity: 2n }], seats: [{ eventId, seatId: seatIds[0]! }], soldTime: { seconds: BigInt(Math.floor(Date.now() / 1000)), nanos: 0 } };
    const [first, again] = [await leases.commitLeaseSale(sale), await leases.commitLeaseSale(sale)];
    expect(first).toMatchObject({ totalMinor: 2n * 150n + 2500n, currency: "EUR" });
    expect(again.totalMinor).toBe(first.totalMinor);
    expect(await stockOf(kiosk, sku)).toMatchObject({ onHand: 3n, reserved: 1n });
    expect(await seatOf(eventId, seatIds[0]!)).toBe(SeatState.SOLD);

    const more = await failure(leases.commitLeaseSale({ ...sale, saleId: randomUUID(), items: [{ sku, quantity: 2n }], seats: [] }));
    expect([more.code, reasonOf(more)]).toEqual([Code.FailedPrecondition, "NOT_IN_LEASE"]);
    const seatAgain = await failure(leases.commitLeaseSale({ ...sale, saleId: randomUUID(), items: [] }));
    expect(reasonOf(seatAgain)).toBe("NOT_IN_LEASE");
    const late = await failure(leases.commitLeaseSale({ ...sale, saleId: randomUUID(), items: [{ sku, quantity: 1n }], seats: [], soldTime: { seconds: BigInt(Math.floor(Date.now() / 1000) + 3600), nanos: 0 } }));
    expect(reasonOf(late)).toBe("SOLD_AFTER_EXPIRY");
    const otherKiosk = await failure(leases.commitLeaseSale({ ...sale, kioskId: `${kiosk}-x`, saleId: randomUUID(), seats: [] }));
    expect(otherKiosk.code).toBe(Code.PermissionDenied);

    const { lease: returned } = await f.as(LeaseService, device).returnLease({ leaseId: lease!.leaseId });
    expect(returned).toMatchObject({ state: LeaseState.RETURNED });
    expect(await stockOf(kiosk, sku)).toMatchObject({ onHand: 3n, reserved: 0n, available: 3n });
    const ended = await failure(leases.commitLeaseSale({ ...sale, saleId: randomUUID(), items: [{ sku, quantity: 1n }], seats: [] }));
    expect(reasonOf(ended)).toBe("LEASE_RETURNED");
    // The sale committed before still answers the same.
    expect((await leases.commitLeaseSale(sale)).totalMinor).toBe(first.totalMinor);
  });

  it("end when their hold is over: the sweeper gives the unsold units and seats back", async () => {
    const kiosk = `lease-expiry-${suffix}`;
    const sku = `expiry-${suffix}`;
    await product(sku, { [kiosk]: 4n });
    const { eventId, seatIds } = await event(1);
    const { lease } = await f.as(LeaseService, f.tokens.operator).grantLease({ leaseId: randomUUID(), kioskId: kiosk, items: [{ sku, quantity: 4n }], seats: [{ eventId, seatId: seatIds[0]! }], ttlSeconds: 600 });
    expect(lease!.source).toBe(2); // OPERATOR
    expect(await stockOf(kiosk, sku)).toMatchObject({ reserved: 4n });
    // Time passes: the lease's selling time and its sync window are over.
    const db = new pg.Client({ connectionString: f.databaseUrl });
    await db.connect();
    try {
      await db.query("UPDATE catalog.leases SET expires_at = now() - interval '2 hours', hold_until = now() - interval '1 second' WHERE lease_id = $1", [lease!.leaseId]);
    } finally {
      await db.end();
    }
    await waitFor("the sweeper to end the lease", async () =>
      (await f.as(LeaseService, f.tokens.viewer).getLease({ leaseId: lease!.leaseId })).lease?.state === LeaseState.EXPIRED ? true : undefined,
    );
    expect(await stockOf(kiosk, sku)).toMatchObject({ onHand: 4n, reserved: 0n });
    expect(await seatOf(eventId, seatIds[0]!)).toBe(SeatState.AVAILABLE);
    const late = await failure(f.asOrders(LeaseService).commitLeaseSale({ leaseId: lease!.leaseId, kioskId: kiosk, saleId: randomUUID(), items: [{ sku, quantity: 1n }], soldTime: { seconds: 1n, nanos: 0 } }));
    expect(reasonOf(late)).toBe("LEASE_EXPIRED");
  });

  it("revoked, keep their unsold seats quarantined until the kiosk could no longer sync a sale of them; a sale synced meanwhile takes units off stock (never others' reservations) and its seats", async () => {
    const kiosk = `lease-revoke-${suffix}`;
    const sku = `revoke-${suffix}`;
    await product(sku, { [kiosk]: 4n });
    const { eventId, seatIds } = await event(3);
    const { lease } = await f.as(LeaseService, f.tokens.operator).grantLease({
      leaseId: randomUUID(),
      kioskId: kiosk,
      items: [{ sku, quantity: 3n }],
      seats: seatIds.map((seatId) => ({ eventId, seatId })),
      ttlSeconds: 600,
    });
    const { lease: revoked } = await f.as(LeaseService, f.tokens.operator).revokeLease({ leaseId: lease!.leaseId, reason: "test" });
    expect(revoked).toMatchObject({ state: LeaseState.REVOKED, seatsQuarantined: true });
    // An operator giving a lease back cannot know the kiosk is not selling offline either: that is a revocation.
    const { eventId: otherEvent, seatIds: otherSeats } = await event(1);
    const { lease: other } = await f.as(LeaseService, f.tokens.operator).grantLease({ leaseId: randomUUID(), kioskId: kiosk, seats: [{ eventId: otherEvent, seatId: otherSeats[0]! }] });
    const { lease: returned } = await f.as(LeaseService, f.tokens.operator).returnLease({ leaseId: other!.leaseId });
    expect(returned).toMatchObject({ state: LeaseState.REVOKED, seatsQuarantined: true });
    expect(await seatOf(otherEvent, otherSeats[0]!)).toBe(SeatState.HELD);
    expect(await stockOf(kiosk, sku)).toMatchObject({ onHand: 4n, reserved: 0n });
    expect(await Promise.all(seatIds.map((s) => seatOf(eventId, s)))).toEqual(Array(3).fill(SeatState.HELD));
    // Another sale reserves 3 of the 4 units now free.
    await f.asOrders(ReservationService).reserve({ reservationId: randomUUID(), kioskId: kiosk, items: [{ sku, quantity: 3n }] });
    // The kiosk's offline sale of 2 units and a seat syncs: the seat is sold (it was held for the lease), one unit comes off stock, the other is a shortfall.
    const leases = f.asOrders(LeaseService);
    const soldTime = { seconds: BigInt(Math.floor(Date.now() / 1000)), nanos: 0 };
    const sale = { leaseId: lease!.leaseId, kioskId: kiosk, saleId: randomUUID(), items: [{ sku, quantity: 2n }], seats: [{ eventId, seatId: seatIds[0]! }], soldTime };
    const taken = await leases.commitLeaseSale(sale);
    expect(taken).toMatchObject({ leaseState: LeaseState.REVOKED, leaseEndReason: expect.stringContaining("test"), totalMinor: 2n * 150n + 2500n });
    expect(taken.shortfalls.map((x) => [x.sku, x.quantity, x.onHand, x.reserved])).toEqual([[sku, 1n, 3n, 3n]]);
    expect(await stockOf(kiosk, sku)).toMatchObject({ onHand: 3n, reserved: 3n });
    expect(await seatOf(eventId, seatIds[0]!)).toBe(SeatState.SOLD);
    // Not beyond what the lease granted.
    expect(reasonOf(await failure(leases.commitLeaseSale({ ...sale, saleId: randomUUID(), items: [{ sku, quantity: 2n }], seats: [] })))).toBe("NOT_IN_LEASE");
    // The hold is over (the lease's expiry plus the sync window): the sweeper ends the quarantine.
    const db = new pg.Client({ connectionString: f.databaseUrl });
    await db.connect();
    try {
      await db.query("UPDATE catalog.leases SET expires_at = now() - interval '2 hours', hold_until = now() - interval '1 second' WHERE lease_id = $1", [lease!.leaseId]);
      await db.query("UPDATE catalog.seats SET hold_expires_at = now() - interval '1 second' WHERE reservation_id = $1 AND state = 'held'", [lease!.leaseId]);
    } finally {
      await db.end();
    }
    await waitFor("the sweeper to end the quarantine", async () =>
      (await f.as(LeaseService, f.tokens.viewer).getLease({ leaseId: lease!.leaseId })).lease?.seatsQuarantined === false ? true : undefined,
    );
    expect(await seatOf(eventId, seatIds[1]!)).toBe(SeatState.AVAILABLE);
    // A sale of a seat whose quarantine is over is refused: the seat may have gone to someone else.
    const late = await failure(leases.commitLeaseSale({ ...sale, saleId: randomUUID(), items: [], seats: [{ eventId, seatId: seatIds[1]! }], soldTime: { seconds: soldTime.seconds - 7200n, nanos: 0 } }));
    expect(reasonOf(late)).toBe("LEASE_REVOKED");
  });

  it("a kiosk asks only within the offline policy and sees only its own", async () => {
    const kiosk = `lease-policy-${suffix}`;
    const sku = `policy-${suffix}`;
    await product(sku, { [kiosk]: 200n });
    const device = f.as(LeaseService, await f.device(kiosk));
    // Eight asks at once: three get a lease, the others are refused by the policy (not by a race).
    const asks = await settle(Array.from({ length: 8 }, () => device.grantLease({ leaseId: randomUUID(), items: [{ sku, quantity: 20n }] })));
    expect(asks.filter((r) => r.status === "fulfilled")).toHaveLength(3);
    const fourth = ConnectError.from((asks.find((r) => r.status === "rejected") as PromiseRejectedResult).reason);
    expect([fourth.code, reasonOf(fourth)]).toEqual([Code.PermissionDenied, "LEASE_POLICY"]);
    expect(fourth.rawMessage).toContain("kiosk_id");
    const { leases } = await device.listLeases({});
    expect(leases).toHaveLength(3);
    expect((await f.as(LeaseService, await f.device(`${kiosk}-other`)).listLeases({})).leases).toHaveLength(0);
    // An operator is bound by stock only.
    const { lease } = await f.as(LeaseService, f.tokens.operator).grantLease({ leaseId: randomUUID(), kioskId: kiosk, items: [{ sku, quantity: 100n }] });
    expect(lease!.state).toBe(LeaseState.ACTIVE);
    const revoked = await f.as(LeaseService, f.tokens.operator).revokeLease({ leaseId: lease!.leaseId, reason: "not needed" });
    expect(revoked.lease).toMatchObject({ state: LeaseState.REVOKED });
    expect(revoked.lease!.endReason).toContain("not needed");
    const bad = await failure(device.grantLease({ leaseId: "nope", items: [{ sku, quantity: 1n }] }));
    expect([bad.code, bad.rawMessage.startsWith("lease_id")]).toEqual([Code.InvalidArgument, true]);
  });
});
