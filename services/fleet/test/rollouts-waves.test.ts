// A rollout's waves against fleet's real schema (PostgreSQL, fleet's migrations): creating one
// plans every wave (its kiosks in the rollout's hash order, as arrays) and writes no row per
// kiosk; a wave's rows are written when it starts, a chunk a tick, in the plan's order; who is
// in which wave is the hash order, shown per wave before any row exists; a kiosk deleted before
// its wave starts is skipped, one enrolled after the rollout was created is not targeted; the
// gate's control cohort counts the kiosks of waves not written yet; a rollout that ends shows
// them as skipped.
import { randomUUID } from "node:crypto";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, expect, inject, it } from "vitest";
import pg from "pg";
import { createLogger, inTransaction, migrate, type Pool, type PoolClient } from "@adminkiosk/runtime";
import { createDatabase } from "@adminkiosk/devstack";
import { defaultGate, measure } from "../src/rollouts/gates.js";
import { insertRollout, materialise, toRollout, type NewRollout, type RolloutRow } from "../src/rollouts/store.js";

let db: pg.Pool;
const pool = () => db as unknown as Pool;
const kiosks = Array.from({ length: 250 }, (_, i) => `wv-${String(i).padStart(3, "0")}`);

beforeAll(async () => {
  const url = await createDatabase(inject("infra").databaseUrl, "fleet");
  await migrate(url, "fleet", fileURLToPath(new URL("../migrations", import.meta.url)), createLogger("test", "warn"), { consumerTables: true });
  db = new pg.Pool({ connectionString: url, max: 3, options: "-c search_path=fleet" });
  await db.query(
    `INSERT INTO kiosks (kiosk_id, name, timezone, tags, app_version)
     SELECT k, k, (ARRAY['UTC', 'Asia/Tokyo', 'America/New_York'])[1 + i % 3], ARRAY['waves'], '1.0.0' FROM unnest($1::text[]) WITH ORDINALITY AS x(k, i)`,
    [kiosks],
  );
}, 60_000);

afterAll(async () => {
  await db?.end();
});

const plan: NewRollout = {
  releaseId: "rel-2",
  kind: "APP",
  version: "2.0.0",
  target: { tags: ["waves"] },
  waves: [1, 10, 50, 100].map((percent) => ({ percent, bakeMs: 0 })),
  maxConcurrent: 10,
  windowPolicy: "explicit",
  windowStartHour: 0,
  windowEndHour: 0,
  windowNote: "",
  gate: defaultGate,
  autoRollback: false,
  description: "",
  createdBy: "test",
};
const where = { sql: "k.deleted_at IS NULL AND k.tags @> ARRAY['waves'] AND k.app_version IS DISTINCT FROM $1", params: ["2.0.0"] };
const tx = <T>(fn: (c: PoolClient) => Promise<T>) => inTransaction(pool(), fn);
const rowsOf = async (id: string) =>
  (await db.query<{ kiosk_id: string; wave: number; state: string; error: string; from_version: string; timezone: string }>("SELECT * FROM rollout_targets WHERE rollout_id = $1 ORDER BY kiosk_id", [id])).rows;

it("plans each wave at creation without a row per kiosk, and writes a wave's rows as it starts, a chunk at a time, in the hash order", async () => {
  const id = randomUUID();
  const { row, sizes } = await tx((c) => insertRollout(c, id, plan, where));
  expect(row.total).toBe(250);
  expect(sizes).toEqual([3, 22, 100, 125]);
  expect(await rowsOf(id)).toEqual([]);

  // Who is in which wave: the rollout's hash order, cut at the waves' ends — shown before any row is written.
  const { rows: order } = await db.query<{ kiosk_id: string }>(
    "SELECT kiosk_id FROM kiosks WHERE tags @> ARRAY['waves'] ORDER BY hashtextextended(kiosk_id, hashtext($1::text)::bigint), kiosk_id",
    [id],
  );
  const expected = (w: number) => order.slice([0, 3, 25, 125][w], [3, 25, 125, 250][w]).map((r) => r.kiosk_id).sort();
  const status = await toRollout(pool(), row);
  expect(status.waveStatus!.map((w) => w.kiosks)).toEqual([3, 22, 100, 125]);
  expect(status.waveStatus!.map((w) => (w.pending ?? 0) + (w.waitingForWindow ?? 0))).toEqual([3, 22, 100, 125]);

  // Changed after creation: a kiosk of wave 1 is deleted, one runs another version now, one is enrolled.
  const [deleted, upgraded] = expected(1);
  await db.query("UPDATE kiosks SET deleted_at = now() WHERE kiosk_id = $1", [deleted]);
  await db.query("UPDATE kiosks SET app_version = '1.5.0' WHERE kiosk_id = $1", [upgraded]);
  await db.query("INSERT INTO kiosks (kiosk_id, name, tags, app_version) VALUES ('wv-late', 'late', ARRAY['waves'], '1.0.0')");

  // Wave 0 starts: its 3 rows; waves 0..1 in chunks of 10: 10, 10, then the last 2.
  expect(await tx((c) => materialise(c, row, 0, 10))).toBe(0);
  expect((await rowsOf(id)).map((r) => r.kiosk_id)).toEqual(expected(0));
  expect(await tx((c) => materialise(c, row, 1, 10))).toBe(12);
  expect(await tx((c) => materialise(c, row, 1, 10))).toBe(2);
  expect(await tx((c) => materialise(c, row, 1, 10))).toBe(0);
  const written = await rowsOf(id);
  expect(written.filter((r) => r.wave === 1).map((r) => r.kiosk_id)).toEqual(expected(1));
  expect(written.find((r) => r.kiosk_id === deleted)).toMatchObject({ state: "skipped", error: "the kiosk was deleted" });
  // The version it runs when its row is written (what a rollback returns it to).
  expect(written.find((r) => r.kiosk_id === upgraded)).toMatchObject({ state: "pending", from_version: "1.5.0" });
  // Its own time zone, frozen in the plan.
  const { rows: zones } = await db.query<{ kiosk_id: string; timezone: string }>("SELECT kiosk_id, timezone FROM kiosks WHERE kiosk_id = ANY($1)", [expected(1)]);
  for (const z of zones) expect(written.find((r) => r.kiosk_id === z.kiosk_id)?.timezone).toBe(z.timezone);

  // The gate: wave 0 installed against the control — wave 1's pending rows and waves 2 and 3's plans.
  await db.query("UPDATE rollout_targets SET state = 'installed' WHERE rollout_id = $1 AND wave = 0", [id]);
  const m = await measure(db as never, { bucketMs: 3_600_000 }, id, 0, new Date(Date.now() - 60_000), { started: row.created_at, baselineMs: 3_600_000 });
  expect([m.updated.kiosks, m.control.kiosks]).toEqual([3, 21 + 100 + 125]);
  expect(m.control.measuredKiosks).toBe(21 + 100 + 125);

  // Every wave written: 250 rows, the kiosk enrolled later is not one of them.
  while ((await tx((c) => materialise(c, row, 3, 40))) > 0);
  const all = await rowsOf(id);
  expect(all).toHaveLength(250);
  expect(all.some((r) => r.kiosk_id === "wv-late")).toBe(false);
  for (const w of [2, 3]) expect(all.filter((r) => r.wave === w).map((r) => r.kiosk_id)).toEqual(expected(w));
  await db.query("UPDATE kiosks SET deleted_at = NULL, app_version = '1.0.0' WHERE kiosk_id = ANY($1)", [[deleted, upgraded]]);
  await db.query("DELETE FROM kiosks WHERE kiosk_id = 'wv-late'");
});

it("shows the kiosks of waves never started as skipped once the rollout ended", async () => {
  const id = randomUUID();
  const { row } = await tx((c) => insertRollout(c, id, plan, where));
  await tx((c) => materialise(c, row, 0));
  const { rows } = await db.query<RolloutRow>("UPDATE rollouts SET state = 'canceled' WHERE rollout_id = $1 RETURNING *", [id]);
  await db.query("UPDATE rollout_targets SET state = 'skipped' WHERE rollout_id = $1 AND state = 'pending'", [id]);
  const status = await toRollout(pool(), rows[0]!);
  expect(status.waveStatus!.map((w) => [w.kiosks, w.skipped, w.pending, w.waitingForWindow])).toEqual([
    [3, 3, 0, 0],
    [22, 22, 0, 0],
    [100, 100, 0, 0],
    [125, 125, 0, 0],
  ]);
});
