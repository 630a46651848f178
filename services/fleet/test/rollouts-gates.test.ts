// A gate's counting against fleet's real schema (PostgreSQL, fleet's migrations): the per-kiosk
// counts per bucket (kiosk_facts) as the consumers add them, read back for the updated and
// control cohorts over a window that starts inside a bucket (its share of the bucket), the
// baseline before the rollout, reconnects that are not an install's restart, and each cohort
// measured on a spread sample when it is larger than the cap.
import { randomUUID } from "node:crypto";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, expect, inject, it } from "vitest";
import pg from "pg";
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { KioskConnectedEventSchema } from "@adminkiosk/proto/adminkiosk/link/v1/events_pb";
import { createLogger, inTransaction, migrate, type Pool } from "@adminkiosk/runtime";
import { createDatabase } from "@adminkiosk/devstack";
import { addFacts, reconnects } from "../src/facts.js";
import { defaultGate, judge, measure } from "../src/rollouts/gates.js";

const minute = 60_000;
let db: pg.Pool;
const pool = () => db as unknown as Pool;

beforeAll(async () => {
  const url = await createDatabase(inject("infra").databaseUrl, "fleet");
  await migrate(url, "fleet", fileURLToPath(new URL("../migrations", import.meta.url)), createLogger("test", "warn"), { consumerTables: true });
  db = new pg.Pool({ connectionString: url, max: 3, options: "-c search_path=fleet" });
}, 60_000);

afterAll(async () => {
  await db?.end();
});

/** A rollout whose wave 0 (`updated` kiosks) installed and wave 1 (`control`) is pending. */
async function rollout(updated: string[], control: string[], created: Date) {
  const id = randomUUID();
  await db.query(
    `INSERT INTO rollouts (rollout_id, release_id, kind, version, target, waves, max_concurrent, window_policy, gate, state, created_by, created_at)
     VALUES ($1, 'r', 'APP', '2.0.0', '{}', '[]', 10, 'any', '{}', 'running', 'test', $2)`,
    [id, created],
  );
  await db.query(
    `INSERT INTO rollout_targets (rollout_id, kiosk_id, wave, state, release_id, window_start, window_end, timezone)
     SELECT $1, k, CASE WHEN k = ANY($2) THEN 0 ELSE 1 END, CASE WHEN k = ANY($2) THEN 'installed' ELSE 'pending' END, 'r', 0, 0, 'UTC'
     FROM unnest($3::text[]) k`,
    [id, updated, [...updated, ...control]],
  );
  return id;
}

it("counts each cohort's events since the bake started, taking its share of the bucket the bake started in, and the baseline before the rollout", async () => {
  const bucket = 10 * minute;
  const b0 = Math.floor(Date.now() / bucket) * bucket - 3 * bucket;
  const updated = ["g1-u1", "g1-u2"];
  const control = ["g1-c1", "g1-c2", "g1-c3", "g1-c4"];
  // The rollout started at b0; the baseline is the bucket before; the bake started halfway into b0's bucket.
  const id = await rollout(updated, control, new Date(b0));
  await inTransaction(pool(), async (tx) => {
    for (const k of [...updated, ...control]) {
      const u = updated.includes(k);
      await addFacts(tx, bucket, [
        { kioskId: k, at: new Date(b0 - bucket + 1000), sales: 10 },
        // 20 sales in the bucket the bake started in: half of them count.
        { kioskId: k, at: new Date(b0 + 1000), sales: 20, samples: 4, faulty_samples: u ? 4 : 0 },
        { kioskId: k, at: new Date(b0 + bucket + 1000), sales: u ? 7 : 10, samples: 4, faulty_samples: u ? 4 : 0, reconnects: u ? 3 : 0 },
      ]);
    }
    // Added again in another batch: the same rows grow.
    await addFacts(tx, bucket, [{ kioskId: "g1-u1", at: new Date(b0 + bucket + 2000), sales: 0, reconnects: 1 }]);
  });
  const now = new Date(b0 + 2 * bucket);
  const m = await measure(db as never, { bucketMs: bucket }, id, 0, new Date(b0 + bucket / 2), { started: new Date(b0), baselineMs: bucket }, now);
  expect(m.updated).toMatchObject({ kiosks: 2, measuredKiosks: 2, sales: 2 * (10 + 7), baselineSales: 20, samples: 2 * 6, faultySamples: 2 * 6, reconnects: 7 });
  expect(m.control).toMatchObject({ kiosks: 4, measuredKiosks: 4, sales: 4 * 20, baselineSales: 40, samples: 4 * 6, faultySamples: 0, reconnects: 0 });
  expect(m.hours).toBeCloseTo(0.25);
  const metrics = judge(m, { ...defaultGate, minSamples: 5 });
  const sales = metrics.find((x) => x.name === "sales_per_kiosk_hour")!;
  expect(sales.updated).toBeCloseTo(17 / 0.25);
  expect(sales.control).toBeCloseTo(20 / 0.25);
  expect(metrics.find((x) => x.name === "fault_rate")).toMatchObject({ judged: true, passed: false, updated: 1 });
});

it("counts a kiosk's reconnects on the version it runs, not its restart into a new version", async () => {
  await db.query("INSERT INTO kiosks (kiosk_id, name, app_version, firmware_version) VALUES ('g2-k', 'k', '1.0.0', 'fw1')");
  const hello = (appVersion: string) =>
    create(KioskConnectedEventSchema, { kioskId: "g2-k", sessionId: randomUUID(), time: timestampFromDate(new Date()), hello: { appVersion, firmwareVersion: "fw1" } });
  // Same version (a crash or a lost connection), then the restart into 2.0.0, then 2.0.0 again.
  const found = await inTransaction(pool(), (tx) => reconnects(tx, [hello("1.0.0"), hello("2.0.0"), hello("2.0.0"), hello("")]));
  expect(found.map((f) => f.reconnects)).toEqual([1, 1, 1]);
  expect(found).toHaveLength(3);
});

it("measures a cohort larger than the cap on a spread sample, at the same rates", async () => {
  const bucket = minute;
  const b0 = Math.floor(Date.now() / bucket) * bucket - 5 * bucket;
  const updated = Array.from({ length: 40 }, (_, i) => `g3-u${i}`);
  const control = Array.from({ length: 400 }, (_, i) => `g3-c${i}`);
  const id = await rollout(updated, control, new Date(b0));
  await inTransaction(pool(), (tx) => addFacts(tx, bucket, [...updated, ...control].map((k) => ({ kioskId: k, at: new Date(b0 + 1000), sales: updated.includes(k) ? 3 : 5 }))));
  const m = await measure(db as never, { bucketMs: bucket, sampleMax: 100 }, id, 0, new Date(b0), { started: new Date(b0), baselineMs: bucket }, new Date(b0 + bucket));
  expect(m.updated).toMatchObject({ kiosks: 40, measuredKiosks: 40, sales: 120 });
  expect(m.control.kiosks).toBe(400);
  // About 100 of the 400 (a hash decides), each counted whole.
  expect(m.control.measuredKiosks).toBeGreaterThan(50);
  expect(m.control.measuredKiosks).toBeLessThan(160);
  expect(m.control.sales).toBe(5 * m.control.measuredKiosks);
});
