// npm run backup / restore's machinery (backup.ts) on a PostgreSQL of its own that archives
// WAL, without services: a restore to a point in time (rows committed after it are not
// there), the integrity check refusing a backup whose file was altered, and retention
// (the oldest backups and the WAL only they needed go). The restore drill
// (test/scenarios/restore-drill.test.ts) does the whole platform under load.
import { appendFileSync, existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { listBackups, prepareRestore, prune, takeBackup, verifyBackup, waitForRecovery, walDir } from "../src/backup.js";
import { freePort, startPostgres, type Postgres } from "../src/infra.js";
import { waitFor } from "../src/testing.js";

let dir: string;
let root: string;
let server: Postgres;
const options = () => ({ archiveDir: walDir(root), archiveTimeoutS: 1, walSegmentMb: 1 });

async function sql<T>(url: string, text: string, values: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(text, values)).rows as T[];
  } finally {
    await client.end();
  }
}

/** Waits until the WAL holding everything committed so far is in the archive (archive_timeout switches the segment). */
async function archived(url: string) {
  const [{ file }] = (await sql<{ file: string }>(url, "SELECT pg_walfile_name(pg_current_wal_lsn()) AS file")) as [{ file: string }];
  await waitFor(`${file} to be archived`, async () => ((await sql<{ done: boolean }>(url, "SELECT coalesce(last_archived_wal >= $1, false) AS done FROM pg_stat_archiver", [file]))[0]?.done ? true : undefined), { timeout: 60_000 });
}

beforeAll(async () => {
  dir = mkdtempSync(join(inject("infra").tmpDir, "backup-"));
  root = join(dir, "backups");
  server = await startPostgres(join(dir, "pg"), await freePort(), () => {}, options());
  await sql(server.url, "CREATE TABLE sales (id int PRIMARY KEY, at timestamptz NOT NULL DEFAULT clock_timestamp())");
}, 90_000);
afterAll(async () => {
  await server?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("backups", () => {
  it("restore to a point in time: what was committed before it is there, what came after is not", async () => {
    await sql(server.url, "INSERT INTO sales (id) SELECT generate_series(1, 10)");
    const backup = await takeBackup({ databaseUrl: server.url, dataDir: join(dir, "pg"), root });
    expect(await verifyBackup(root, backup.id)).toEqual([]);
    await sql(server.url, "INSERT INTO sales (id) SELECT generate_series(11, 20)");
    // The instant between the two batches, as the server's clock saw it (10 ms clear of each:
    // the restore target is kept to the millisecond).
    await sql(server.url, "SELECT pg_sleep(0.01)");
    const [{ target }] = (await sql<{ target: Date }>(server.url, "SELECT clock_timestamp() AS target")) as [{ target: Date }];
    await sql(server.url, "SELECT pg_sleep(0.01)");
    await sql(server.url, "INSERT INTO sales (id) SELECT generate_series(21, 30)");
    await archived(server.url);

    const port = await freePort();
    await prepareRestore({ root, targetDir: join(dir, "pitr"), targetTime: target });
    const restored = await startPostgres(join(dir, "pitr"), port, (l) => process.env["PG_LOGS"] && console.log(l), options());
    try {
      await waitForRecovery(restored.url);
      const rows = await sql<{ n: string; max: number }>(restored.url, "SELECT count(*)::text AS n, max(id) AS max FROM sales");
      expect(rows[0]).toEqual({ n: "20", max: 20 });
    } finally {
      await restored.stop();
    }
  }, 120_000);

  it("a backup whose file was altered is refused before anything is restored", async () => {
    const backup = await takeBackup({ databaseUrl: server.url, dataDir: join(dir, "pg"), root });
    const victim = backup.manifest.files.find((f) => f.path.startsWith("base/") && f.size > 0)!;
    appendFileSync(join(backup.dir, "data", victim.path), "x");
    expect(await verifyBackup(root, backup.id)).toEqual([`file ${victim.path}: ${victim.size + 1} bytes, the manifest says ${victim.size}`]);
    await expect(prepareRestore({ root, id: backup.id, targetDir: join(dir, "refused") })).rejects.toThrow(/failed its integrity check/);
    expect(existsSync(join(dir, "refused"))).toBe(false);
    rmSync(backup.dir, { recursive: true, force: true });
  }, 60_000);

  it("retention keeps the newest N backups and drops the WAL only older ones needed", async () => {
    for (let i = 0; i < 2; i++) {
      await sql(server.url, "INSERT INTO sales (id) SELECT 1000 * $1::int + generate_series(1, 5)", [i + 1]);
      await takeBackup({ databaseUrl: server.url, dataDir: join(dir, "pg"), root });
    }
    const before = listBackups(root);
    expect(before.length).toBeGreaterThanOrEqual(3);
    const removed = prune(root, 2);
    const after = listBackups(root);
    expect(after.map((b) => b.id)).toEqual(before.slice(-2).map((b) => b.id));
    expect(removed).toEqual(before.slice(0, -2).map((b) => b.id));
    const oldestStart = after[0]!.manifest.startWal;
    // On the backups' timeline (a point-in-time restore above branched off onto another).
    const segments = readdirSync(walDir(root)).filter((n) => /^[0-9A-F]{24}\.gz$/.test(n) && n.startsWith(oldestStart.slice(0, 8)));
    expect(segments.length).toBeGreaterThan(0);
    expect(segments.every((n) => n.slice(8, 24) >= oldestStart.slice(8, 24))).toBe(true);
    // What is kept still verifies.
    for (const b of after) expect(await verifyBackup(root, b.id)).toEqual([]);
  }, 120_000);
});
