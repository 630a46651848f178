// Telemetry exactly once across a real redelivery: every batch JetStream already delivered and
// fleet committed is delivered again (fleet's durable consumer deleted while fleet is stopped,
// so the new one starts from the stream's beginning), and nothing is stored twice — count in =
// count stored. Telemetry claims no inbox row (the runtime consumer's idempotentByKeys): each
// redelivered message is applied again and its samples refused by their key, so they are
// counted neither as stored nor in kiosk_facts. On a NATS of its own: the new durable reads the
// whole LINK stream.
import { mkdtempSync } from "node:fs";
import { join } from "node:path";
import { create, toBinary } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { KioskService } from "@adminkiosk/proto/adminkiosk/fleet/v1/fleet_pb";
import { KioskTelemetryEventSchema } from "@adminkiosk/proto/adminkiosk/link/v1/events_pb";
import { DeviceStatus, TelemetrySampleSchema } from "@adminkiosk/proto/adminkiosk/link/v1/link_pb";
import { closeNats, connectNats, createLogger, ensureStream, linkSubjects, type NatsConnection } from "@adminkiosk/runtime";
import { createDatabase, eventually, freePort, startNats, startTestService, type ManagedProcess, type StartedService } from "@adminkiosk/devstack";
import { clientFor, startAuth, type AuthFixture } from "../../../test/support/auth.js";

const durable = "fleet-redelivery-test";
let auth: AuthFixture;
let nats: ManagedProcess;
let fleet: StartedService | undefined;
let env: Record<string, string>;
let db: pg.Pool;
let nc: NatsConnection;

beforeAll(async () => {
  auth = await startAuth();
  nats = await startNats(mkdtempSync(join(inject("infra").tmpDir, "nats-telemetry-redelivery-")), await freePort());
  const databaseUrl = await createDatabase(inject("infra").databaseUrl, "fleet");
  env = {
    DATABASE_URL: databaseUrl,
    REDIS_URL: auth.redisUrl,
    NATS_URL: nats.url,
    LINK_EVENTS_CONSUMER: durable,
    AUTH_JWKS_URL: `${auth.service.url}/.well-known/jwks.json`,
    AUTH_URL: auth.service.url,
  };
  db = new pg.Pool({ connectionString: databaseUrl, max: 2, options: "-c search_path=fleet" });
  nc = await connectNats(nats.url, "fleet-telemetry-redelivery-test", createLogger("fleet-telemetry-redelivery-test", "silent"));
  await ensureStream(nc, { name: "LINK", subjects: ["link.>"] });
  fleet = await startTestService("fleet", env);
});
afterAll(async () => {
  await closeNats(nc);
  await db?.end();
  await fleet?.stop();
  await nats?.stop();
  await auth?.stop();
});

const base = Date.now() - 60_000;
async function publish(kioskId: string, b: number) {
  const samples = Array.from({ length: 10 }, (_, s) =>
    create(TelemetrySampleSchema, { sampleId: `${b}-${s}`, time: timestampFromMs(base + b * 10 + s), cpuPercent: b * 10 + s, paperLevelPercent: 60, printer: DeviceStatus.OK, scanner: DeviceStatus.OK }),
  );
  const event = create(KioskTelemetryEventSchema, { kioskId, batch: { batchId: `batch-${b}`, samples }, receiveTime: timestampFromMs(Date.now()) });
  await jetstream(nc).publish(linkSubjects.telemetry(kioskId), toBinary(KioskTelemetryEventSchema, event), { msgID: `${kioskId}/batch-${b}` });
}
const stored = async () => Number((await db.query<{ n: string }>("SELECT count(*) AS n FROM telemetry_samples")).rows[0]!.n);
/** A counter of fleet's /metrics (0 until it has a sample), by the start of its line. */
async function metric(prefix: string): Promise<number> {
  const text = await (await fetch(`${fleet!.url}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(prefix));
  return line ? Number(line.split(" ").at(-1)) : 0;
}
/** Messages the consumer applied (this fleet process), and samples refused as already stored. */
const handled = () => metric(`adminkiosk_consumer_messages_total{consumer="${durable}",outcome="handled",`);
const repeated = () => metric("fleet_telemetry_samples_repeated_total{");

describe("telemetry ingest, redelivered", () => {
  it("every batch delivered again after it was committed is stored once (count in = count stored)", async () => {
    const kiosks = ["red-a", "red-b"];
    const admin = await auth.adminToken();
    for (const kioskId of kiosks) await clientFor(KioskService, fleet!.url, admin).createKiosk({ kiosk: { kioskId, name: kioskId } });
    await Promise.all(kiosks.map(async (kioskId) => {
      for (let b = 0; b < 30; b++) await publish(kioskId, b);
    }));
    await expect.poll(stored, eventually).toBe(600);

    // fleet stops; its durable consumer goes; the new one (same name, same database) is given
    // all 60 messages again — each committed already. The new process applies all 60 (no inbox
    // row stops them) and every one of their 600 samples is refused as already stored.
    await fleet!.stop();
    await (await jetstreamManager(nc)).consumers.delete("LINK", durable);
    fleet = await startTestService("fleet", env);
    await expect.poll(handled, eventually).toBe(60);
    expect(await repeated()).toBe(600);
    expect(await stored()).toBe(600);

    // A new batch after the redelivered ones is stored; the rest still once.
    await publish("red-a", 30);
    await expect.poll(stored, eventually).toBe(610);
    const { rows } = await db.query<{ kiosk_id: string; n: string; distinct_ids: string }>(
      "SELECT kiosk_id, count(*) AS n, count(DISTINCT sample_id) AS distinct_ids FROM telemetry_samples GROUP BY kiosk_id ORDER BY kiosk_id",
    );
    expect(rows).toEqual([
      { kiosk_id: "red-a", n: "310", distinct_ids: "310" },
      { kiosk_id: "red-b", n: "300", distinct_ids: "300" },
    ]);
    const { kiosk } = await clientFor(KioskService, fleet!.url, admin).getKiosk({ kioskId: "red-a" });
    expect(kiosk?.state?.cpuPercent).toBe(309);
    // kiosk_facts counted each sample once too (a gate's fault rate is per sample).
    const facts = await db.query<{ kiosk_id: string; samples: number }>("SELECT kiosk_id, sum(samples)::int AS samples FROM kiosk_facts GROUP BY kiosk_id ORDER BY kiosk_id");
    expect(facts.rows).toEqual([
      { kiosk_id: "red-a", samples: 310 },
      { kiosk_id: "red-b", samples: 300 },
    ]);
    const dead = await db.query<{ n: string }>("SELECT count(*) AS n FROM dead_letters");
    expect(Number(dead.rows[0]!.n)).toBe(0);
  });
});
