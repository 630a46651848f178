// Stock per kiosk as operators (and orders, for refunded sales) restock it and kiosks
// read it; events and seat maps as admins create them. Low-stock crossings arrive on NATS.
import { fromBinary } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EventService, InventoryService, ReservationService, SeatState } from "@adminkiosk/proto/adminkiosk/catalog/v1/catalog_pb";
import { StockLowEventSchema, StockReplenishedEventSchema } from "@adminkiosk/proto/adminkiosk/catalog/v1/events_pb";
import { BadRequestSchema } from "@adminkiosk/proto/google/rpc/error_details_pb";
import { failure } from "../../../test/support/auth.js";
import { createEvent, createProduct, startCatalog, type CatalogFixture } from "./fixture.js";

let f: CatalogFixture;
beforeAll(async () => {
  f = await startCatalog();
  await createProduct(f, "INV-WATER", { name: "Still water" });
  await createProduct(f, "INV-GUM", { name: "Chewing gum" });
});
afterAll(() => f?.stop());

const inventory = (token: string) => f.as(InventoryService, token);

describe("stock", () => {
  it("an operator restocks; who, when and why are recorded; a viewer reads it", async () => {
    const asked = Date.now();
    const { stock, restock } = await inventory(f.tokens.operator).restock({ kioskId: "inv-k1", sku: "INV-WATER", quantity: 24n, reason: "delivery 4711" });
    const answered = Date.now();
    expect(stock).toMatchObject({ kioskId: "inv-k1", sku: "INV-WATER", onHand: 24n, reserved: 0n, available: 24n, low: false });
    expect(restock).toMatchObject({ quantity: 24n, reason: "delivery 4711", restockedBy: f.tokens.operatorUserId, onHandAfter: 24n });
    // When: between asking and the answer (whole seconds), however long that took.
    expect(Number(restock!.restockTime!.seconds)).toBeGreaterThanOrEqual(Math.floor(asked / 1000));
    expect(Number(restock!.restockTime!.seconds) * 1000).toBeLessThanOrEqual(answered);
    await inventory(f.tokens.operator).restock({ kioskId: "inv-k1", sku: "INV-WATER", quantity: 6n, reason: "second crate" });
    const { stock: read } = await inventory(f.tokens.viewer).getStock({ kioskId: "inv-k1", sku: "INV-WATER" });
    expect(read?.onHand).toBe(30n);
    const { restocks } = await inventory(f.tokens.viewer).listRestocks({ kioskId: "inv-k1" });
    expect(restocks.map((r) => [r.reason, r.onHandAfter])).toEqual([
      ["second crate", 30n],
      ["delivery 4711", 24n],
    ]);
  });

  it("viewers cannot restock or set thresholds; kiosks cannot either", async () => {
    expect((await failure(inventory(f.tokens.viewer).restock({ kioskId: "inv-k1", sku: "INV-WATER", quantity: 1n, reason: "x" }))).code).toBe(Code.PermissionDenied);
    const kiosk = await f.device("inv-k1");
    expect((await failure(inventory(kiosk).setLowStockThreshold({ kioskId: "inv-k1", sku: "INV-WATER", lowStockThreshold: 3n }))).code).toBe(Code.PermissionDenied);
  });

  it("a kiosk reads its own stock and no other kiosk's", async () => {
    await inventory(f.tokens.operator).restock({ kioskId: "inv-k2", sku: "INV-GUM", quantity: 5n, reason: "first fill" });
    const kiosk1 = await f.device("inv-k1");
    expect((await inventory(kiosk1).getStock({ sku: "INV-WATER" })).stock?.onHand).toBe(30n);
    expect((await failure(inventory(kiosk1).getStock({ kioskId: "inv-k2", sku: "INV-GUM" }))).code).toBe(Code.PermissionDenied);
    expect((await failure(inventory(kiosk1).listStock({ kioskId: "inv-k2" }))).code).toBe(Code.PermissionDenied);
    const { stock } = await inventory(kiosk1).listStock({});
    expect(stock.map((s) => s.kioskId)).toEqual(["inv-k1"]);
    // People see every kiosk.
    const all = await inventory(f.tokens.viewer).listStock({});
    expect(all.stock.map((s) => `${s.kioskId}/${s.sku}`)).toEqual(["inv-k1/INV-WATER", "inv-k2/INV-GUM"]);
  });

  it("low stock is listed and announced when a sale crosses the threshold, and again when restocked", async () => {
    await inventory(f.tokens.operator).restock({ kioskId: "inv-k3", sku: "INV-GUM", quantity: 5n, reason: "fill" });
    await inventory(f.tokens.operator).setLowStockThreshold({ kioskId: "inv-k3", sku: "INV-GUM", lowStockThreshold: 3n });
    expect((await inventory(f.tokens.viewer).listStock({ kioskId: "inv-k3", lowOnly: true })).stock).toEqual([]);

    // A sale, as orders makes it.
    const reservations = f.asOrders(ReservationService);
    const reservationId = randomUUID();
    await reservations.reserve({ reservationId, kioskId: "inv-k3", items: [{ sku: "INV-GUM", quantity: 2n }] });
    await reservations.commitReservation({ reservationId });

    const low = fromBinary(StockLowEventSchema, await f.nextEvent("catalog.stock.inv-k3.low"));
    expect(low).toMatchObject({ kioskId: "inv-k3", sku: "INV-GUM", onHand: 3n, lowStockThreshold: 3n });
    const { stock, totalSize } = await inventory(f.tokens.viewer).listStock({ lowOnly: true });
    expect(totalSize).toBe(1);
    expect(stock[0]).toMatchObject({ kioskId: "inv-k3", sku: "INV-GUM", onHand: 3n, low: true });

    await inventory(f.tokens.operator).restock({ kioskId: "inv-k3", sku: "INV-GUM", quantity: 10n, reason: "refill" });
    const replenished = fromBinary(StockReplenishedEventSchema, await f.nextEvent("catalog.stock.inv-k3.replenished"));
    expect(replenished).toMatchObject({ kioskId: "inv-k3", sku: "INV-GUM", onHand: 13n });
    const metrics = await (await fetch(`${f.catalog.url}/metrics`)).text();
    expect(metrics).toMatch(/catalog_low_stock_items\{service="catalog"\} 0/);
    expect(metrics).toMatch(/catalog_reservations_total\{outcome="committed",service="catalog"\} 1/);
  });

  it("orders restocks a named kiosk (a refunded sale's units), recorded as service:orders; kiosks and other services cannot", async () => {
    const orders = f.asOrders(InventoryService);
    const { stock, restock } = await orders.restock({ kioskId: "inv-k4", sku: "INV-WATER", quantity: 2n, reason: "order 42 refunded" });
    expect(stock).toMatchObject({ kioskId: "inv-k4", sku: "INV-WATER", onHand: 2n, available: 2n });
    expect(restock).toMatchObject({ quantity: 2n, reason: "order 42 refunded", restockedBy: "service:orders", onHandAfter: 2n });
    const unnamed = await failure(orders.restock({ kioskId: "", sku: "INV-WATER", quantity: 1n, reason: "x" }));
    expect(unnamed.code).toBe(Code.InvalidArgument);
    expect(unnamed.findDetails(BadRequestSchema)[0]?.fieldViolations[0]?.field).toBe("kiosk_id");
    const kiosk = await f.device("inv-k4");
    expect((await failure(inventory(kiosk).restock({ kioskId: "inv-k4", sku: "INV-WATER", quantity: 1n, reason: "x" }))).code).toBe(Code.PermissionDenied);
    expect((await failure(f.asService("fleet", InventoryService).restock({ kioskId: "inv-k4", sku: "INV-WATER", quantity: 1n, reason: "x" }))).code).toBe(Code.PermissionDenied);
    expect((await inventory(f.tokens.viewer).getStock({ kioskId: "inv-k4", sku: "INV-WATER" })).stock?.onHand).toBe(2n);
  });

  it("bad input is InvalidArgument naming the field; unknown products are NotFound", async () => {
    const op = inventory(f.tokens.operator);
    const cases: [() => Promise<unknown>, string][] = [
      [() => op.restock({ kioskId: "inv.k1", sku: "INV-WATER", quantity: 1n, reason: "x" }), "kiosk_id"],
      [() => op.restock({ kioskId: "inv-k1", sku: "", quantity: 1n, reason: "x" }), "sku"],
      [() => op.restock({ kioskId: "inv-k1", sku: "INV-WATER", quantity: 0n, reason: "x" }), "quantity"],
      [() => op.restock({ kioskId: "inv-k1", sku: "INV-WATER", quantity: 1n, reason: "" }), "reason"],
      [() => op.setLowStockThreshold({ kioskId: "inv-k1", sku: "INV-WATER", lowStockThreshold: -1n }), "low_stock_threshold"],
      [() => op.getStock({ kioskId: "", sku: "INV-WATER" }), "kiosk_id"],
      [() => op.listStock({ pageSize: 1001 }), "page_size"],
    ];
    for (const [call, field] of cases) {
      const err = await failure(call());
      expect(err.code, field).toBe(Code.InvalidArgument);
      expect(err.findDetails(BadRequestSchema)[0]?.fieldViolations[0]?.field).toBe(field);
    }
    expect((await failure(op.restock({ kioskId: "inv-k1", sku: "NO-SUCH", quantity: 1n, reason: "x" }))).code).toBe(Code.NotFound);
  });
});

describe("events", () => {
  it("an admin creates an event with a seat map; viewers and kiosks read it and its availability", async () => {
    const event = await createEvent(f, 2, 3);
    expect(event).toMatchObject({ name: "Evening concert", seatCount: 6, active: true });
    expect(event.sections[0]?.rows[1]?.seats.map((s) => s.seatId)).toEqual(["A-2-1", "A-2-2", "A-2-3"]);
    const kiosk = await f.device("inv-k1");
    const { event: read } = await f.as(EventService, kiosk).getEvent({ eventId: event.eventId });
    expect(read?.priceTiers.map((t) => [t.tierId, t.priceMinor])).toEqual([
      ["std", 3000n],
      ["vip", 9000n],
    ]);
    const availability = await f.as(EventService, f.tokens.viewer).getSeatAvailability({ eventId: event.eventId });
    expect(availability.seats.every((s) => s.state === SeatState.AVAILABLE)).toBe(true);
    expect(availability.tiers).toEqual([expect.objectContaining({ tierId: "std", available: 3 }), expect.objectContaining({ tierId: "vip", available: 3 })]);
    const { events } = await f.as(EventService, f.tokens.viewer).listEvents({});
    expect(events.map((e) => e.eventId)).toContain(event.eventId);
    expect(events[0]?.sections).toEqual([]);
  });

  it("operators cannot create events; deleting one stops its sales", async () => {
    expect((await failure(f.as(EventService, f.tokens.operator).createEvent({}))).code).toBe(Code.PermissionDenied);
    const event = await createEvent(f, 1, 2);
    await f.as(EventService, f.tokens.admin).deleteEvent({ eventId: event.eventId });
    const err = await failure(
      f.asOrders(ReservationService).reserve({ reservationId: randomUUID(), kioskId: "inv-k1", seats: [{ eventId: event.eventId, seatId: "A-1-1" }] }),
    );
    expect(err.code).toBe(Code.FailedPrecondition);
    expect(err.rawMessage).toMatch(/seats\[0\]\.event_id: .* is not on sale/);
  });

  it("a bad seat map is InvalidArgument naming the field", async () => {
    const events = f.as(EventService, f.tokens.admin);
    const base = {
      name: "E",
      venue: "V",
      startTime: { seconds: BigInt(Math.floor(Date.now() / 1000) + 3600), nanos: 0 },
      priceTiers: [{ tierId: "std", name: "Std", priceMinor: 100n, currency: "EUR" }],
      sections: [{ sectionId: "A", name: "A", rows: [{ rowId: "1", seats: [{ number: "1", tierId: "std" }] }] }],
    };
    const cases: [() => Promise<unknown>, string][] = [
      [() => events.createEvent({}), "event"],
      [() => events.createEvent({ event: { ...base, name: "" } }), "event.name"],
      [() => events.createEvent({ event: { ...base, startTime: undefined } }), "event.start_time"],
      [() => events.createEvent({ event: { ...base, priceTiers: [] } }), "event.price_tiers"],
      [() => events.createEvent({ event: { ...base, priceTiers: [...base.priceTiers, { tierId: "vip", name: "V", priceMinor: 1n, currency: "CZK" }] } }), "event.price_tiers[1].currency"],
      [() => events.createEvent({ event: { ...base, sections: [{ sectionId: "A-1", name: "A", rows: [] }] } }), "event.sections[0].section_id"],
      [
        () => events.createEvent({ event: { ...base, sections: [{ sectionId: "A", name: "A", rows: [{ rowId: "1", seats: [{ number: "1", tierId: "gold" }] }] }] } }),
        "event.sections[0].rows[0].seats[0].tier_id",
      ],
      [
        () =>
          events.createEvent({
            event: { ...base, sections: [{ sectionId: "A", name: "A", rows: [{ rowId: "1", seats: [{ number: "1", tierId: "std" }, { number: "1", tierId: "std" }] }] }] },
          }),
        "event.sections[0].rows[0].seats[1].number",
      ],
      [() => events.getEvent({ eventId: "not-a-uuid" }), "event_id"],
    ];
    for (const [call, field] of cases) {
      const err = await failure(call());
      expect(err.code, field).toBe(Code.InvalidArgument);
      expect(err.findDetails(BadRequestSchema)[0]?.fieldViolations[0]?.field).toBe(field);
    }
  });
});
