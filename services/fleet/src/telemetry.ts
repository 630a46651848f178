// Telemetry history: every sample in telemetry_samples, one partition per UTC day.
// Partitions are created ahead (and on demand when a sample finds none) and dropped
// whole after the retention period, which is cheaper than deleting rows. Reads
// downsample with date_bin into buckets.
import { fromBinary, type JsonObject } from "@bufbuild/protobuf";
import { durationFromMs, timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ConnectRouter } from "@connectrpc/connect";
import { TelemetryService } from "@adminkiosk/proto/adminkiosk/fleet/v1/telemetry_pb";
import { DeviceStatus, TelemetrySampleSchema, type TelemetrySample } from "@adminkiosk/proto/adminkiosk/link/v1/link_pb";
import { invalidArgument, requireKioskId, type Logger, type Pool, type PoolClient } from "@adminkiosk/runtime";
import { from as copyFrom } from "pg-copy-streams";

const day = 86_400_000;

const partitionName = (start: Date) => `telemetry_samples_p${start.toISOString().slice(0, 10).replaceAll("-", "")}`;
const utcDay = (t: number) => new Date(Math.floor(t / day) * day);

export interface TelemetryStore {
  /** Creates the partitions from the retention horizon to two days ahead; drops older ones. */
  maintain(): Promise<void>;
  /** Samples taken before this time (ms) are past retention and not stored. */
  horizonMs(): number;
  retentionMs: number;
  stop(): void;
}

export function startTelemetryStore(pool: Pool, retentionDays: number, log: Logger): TelemetryStore {
  const retentionMs = retentionDays * day;
  const maintain = async () => {
    const now = Date.now();
    const { rows } = await pool.query<{ name: string }>(
      "SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'telemetry_samples'::regclass",
    );
    const existing = new Set(rows.map((r) => r.name));
    for (let t = utcDay(now - retentionMs).getTime(); t <= now + 2 * day; t += day) {
      const start = new Date(t);
      const name = partitionName(start);
      if (existing.has(name)) continue;
      await pool
        .query(`CREATE TABLE IF NOT EXISTS ${name} PARTITION OF telemetry_samples FOR VALUES FROM ('${start.toISOString()}') TO ('${new Date(t + day).toISOString()}')`)
        .catch((err: { code?: string }) => {
          if (err.code !== "42P07") throw err; // another replica made it meanwhile
        });
    }
    const horizon = partitionName(utcDay(now - retentionMs));
    for (const name of existing) {
      if (name < horizon) {
        await pool.query(`DROP TABLE IF EXISTS ${name}`);
        log.info({ partition: name }, "telemetry partition past retention dropped");
      }
    }
  };
  const run = () => void maintain().catch((err: unknown) => log.warn({ err }, "telemetry partition maintenance failed"));
  void run();
  const timer = setInterval(run, 3_600_000);
  timer.unref();
  return {
    maintain: () => maintain(),
    horizonMs: () => utcDay(Date.now() - retentionMs).getTime(),
    retentionMs,
    stop: () => clearInterval(timer),
  };
}

// COPY is how samples are stored (pg-copy-streams), in its binary format: the rows are written
// from the message's bytes (ids and errors copied as they are, numbers in network order), so
// neither fleet nor PostgreSQL turns a sample into text and back.
const columns = "kiosk_id, sampled_at, sample_id, received_at, cpu_percent, temperature_celsius, paper_level_percent, cash_level_minor, printer, scanner, errors";
const columnCount = 11;
/** Binary COPY's header (signature, flags, no extension) and trailer. */
export const copyHeader = Buffer.from([0x50, 0x47, 0x43, 0x4f, 0x50, 0x59, 0x0a, 0xff, 0x0d, 0x0a, 0x00, 0, 0, 0, 0, 0, 0, 0, 0]);
export const copyTrailer = Buffer.from([0xff, 0xff]);
/** timestamptz in binary: microseconds since 2000-01-01 UTC. */
const pgEpochMs = 946_684_800_000;
const textOid = 25;
/** A row's bytes besides its kiosk id, sample id and errors: lengths, values, the array's header. */
const fixedRowBytes = 2 + columnCount * 4 + 8 + 8 + 4 + 4 + 4 + 8 + 2 + 2 + 20;
const slabBytes = 256 * 1024;

/**
 * Where decoded rows go: one slab after another, each message's rows a view of one of them
 * (a message that outgrows the slab's rest moves to a new one), so a batch's rows are few
 * large allocations, not a string per value.
 */
export class CopyRowWriter {
  private buf = Buffer.allocUnsafe(slabBytes);
  private pos = 0;
  private start = 0;
  begin() {
    this.start = this.pos;
  }
  /** Room for `n` more bytes of the current message's rows. */
  ensure(n: number): Buffer {
    if (this.pos + n <= this.buf.length) return this.buf;
    const used = this.pos - this.start;
    const next = Buffer.allocUnsafe(Math.max(slabBytes, 2 * (used + n)));
    this.buf.copy(next, 0, this.start, this.pos);
    this.buf = next;
    this.start = 0;
    this.pos = used;
    return next;
  }
  // The writes below go byte by byte into the room ensure() made (Buffer's own writeInt32BE and
  // copy() check their arguments on every call: a fifth of the decode for 11 values per sample).
  int16(v: number) {
    const b = this.buf;
    const p = this.pos;
    b[p] = v >>> 8;
    b[p + 1] = v;
    this.pos = p + 2;
  }
  int32(v: number) {
    const b = this.buf;
    const p = this.pos;
    b[p] = v >>> 24;
    b[p + 1] = v >>> 16;
    b[p + 2] = v >>> 8;
    b[p + 3] = v;
    this.pos = p + 4;
  }
  /** A field's length, then the value. */
  float4(v: number) {
    this.int32(4);
    this.pos = this.buf.writeFloatBE(v, this.pos);
  }
  int64(v: number | bigint) {
    this.int32(8);
    if (typeof v === "bigint") this.pos = this.buf.writeBigInt64BE(v, this.pos);
    else {
      const hi = Math.floor(v / 4_294_967_296);
      this.int32(hi);
      this.int32(v - hi * 4_294_967_296);
    }
  }
  timestamptz(ms: number) {
    this.int64((ms - pgEpochMs) * 1000);
  }
  smallint(v: number) {
    this.int32(2);
    this.int16(v);
  }
  /** A text value: its length, then its bytes copied from `src` (UTF-8, as the message carries it). */
  bytes(src: Uint8Array, from: number, to: number) {
    this.int32(to - from);
    const b = this.buf;
    let p = this.pos;
    // Ids and errors are short: a loop beats copy()'s per-call cost below a few dozen bytes.
    if (to - from <= 64) for (let i = from; i < to; i++) b[p++] = src[i]!;
    else {
      b.set(src.subarray(from, to), p);
      p += to - from;
    }
    this.pos = p;
  }
  /** The current message's rows. */
  end(): Buffer {
    return this.buf.subarray(this.start, this.pos);
  }
}

/**
 * One link telemetry message (KioskTelemetryEvent) decoded straight into what fleet stores:
 * the COPY rows of its retained samples, their counts per kiosk_facts bucket, and where its
 * newest sample is — without a message object, Date or Timestamp per sample (fleet's drain
 * spent a third of its CPU collecting those). Only the kiosk's newest sample of a batch is
 * decoded as a message (newestSample), for its latest state.
 */
export interface TelemetryMessage {
  kioskId: string;
  /** When link received it (now, if link did not say). */
  receivedMs: number;
  /** Binary COPY rows (the column order of `columns`, no header) of the retained samples. */
  rows: Buffer;
  retained: number;
  /** Samples older than the retention period: not stored. */
  dropped: number;
  /** Per facts bucket, flattened: bucket start (ms), samples, faulty samples (facts.ts' `faulty`). */
  buckets: number[];
  /** The newest retained sample by its time (sampleTime): its time and bytes' range in `data`. */
  newest?: { atMs: number; start: number; end: number };
  data: Uint8Array;
}

/** The newest sample's message, for the kiosk's latest state. */
export const newestSample = (m: TelemetryMessage): TelemetrySample | undefined =>
  m.newest ? fromBinary(TelemetrySampleSchema, m.data.subarray(m.newest.start, m.newest.end)) : undefined;

const faultStatus = DeviceStatus.FAULT;

const scratchDouble = new Float64Array(1);
const scratchBytes = new Uint8Array(scratchDouble.buffer);
const littleEndianHost = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Reads the protobuf wire format (only what telemetry messages need); throws on malformed bytes. */
class WireReader {
  pos: number;
  constructor(
    readonly buf: Uint8Array,
    start = 0,
    public end = buf.length,
  ) {
    this.pos = start;
  }
  /** A varint as a number: exact below 2^53 (larger ones, e.g. negative int64, lose precision: see int64OrBig). */
  varint(): number {
    let result = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw new Error("truncated varint");
      const b = this.buf[this.pos++]!;
      result += (b & 0x7f) * scale;
      if (b < 0x80) return result;
      scale *= 128;
    }
    throw new Error("varint longer than 10 bytes");
  }
  /** The varint that ended at `pos` and began at `start`, as a signed 64-bit integer. */
  private int64Big(start: number): bigint {
    let v = 0n;
    for (let i = this.pos - 1; i >= start; i--) v = (v << 7n) | BigInt(this.buf[i]! & 0x7f);
    return BigInt.asIntN(64, v);
  }
  /** An int64 varint as a number (exact within ±2^53). */
  int64(): number {
    const start = this.pos;
    const n = this.varint();
    return n < 2 ** 53 ? n : Number(this.int64Big(start));
  }
  /** An int64 varint: a number within ±2^53, a bigint beyond. */
  int64OrBig(): number | bigint {
    const start = this.pos;
    const n = this.varint();
    return n < 2 ** 53 ? n : this.int64Big(start);
  }
  /** An int32/enum varint (negative values are 10-byte varints). */
  int32(): number {
    const start = this.pos;
    const n = this.varint();
    return n < 2 ** 31 ? n : Number(BigInt.asIntN(32, this.int64Big(start)));
  }
  double(): number {
    if (this.pos + 8 > this.end) throw new Error("truncated double");
    // Through a scratch array (no DataView per message): protobuf's doubles are little-endian.
    const b = this.buf;
    const p = this.pos;
    for (let i = 0; i < 8; i++) scratchBytes[littleEndianHost ? i : 7 - i] = b[p + i]!;
    this.pos = p + 8;
    return scratchDouble[0]!;
  }
  /** A length-delimited field's end (the reader stands at its start). */
  delimited(): number {
    const len = this.varint();
    const end = this.pos + len;
    if (end > this.end) throw new Error("truncated field");
    return end;
  }
  /** The text of bytes [from, to). */
  text(from: number, to: number): string {
    // Kiosk ids are ASCII: built from the bytes, without a Buffer view of the message.
    const b = this.buf;
    let ascii = to - from <= 128;
    for (let i = from; ascii && i < to; i++) ascii = b[i]! < 0x80;
    if (!ascii) return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("utf8", from, to);
    let text = "";
    for (let i = from; i < to; i++) text += String.fromCharCode(b[i]!);
    return text;
  }
  skip(wireType: number): void {
    if (wireType === 0) this.varint();
    else if (wireType === 1) this.pos += 8;
    else if (wireType === 2) this.pos = this.delimited();
    else if (wireType === 5) this.pos += 4;
    else throw new Error(`unsupported wire type ${wireType}`);
    if (this.pos > this.end) throw new Error("truncated field");
  }
  /** A Timestamp message's milliseconds (as timestampMs rounds them). */
  timestampMs(): number {
    const end = this.delimited();
    let seconds = 0;
    let nanos = 0;
    while (this.pos < end) {
      const tag = this.varint();
      if (tag === 0x08) seconds = this.int64();
      else if (tag === 0x10) nanos = this.int32();
      else this.skip(tag & 7);
    }
    if (this.pos !== end) throw new Error("malformed Timestamp");
    return seconds * 1000 + Math.round(nanos / 1_000_000);
  }
}

/**
 * Decodes a KioskTelemetryEvent's bytes (link.kiosk.<id>.telemetry). `horizonMs`: samples
 * taken before it are past retention and dropped; `bucketMs`: kiosk_facts' bucket width;
 * `receivedFallbackMs`: the receive time of a message without one (a sample without a time is
 * stored at it, so it should be the same on every delivery: the JetStream message's time).
 */
export function decodeTelemetryMessage(data: Uint8Array, horizonMs: number, bucketMs: number, out = new CopyRowWriter(), receivedFallbackMs = Date.now()): TelemetryMessage {
  const r = new WireReader(data);
  let kioskId = "";
  let kioskIdAt: [number, number] = [0, 0];
  let receivedMs: number | undefined;
  let batch: [number, number] | undefined;
  while (r.pos < r.end) {
    const tag = r.varint();
    if (tag === 0x0a) {
      const end = r.delimited();
      kioskIdAt = [r.pos, end];
      r.pos = end;
      kioskId = r.text(kioskIdAt[0], end);
    }
    else if (tag === 0x12) {
      const end = r.delimited();
      batch = [r.pos, end];
      r.pos = end;
    } else if (tag === 0x1a) receivedMs = r.timestampMs();
    else r.skip(tag & 7);
  }
  if (r.pos !== r.end) throw new Error("malformed KioskTelemetryEvent");
  const m: TelemetryMessage = { kioskId, receivedMs: receivedMs ?? receivedFallbackMs, rows: emptyRows, retained: 0, dropped: 0, buckets: [], data };
  if (batch) {
    out.begin();
    // The same reader, over the batch's bytes.
    r.pos = batch[0];
    r.end = batch[1];
    samples(r, m, kioskIdAt, horizonMs, bucketMs, out);
    m.rows = out.end();
  }
  return m;
}

const emptyRows = Buffer.alloc(0);

/**
 * A value its column cannot hold, refused as PostgreSQL refuses it in COPY's text form
 * (SQLSTATE 22003, a data exception: the consumer dead-letters the message as "refused by
 * the database"). The binary form has no way to say it: a double beyond a real's range
 * would be stored as Infinity (or 0), an enum beyond a smallint's would wrap.
 */
export class ValueOutOfRange extends Error {
  readonly code = "22003";
  constructor(column: string, value: number, type: string) {
    super(`value out of range for type ${type}: ${column} ${value}`);
    this.name = "ValueOutOfRange";
  }
}

function checkRange(column: string, v: number, type: "real" | "smallint") {
  if (type === "smallint" ? v < -32768 || v > 32767 : v !== 0 && Number.isFinite(v) && (Math.fround(v) === 0 || !Number.isFinite(Math.fround(v))))
    throw new ValueOutOfRange(column, v, type);
}
/** A sample's errors: their byte ranges in the message (start, end, start, end, …), reused. */
const errorRanges: number[] = [];

/** The samples of a TelemetryBatch (field 1, repeated), each into `m` and its row into `out`. */
function samples(r: WireReader, m: TelemetryMessage, kioskIdAt: [number, number], horizonMs: number, bucketMs: number, out: CopyRowWriter) {
  const data = r.buf;
  // The newest sample so far (its time and bytes), made an object once at the end.
  let newestAt = -Infinity;
  let newestStart = 0;
  let newestEnd = 0;
  const kioskIdBytes = kioskIdAt[1] - kioskIdAt[0];
  const aheadMs = m.receivedMs + day;
  while (r.pos < r.end) {
    const tag = r.varint();
    if (tag !== 0x0a) {
      r.skip(tag & 7);
      continue;
    }
    const end = r.delimited();
    const start = r.pos;
    let idFrom = 0;
    let idTo = 0;
    let atMs: number | undefined;
    let cpu = 0;
    let temperature = 0;
    let paper = 0;
    let cash: number | bigint = 0;
    let printer = 0;
    let scanner = 0;
    errorRanges.length = 0;
    while (r.pos < end) {
      const t = r.varint();
      switch (t) {
        case 0x0a:
          idTo = r.delimited();
          idFrom = r.pos;
          r.pos = idTo;
          break;
        case 0x12: atMs = r.timestampMs(); break;
        case 0x19: cpu = r.double(); break;
        case 0x21: temperature = r.double(); break;
        case 0x29: paper = r.double(); break;
        case 0x30: cash = r.int64OrBig(); break;
        case 0x38: printer = r.int32(); break;
        case 0x40: scanner = r.int32(); break;
        case 0x4a: {
          const e = r.delimited();
          errorRanges.push(r.pos, e);
          r.pos = e;
          break;
        }
        default: r.skip(t & 7);
      }
    }
    if (r.pos !== end) throw new Error("malformed TelemetrySample");
    // When it was taken: its own time, unless missing or more than a day ahead of arrival.
    const at = atMs === undefined || atMs > aheadMs ? m.receivedMs : atMs;
    if (at < horizonMs) {
      m.dropped++;
      continue;
    }
    checkRange("cpu_percent", cpu, "real");
    checkRange("temperature_celsius", temperature, "real");
    checkRange("paper_level_percent", paper, "real");
    checkRange("printer", printer, "smallint");
    checkRange("scanner", scanner, "smallint");
    m.retained++;
    // The row: its size is bounded by the sample's own bytes (each error's length prefix is 4
    // bytes where the message's tag and length took at least 2).
    out.ensure(fixedRowBytes + kioskIdBytes + 2 * (end - start));
    out.int16(columnCount);
    out.bytes(data, kioskIdAt[0], kioskIdAt[1]);
    out.timestamptz(at);
    out.bytes(data, idFrom, idTo);
    out.timestamptz(m.receivedMs);
    out.float4(cpu);
    out.float4(temperature);
    out.float4(paper);
    out.int64(cash);
    out.smallint(printer);
    out.smallint(scanner);
    // text[]: dimensions, no nulls, element type; the dimension's size and lower bound; elements.
    const errors = errorRanges.length / 2;
    let arrayBytes = 12 + (errors ? 8 : 0);
    for (let i = 0; i < errorRanges.length; i += 2) arrayBytes += 4 + errorRanges[i + 1]! - errorRanges[i]!;
    out.int32(arrayBytes);
    out.int32(errors ? 1 : 0);
    out.int32(0);
    out.int32(textOid);
    if (errors) {
      out.int32(errors);
      out.int32(1);
      for (let i = 0; i < errorRanges.length; i += 2) out.bytes(data, errorRanges[i]!, errorRanges[i + 1]!);
    }
    const bucket = Math.floor(at / bucketMs) * bucketMs;
    const faulty = printer === faultStatus || scanner === faultStatus || errors > 0 ? 1 : 0;
    const b = m.buckets;
    let i = b.length - 3;
    while (i >= 0 && b[i] !== bucket) i -= 3;
    if (i < 0) b.push(bucket, 1, faulty);
    else {
      b[i + 1]!++;
      b[i + 2]! += faulty;
    }
    if (at > newestAt) {
      newestAt = at;
      newestStart = start;
      newestEnd = end;
    }
  }
  if (m.retained > 0) m.newest = { atMs: newestAt, start: newestStart, end: newestEnd };
}

/** Binary COPY of `rows` (each a message's rows) into `table`. */
async function copy(tx: PoolClient, table: string, rows: Buffer[]): Promise<void> {
  const stream = tx.query(copyFrom(`COPY ${table} (${columns}) FROM STDIN (FORMAT binary)`));
  await new Promise<void>((resolve, reject) => {
    stream.on("error", reject);
    stream.on("finish", resolve);
    // Messages decoded one after another lie side by side in a slab (CopyRowWriter): each run
    // of them goes as one view, not copied into one buffer for the batch.
    stream.write(copyHeader);
    let run: Buffer | undefined;
    for (const r of rows) {
      if (r.length === 0) continue;
      if (run && run.buffer === r.buffer && run.byteOffset + run.length === r.byteOffset) run = Buffer.from(r.buffer, run.byteOffset, run.length + r.length);
      else {
        if (run) stream.write(run);
        run = r;
      }
    }
    if (run) stream.write(run);
    stream.end(copyTrailer);
  });
}

/** Samples newly stored per kiosk and facts bucket (what kiosk_facts counts). */
export interface StoredSamples {
  kioskId: string;
  bucketMs: number;
  samples: number;
  faulty: number;
}

/**
 * Stores samples (`rows`: binary COPY rows, `count` of them) exactly once: a resent sample
 * (same kiosk, time and id) is stored once. The rows go in with COPY straight into
 * telemetry_samples under a savepoint — samples are almost always new: then it answers "all"
 * (every row is new). Should any row be there already (a batch JetStream delivers again —
 * telemetry claims no inbox row —, a kiosk resending samples in a new batch, a sample twice
 * in one batch), PostgreSQL refuses the whole COPY (unique violation) and the batch goes the
 * safe way: COPY into a temporary staging table, then one INSERT … SELECT … ON CONFLICT DO
 * NOTHING, answering what was new per kiosk and `bucketMs` bucket, so kiosk_facts counts a
 * resent sample once too.
 */
export async function insertSamples(tx: PoolClient, rows: Buffer[], count: number, bucketMs: number): Promise<"all" | StoredSamples[]> {
  if (count === 0) return "all";
  await tx.query("SAVEPOINT telemetry_copy");
  try {
    await copy(tx, "telemetry_samples", rows);
    await tx.query("RELEASE SAVEPOINT telemetry_copy");
    return "all";
  } catch (err) {
    if ((err as { code?: string }).code !== "23505") throw err;
    await tx.query("ROLLBACK TO SAVEPOINT telemetry_copy");
  }
  // The connection's own table (made once per connection; emptied at every commit).
  await tx.query("CREATE TEMPORARY TABLE IF NOT EXISTS telemetry_staging (LIKE telemetry_samples INCLUDING DEFAULTS) ON COMMIT DELETE ROWS");
  await tx.query("TRUNCATE telemetry_staging");
  await copy(tx, "telemetry_staging", rows);
  const { rows: stored } = await tx.query<{ kiosk_id: string; bucket: string; n: number; faulty: number }>(
    `WITH stored AS (
       INSERT INTO telemetry_samples (${columns}) SELECT ${columns} FROM telemetry_staging ON CONFLICT DO NOTHING
       RETURNING kiosk_id, sampled_at, printer, scanner, errors)
     SELECT kiosk_id, (floor(extract(epoch FROM sampled_at) * 1000 / $1) * $1)::bigint AS bucket, count(*)::int AS n,
            (count(*) FILTER (WHERE printer = ${faultStatus} OR scanner = ${faultStatus} OR cardinality(errors) > 0))::int AS faulty
     FROM stored GROUP BY 1, 2`,
    [bucketMs],
  );
  return stored.map((s) => ({ kioskId: s.kiosk_id, bucketMs: Number(s.bucket), samples: s.n, faulty: s.faulty }));
}

/** The latest-state document kiosks.state holds. */
export function stateOf(s: TelemetrySample): JsonObject {
  return {
    cpuPercent: s.cpuPercent,
    temperatureCelsius: s.temperatureCelsius,
    paperLevelPercent: s.paperLevelPercent,
    cashLevelMinor: String(s.cashLevelMinor),
    printerStatus: DeviceStatus[s.printer] ?? "UNSPECIFIED",
    scannerStatus: DeviceStatus[s.scanner] ?? "UNSPECIFIED",
    errors: s.errors,
  };
}

interface PointRow {
  bucket: Date;
  n: string;
  cpu_avg: number;
  cpu_max: number;
  temp_avg: number;
  temp_max: number;
  paper_min: number;
  paper_avg: number;
  cash_min: string;
  cash_max: string;
  faults: string;
}

export function telemetryRoutes(pool: Pool, store: TelemetryStore) {
  return (router: ConnectRouter) =>
    router.service(TelemetryService, {
      async getTelemetryHistory(req) {
        const kioskId = requireKioskId("kiosk_id", req.kioskId);
        const end = req.endTime ? timestampDate(req.endTime) : new Date();
        const start = req.startTime ? timestampDate(req.startTime) : new Date(end.getTime() - day);
        if (!(start < end)) throw invalidArgument("start_time", "must be before end_time");
        if (end.getTime() - start.getTime() > 400 * day) throw invalidArgument("start_time", "the range may span at most 400 days");
        const maxPoints = req.maxPoints === 0 ? 500 : req.maxPoints;
        if (maxPoints < 1 || maxPoints > 5000) throw invalidArgument("max_points", "must be between 1 and 5000");
        const span = end.getTime() - start.getTime();
        let bucketMs: number;
        if (req.bucket) {
          bucketMs = Number(req.bucket.seconds) * 1000 + Math.floor(req.bucket.nanos / 1e6);
          if (bucketMs < 1000) throw invalidArgument("bucket", "must be at least 1 second");
          if (span / bucketMs > maxPoints) throw invalidArgument("bucket", `gives more than max_points (${maxPoints}) points for this range; choose a wider bucket`);
        } else {
          // Round up to a whole second, so buckets line up on clock seconds.
          bucketMs = Math.max(1000, Math.ceil(span / maxPoints / 1000) * 1000);
        }
        const { rows } = await pool.query<PointRow>(
          `SELECT date_bin(make_interval(secs => $4::float8 / 1000), sampled_at, $2::timestamptz) AS bucket, count(*) AS n,
                  avg(cpu_percent) AS cpu_avg, max(cpu_percent) AS cpu_max, avg(temperature_celsius) AS temp_avg,
                  max(temperature_celsius) AS temp_max, min(paper_level_percent) AS paper_min, avg(paper_level_percent) AS paper_avg,
                  min(cash_level_minor) AS cash_min, max(cash_level_minor) AS cash_max,
                  count(*) FILTER (WHERE cardinality(errors) > 0 OR printer = ${DeviceStatus.FAULT} OR scanner = ${DeviceStatus.FAULT}) AS faults
           FROM telemetry_samples WHERE kiosk_id = $1 AND sampled_at >= $2 AND sampled_at < $3
           GROUP BY 1 ORDER BY 1`,
          [kioskId, start, end, bucketMs],
        );
        return {
          kioskId,
          startTime: timestampFromDate(start),
          endTime: timestampFromDate(end),
          bucket: durationFromMs(bucketMs),
          retention: durationFromMs(store.retentionMs),
          points: rows.map((r) => ({
            time: timestampFromDate(r.bucket),
            sampleCount: Number(r.n),
            cpuPercentAvg: r.cpu_avg,
            cpuPercentMax: r.cpu_max,
            temperatureCelsiusAvg: r.temp_avg,
            temperatureCelsiusMax: r.temp_max,
            paperLevelPercentMin: r.paper_min,
            paperLevelPercentAvg: r.paper_avg,
            cashLevelMinorMin: BigInt(r.cash_min),
            cashLevelMinorMax: BigInt(r.cash_max),
            faultSamples: Number(r.faults),
          })),
        };
      },
    });
}


