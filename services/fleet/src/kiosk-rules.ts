// What a valid kiosk record is: checks that end in InvalidArgument naming the field.
import { invalidArgument, isAlerting, isLowOnPaper, kioskThresholds, requireKioskId, requireText, type JudgedState } from "@adminkiosk/runtime";
import type { Location } from "@adminkiosk/proto/adminkiosk/fleet/v1/fleet_pb";

const tagPattern = /^[a-z0-9][a-z0-9:_-]{0,39}$/;
const timezones = new Set([...Intl.supportedValuesOf("timeZone"), "UTC"]);

/** Group ids follow the kiosk id rule (they name NATS subjects too, for jobs). */
export function optionalGroupId(field: string, value: string): string {
  return value === "" ? "" : requireKioskId(field, value);
}

export function requireTimezone(field: string, value: string): string {
  if (value === "") return "UTC";
  if (!timezones.has(value)) throw invalidArgument(field, 'must be an IANA time zone such as "Europe/Prague"');
  return value;
}

export function requireTags(field: string, tags: string[]): string[] {
  if (tags.length > 20) throw invalidArgument(field, "must hold at most 20 tags");
  for (const [i, tag] of tags.entries()) {
    if (!tagPattern.test(tag)) throw invalidArgument(`${field}[${i}]`, "must be 1-40 lower-case letters, digits, ':', '_' or '-'");
  }
  return [...new Set(tags)].sort();
}

export function requireLocation(field: string, location: Location | undefined): { latitude: number | null; longitude: number | null; address: string } {
  if (!location) return { latitude: null, longitude: null, address: "" };
  const { latitude, longitude } = location;
  if (!Number.isFinite(latitude) || latitude < -90 || latitude > 90) throw invalidArgument(`${field}.latitude`, "must be between -90 and 90");
  if (!Number.isFinite(longitude) || longitude < -180 || longitude > 180) throw invalidArgument(`${field}.longitude`, "must be between -180 and 180");
  const address = location.address === "" ? "" : requireText(`${field}.address`, location.address, { max: 300 });
  return { latitude, longitude, address };
}

// The limits a kiosk's latest state is judged by and the judgement itself live in the runtime
// (kiosk-status.ts): notifications' alerting_status rules use the same. The SQL below follows them.
export { isAlerting, isLowOnPaper, kioskThresholds, type JudgedState };

/** The contract's KioskThresholds. */
export const thresholdsMessage = () => ({ lowPaperPercent: kioskThresholds.lowPaperPercent });

const sqlNumber = (n: number) => {
  if (!Number.isFinite(n)) throw new Error(`not a finite threshold: ${n}`);
  return String(n);
};

/** isLowOnPaper as SQL over a kiosks.state column. */
export function lowPaperSql(column = "state"): string {
  return `(${column}->>'paperLevelPercent')::float8 < ${sqlNumber(kioskThresholds.lowPaperPercent)}`;
}

/** isAlerting as SQL over a kiosks.state column (true or false, never NULL). */
export function alertingSql(column = "state"): string {
  return `COALESCE(${column} IS NOT NULL AND (
      jsonb_array_length(COALESCE(${column}->'errors', '[]'::jsonb)) > 0
      OR ${column}->>'printerStatus' = 'FAULT' OR ${column}->>'scannerStatus' = 'FAULT'
      OR ${lowPaperSql(column)}), false)`;
}
