// Telemetry ingest (COPY into telemetry_samples) on real processes: every sample link
// publishes is stored once — count in = count stored — whether a batch arrives once, is
// delivered again under another message id, overlaps an earlier one, or repeats a sample
// within itself (and counted once in kiosk_facts); the kiosk's latest state is its newest sample.
import { create, toBinary } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { jetstream } from "@nats-io/jetstream";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { KioskService } from "@adminkiosk/proto/adminkiosk/fleet/v1/fleet_pb";
import { KioskTelemetryEventSchema } from "@adminkiosk/proto/adminkiosk/link/v1/events_pb";
import { DeviceStatus, TelemetrySampleSchema, type TelemetrySample } from "@adminkiosk/proto/adminkiosk/link/v1/link_pb";
import { closeNats, connectNats, createLogger, ensureStream, linkSubjects, type NatsConnection } from "@adminkiosk/runtime";
import { createDatabase, eventually, startTestService, type StartedService } from "@adminkiosk/devstack";
import { clientFor, startAuth, type AuthFixture } from "../../../test/support/auth.js";

let auth: AuthFixture;
let fleet: StartedService;
let db: pg.Pool;
let nc: NatsConnection;
let admin: string;

beforeAll(async () => {
  auth = await startAuth();
  const databaseUrl = await createDatabase(inject("infra").databaseUrl, "fleet");
  fleet = await startTestService("fleet", {
    DATABASE_URL: databaseUrl,
    REDIS_URL: auth.redisUrl,
    NATS_URL: inject("infra").natsUrl,
    LINK_EVENTS_CONSUMER: `fleet-telemetry-test-${process.pid}`,
    LINK_EVENTS_SINCE_START: "true",
    AUTH_JWKS_URL: `${auth.service.url}/.well-known/jwks.json`,
    AUTH_URL: auth.service.url,
  });
  admin = await auth.adminToken();
  db = new pg.Pool({ connectionString: databaseUrl, max: 2, options: "-c search_path=fleet" });
  nc = await connectNats(inject("infra").natsUrl, "fleet-telemetry-test", createLogger("fleet-telemetry-test", "silent"));
  await ensureStream(nc, { name: "LINK", subjects: ["link.>"] });
});
afterAll(async () => {
  await closeNats(nc);
  await db?.end();
  await fleet?.stop();
  await auth?.stop();
});

const base = Date.now() - 60_000;
const sample = (id: string, offsetMs: number, extra: Partial<Omit<TelemetrySample, "$typeName">> = {}) =>
  create(TelemetrySampleSchema, {
  sampleId: id,
  time: timestampFromMs(base + offsetMs),
  cpuPercent: 12.5,
  temperatureCelsius: 40,
  paperLevelPercent: 70,
  cashLevelMinor: 5000n,
  printer: DeviceStatus.OK,
  scanner: DeviceStatus.OK,
  errors: [],
  ...extra,
  });
type Sample = TelemetrySample;

/** Publishes a batch as link does (subject link.kiosk.<id>.telemetry, msgID <kiosk>/<batch>). */
async function publish(kioskId: string, batchId: string, samples: Sample[], msgId = `${kioskId}/${batchId}`) {
  const event = create(KioskTelemetryEventSchema, { kioskId, batch: { batchId, samples }, receiveTime: timestampFromMs(Date.now()) });
  await jetstream(nc).publish(linkSubjects.telemetry(kioskId), toBinary(KioskTelemetryEventSchema, event), { msgID: msgId });
}
const stored = async (kioskId: string) => Number((await db.query<{ n: string }>("SELECT count(*) AS n FROM telemetry_samples WHERE kiosk_id = $1", [kioskId])).rows[0]!.n);
/** kiosk_facts' telemetry counts for the kiosk (rollout gates read them). */
const facts = async (kioskId: string) => {
  const { rows } = await db.query<{ samples: number; faulty: number }>(
    "SELECT COALESCE(sum(samples), 0)::int AS samples, COALESCE(sum(faulty_samples), 0)::int AS faulty FROM kiosk_facts WHERE kiosk_id = $1",
    [kioskId],
  );
  return rows[0];
};
const storedIds = async (kioskId: string) =>
  (await db.query<{ sample_id: string }>("SELECT sample_id FROM telemetry_samples WHERE kiosk_id = $1 ORDER BY sample_id", [kioskId])).rows.map((r) => r.sample_id);

/** Texts that need escaping in COPY's text form, multi-byte UTF-8, and one longer than a short copy. */
const errorTexts = ['paper "low"', "tab\there", "back\\slash", "new\nline", "Drucker: Papierstau in Fach 2 — bitte öffnen und prüfen (Fehler 0x1F, seit 3 Minuten)"];

describe("telemetry ingest", () => {
  it("stores every sample of many batches exactly once, with text that needs escaping intact, and keeps the newest as the kiosk's state", async () => {
    const kiosks = ["tel-a", "tel-b", "tel-c"];
    for (const kioskId of kiosks) await clientFor(KioskService, fleet.url, admin).createKiosk({ kiosk: { kioskId, name: kioskId } });
    // 3 kiosks × 40 batches × 10 samples, published concurrently so that fleet's batches hold many messages.
    await Promise.all(
      kiosks.map(async (kioskId) => {
        for (let b = 0; b < 40; b++)
          await publish(
            kioskId,
            `batch-${b}`,
            Array.from({ length: 10 }, (_, s) => sample(`${b}-${s}`, b * 10 + s, { cpuPercent: b * 10 + s, temperatureCelsius: s === 3 ? -7.75 : 40, errors: s === 3 ? errorTexts : [] })),
          );
      }),
    );
    for (const kioskId of kiosks) await expect.poll(() => stored(kioskId), eventually).toBe(400);
    const { rows } = await db.query<{ errors: string[] }>("SELECT errors FROM telemetry_samples WHERE kiosk_id = 'tel-a' AND sample_id = '7-3'");
    expect(rows[0]!.errors).toEqual(errorTexts);
    // Its numbers as the kiosk sent them (fleet writes them into COPY's binary rows itself).
    const { rows: values } = await db.query("SELECT cpu_percent, temperature_celsius, paper_level_percent, cash_level_minor, printer, scanner FROM telemetry_samples WHERE kiosk_id = 'tel-a' AND sample_id = '7-3'");
    expect(values[0]).toEqual({ cpu_percent: 73, temperature_celsius: -7.75, paper_level_percent: 70, cash_level_minor: "5000", printer: DeviceStatus.OK, scanner: DeviceStatus.OK });
    // The newest sample (batch 39, sample 9) is the kiosk's state.
    const { kiosk } = await clientFor(KioskService, fleet.url, admin).getKiosk({ kioskId: "tel-b" });
    expect(kiosk?.state?.cpuPercent).toBe(399);
    // Counted in kiosk_facts once each: 400 samples, the 40 with errors faulty.
    for (const kioskId of kiosks) expect(await facts(kioskId)).toEqual({ samples: 400, faulty: 40 });
  });

  it("a batch delivered again under a new message id, overlapping samples and a sample twice in one batch are stored and counted once", async () => {
    const kioskId = "tel-redeliver";
    await clientFor(KioskService, fleet.url, admin).createKiosk({ kiosk: { kioskId, name: kioskId } });
    const first = Array.from({ length: 5 }, (_, s) => sample(`r-${s}`, s, s === 3 ? { printer: DeviceStatus.FAULT } : {}));
    await publish(kioskId, "r-1", first);
    await expect.poll(() => stored(kioskId), eventually).toBe(5);

    // The same batch again (a resend the inbox cannot recognise: another message id).
    await publish(kioskId, "r-1", first, `${kioskId}/r-1-again`);
    // A batch with 3 of those samples and 2 new ones, and a batch with one new sample twice.
    await publish(kioskId, "r-2", [...first.slice(2), sample("r-5", 5), sample("r-6", 6)]);
    await publish(kioskId, "r-3", [sample("r-7", 7), sample("r-7", 7)]);
    // A marker published last: once it is stored, everything before it was applied.
    await publish(kioskId, "r-4", [sample("r-8", 8)]);
    await expect.poll(() => storedIds(kioskId), eventually).toContain("r-8");
    expect(await storedIds(kioskId)).toEqual(["r-0", "r-1", "r-2", "r-3", "r-4", "r-5", "r-6", "r-7", "r-8"]);
    // kiosk_facts counts what was stored, not what arrived: 9 samples, r-3's printer fault once
    // (it came three times), so a resend cannot make a rollout's gate see more faults.
    expect(await facts(kioskId)).toEqual({ samples: 9, faulty: 1 });

    // Nothing was dead-lettered on the way: the repeats were applied, not refused.
    const { rows } = await db.query<{ n: string }>("SELECT count(*) AS n FROM dead_letters WHERE subject = $1", [linkSubjects.telemetry(kioskId)]);
    expect(Number(rows[0]!.n)).toBe(0);
  });
});
