// GetSalesSummary's daily series (issue 20: the admin web's sales chart in one call): every
// day of the range in order, in the caller's time zone, with the day's net sales and per
// product, days without sales as zeros; the range and time zone are checked, naming the field.
import { Code } from "@connectrpc/connect";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { afterAll, beforeAll, expect, it } from "vitest";
import { OrderState, SalesBucket } from "@adminkiosk/proto/adminkiosk/orders/v1/orders_pb";
import { BadRequestSchema } from "@adminkiosk/proto/google/rpc/error_details_pb";
import { failure } from "../../../test/support/auth.js";
import { startSale, type SaleFixture } from "./fixture.js";

let f: SaleFixture;
const dayMs = 86_400_000;

beforeAll(async () => {
  f = await startSale();
}, 120_000);
afterAll(async () => {
  await f?.stop();
});

/** The calendar date of `ms` in `timeZone`, as YYYY-MM-DD. */
const dateIn = (ms: number, timeZone: string) => new Intl.DateTimeFormat("en-CA", { timeZone, year: "numeric", month: "2-digit", day: "2-digit" }).format(ms);

it("answers the net sales per day of the range in one call, in the caller's time zone, with each day's products", async () => {
  const kiosk = await f.device("kiosk-series");
  await f.product("cocoa", 320n, { "kiosk-series": 20n });
  const ids: string[] = [];
  for (const quantity of [1n, 3n]) {
    const { order } = await f.ordersAs(kiosk).createOrder({ idempotencyKey: `series-${quantity}-${Date.now()}`, items: [{ sku: "cocoa", quantity }], paymentMethod: "pm_card_visa" });
    const done = await f.waitFor(kiosk, order!.orderId, [OrderState.COMPLETED, OrderState.FAILED]);
    expect(done.state).toBe(OrderState.COMPLETED);
    ids.push(done.orderId);
  }
  const line = (await f.ordersAs(f.tokens.viewer).getOrder({ orderId: ids[1]! })).order!.lines[0]!;
  await f.ordersAs(f.tokens.operator).refundOrder({ idempotencyKey: `series-refund-${Date.now()}`, orderId: ids[1]!, lines: [{ lineNumber: line.lineNumber, quantity: 1n }], reason: "cold" });

  // What each day should hold, from the orders' own completion times (two days if a midnight
  // in the zone fell between them): order 1 nets 320, order 2 nets 2 × 320 after the refund.
  const completed = await Promise.all(ids.map(async (orderId) => Number((await f.ordersAs(f.tokens.viewer).getOrder({ orderId })).order!.completeTime!.seconds) * 1000));
  const nets = [320n, 640n];
  const units = [1n, 2n];
  const now = Date.now();
  for (const timeZone of ["Pacific/Kiritimati", "America/Adak"]) {
    // Seven days and a bit before now, in that zone.
    const res = await f.ordersAs(f.tokens.viewer).getSalesSummary({ startTime: timestampFromMs(now - 6 * dayMs - 3 * 3_600_000), endTime: timestampFromMs(now + 60_000), kioskId: "kiosk-series", bucket: SalesBucket.DAY, timeZone });
    const expected = new Map<string, { orderCount: number; netMinor: bigint; quantity: bigint }>();
    completed.forEach((ms, i) => {
      const day = dateIn(ms, timeZone);
      const was = expected.get(day) ?? { orderCount: 0, netMinor: 0n, quantity: 0n };
      expected.set(day, { orderCount: was.orderCount + 1, netMinor: was.netMinor + nets[i]!, quantity: was.quantity + units[i]! });
    });
    const dates = res.series.map((p) => p.date);
    expect(dates.at(-1), timeZone).toBe(dateIn(now + 60_000, timeZone));
    expect(dates[0]).toBe(dateIn(now - 6 * dayMs - 3 * 3_600_000, timeZone));
    expect(new Set(dates).size).toBe(dates.length); // one currency: one point per day
    expect(dates).toEqual([...dates].sort());
    expect(dates.length).toBeGreaterThanOrEqual(7);
    for (const p of res.series) {
      const want = expected.get(p.date);
      if (!want) {
        expect(p, p.date).toMatchObject({ currency: "", orderCount: 0, netMinor: 0n, products: [] });
        continue;
      }
      expect(p, p.date).toMatchObject({ currency: "EUR", orderCount: want.orderCount, netMinor: want.netMinor });
      expect(p.products).toEqual([expect.objectContaining({ sku: "cocoa", currency: "EUR", quantity: want.quantity, netMinor: want.netMinor })]);
    }
    expect(res.series.reduce((n, p) => n + p.netMinor, 0n)).toBe(960n);
    // Each day after the first starts at midnight in the zone.
    for (const p of res.series.slice(1)) {
      const start = Number(p.startTime!.seconds) * 1000;
      expect(dateIn(start, timeZone)).toBe(p.date);
      expect(dateIn(start - 1, timeZone)).not.toBe(p.date);
    }
    // The totals are the same as without a bucket.
    expect(res.kiosks).toEqual([expect.objectContaining({ kioskId: "kiosk-series", orderCount: 2, netMinor: 960n, refundedMinor: 320n })]);
  }
  // Without a bucket, no series.
  const plain = await f.ordersAs(f.tokens.viewer).getSalesSummary({ startTime: timestampFromMs(now - dayMs), endTime: timestampFromMs(now + 60_000), kioskId: "kiosk-series" });
  expect(plain.series).toEqual([]);
  expect(plain.kiosks[0]?.netMinor).toBe(960n);
});

it("refuses a range longer than 366 days, an unknown time zone and a time zone without a bucket, naming the field", async () => {
  const now = Date.now();
  const viewer = f.ordersAs(f.tokens.viewer);
  const cases: [Promise<unknown>, string][] = [
    [viewer.getSalesSummary({ startTime: timestampFromMs(now - 367 * dayMs), endTime: timestampFromMs(now), bucket: SalesBucket.DAY }), "end_time"],
    [viewer.getSalesSummary({ startTime: timestampFromMs(now - dayMs), endTime: timestampFromMs(now), bucket: SalesBucket.DAY, timeZone: "Mars/Olympus" }), "time_zone"],
    [viewer.getSalesSummary({ startTime: timestampFromMs(now - dayMs), endTime: timestampFromMs(now), bucket: SalesBucket.DAY, timeZone: "UTC'; --" }), "time_zone"],
    [viewer.getSalesSummary({ startTime: timestampFromMs(now - dayMs), endTime: timestampFromMs(now), timeZone: "Europe/Prague" }), "time_zone"],
    [viewer.getSalesSummary({ startTime: timestampFromMs(now - dayMs), endTime: timestampFromMs(now), bucket: 7 as SalesBucket }), "bucket"],
  ];
  for (const [call, field] of cases) {
    const err = await failure(call);
    expect(err.code, field).toBe(Code.InvalidArgument);
    expect(err.findDetails(BadRequestSchema)[0]?.fieldViolations[0]?.field, err.rawMessage).toBe(field);
  }
  // A whole year is fine (366 points at most).
  const year = await viewer.getSalesSummary({ startTime: timestampFromMs(now - 366 * dayMs), endTime: timestampFromMs(now), bucket: SalesBucket.DAY });
  expect(year.series.length).toBeGreaterThanOrEqual(366);
  expect(year.series.length).toBeLessThanOrEqual(367);
});
