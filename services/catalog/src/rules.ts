// What valid catalog input is: checks that end in InvalidArgument naming the field.
import { invalid, requireText } from "@adminkiosk/runtime";

const skuPattern = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
// Section, row, seat and tier ids become parts of seat ids ("A-3-12"): no '-'.
const partPattern = /^[A-Za-z0-9_]+$/;
const maxPrice = 1_000_000_000_000n;

export function requireSku(field: string, value: string): string {
  return requireText(field, value, { max: 64, pattern: skuPattern, patternHint: "may contain only letters, digits, '.', '_' and '-' (starting with a letter or digit)" });
}

export function requireSeatPart(field: string, value: string, max = 16): string {
  return requireText(field, value, { max, pattern: partPattern, patternHint: "may contain only letters, digits and '_'" });
}

export function requirePrice(field: string, value: bigint): bigint {
  if (value < 0n || value > maxPrice) throw invalid(field, "must be between 0 and 1000000000000 (minor units)");
  return value;
}

export function requireTaxRate(field: string, value: number): number {
  if (!Number.isInteger(value) || value < 0 || value > 10_000) throw invalid(field, "must be between 0 and 10000 basis points");
  return value;
}

export function requireImageUrls(field: string, urls: string[]): string[] {
  if (urls.length > 10) throw invalid(field, "must hold at most 10 URLs");
  return urls.map((u, i) => {
    requireText(`${field}[${i}]`, u, { max: 2000 });
    let parsed: URL | undefined;
    try {
      parsed = new URL(u);
    } catch {
      parsed = undefined;
    }
    if (!parsed || (parsed.protocol !== "https:" && parsed.protocol !== "http:")) throw invalid(`${field}[${i}]`, "must be an http(s) URL");
    return u;
  });
}

/** A whole number within bounds (int64 fields arrive as bigint). */
export function requireCount(field: string, value: bigint, min: number, max: number): number {
  if (value < BigInt(min) || value > BigInt(max)) throw invalid(field, `must be between ${min} and ${max}`);
  return Number(value);
}

export function optionalText(field: string, value: string, max: number): string {
  return value === "" ? "" : requireText(field, value, { max });
}
