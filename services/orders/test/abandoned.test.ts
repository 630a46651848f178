// A sale its kiosk never retries: payments cannot be reached, so CreateOrder stops after
// catalog reserved and the order stays 'created' with its units held. Past its hold plus
// the margin the abandoned-order sweeper (src/abandoned.ts) fails it (HOLD_EXPIRED) and
// releases the reservation; the units are sellable again, and the kiosk retrying the same
// key is answered that FAILED order (no payment is started: payments is still down).
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, expect, it } from "vitest";
import { OrderState } from "@adminkiosk/proto/adminkiosk/orders/v1/orders_pb";
import { abandonedFailure } from "../src/abandoned.js";
import { startSale, type SaleFixture } from "./fixture.js";

let f: SaleFixture;
let kiosk: string;

beforeAll(async () => {
  f = await startSale({
    orders: { ORDER_HOLD_SECONDS: "30", ORDERS_ABANDONED_MARGIN_SECONDS: "0", ORDERS_ABANDONED_SWEEP_MS: "200" },
    // catalog's own expiry of the hold never runs within this test (its first tick is 10 minutes after start):
    // the orders' sweeper (every 200 ms) is the one that ends the order and releases the reservation.
    catalog: { RESERVATION_SWEEP_MS: "600000" },
  });
  kiosk = await f.device("kiosk-abandoned");
  await f.product("mints", 150n, { "kiosk-abandoned": 3n });
}, 120_000);
afterAll(async () => {
  await f?.stop();
});

it("an order left 'created' fails once its hold is over, its stock is back, and a retry of its key is answered that order", async () => {
  await f.payments.stop();
  const request = { idempotencyKey: "abandoned-1", items: [{ sku: "mints", quantity: 3n }], paymentMethod: "pm_card_visa" };
  let refused: ConnectError | undefined;
  try {
    await f.ordersAs(kiosk).createOrder(request, { timeoutMs: 20_000 });
  } catch (err) {
    refused = ConnectError.from(err);
  }
  expect(refused && Code[refused.code]).toBe(Code[Code.Unavailable]);
  expect(refused?.rawMessage).toMatch(/^payments is unavailable/);
  expect(await f.stock("kiosk-abandoned", "mints")).toMatchObject({ reserved: 3n, available: 0n });
  const { orders: listed } = await f.ordersAs(f.tokens.viewer).listOrders({ pageSize: 10, kioskId: "kiosk-abandoned" });
  expect(listed).toHaveLength(1);
  expect(listed[0]?.state).toBe(OrderState.CREATED);
  const orderId = listed[0]!.orderId;

  // The kiosk never retries: past the hold (30 s; margin 0 here), the sweeper ends it.
  const failed = await f.waitFor(kiosk, orderId, [OrderState.FAILED, OrderState.COMPLETED], 90_000);
  expect(failed).toMatchObject({ state: OrderState.FAILED, failureCode: "HOLD_EXPIRED" });
  // The sweeper did it (the completion worker, on catalog's expiry, says otherwise).
  expect(failed.failureMessage).toBe(abandonedFailure.message);
  expect(await f.stock("kiosk-abandoned", "mints")).toMatchObject({ onHand: 3n, reserved: 0n, available: 3n });

  // The kiosk comes back with the same key: that order, FAILED, not a new sale nor a payment.
  const { order: again } = await f.ordersAs(kiosk).createOrder(request);
  expect(again).toMatchObject({ orderId, state: OrderState.FAILED, failureCode: "HOLD_EXPIRED" });
  expect((await f.ordersAs(f.tokens.viewer).listOrders({ pageSize: 10, kioskId: "kiosk-abandoned" })).orders).toHaveLength(1);
  expect(await f.stock("kiosk-abandoned", "mints")).toMatchObject({ reserved: 0n, available: 3n });
}, 150_000);
