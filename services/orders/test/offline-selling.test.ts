// Offline selling (issue 18, docs/offline.md) against real auth, catalog, payments (with
// the provider simulator) and orders processes and the kiosk SDK: a kiosk holding a lease
// sells it out with the network gone while nobody else can take its units or seats; its
// provisional tickets verify with the published keys alone; its sales sync once however
// often they are sent; a lease revoked meanwhile is a conflict for an operator, never a
// second sale; and a kiosk's credential reaches only its own leases and sales.
import { randomBytes, randomUUID } from "node:crypto";
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EventService, SeatState } from "@adminkiosk/proto/adminkiosk/catalog/v1/catalog_pb";
import { LeaseService, LeaseState } from "@adminkiosk/proto/adminkiosk/catalog/v1/leases_pb";
import { ConflictKind, ConflictResolution, ConflictState, OfflineSaleOutcome, OfflineSaleService } from "@adminkiosk/proto/adminkiosk/orders/v1/offline_pb";
import { OrderState } from "@adminkiosk/proto/adminkiosk/orders/v1/orders_pb";
import { OfflineRefusal, OfflineSeller, type OfflineSaleInit } from "@adminkiosk/kiosk-sdk";
import { eventually, freePort, waitFor } from "@adminkiosk/devstack";
import { clientFor, failure } from "../../../test/support/auth.js";
import { completionAckWaitMs } from "../src/completion.js";
import { verifyTicket } from "../src/tickets.js";
import { startSale, type SaleFixture } from "./fixture.js";

let f: SaleFixture;
const suffix = randomBytes(3).toString("hex");
const kiosk = (name: string) => `offline-${name}-${suffix}`;
const done = [OrderState.COMPLETED, OrderState.FAILED];

beforeAll(async () => {
  f = await startSale();
}, 120_000);
afterAll(async () => {
  await f?.stop();
});

const offline = (token: string) => clientFor(OfflineSaleService, f.orders.url, token);
const leasesAs = (token: string) => f.catalogAs(LeaseService, token);
const seller = async (kioskId: string) =>
  new OfflineSeller({ kioskId, credential: await f.device(kioskId), catalogAddress: f.catalog.url, ordersAddress: f.orders.url });
const seatStates = async (eventId: string) => {
  const { seats } = await f.catalogAs(EventService, f.tokens.viewer).getSeatAvailability({ eventId });
  return new Map(seats.map((s) => [s.seatId, s.state]));
};

/** One character of `s` at `i` changed to another base64url character. */
const tamper = (s: string, i: number) => `${s.slice(0, i)}${s[i] === "A" ? "B" : "A"}${s.slice(i + 1)}`;

describe("a kiosk with a lease of 10 units and 5 seats, cut off from the network", () => {
  it("sells all 15 while no one else can take them; on reconnect each sale is recorded and charged once, stock and seats reconcile", async () => {
    const a = kiosk("a");
    const b = kiosk("b");
    const sku = `water-${suffix}`;
    await f.product(sku, 200n, { [a]: 10n, [b]: 10n });
    const { eventId, seatIds } = await f.event(6);
    const [tokenA, tokenB] = [await f.device(a), await f.device(b)];
    const sellerA = await seller(a);
    const lease = await sellerA.lease({ items: [{ sku, quantity: 10n }], seats: seatIds.slice(0, 5).map((seatId) => ({ eventId, seatId })), ttlSeconds: 3600 });
    expect(lease).toMatchObject({ kioskId: a, state: LeaseState.ACTIVE });
    expect(await f.stock(a, sku)).toMatchObject({ onHand: 10n, reserved: 10n, available: 0n });

    // Leased units and seats are not for sale anywhere else: not online at the kiosk itself, not at another kiosk.
    const online = await failure(f.ordersAs(tokenA).createOrder({ idempotencyKey: randomUUID(), items: [{ sku, quantity: 1n }], paymentMethod: "pm_card_visa" }));
    expect(online.code).toBe(Code.ResourceExhausted);
    for (const seatId of seatIds.slice(0, 5)) {
      const taken = await failure(f.ordersAs(tokenB).createOrder({ idempotencyKey: randomUUID(), seats: [{ eventId, seatId }], paymentMethod: "pm_card_visa" }));
      expect(taken.code, seatId).toBe(Code.FailedPrecondition);
      const leased = await failure(leasesAs(tokenB).grantLease({ leaseId: randomUUID(), seats: [{ eventId, seatId }] }));
      expect(leased.code, seatId).toBe(Code.FailedPrecondition);
    }

    // Offline: 10 single units and 5 seats, cash and cards (each below the floor limit).
    const sold = [];
    for (let i = 0; i < 10; i++)
      sold.push(await sellerA.sell({ idempotencyKey: `${a}-unit-${i}`, items: [{ sku, quantity: 1n }], paymentMethod: i % 2 === 0 ? "cash" : "pm_card_visa" }));
    for (const [i, seatId] of seatIds.slice(0, 5).entries())
      sold.push(await sellerA.sell({ idempotencyKey: `${a}-seat-${i}`, seats: [{ eventId, seatId }], paymentMethod: i % 2 === 0 ? "pm_card_visa" : "cash" }));
    expect(sold).toHaveLength(15);
    expect(sold[0]!.receiptText).toContain("PROVISIONAL RECEIPT");
    // The lease is sold out: the kiosk refuses a 16th sale rather than oversell.
    await expect(sellerA.sell({ idempotencyKey: `${a}-unit-10`, items: [{ sku, quantity: 1n }], paymentMethod: "cash" })).rejects.toBeInstanceOf(OfflineRefusal);
    await expect(sellerA.sell({ idempotencyKey: `${a}-seat-5`, seats: [{ eventId, seatId: seatIds[5]! }], paymentMethod: "cash" })).rejects.toBeInstanceOf(OfflineRefusal);

    // Still cut off: a sync fails and every sale stays queued.
    const dead = `http://127.0.0.1:${await freePort()}`;
    await expect(sellerA.sync({ ordersAddress: dead })).rejects.toThrow();
    const pending: OfflineSaleInit[] = sellerA.pending();
    expect(pending).toHaveLength(15);

    // The provisional tickets verify with nothing but the published keys; one character changed fails.
    const { jwksJson } = await f.ordersAs().getTicketVerificationKeys({});
    for (const t of sold.flatMap((s) => s.tickets)) {
      const claims = await verifyTicket(t.qrPayload, jwksJson);
      expect(claims).toMatchObject({ kid: a, ev: eventId, seat: t.seatId, tid: t.ticketId });
      const cut = t.qrPayload.split(".");
      const delegationAt = cut[0]!.length + 1 + Math.floor(cut[1]!.length / 2);
      const ticketAt = t.qrPayload.length - 10;
      for (const at of [5, delegationAt, t.qrPayload.length - cut[5]!.length - 3, ticketAt]) await expect(verifyTicket(tamper(t.qrPayload, at), jwksJson), `changed at ${at}`).rejects.toThrow();
    }

    // Back online, and a crash mid-sync: the first 5 reached orders but their answer was lost; then all 15 are sent.
    const lost = await offline(tokenA).syncOfflineSales({ sales: pending.slice(0, 5) });
    expect(lost.results.map((r) => r.outcome)).toEqual(Array(5).fill(OfflineSaleOutcome.RECORDED));
    const results = await sellerA.sync({ batchSize: 7 });
    expect(results).toHaveLength(15);
    expect(results.every((r) => r.outcome === OfflineSaleOutcome.RECORDED)).toBe(true);
    expect(results.slice(0, 5).map((r) => r.order?.orderId)).toEqual(lost.results.map((r) => r.order?.orderId));
    expect(sellerA.pending()).toHaveLength(0);
    // And the same sales once more: the same orders.
    const again = await offline(tokenA).syncOfflineSales({ sales: pending });
    expect(again.results.map((r) => r.order?.orderId)).toEqual(results.map((r) => r.order?.orderId));

    const orderIds = results.map((r) => r.order!.orderId);
    expect(new Set(orderIds).size).toBe(15);
    const completed = await Promise.all(orderIds.map((id) => f.waitFor(tokenA, id, done)));
    expect(completed.map((o) => o.state)).toEqual(Array(15).fill(OrderState.COMPLETED));
    expect(completed.slice(0, 10).every((o) => o.totalMinor === 200n)).toBe(true);
    expect(completed.slice(10).every((o) => o.totalMinor === 3000n && o.tickets.length === 1)).toBe(true);
    // Final tickets, signed with the ticket key, replace the provisional ones.
    for (const o of completed.slice(10)) expect((await verifyTicket(o.tickets[0]!.qrPayload, jwksJson)).oid).toBe(o.orderId);
    // Cards captured once each; cash sales have no payment.
    const cards = completed.filter((o) => o.paymentIntentId !== "");
    expect(cards).toHaveLength(8);
    for (const o of cards) expect(await f.simCharges(o.paymentIntentId), o.orderId).toHaveLength(1);
    const { sales } = await offline(f.tokens.viewer).listOfflineSales({ kioskId: a, pageSize: 100 });
    expect(sales).toHaveLength(15);

    // Stock and seats reconcile: 10 units gone, none held; 5 seats sold, the sixth still free.
    expect(await f.stock(a, sku)).toMatchObject({ onHand: 0n, reserved: 0n, available: 0n });
    const seats = await seatStates(eventId);
    expect(seatIds.slice(0, 5).map((s) => seats.get(s))).toEqual(Array(5).fill(SeatState.SOLD));
    expect(seats.get(seatIds[5]!)).toBe(SeatState.AVAILABLE);
    const { lease: after } = await leasesAs(f.tokens.viewer).getLease({ leaseId: lease.leaseId });
    expect(after!.items[0]).toMatchObject({ quantity: 10n, sold: 10n });
    expect(after!.seats.every((s) => s.sold)).toBe(true);
  });
});

describe("orders killed in the middle of a sync", () => {
  it("applies every sale once when the kiosk syncs again: each order created once, each card charged once", async () => {
    const e = kiosk("crash");
    const sku = `gum-${suffix}`;
    await f.product(sku, 120n, { [e]: 20n });
    const token = await f.device(e);
    const sellerE = await seller(e);
    await sellerE.lease({ items: [{ sku, quantity: 20n }] });
    for (let i = 0; i < 20; i++) await sellerE.sell({ idempotencyKey: `${e}-${i}`, items: [{ sku, quantity: 1n }], paymentMethod: i % 4 === 0 ? "cash" : "pm_card_visa" });
    const all = sellerE.pending();
    // One call with all 20; orders is killed (SIGKILL) as soon as the first of them is recorded.
    const first = offline(token)
      .syncOfflineSales({ sales: all })
      .then(
        () => "finished",
        () => "cut off",
      );
    await waitFor("the sync's first sale to be recorded", async () => ((await offline(f.tokens.viewer).listOfflineSales({ kioskId: e, pageSize: 1 })).sales.length > 0 ? true : undefined));
    await f.restartOrders({ crash: true });
    // Normally cut off part-way; on a fast machine it may have finished first: either way the kiosk, which had no answer, sends everything again.
    expect(["cut off", "finished"]).toContain(await first);
    const results = await sellerE.sync({ ordersAddress: f.orders.url });
    expect(results).toHaveLength(20);
    const again = await offline(token).syncOfflineSales({ sales: all });
    expect(again.results.map((r) => r.order?.orderId)).toEqual(results.map((r) => r.order?.orderId));
    // A payment's event the killed orders had taken comes back once JetStream's ack wait
    // for it (the completion worker's, 30 s) has passed: wait that, and then as long as usual.
    const completed = await Promise.all(results.map((r) => f.waitFor(token, r.order!.orderId, done, completionAckWaitMs + eventually.timeout)));
    expect(completed.every((o) => o.state === OrderState.COMPLETED)).toBe(true);
    const cards = completed.filter((o) => o.paymentIntentId !== "");
    expect(cards).toHaveLength(15);
    for (const o of cards) expect(await f.simCharges(o.paymentIntentId), o.orderId).toHaveLength(1);
    const { sales } = await offline(f.tokens.viewer).listOfflineSales({ kioskId: e, pageSize: 100 });
    expect(sales).toHaveLength(20);
    expect(await f.stock(e, sku)).toMatchObject({ onHand: 0n, reserved: 0n });
    // A cash sale refunds without a payment (the money is handed back): recorded, restocked.
    const cashOrder = completed.find((o) => o.paymentIntentId === "")!;
    const { order: refunded } = await f.ordersAs(f.tokens.operator).refundOrder({ idempotencyKey: randomUUID(), orderId: cashOrder.orderId, reason: "customer returned it" });
    expect(refunded).toMatchObject({ state: OrderState.REFUNDED, refundedMinor: 120n });
    expect(await f.stock(e, sku)).toMatchObject({ onHand: 1n, reserved: 0n });
  }, 180_000);
});

describe("a lease revoked while its kiosk is offline", () => {
  it("never hands its seats to another buyer; the kiosk's sales from it are recorded as sold, stock reconciles, and each is a conflict an operator accepts or refunds", async () => {
    const c = kiosk("c");
    const b = kiosk("b2");
    const sku = `juice-${suffix}`;
    await f.product(sku, 300n, { [c]: 3n });
    const { eventId, seatIds } = await f.event(2);
    const [tokenB, tokenC] = [await f.device(b), await f.device(c)];
    const sellerC = await seller(c);
    const lease = await sellerC.lease({ items: [{ sku, quantity: 3n }], seats: seatIds.map((seatId) => ({ eventId, seatId })) });
    await sellerC.sell({ idempotencyKey: `${c}-1`, items: [{ sku, quantity: 1n }], paymentMethod: "cash" });
    await sellerC.sell({ idempotencyKey: `${c}-2`, seats: [{ eventId, seatId: seatIds[0]! }], paymentMethod: "pm_card_visa" });

    const { lease: revoked } = await leasesAs(f.tokens.operator).revokeLease({ leaseId: lease.leaseId, reason: "kiosk reported stolen" });
    expect(revoked).toMatchObject({ state: LeaseState.REVOKED, seatsQuarantined: true });
    // The unsold units go back at once (the one sold offline among them: the books do not know yet).
    expect(await f.stock(c, sku)).toMatchObject({ onHand: 3n, reserved: 0n });
    // The seats do not: the kiosk may still be selling them offline. Nobody else can buy or lease them.
    for (const seatId of seatIds) {
      const taken = await failure(f.ordersAs(tokenB).createOrder({ idempotencyKey: randomUUID(), seats: [{ eventId, seatId }], paymentMethod: "pm_card_visa" }));
      expect(taken.code, seatId).toBe(Code.FailedPrecondition);
      expect((await failure(leasesAs(tokenB).grantLease({ leaseId: randomUUID(), seats: [{ eventId, seatId }] }))).code, seatId).toBe(Code.FailedPrecondition);
    }
    // Meanwhile the units went to an online buyer at the kiosk: all 3, though one is already gone from the shelf.
    const { order: online } = await f.ordersAs(tokenC).createOrder({ idempotencyKey: randomUUID(), items: [{ sku, quantity: 3n }], paymentMethod: "pm_card_visa" });
    expect((await f.waitFor(tokenC, online!.orderId, done)).state).toBe(OrderState.COMPLETED);

    // Back online: both sales are recorded as sold (the buyers have them), each a conflict for an operator.
    const results = await sellerC.sync();
    expect(results.map((r) => r.outcome)).toEqual([OfflineSaleOutcome.CONFLICT, OfflineSaleOutcome.CONFLICT]);
    const [cashSale, seatSale] = await Promise.all(results.map((r) => f.waitFor(tokenC, r.order!.orderId, done)));
    expect(cashSale).toMatchObject({ state: OrderState.COMPLETED, totalMinor: 300n, paymentIntentId: "" });
    expect(seatSale).toMatchObject({ state: OrderState.COMPLETED, totalMinor: 3000n });
    expect(await f.simCharges(seatSale!.paymentIntentId)).toHaveLength(1);
    // The seat is sold once: to the kiosk's buyer. The other seat is still quarantined until the kiosk says it has synced.
    const seats = await seatStates(eventId);
    expect(seats.get(seatIds[0]!)).toBe(SeatState.SOLD);
    expect(seats.get(seatIds[1]!)).toBe(SeatState.HELD);
    // The unit sold offline is gone; it could not come off stock (0 on hand already): the conflict says so.
    expect(await f.stock(c, sku)).toMatchObject({ onHand: 0n, reserved: 0n });
    const { conflicts } = await offline(f.tokens.viewer).listOfflineConflicts({ kioskId: c, state: ConflictState.OPEN });
    expect(conflicts.map((x) => x.orderId).sort()).toEqual(results.map((r) => r.order!.orderId).sort());
    expect(conflicts.every((x) => x.kind === ConflictKind.LEASE_ENDED && x.code === "LEASE_REVOKED" && x.sold)).toBe(true);
    const unitConflict = conflicts.find((x) => x.orderId === cashSale!.orderId)!;
    expect(unitConflict.message).toContain(`1 × ${sku} could not come off stock`);

    // The kiosk returns the lease after syncing: the unsold seat's quarantine ends, and another kiosk buys it.
    const returned = await sellerC.returnLease();
    expect(returned).toMatchObject({ state: LeaseState.REVOKED, seatsQuarantined: false });
    await expect(sellerC.sell({ idempotencyKey: `${c}-3`, items: [{ sku, quantity: 1n }], paymentMethod: "cash" })).rejects.toBeInstanceOf(OfflineRefusal);
    const { order: other } = await f.ordersAs(tokenB).createOrder({ idempotencyKey: randomUUID(), seats: [{ eventId, seatId: seatIds[1]! }], paymentMethod: "pm_card_visa" });
    expect((await f.waitFor(tokenB, other!.orderId, done)).state).toBe(OrderState.COMPLETED);

    // The operator's choices: a viewer may not; the seat sale is accepted as it stands (its ticket stays valid).
    const seatConflict = conflicts.find((x) => x.orderId === seatSale!.orderId)!;
    expect((await failure(offline(f.tokens.viewer).resolveOfflineConflict({ conflictId: seatConflict.conflictId, resolution: ConflictResolution.ACCEPTED, note: "x" }))).code).toBe(
      Code.PermissionDenied,
    );
    const { conflict: accepted } = await offline(f.tokens.operator).resolveOfflineConflict({ conflictId: seatConflict.conflictId, resolution: ConflictResolution.ACCEPTED, note: "sale stands" });
    expect(accepted).toMatchObject({ state: ConflictState.RESOLVED, resolution: ConflictResolution.ACCEPTED });
    expect((await f.ordersAs(tokenC).getOrder({ orderId: seatSale!.orderId })).order!.tickets.every((t) => !t.void)).toBe(true);
    // The cash sale is refunded: not before its order is (the money and the unit must come back), then resolved.
    const early = await failure(offline(f.tokens.operator).resolveOfflineConflict({ conflictId: unitConflict.conflictId, resolution: ConflictResolution.REFUNDED, note: "cash returned" }));
    expect([early.code, early.rawMessage]).toEqual([Code.FailedPrecondition, expect.stringContaining("refund order")]);
    expect((await failure(offline(f.tokens.operator).resolveOfflineConflict({ conflictId: unitConflict.conflictId, resolution: ConflictResolution.WRITTEN_OFF, note: "x" }))).code).toBe(
      Code.FailedPrecondition,
    );
    await f.ordersAs(f.tokens.operator).refundOrder({ idempotencyKey: randomUUID(), orderId: cashSale!.orderId, reason: "sold on a revoked lease; customer returned it" });
    expect(await f.stock(c, sku)).toMatchObject({ onHand: 1n, reserved: 0n });
    const { conflict: refunded } = await offline(f.tokens.operator).resolveOfflineConflict({ conflictId: unitConflict.conflictId, resolution: ConflictResolution.REFUNDED, note: "cash returned" });
    expect(refunded).toMatchObject({ state: ConflictState.RESOLVED, resolution: ConflictResolution.REFUNDED });
  });
});

describe("a sale orders can never apply", () => {
  it("goes to the operator queue as rejected, and the kiosk's queue moves on to the next sale; an unreachable orders still keeps every sale queued in order", async () => {
    const g = kiosk("g");
    const sku = `cola-${suffix}`;
    await f.product(sku, 250n, { [g]: 5n });
    const sellerG = await seller(g);
    const lease = await sellerG.lease({ items: [{ sku, quantity: 5n }] });
    for (let i = 0; i < 3; i++) await sellerG.sell({ idempotencyKey: `${g}-${i}`, items: [{ sku, quantity: 1n }], paymentMethod: i === 1 ? "pm_card_visa" : "cash" });
    // The middle sale is corrupted on the kiosk (a bad SKU and a lease that is not one).
    const state = (sellerG as unknown as { state: { queue: { items: { sku: string }[]; leaseId: string }[] } }).state;
    state.queue[1]!.items[0]!.sku = "not a sku!";
    state.queue[1]!.leaseId = "lost";
    const corrupted = sellerG.pending()[1]!;
    // Still cut off: nothing leaves the queue.
    await expect(sellerG.sync({ ordersAddress: `http://127.0.0.1:${await freePort()}` })).rejects.toThrow();
    expect(sellerG.pending().map((s) => s.idempotencyKey)).toEqual([`${g}-0`, `${g}-1`, `${g}-2`]);

    const results = await sellerG.sync();
    expect(results.map((r) => r.outcome)).toEqual([OfflineSaleOutcome.RECORDED, OfflineSaleOutcome.REJECTED, OfflineSaleOutcome.RECORDED]);
    expect(results[1]!.rejection).toMatch(/^sales\[1\]\.lease_id/);
    expect(results[1]!.order).toMatchObject({ state: OrderState.FAILED, failureCode: "INVALID_OFFLINE_SALE", paymentIntentId: "" });
    expect(sellerG.pending()).toHaveLength(0);
    // Synced again (a crash lost the answer): the same order, recorded once. Without reject_invalid it fails the call, naming the field.
    const { results: again } = await offline(await f.device(g)).syncOfflineSales({ sales: [corrupted], rejectInvalid: true });
    expect(again[0]).toMatchObject({ outcome: OfflineSaleOutcome.REJECTED, order: { orderId: results[1]!.order!.orderId } });
    const strict = await failure(offline(await f.device(g)).syncOfflineSales({ sales: [corrupted] }));
    expect([strict.code, strict.rawMessage]).toEqual([Code.InvalidArgument, expect.stringMatching(/^sales\[0\]\.lease_id/)]);
    const { conflicts } = await offline(f.tokens.viewer).listOfflineConflicts({ kioskId: g });
    expect(conflicts).toHaveLength(1);
    expect(conflicts[0]).toMatchObject({ kind: ConflictKind.REJECTED, orderId: results[1]!.order!.orderId, state: ConflictState.OPEN, sold: false, code: "INVALID_OFFLINE_SALE" });
    expect(conflicts[0]!.message).toContain("lease_id");
    // Only the two good sales came off stock.
    expect(await f.stock(g, sku)).toMatchObject({ onHand: 3n, reserved: 3n });
    const { lease: after } = await leasesAs(f.tokens.viewer).getLease({ leaseId: lease.leaseId });
    expect(after!.items[0]).toMatchObject({ sold: 2n });
    // The operator writes the lost cash off.
    const { conflict } = await offline(f.tokens.operator).resolveOfflineConflict({ conflictId: conflicts[0]!.conflictId, resolution: ConflictResolution.WRITTEN_OFF, note: "cash kept, sale lost" });
    expect(conflict).toMatchObject({ state: ConflictState.RESOLVED, resolution: ConflictResolution.WRITTEN_OFF });
  });
});

describe("a card taken offline and declined on capture", () => {
  it("is sold (the goods are gone) and becomes a conflict for an operator", async () => {
    const d = kiosk("d");
    const sku = `snack-${suffix}`;
    await f.product(sku, 450n, { [d]: 2n });
    const sellerD = await seller(d);
    await sellerD.lease({ items: [{ sku, quantity: 2n }] });
    await expect(sellerD.sell({ idempotencyKey: `${d}-big`, items: [{ sku, quantity: 2n }], paymentMethod: "pm_card_visa", now: new Date() })).resolves.toBeDefined();
    await f.nextCharges("decline", { count: 1, decline_code: "insufficient_funds" });
    const [result] = await sellerD.sync();
    const order = await f.waitFor(await f.device(d), result!.order!.orderId, done);
    expect(order.state).toBe(OrderState.FAILED);
    expect(await f.stock(d, sku)).toMatchObject({ onHand: 0n, reserved: 0n });
    const { conflicts } = await offline(f.tokens.viewer).listOfflineConflicts({ kioskId: d });
    expect(conflicts).toHaveLength(1);
    expect(conflicts[0]).toMatchObject({ orderId: order.orderId, kind: ConflictKind.PAYMENT_DECLINED, state: ConflictState.OPEN, amountMinor: 900n });
  });
});

describe("a kiosk's credential", () => {
  it("reaches only its own leases and sales, within the offline policy", async () => {
    const a = kiosk("own-a");
    const b = kiosk("own-b");
    const sku = `tea-${suffix}`;
    await f.product(sku, 100n, { [a]: 50n, [b]: 5n });
    const [tokenA, tokenB] = [await f.device(a), await f.device(b)];
    const sellerA = await seller(a);
    const lease = await sellerA.lease({ items: [{ sku, quantity: 2n }] });
    await sellerA.sell({ idempotencyKey: "mine-1", items: [{ sku, quantity: 1n }], paymentMethod: "cash" });
    const sale = sellerA.pending()[0]!;

    // B cannot sync A's sale, use A's lease, see it, get a delegation for it, or lease for A.
    const synced = await failure(offline(tokenB).syncOfflineSales({ sales: [sale] }));
    expect(synced.code).toBe(Code.PermissionDenied);
    expect(synced.rawMessage).toContain("sales[0].lease_id");
    expect((await failure(offline(tokenB).issueTicketDelegation({ leaseId: lease.leaseId, publicKey: "A".repeat(43) }))).code).toBe(Code.PermissionDenied);
    expect((await failure(leasesAs(tokenB).getLease({ leaseId: lease.leaseId }))).code).toBe(Code.NotFound);
    expect((await failure(leasesAs(tokenB).returnLease({ leaseId: lease.leaseId }))).code).toBe(Code.NotFound);
    expect((await failure(leasesAs(tokenB).grantLease({ leaseId: randomUUID(), kioskId: a, items: [{ sku, quantity: 1n }] }))).code).toBe(Code.PermissionDenied);
    expect((await failure(leasesAs(tokenB).revokeLease({ leaseId: lease.leaseId, reason: "mine now" }))).code).toBe(Code.PermissionDenied);
    // Nor commit a sale against any lease (only orders does).
    expect((await failure(leasesAs(tokenA).commitLeaseSale({ leaseId: lease.leaseId, kioskId: a, saleId: randomUUID(), items: [{ sku, quantity: 1n }] }))).code).toBe(Code.PermissionDenied);
    // Within the policy only: 21 units of a SKU, or a ttl of a day, is an operator's to grant.
    const tooMany = await failure(leasesAs(tokenA).grantLease({ leaseId: randomUUID(), items: [{ sku, quantity: 21n }] }));
    expect(tooMany.code).toBe(Code.PermissionDenied);
    expect(tooMany.rawMessage).toContain("items[0].quantity");
    expect((await failure(leasesAs(tokenA).grantLease({ leaseId: randomUUID(), items: [{ sku, quantity: 1n }], ttlSeconds: 86_400 }))).code).toBe(Code.PermissionDenied);
    const { lease: big } = await leasesAs(f.tokens.operator).grantLease({ leaseId: randomUUID(), kioskId: a, items: [{ sku, quantity: 30n }], ttlSeconds: 86_400 });
    expect(big).toMatchObject({ kioskId: a, state: LeaseState.ACTIVE });
    // Bad input names the field.
    const bad = await failure(offline(tokenA).syncOfflineSales({ sales: [{ idempotencyKey: "bad-1", leaseId: lease.leaseId, soldTime: sale.soldTime, paymentMethod: "cash", tickets: [], seats: [{ eventId: randomUUID(), seatId: "A-1-1" }] }] }));
    expect(bad.code).toBe(Code.InvalidArgument);
    expect(bad.rawMessage).toContain("sales[0].tickets");

    // A's own sync goes through, and the kiosk gives the rest of its lease back.
    const [mine] = await sellerA.sync();
    expect(mine!.outcome).toBe(OfflineSaleOutcome.RECORDED);
    const { lease: returned } = await leasesAs(tokenA).returnLease({ leaseId: lease.leaseId });
    expect(returned).toMatchObject({ state: LeaseState.RETURNED });
    expect(returned!.items[0]).toMatchObject({ quantity: 2n, sold: 1n });
    expect(await f.stock(a, sku)).toMatchObject({ onHand: 49n, reserved: 30n });
  });
});
