// npm run backup / npm run restore (issue 16; backup.ts does the work, docs/operations.md
// "Backups and restore" is the procedure). Defaults fit npm start's data stores (.data/,
// DEV_POSTGRES_PORT, DEV_NATS_PORT); every one can be given.
//
//   npm run backup [-- --keep 7] [--no-streams]
//       base backup of the running cluster + JetStream snapshots into .data/backups/base/<id>,
//       then retention. Needs npm start's PostgreSQL running (it archives WAL to .data/backups/wal).
//   npm run restore [-- --id <id>] [--to <ISO time>] [--into <dir>] [--verify-only] [--streams] [--streams-only]
//       checks the backup against its manifest and lays it out in <dir> (.data/postgres by
//       default, which must be empty or absent: stop npm start and move it aside first);
//       npm start then replays the WAL archive (to its end, or to --to) and promotes.
//       --streams also restores the JetStream snapshots into a NATS without those streams
//       (--streams-only: only them, for a lost NATS).
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { listBackups, prepareRestore, restoreStreams, takeBackup, verifyBackup } from "./backup.js";
import { repoRoot } from "./testing.js";

const env = process.env;
const dataDir = resolve(env["DATA_DIR"] ?? join(repoRoot, ".data"));
const pgPort = env["DEV_POSTGRES_PORT"] ?? "54320";
const natsPort = env["DEV_NATS_PORT"] ?? "42220";

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    root: { type: "string", default: env["BACKUP_DIR"] ?? join(dataDir, "backups") },
    "database-url": { type: "string", default: env["BACKUP_DATABASE_URL"] ?? `postgres://adminkiosk:adminkiosk@127.0.0.1:${pgPort}/adminkiosk` },
    "data-dir": { type: "string", default: env["PGDATA"] ?? join(dataDir, "postgres") },
    "nats-url": { type: "string", default: env["BACKUP_NATS_URL"] ?? `nats://127.0.0.1:${natsPort}` },
    "no-streams": { type: "boolean", default: false },
    keep: { type: "string", default: env["BACKUP_KEEP"] ?? "7" },
    id: { type: "string" },
    to: { type: "string" },
    into: { type: "string" },
    streams: { type: "boolean", default: false },
    "streams-only": { type: "boolean", default: false },
    "verify-only": { type: "boolean", default: false },
    list: { type: "boolean", default: false },
  },
});
const command = positionals[0];
const log = (line: string) => console.log(line);

async function main() {
  const root = resolve(values.root!);
  if (values.list || command === "list") {
    for (const b of listBackups(root)) console.log(`${b.id}  ${b.manifest.finishedAt}  WAL ${b.manifest.startWal}  ${b.manifest.files.length} files  streams: ${b.manifest.streams.map((s) => `${s.name}(${s.info.state.messages})`).join(" ") || "none"}`);
    return;
  }
  if (command === "backup") {
    const started = Date.now();
    const r = await takeBackup({
      databaseUrl: values["database-url"]!,
      dataDir: resolve(values["data-dir"]!),
      root,
      natsUrl: values["no-streams"] ? undefined : values["nats-url"],
      keep: Number(values.keep),
      log,
    });
    log(`backup ${r.id} in ${r.dir} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
    return;
  }
  if (command === "restore") {
    const id = values.id ?? listBackups(root).at(-1)?.id;
    if (!id) throw new Error(`no finished backup under ${root}`);
    if (values["verify-only"]) {
      const problems = await verifyBackup(root, id);
      if (problems.length) throw new Error(`backup ${id} failed its integrity check:\n  ${problems.join("\n  ")}`);
      log(`backup ${id}: every file matches the manifest`);
      return;
    }
    if (values["streams-only"]) {
      await restoreStreams(root, id, values["nats-url"]!, log);
      return;
    }
    const into = resolve(values.into ?? values["data-dir"]!);
    if (existsSync(join(into, "postmaster.pid"))) throw new Error(`${into} holds a running (or crashed) cluster: stop npm start and move the directory aside first`);
    const targetTime = values.to ? new Date(values.to) : undefined;
    if (targetTime && Number.isNaN(targetTime.getTime())) throw new Error(`--to ${values.to} is not a time`);
    await prepareRestore({ root, id, targetDir: into, targetTime, log });
    if (values.streams) await restoreStreams(root, id, values["nats-url"]!, log);
    log(`ready: start the platform (npm start); PostgreSQL replays the archive and promotes, then the services start on the restored data`);
    return;
  }
  throw new Error("usage: backup-cli.ts backup|restore|list [options] (see the header of packages/devstack/src/backup-cli.ts)");
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  },
);
