// Telemetry history: every sample in telemetry_samples, one partition per UTC day.
// Partitions are created ahead (and on demand when a sample finds none) and dropped
// whole after the retention period, which is cheaper than deleting rows. Reads
// downsample with date_bin into buckets.
import type { JsonObject } from "@bufbuild/protobuf";
import { durationFromMs, timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ConnectRouter } from "@connectrpc/connect";
import { TelemetryService } from "@adminkiosk/proto/adminkiosk/fleet/v1/telemetry_pb";
import { DeviceStatus, type TelemetrySample } from "@adminkiosk/proto/adminkiosk/link/v1/link_pb";
import { invalidArgument, requireKioskId, type Logger, type Pool, type PoolClient } from "@adminkiosk/runtime";
import { from as copyFrom } from "pg-copy-streams";

const day = 86_400_000;

const partitionName = (start: Date) => `telemetry_samples_p${start.toISOString().slice(0, 10).replaceAll("-", "")}`;
const utcDay = (t: number) => new Date(Math.floor(t / day) * day);

export interface TelemetryStore {
  /** Creates the partitions from the retention horizon to two days ahead; drops older ones. */
  maintain(): Promise<void>;
  /** Whether a sample time falls inside what is kept (older ones are not stored). */
  retained(at: Date): boolean;
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
    retained: (at) => at.getTime() >= utcDay(Date.now() - retentionMs).getTime(),
    retentionMs,
    stop: () => clearInterval(timer),
  };
}

export interface SampleRow {
  kioskId: string;
  sample: TelemetrySample;
  received: Date;
  /** sampleTime(sample, received), when the caller has it already. */
  at?: Date;
}

/** When a sample was taken: its own time, unless it is missing or more than a day ahead of arrival. */
export function sampleTime(sample: TelemetrySample, received: Date): Date {
  if (!sample.time) return received;
  const at = timestampDate(sample.time);
  return at.getTime() > received.getTime() + day ? received : at;
}

// COPY is how samples are stored (pg-copy-streams, as the benchmark's baseline does).
const columns = "kiosk_id, sampled_at, sample_id, received_at, cpu_percent, temperature_celsius, paper_level_percent, cash_level_minor, printer, scanner, errors";
const copyEscapes: Record<string, string> = { "\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r" };
/** A value in COPY's text format: backslash, tab, newline and carriage return escaped. */
const copyText = (s: string) => (/[\\\t\n\r]/.test(s) ? s.replace(/[\\\t\n\r]/g, (c) => copyEscapes[c]!) : s);
/** A text[] literal: every element quoted, its quotes and backslashes escaped. */
const arrayLiteral = (items: string[]) => (items.length === 0 ? "{}" : `{${items.map((e) => `"${e.replace(/["\\]/g, (c) => `\\${c}`)}"`).join(",")}}`);

/** The samples as COPY text rows (the column order of `columns`). */
export function copyRows(samples: SampleRow[]): string {
  let out = "";
  let lastReceived: Date | undefined;
  let received = "";
  for (const { kioskId, sample: s, received: r, at } of samples) {
    if (r !== lastReceived) {
      lastReceived = r;
      received = r.toISOString();
    }
    out += `${copyText(kioskId)}\t${(at ?? sampleTime(s, r)).toISOString()}\t${copyText(s.sampleId)}\t${received}\t${s.cpuPercent}\t${s.temperatureCelsius}\t${s.paperLevelPercent}\t${s.cashLevelMinor}\t${s.printer}\t${s.scanner}\t${copyText(arrayLiteral(s.errors))}\n`;
  }
  return out;
}

async function copy(tx: PoolClient, sql: string, text: string): Promise<void> {
  const stream = tx.query(copyFrom(sql));
  await new Promise<void>((resolve, reject) => {
    stream.on("error", reject);
    stream.on("finish", resolve);
    stream.end(text);
  });
}

/**
 * Stores samples exactly once: a resent sample (same kiosk, time and id) is stored once.
 * The rows go in with COPY straight into telemetry_samples under a savepoint — samples are
 * almost always new, since the consumer's inbox already dropped redelivered messages. Should
 * any row be there already (a kiosk resending samples in a new batch, a sample twice in one
 * batch), PostgreSQL refuses the whole COPY (unique violation) and the batch goes the safe
 * way: COPY into a temporary staging table, then one INSERT … SELECT … ON CONFLICT DO NOTHING.
 * Returns how many rows were new. `rows`: copyRows(samples), when the caller made them already.
 */
export async function insertSamples(tx: PoolClient, samples: SampleRow[], rows?: string): Promise<number> {
  if (samples.length === 0) return 0;
  const text = rows ?? copyRows(samples);
  await tx.query("SAVEPOINT telemetry_copy");
  try {
    await copy(tx, `COPY telemetry_samples (${columns}) FROM STDIN`, text);
    await tx.query("RELEASE SAVEPOINT telemetry_copy");
    return samples.length;
  } catch (err) {
    if ((err as { code?: string }).code !== "23505") throw err;
    await tx.query("ROLLBACK TO SAVEPOINT telemetry_copy");
  }
  // The connection's own table (made once per connection; emptied at every commit).
  await tx.query("CREATE TEMPORARY TABLE IF NOT EXISTS telemetry_staging (LIKE telemetry_samples INCLUDING DEFAULTS) ON COMMIT DELETE ROWS");
  await tx.query("TRUNCATE telemetry_staging");
  await copy(tx, `COPY telemetry_staging (${columns}) FROM STDIN`, text);
  const { rowCount } = await tx.query(`INSERT INTO telemetry_samples (${columns}) SELECT ${columns} FROM telemetry_staging ON CONFLICT DO NOTHING`);
  return rowCount ?? 0;
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


