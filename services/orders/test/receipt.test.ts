// The receipt's arithmetic and layout: pure, no servers.
import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { OrderLineSchema } from "@adminkiosk/proto/adminkiosk/orders/v1/orders_pb";
import { buildReceipt, includedTax } from "../src/receipt.js";

const product = (lineNumber: number, sku: string, quantity: bigint, unit: bigint, rate: number) =>
  create(OrderLineSchema, { lineNumber, sku, quantity, unitPriceMinor: unit, taxRateBasisPoints: rate, totalMinor: quantity * unit });
const seat = (lineNumber: number, eventId: string, seatId: string, price: bigint, rate: number) =>
  create(OrderLineSchema, { lineNumber, eventId, seatId, tierId: "std", quantity: 1n, unitPriceMinor: price, taxRateBasisPoints: rate, totalMinor: price });

const receipt = (lines: ReturnType<typeof product>[], currency = "EUR") =>
  buildReceipt({ receiptNumber: "R-000042", kioskId: "prague-001", orderId: "0b7a3c2e-1d4f-4a5b-8c9d-0e1f2a3b4c5d", lines, currency, issuedAt: new Date("2024-11-20T10:11:12.345Z") });

describe("includedTax (prices include tax)", () => {
  it("takes the tax out of a gross amount", () => {
    expect(includedTax(12_100n, 2_100)).toBe(2_100n); // 121.00 at 21 %: 100.00 net
    expect(includedTax(11_000n, 1_000)).toBe(1_000n);
    expect(includedTax(100n, 2_100)).toBe(17n); // net 82.64 → 83
  });

  it("rounds the net half up", () => {
    expect(includedTax(3n, 10_000)).toBe(1n); // net 1.5 → 2
    expect(includedTax(5n, 10_000)).toBe(2n); // net 2.5 → 3
    expect(includedTax(1n, 10_000)).toBe(0n); // net 0.5 → 1
  });

  it("no rate, or nothing sold, is no tax", () => {
    expect(includedTax(9_999n, 0)).toBe(0n);
    expect(includedTax(0n, 2_100)).toBe(0n);
  });

  it("never more tax than the amount, and net + tax is always the gross", () => {
    for (const rate of [1, 500, 1_200, 2_100, 2_500, 10_000])
      for (let gross = 0n; gross < 400n; gross += 7n) {
        const tax = includedTax(gross, rate);
        expect(tax >= 0n && tax <= gross, `${gross} at ${rate}`).toBe(true);
      }
  });

  it("works on amounts past 2^53 minor units (bigint all the way)", () => {
    const gross = 121n * 10n ** 18n;
    expect(includedTax(gross, 2_100)).toBe(21n * 10n ** 18n);
  });
});

describe("buildReceipt", () => {
  it("totals the lines and groups the tax by rate, lowest rate first", () => {
    const r = receipt([product(1, "COFFEE", 2n, 350n, 1_200), product(2, "MUG", 1n, 1_210n, 2_100), product(3, "WATER", 1n, 150n, 1_200)]);
    expect(r.totalMinor).toBe(2_060n);
    expect(r.taxes.map((t) => ({ rate: t.rateBasisPoints, net: t.netMinor, tax: t.taxMinor }))).toEqual([
      { rate: 1_200, net: 759n, tax: 91n }, // 850 gross at 12 %: 758.93 → 759
      { rate: 2_100, net: 1_000n, tax: 210n },
    ]);
    for (const t of r.taxes) expect(t.netMinor + t.taxMinor).toBe(r.lines.filter((l) => l.taxRateBasisPoints === t.rateBasisPoints).reduce((s, l) => s + l.totalMinor, 0n));
  });

  it("rounds once per rate, not once per line", () => {
    // Each 1.00 at 21 % alone would be 0.17 tax (0.34 together); on 2.00 it is 0.35.
    const r = receipt([product(1, "A", 1n, 100n, 2_100), product(2, "B", 1n, 100n, 2_100)]);
    expect(r.taxes).toHaveLength(1);
    expect(r.taxes[0]).toMatchObject({ netMinor: 165n, taxMinor: 35n });
  });

  it("carries the order's facts", () => {
    const r = receipt([seat(1, "concert-1", "A-7", 4_500n, 0)]);
    expect(r).toMatchObject({ receiptNumber: "R-000042", kioskId: "prague-001", currency: "EUR", totalMinor: 4_500n });
    expect(r.issueTime?.seconds).toBe(BigInt(Date.parse("2024-11-20T10:11:12Z") / 1000));
    expect(r.taxes).toEqual([expect.objectContaining({ rateBasisPoints: 0, netMinor: 4_500n, taxMinor: 0n })]);
  });
});

describe("the printed receipt", () => {
  // A left and a right column over 40.
  const row = (left: string, right: string) => `${left.padEnd(40 - right.length - 1)} ${right}`;

  it("is 40 columns wide, with a line per item, the total and the tax per rate", () => {
    const r = receipt([product(1, "COFFEE", 2n, 350n, 1_200), seat(2, "concert-1", "A-7", 4_500n, 0)]);
    const lines = r.printableText.split("\n");
    expect(r.printableText.endsWith("\n")).toBe(true);
    for (const l of lines) expect(l.length, l).toBeLessThanOrEqual(40);
    expect(lines).toContain("2024-11-20 10:11:12 UTC");
    // The order id (a UUID) whole, on its own line under its label.
    expect(lines.slice(lines.indexOf("Order"), lines.indexOf("Order") + 2)).toEqual(["Order", "0b7a3c2e-1d4f-4a5b-8c9d-0e1f2a3b4c5d"]);
    expect(lines).toContain(row("2 x COFFEE", "7.00"));
    expect(lines).toContain(row("Seat A-7 (concert-1)", "45.00"));
    expect(lines).toContain(row("TOTAL EUR", "52.00"));
    expect(lines).toContain(row("  incl. tax 12.00% on 6.25", "0.75"));
    // A rate of 0 prints no tax line.
    expect(lines.filter((l) => l.includes("incl. tax"))).toHaveLength(1);
  });

  it("cuts a long description, never the amount", () => {
    const r = receipt([product(1, "A-VERY-LONG-PRODUCT-CODE-THAT-DOES-NOT-FIT", 1n, 123_456n, 0)]);
    const line = r.printableText.split("\n").find((l) => l.endsWith("1234.56"))!;
    expect(line).toHaveLength(40);
    expect(line.startsWith("1 x A-VERY-LONG")).toBe(true);
  });

  it("writes amounts in the currency's own minor units", () => {
    expect(receipt([product(1, "RAMEN", 1n, 1_200n, 1_000)], "JPY").printableText).toMatch(/TOTAL JPY +1200\n/);
    expect(receipt([product(1, "TEA", 1n, 1_234n, 0)], "BHD").printableText).toMatch(/TOTAL BHD +1\.234\n/);
    expect(receipt([product(1, "GUM", 1n, 5n, 0)]).printableText).toMatch(/TOTAL EUR +0\.05\n/);
  });
});
