// The receipt a kiosk prints: lines, the tax in them per rate (prices include tax),
// the total, and a plain-text rendering 40 columns wide.
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { ReceiptSchema, type OrderLine, type Receipt } from "@adminkiosk/proto/adminkiosk/orders/v1/orders_pb";

const width = 40;

export interface ReceiptInput {
  receiptNumber: string;
  kioskId: string;
  orderId: string;
  lines: OrderLine[];
  currency: string;
  issuedAt: Date;
}

/** Tax included in a gross amount at a rate in basis points, rounded half up. */
export function includedTax(grossMinor: bigint, rateBasisPoints: number): bigint {
  const rate = BigInt(rateBasisPoints);
  if (rate === 0n) return 0n;
  const net = (grossMinor * 10_000n * 2n + (10_000n + rate)) / ((10_000n + rate) * 2n);
  return grossMinor - net;
}

export function buildReceipt(input: ReceiptInput): Receipt {
  const byRate = new Map<number, bigint>();
  let total = 0n;
  for (const line of input.lines) {
    total += line.totalMinor;
    byRate.set(line.taxRateBasisPoints, (byRate.get(line.taxRateBasisPoints) ?? 0n) + line.totalMinor);
  }
  const taxes = [...byRate.entries()]
    .sort(([a], [b]) => a - b)
    .map(([rate, gross]) => {
      const tax = includedTax(gross, rate);
      return { rateBasisPoints: rate, netMinor: gross - tax, taxMinor: tax };
    });
  const receipt = create(ReceiptSchema, {
    receiptNumber: input.receiptNumber,
    kioskId: input.kioskId,
    orderId: input.orderId,
    lines: input.lines,
    taxes,
    totalMinor: total,
    currency: input.currency,
    issueTime: timestampFromDate(input.issuedAt),
  });
  receipt.printableText = render(receipt, input.issuedAt);
  return receipt;
}

/** A currency's minor digits, asked of Intl once per currency (a NumberFormat costs more than the rest of a receipt). */
const minorDigits = new Map<string, number>();

function money(minor: bigint, currency: string): string {
  let digits = minorDigits.get(currency);
  if (digits === undefined) {
    digits = new Intl.NumberFormat("en", { style: "currency", currency }).resolvedOptions().maximumFractionDigits ?? 2;
    if (minorDigits.size < 1_000) minorDigits.set(currency, digits);
  }
  const sign = minor < 0n ? "-" : "";
  const abs = minor < 0n ? -minor : minor;
  if (digits === 0) return `${sign}${abs}`;
  const unit = 10n ** BigInt(digits);
  return `${sign}${abs / unit}.${(abs % unit).toString().padStart(digits, "0")}`;
}

const row = (left: string, right: string) => {
  const room = width - right.length - 1;
  return `${left.length > room ? left.slice(0, room) : left.padEnd(room)} ${right}`;
};

function render(r: Receipt, issuedAt: Date): string {
  const out = [
    "RECEIPT".padStart((width + 7) / 2),
    row(`Kiosk ${r.kioskId}`, `No. ${r.receiptNumber}`),
    issuedAt.toISOString().replace("T", " ").slice(0, 19) + " UTC",
    // An order id is a UUID (36 columns): with its label it would not fit, so it gets its own line.
    ...(`Order ${r.orderId}`.length > width ? ["Order", r.orderId.slice(0, width)] : [`Order ${r.orderId}`]),
    "-".repeat(width),
  ];
  for (const l of r.lines) {
    const what = l.sku !== "" ? `${l.quantity} x ${l.sku}` : `Seat ${l.seatId} (${l.eventId})`;
    out.push(row(what, money(l.totalMinor, r.currency)));
  }
  out.push("-".repeat(width), row(`TOTAL ${r.currency}`, money(r.totalMinor, r.currency)));
  for (const t of r.taxes) {
    if (t.rateBasisPoints === 0) continue;
    out.push(row(`  incl. tax ${(t.rateBasisPoints / 100).toFixed(2)}% on ${money(t.netMinor, r.currency)}`, money(t.taxMinor, r.currency)));
  }
  out.push("", "Thank you!".padStart((width + 10) / 2));
  return out.join("\n") + "\n";
}
