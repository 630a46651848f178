// A hold that is not paid: with a short hold and a provider that never confirms, the
// reservation expires at catalog, orders fails the order (HOLD_EXPIRED) and the seats
// and units are sellable again; a payment that then succeeds late is refunded.
import { afterAll, beforeAll, expect, it } from "vitest";
import { EventService } from "@adminkiosk/proto/adminkiosk/catalog/v1/catalog_pb";
import { OrderState } from "@adminkiosk/proto/adminkiosk/orders/v1/orders_pb";
import { startSale, type SaleFixture } from "./fixture.js";

let f: SaleFixture;
let kiosk: string;

beforeAll(async () => {
  f = await startSale({ orders: { ORDER_HOLD_SECONDS: "30" }, payments: { PAYMENT_CONFIRM_TIMEOUT: "2m" } });
  kiosk = await f.device("kiosk-expiry");
  await f.product("gum", 100n, { "kiosk-expiry": 5n });
}, 120_000);
afterAll(async () => {
  await f?.stop();
});

it("an unpaid hold expires: the order fails with HOLD_EXPIRED and its seats and units are sellable again", async () => {
  const { eventId, seatIds } = await f.event(1);
  await f.nextCharges("timeout");
  const { order } = await f.ordersAs(kiosk).createOrder({ idempotencyKey: "expiring-1", items: [{ sku: "gum", quantity: 5n }], seats: [{ eventId, seatId: seatIds[0]! }], paymentMethod: "pm_card_visa" });
  expect(order?.state).toBe(OrderState.PENDING_PAYMENT);
  expect((await f.stock("kiosk-expiry", "gum")).available).toBe(0n);
  const failed = await f.waitFor(kiosk, order!.orderId, [OrderState.COMPLETED, OrderState.FAILED], 60_000);
  expect(failed).toMatchObject({ state: OrderState.FAILED, failureCode: "HOLD_EXPIRED" });
  expect(await f.stock("kiosk-expiry", "gum")).toMatchObject({ onHand: 5n, reserved: 0n, available: 5n });
  const { seats } = await f.catalogAs(EventService, f.tokens.viewer).getSeatAvailability({ eventId });
  expect(seats[0]?.state).toBe(1);
  // Sellable again: another sale of the same seat and units completes.
  const { order: next } = await f.ordersAs(kiosk).createOrder({ idempotencyKey: "expiring-2", items: [{ sku: "gum", quantity: 5n }], seats: [{ eventId, seatId: seatIds[0]! }], paymentMethod: "pm_card_visa" });
  expect((await f.waitFor(kiosk, next!.orderId, [OrderState.COMPLETED, OrderState.FAILED])).state).toBe(OrderState.COMPLETED);
  await f.expectLedgerBalanced();
}, 90_000);
