// How times and numbers read in the app.
import { timestampDate, type Timestamp } from "@bufbuild/protobuf/wkt";

const dateTimeFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });
const numberFormat = new Intl.NumberFormat();

export function formatDateTime(ts: Timestamp | undefined): string {
  return ts ? dateTimeFormat.format(timestampDate(ts)) : "—";
}

export function formatNumber(n: number | bigint): string {
  return numberFormat.format(n);
}

/** "just now", "42 s ago", "5 min ago", "3 h ago", "2 d ago". */
export function formatAgo(ts: Timestamp | undefined, now: number = Date.now()): string {
  if (!ts) return "never";
  const seconds = Math.round((now - timestampDate(ts).getTime()) / 1000);
  if (seconds < 5) return "just now";
  if (seconds < 60) return `${seconds} s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  if (seconds < 86_400) return `${Math.floor(seconds / 3600)} h ago`;
  return `${Math.floor(seconds / 86_400)} d ago`;
}

/** Integer minor units in an ISO 4217 currency: 1250n, "EUR" → "€12.50". */
const moneyFormats = new Map<string, Intl.NumberFormat>();

export function formatMoney(minor: bigint | number, currency: string): string {
  if (!currency) return formatNumber(minor);
  try {
    let f = moneyFormats.get(currency);
    if (!f) moneyFormats.set(currency, (f = new Intl.NumberFormat(undefined, { style: "currency", currency })));
    const digits = f.resolvedOptions().maximumFractionDigits ?? 2;
    return f.format(Number(minor) / 10 ** digits);
  } catch {
    return `${formatNumber(minor)} ${currency} (minor units)`;
  }
}
