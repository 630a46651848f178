// Reading a sales-history file (CSV with a header line, or JSON lines) as it streams in:
// bytes in any split → lines → validated rows, each bad line named with its number and the
// field at fault. Pure: no I/O (import.ts stages the rows in PostgreSQL).
//
// Columns (CSV header names, or JSON keys), in any order:
//   kind              "sale" (the default when empty or absent) or "stockout"
//   kiosk_id, sku     every row
//   time              a sale's time: RFC 3339 with a zone (2026-03-01T09:30:00Z, …+01:00),
//                     or a date alone (YYYY-MM-DD, taken as that UTC day)
//   quantity          a sale's units, a whole number 1..1,000,000
//   unit_price_minor  a sale's unit price in minor units (cents), 1..10^12
//   start, end        a stock-out's interval (times as above), end after start, at most 400 days

export type HistoryRow =
  | { kind: "sale"; line: number; kioskId: string; sku: string; time: number; quantity: number; unitPriceMinor: number; timed: boolean }
  | { kind: "stockout"; line: number; kioskId: string; sku: string; start: number; end: number };

export interface LineError {
  line: number;
  field: string;
  message: string;
}

export const columns = ["kind", "kiosk_id", "sku", "time", "quantity", "unit_price_minor", "start", "end"] as const;
type Column = (typeof columns)[number];

export const maxLineLength = 64 * 1024;
const kioskPattern = /^[A-Za-z0-9_-]{1,64}$/;
const skuPattern = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const timePattern = /^(\d{4})-(\d{2})-(\d{2})(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?([Zz]|[+-]\d{2}:?\d{2}))?$/;
const earliest = Date.UTC(2000, 0, 1);
const dayMs = 86_400_000;

class Bad extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
  }
}

const show = (v: string) => JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);

function text(field: string, v: string, pattern: RegExp, hint: string): string {
  if (v === "") throw new Bad(field, "must not be empty");
  if (!pattern.test(v)) throw new Bad(field, `${hint} (got ${show(v)})`);
  return v;
}

function whole(field: string, v: string, max: number): number {
  if (v === "") throw new Bad(field, "must not be empty");
  if (!/^\d{1,16}$/.test(v) || Number(v) < 1 || Number(v) > max) throw new Bad(field, `must be a whole number from 1 to ${max.toLocaleString("en")} (got ${show(v)})`);
  return Number(v);
}

function time(field: string, v: string, now: number): number {
  if (v === "") throw new Bad(field, "must not be empty");
  const m = timePattern.exec(v);
  const hint = `must be an RFC 3339 time with a zone, e.g. 2026-03-01T09:30:00Z, or a UTC day YYYY-MM-DD (got ${show(v)})`;
  if (!m) throw new Bad(field, hint);
  const [, y, mo, d, h, mi, s] = m;
  // Date.parse rolls 2026-02-30 over into March: the fields must survive the round trip.
  const check = new Date(Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h ?? 0), Number(mi ?? 0), Number(s ?? 0)));
  if (check.getUTCMonth() !== Number(mo) - 1 || check.getUTCDate() !== Number(d) || Number(h ?? 0) > 23 || Number(mi ?? 0) > 59 || Number(s ?? 0) > 59) throw new Bad(field, hint);
  const t = h === undefined ? Date.UTC(Number(y), Number(mo) - 1, Number(d)) : Date.parse(v.replace(" ", "T").replace(/([+-]\d{2})(\d{2})$/, "$1:$2"));
  if (Number.isNaN(t)) throw new Bad(field, hint);
  if (t < earliest || t > now + dayMs) throw new Bad(field, `must be from 2000-01-01 to tomorrow (got ${show(v)})`);
  return t;
}

/** One row from its fields (absent ones are ""). */
function toRow(line: number, f: Record<Column, string>, now: number): HistoryRow {
  const kind = f.kind.toLowerCase();
  if (kind !== "" && kind !== "sale" && kind !== "stockout") throw new Bad("kind", `must be "sale" or "stockout" (got ${show(f.kind)})`);
  const kioskId = text("kiosk_id", f.kiosk_id, kioskPattern, "may contain only letters, digits, '_' and '-', up to 64");
  const sku = text("sku", f.sku, skuPattern, "may contain only letters, digits, '.', '_' and '-' (starting with a letter or digit), up to 64");
  if (kind === "stockout") {
    const start = time("start", f.start, now);
    const end = time("end", f.end, now);
    if (end <= start) throw new Bad("end", "must be after start");
    if (end - start > 400 * dayMs) throw new Bad("end", "must be at most 400 days after start");
    return { kind: "stockout", line, kioskId, sku, start, end };
  }
  return {
    kind: "sale",
    line,
    kioskId,
    sku,
    time: time("time", f.time, now),
    // A time of day (not a date alone): the sale's UTC hour is known.
    timed: timePattern.exec(f.time)![4] !== undefined,
    quantity: whole("quantity", f.quantity, 1_000_000),
    unitPriceMinor: whole("unit_price_minor", f.unit_price_minor, 1_000_000_000_000),
  };
}

/** RFC 4180 fields of one line (no line breaks inside quotes). */
export function splitCsv(line: string): string[] {
  const out: string[] = [];
  let i = 0;
  for (;;) {
    if (line[i] === '"') {
      let v = "";
      i++;
      for (;;) {
        const q = line.indexOf('"', i);
        if (q < 0) throw new Bad("line", "has an unterminated quoted field");
        v += line.slice(i, q);
        if (line[q + 1] === '"') {
          v += '"';
          i = q + 2;
        } else {
          i = q + 1;
          break;
        }
      }
      out.push(v);
      if (i === line.length) return out;
      if (line[i] !== ",") throw new Bad("line", "has text after a quoted field");
      i++;
    } else {
      const c = line.indexOf(",", i);
      if (c < 0) {
        out.push(line.slice(i).trim());
        return out;
      }
      out.push(line.slice(i, c).trim());
      i = c + 1;
    }
  }
}

export interface ReaderOptions {
  format: "csv" | "jsonl";
  /** Bad lines kept for the error (all are counted). */
  keepErrors?: number;
  now?: number;
}

/**
 * Reads a file pushed in chunks. push() and end() return the good rows read so far; bad
 * lines go to `errors` (the first keepErrors of them) and `badLines`.
 */
export class HistoryReader {
  lines = 0;
  badLines = 0;
  saleRows = 0;
  stockoutRows = 0;
  readonly errors: LineError[] = [];
  private readonly decoder = new TextDecoder("utf-8", { fatal: true });
  private pending = "";
  private header: Column[] | undefined;
  private headerBroken = false;
  private readonly now: number;
  private readonly keep: number;

  constructor(private readonly options: ReaderOptions) {
    this.now = options.now ?? Date.now();
    this.keep = options.keepErrors ?? 20;
  }

  push(chunk: Uint8Array): HistoryRow[] {
    let decoded: string;
    try {
      decoded = this.decoder.decode(chunk, { stream: true });
    } catch {
      this.fail(this.lines + 1, "data", "is not UTF-8 text");
      this.headerBroken = true;
      return [];
    }
    this.pending += decoded;
    const rows: HistoryRow[] = [];
    let from = 0;
    if (this.discarding) {
      // The rest of an over-long line, already counted.
      const nl = this.pending.indexOf("\n");
      if (nl < 0) {
        this.pending = "";
        return rows;
      }
      this.discarding = false;
      from = nl + 1;
    }
    let nl: number;
    while ((nl = this.pending.indexOf("\n", from)) >= 0) {
      this.line(this.pending.slice(from, nl), rows);
      from = nl + 1;
    }
    this.pending = this.pending.slice(from);
    if (this.pending.length > maxLineLength) {
      // A line this long is not history: counted bad once, the rest of it skipped.
      this.line(this.pending, rows);
      this.pending = "";
      this.discarding = true;
    }
    return rows;
  }

  private discarding = false;

  end(): HistoryRow[] {
    const rows: HistoryRow[] = [];
    try {
      this.pending += this.decoder.decode();
    } catch {
      this.fail(this.lines + 1, "data", "is not UTF-8 text");
    }
    if (this.pending !== "" && !this.discarding) this.line(this.pending, rows);
    this.pending = "";
    return rows;
  }

  private fail(line: number, field: string, message: string) {
    this.badLines++;
    if (this.errors.length < this.keep) this.errors.push({ line, field, message });
  }

  private line(raw: string, rows: HistoryRow[]) {
    const n = ++this.lines;
    let text = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
    if (n === 1 && text.startsWith("\uFEFF")) text = text.slice(1);
    if (text.trim() === "" || this.headerBroken) return;
    if (text.length > maxLineLength) return this.fail(n, "line", `is longer than ${maxLineLength} characters`);
    try {
      const row = this.options.format === "csv" ? this.csv(n, text) : this.json(n, text);
      if (!row) return;
      if (row.kind === "sale") this.saleRows++;
      else this.stockoutRows++;
      rows.push(row);
    } catch (err) {
      if (!(err instanceof Bad)) throw err;
      this.fail(n, err.field, err.message);
    }
  }

  private csv(n: number, text: string): HistoryRow | undefined {
    if (!this.header) {
      let names: string[];
      try {
        names = splitCsv(text).map((c) => c.trim().toLowerCase());
      } catch (err) {
        this.headerBroken = true;
        throw new Bad("header", (err as Error).message);
      }
      const problem = headerProblem(names);
      if (problem) {
        // Nothing after a header that cannot be read can be read either.
        this.headerBroken = true;
        throw new Bad("header", problem);
      }
      this.header = names as Column[];
      return undefined;
    }
    const values = splitCsv(text);
    if (values.length !== this.header.length) throw new Bad("line", `has ${values.length} fields; the header names ${this.header.length}`);
    const f = emptyFields();
    this.header.forEach((c, i) => (f[c] = values[i]!));
    return toRow(n, f, this.now);
  }

  private json(n: number, text: string): HistoryRow {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      throw new Bad("line", "is not a JSON object");
    }
    if (typeof value !== "object" || value === null || Array.isArray(value)) throw new Bad("line", "is not a JSON object");
    const f = emptyFields();
    for (const [key, v] of Object.entries(value)) {
      if (!(columns as readonly string[]).includes(key)) throw new Bad(key, `is not a known field (known: ${columns.join(", ")})`);
      if (v === null) continue;
      if (typeof v === "number") {
        if (!Number.isFinite(v)) throw new Bad(key, "must be a finite number");
        f[key as Column] = String(v);
      } else if (typeof v === "string") f[key as Column] = key === "quantity" || key === "unit_price_minor" ? v.trim() : v;
      else throw new Bad(key, "must be a string or a number");
    }
    return toRow(n, f, this.now);
  }
}

const emptyFields = (): Record<Column, string> => ({ kind: "", kiosk_id: "", sku: "", time: "", quantity: "", unit_price_minor: "", start: "", end: "" });

function headerProblem(names: string[]): string | undefined {
  const unknown = names.filter((c) => !(columns as readonly string[]).includes(c));
  if (unknown.length > 0) return `unknown column ${show(unknown[0]!)} (known: ${columns.join(", ")})`;
  const twice = names.find((c, i) => names.indexOf(c) !== i);
  if (twice) return `column ${show(twice)} appears twice`;
  for (const c of ["kiosk_id", "sku"]) if (!names.includes(c)) return `must name the column ${c}`;
  const sales = ["time", "quantity", "unit_price_minor"].every((c) => names.includes(c));
  const stockouts = ["kind", "start", "end"].every((c) => names.includes(c));
  if (!sales && !stockouts) return "must name the columns time, quantity and unit_price_minor (sales) and/or kind, start and end (stock-outs)";
  return undefined;
}
