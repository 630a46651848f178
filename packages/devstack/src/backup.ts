// Backups (issue 16): PostgreSQL base backups plus WAL archiving for point-in-time
// recovery, JetStream stream snapshots, retention and an integrity check.
//
// PostgreSQL: the server archives each completed WAL segment into <root>/wal
// (startPostgres' archiveDir: archive_mode, archive_command, archive_timeout). A base
// backup uses the server's low-level API: pg_backup_start on one session, a copy of the
// data directory (without pg_wal and what PostgreSQL's docs list as never needed),
// pg_backup_stop on the same session, which waits until the WAL the copy needs is
// archived and returns the backup_label. No pg_basebackup or pg_verifybackup of the
// server's version exists here, so the manifest is ours: size and SHA-256 of every file
// copied and of the WAL segments the backup needs, checked before anything is restored.
// A restore lays the files out in an empty directory, writes backup_label and
// recovery.signal, and sets restore_command to read the archive; the server replays the
// WAL up to the end of the archive, or to a recovery target time, then promotes itself
// onto a new timeline. WAL archived after the backup is verified by PostgreSQL itself
// while it replays (every record carries a CRC; replay stops at the first bad one).
//
// JetStream: each stream is snapshotted through the JS API ($JS.API.STREAM.SNAPSHOT, the
// stream's messages and consumers as the server packs them), with a checksum, and is
// restored into a server that lacks it ($JS.API.STREAM.RESTORE).
//
// Layout under <root>:
//   wal/<segment>.gz                  the WAL archive (written by the server, gzipped)
//   base/<id>/data/...                the copied data directory
//   base/<id>/backup_label            from pg_backup_stop
//   base/<id>/jetstream/<stream>.snapshot, <stream>.json
//   base/<id>/manifest.json           written last: a backup without it is incomplete
import { createHash } from "node:crypto";
import { spawnSync } from "node:child_process";
import { copyFileSync, createReadStream, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync, appendFileSync, chmodSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { join, relative } from "node:path";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import pg from "pg";

export interface FileEntry {
  path: string;
  size: number;
  sha256: string;
}

export interface StreamEntry {
  name: string;
  file: string;
  size: number;
  sha256: string;
  /** The stream's config and state at the snapshot, as the server answered. */
  info: { config: Record<string, unknown>; state: { messages: number; first_seq: number; last_seq: number; bytes: number } };
}

export interface Manifest {
  format: 1;
  id: string;
  startedAt: string;
  finishedAt: string;
  serverVersion: string;
  startLsn: string;
  stopLsn: string;
  /** The first and last WAL segments the backup cannot be restored without. */
  startWal: string;
  stopWal: string;
  /** Directories of the data directory, kept (empty where their contents are never copied). */
  dirs: string[];
  files: FileEntry[];
  wal: FileEntry[];
  streams: StreamEntry[];
}

export interface BackupOptions {
  /** A superuser connection to the cluster (pg_backup_start/stop). */
  databaseUrl: string;
  /** The cluster's data directory, readable from here (the backup runs where the server does). */
  dataDir: string;
  /** The backup root: base/ is written here, wal/ is where the server archives. */
  root: string;
  /** JetStream to snapshot, and which streams (all of them by default). */
  natsUrl?: string;
  streams?: string[];
  /** Base backups kept (older ones removed with the WAL only they needed); 0 keeps all. */
  keep?: number;
  log?: (line: string) => void;
}

export interface BackupResult {
  id: string;
  dir: string;
  manifest: Manifest;
  bytes: number;
  removed: string[];
}

export const walDir = (root: string) => join(root, "wal");
export const baseDir = (root: string) => join(root, "base");

/** Never copied (PostgreSQL's "Backing Up the Data Directory"): recreated empty, or not at all. */
const emptiedDirs = new Set(["pg_wal", "pg_replslot", "pg_dynshmem", "pg_notify", "pg_serial", "pg_snapshots", "pg_stat_tmp", "pg_subtrans"]);
const skippedFiles = new Set(["postmaster.pid", "postmaster.opts", "backup_label", "tablespace_map", "recovery.signal", "standby.signal", "backup_manifest"]);

async function sha256(path: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

async function entry(root: string, path: string): Promise<FileEntry> {
  return { path: relative(root, path), size: statSync(path).size, sha256: await sha256(path) };
}

/** A backup id that sorts by time: 20261207T111530Z-3f2a. */
function newId(now = new Date()): string {
  return `${now.toISOString().replace(/[-:]/g, "").replace(/\.\d+Z$/, "Z")}-${Math.random().toString(16).slice(2, 6)}`;
}

/** Copies the data directory's files (a file gone meanwhile is skipped: PostgreSQL dropped it, and WAL replay knows). */
function copyDataDir(from: string, to: string, dirs: string[], copied: string[], rel = ""): void {
  let names: string[];
  try {
    names = readdirSync(join(from, rel));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return;
    throw err;
  }
  for (const name of names) {
    const r = rel ? `${rel}/${name}` : name;
    const src = join(from, r);
    let st;
    try {
      st = lstatSync(src);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") continue;
      throw err;
    }
    if (st.isDirectory()) {
      dirs.push(r);
      mkdirSync(join(to, r), { recursive: true });
      if (emptiedDirs.has(r) || name === "pgsql_tmp") continue;
      copyDataDir(from, to, dirs, copied, r);
    } else if (st.isFile()) {
      if (!rel && skippedFiles.has(name)) continue;
      if (name.startsWith("pgsql_tmp")) continue;
      try {
        copyFileSync(src, join(to, r));
        copied.push(r);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
      }
    }
  }
}

/** WAL segment names from `first` to `last` on one timeline (names are TTTTTTTTXXXXXXXXYYYYYYYY in hex). */
function segmentRange(first: string, last: string, segmentsPerXlogId: number): string[] {
  const tli = first.slice(0, 8);
  const toNum = (n: string) => BigInt(`0x${n.slice(8, 16)}`) * BigInt(segmentsPerXlogId) + BigInt(`0x${n.slice(16, 24)}`);
  const out: string[] = [];
  for (let n = toNum(first); n <= toNum(last); n++) {
    const hi = (n / BigInt(segmentsPerXlogId)).toString(16).toUpperCase().padStart(8, "0");
    const lo = (n % BigInt(segmentsPerXlogId)).toString(16).toUpperCase().padStart(8, "0");
    out.push(`${tli}${hi}${lo}`);
  }
  return out;
}

/** Takes a base backup (and the JetStream snapshots), then applies retention. */
export async function takeBackup(o: BackupOptions): Promise<BackupResult> {
  const log = o.log ?? (() => {});
  const id = newId();
  const dir = join(baseDir(o.root), id);
  const dataOut = join(dir, "data");
  mkdirSync(dataOut, { recursive: true });
  const startedAt = new Date().toISOString();
  const client = new pg.Client({ connectionString: o.databaseUrl });
  await client.connect();
  let manifest: Manifest;
  try {
    const { rows: settings } = await client.query<{ name: string; setting: string }>(
      "SELECT name, setting FROM pg_settings WHERE name IN ('archive_mode', 'wal_segment_size', 'server_version', 'data_directory')",
    );
    const setting = (n: string) => settings.find((s) => s.name === n)?.setting ?? "";
    if (setting("archive_mode") !== "on" && setting("archive_mode") !== "always")
      throw new Error("archive_mode is off: the server archives no WAL, so a base backup could not be restored (start it with an archive directory: startPostgres archiveDir)");
    const segmentBytes = Number(setting("wal_segment_size"));
    const { rows: started } = await client.query<{ lsn: string }>("SELECT pg_backup_start($1, true)::text AS lsn", [`adminkiosk ${id}`]);
    log(`backup ${id}: started at ${started[0]!.lsn}; copying ${o.dataDir}`);
    const dirs: string[] = [];
    const copied: string[] = [];
    try {
      copyDataDir(o.dataDir, dataOut, dirs, copied);
    } catch (err) {
      await client.query("SELECT pg_backup_stop(false)").catch(() => {});
      throw err;
    }
    // Waits until every WAL segment the copy needs is in the archive.
    const { rows: stopped } = await client.query<{ lsn: string; labelfile: string; stopwal: string }>(
      "SELECT lsn::text AS lsn, labelfile, pg_walfile_name(lsn) AS stopwal FROM pg_backup_stop(true)",
    );
    const { lsn: stopLsn, labelfile, stopwal } = stopped[0]!;
    writeFileSync(join(dir, "backup_label"), labelfile);
    const startWal = /START WAL LOCATION: \S+ \(file ([0-9A-F]{24})\)/.exec(labelfile)?.[1];
    if (!startWal) throw new Error(`backup_label names no start WAL file:\n${labelfile}`);
    log(`backup ${id}: stopped at ${stopLsn}; ${copied.length} files; checksumming`);
    const files: FileEntry[] = [];
    for (const r of copied) files.push(await entry(dataOut, join(dataOut, r)));
    const wal: FileEntry[] = [];
    for (const segment of segmentRange(startWal, stopwal, Math.floor(0x100000000 / segmentBytes))) {
      const name = `${segment}.gz`;
      const p = join(walDir(o.root), name);
      if (!existsSync(p)) throw new Error(`WAL segment ${name} is not in the archive ${walDir(o.root)} although pg_backup_stop waited for it`);
      wal.push({ ...(await entry(walDir(o.root), p)), path: name });
    }
    const streams = o.natsUrl ? await snapshotStreams(o.natsUrl, join(dir, "jetstream"), o.streams, log) : [];
    manifest = {
      format: 1,
      id,
      startedAt,
      finishedAt: new Date().toISOString(),
      serverVersion: setting("server_version"),
      startLsn: started[0]!.lsn,
      stopLsn,
      startWal,
      stopWal: stopwal,
      dirs,
      files,
      wal,
      streams,
    };
  } finally {
    await client.end();
  }
  // Last, and atomically: a directory without manifest.json is an unfinished backup.
  writeFileSync(join(dir, "manifest.json.partial"), JSON.stringify(manifest, null, 1));
  renameSync(join(dir, "manifest.json.partial"), join(dir, "manifest.json"));
  const bytes = manifest.files.reduce((s, f) => s + f.size, 0) + manifest.streams.reduce((s, f) => s + f.size, 0);
  log(`backup ${id}: done, ${(bytes / 1e6).toFixed(1)} MB, WAL ${manifest.startWal}..${manifest.stopWal}, ${manifest.streams.length} streams`);
  const removed = o.keep ? prune(o.root, o.keep, log) : [];
  return { id, dir, manifest, bytes, removed };
}

/** The finished backups under `root`, oldest first. */
export function listBackups(root: string): { id: string; dir: string; manifest: Manifest }[] {
  if (!existsSync(baseDir(root))) return [];
  return readdirSync(baseDir(root))
    .sort()
    .filter((id) => existsSync(join(baseDir(root), id, "manifest.json")))
    .map((id) => ({ id, dir: join(baseDir(root), id), manifest: JSON.parse(readFileSync(join(baseDir(root), id, "manifest.json"), "utf8")) as Manifest }));
}

/**
 * Keeps the newest `keep` finished backups; removes older ones, unfinished ones older than
 * the newest finished, and archived WAL older than the oldest kept backup's start.
 */
export function prune(root: string, keep: number, log: (line: string) => void = () => {}): string[] {
  const all = listBackups(root);
  const removed: string[] = [];
  const kept = all.slice(-keep);
  for (const b of all.slice(0, Math.max(0, all.length - keep))) {
    rmSync(b.dir, { recursive: true, force: true });
    removed.push(b.id);
  }
  const newest = kept.at(-1)?.id;
  if (newest)
    for (const id of readdirSync(baseDir(root)))
      if (id < newest && !existsSync(join(baseDir(root), id, "manifest.json"))) {
        rmSync(join(baseDir(root), id), { recursive: true, force: true });
        removed.push(id);
      }
  const oldest = kept[0]?.manifest.startWal;
  let walRemoved = 0;
  if (oldest && existsSync(walDir(root)))
    for (const name of readdirSync(walDir(root))) {
      // Segments (and their .partial copies) before the oldest kept start, on any timeline up to its; .history files stay.
      if (!/^[0-9A-F]{24}/.test(name) || name.endsWith(".history")) continue;
      if (name.slice(0, 8) <= oldest.slice(0, 8) && name.slice(8, 24) < oldest.slice(8, 24)) {
        rmSync(join(walDir(root), name), { force: true });
        walRemoved++;
      }
    }
  if (removed.length || walRemoved) log(`retention (keep ${keep}): removed ${removed.length} backups (${removed.join(", ") || "none"}) and ${walRemoved} WAL segments`);
  return removed;
}

/** Checks a backup against its manifest: every file there, of its size and checksum. Returns the problems found. */
export async function verifyBackup(root: string, id: string): Promise<string[]> {
  const dir = join(baseDir(root), id);
  const path = join(dir, "manifest.json");
  if (!existsSync(path)) return [`${id}: no manifest.json (an unfinished or foreign backup)`];
  const manifest = JSON.parse(readFileSync(path, "utf8")) as Manifest;
  const problems: string[] = [];
  const check = async (base: string, f: FileEntry, what: string) => {
    const p = join(base, f.path);
    if (!existsSync(p)) return problems.push(`${what} ${f.path}: missing`);
    const size = statSync(p).size;
    if (size !== f.size) return problems.push(`${what} ${f.path}: ${size} bytes, the manifest says ${f.size}`);
    if ((await sha256(p)) !== f.sha256) problems.push(`${what} ${f.path}: checksum differs from the manifest`);
    return undefined;
  };
  for (const f of manifest.files) await check(join(dir, "data"), f, "file");
  for (const f of manifest.wal) await check(walDir(root), f, "WAL segment");
  for (const s of manifest.streams) await check(join(dir, "jetstream"), { path: s.file, size: s.size, sha256: s.sha256 }, `stream ${s.name}`);
  return problems;
}

export interface RestoreOptions {
  root: string;
  /** The backup to restore (the newest by default). */
  id?: string;
  /** An empty (or absent) directory to lay the cluster out in. */
  targetDir: string;
  /** Replay WAL up to this instant only (point-in-time recovery); to the end of the archive by default. */
  targetTime?: Date;
  log?: (line: string) => void;
}

/**
 * Lays a verified base backup out in `targetDir`, ready for recovery: start PostgreSQL on
 * it (startPostgres) and it replays the archive, then promotes itself. Refuses a backup
 * whose files do not match its manifest.
 */
export async function prepareRestore(o: RestoreOptions): Promise<Manifest> {
  const log = o.log ?? (() => {});
  const backups = listBackups(o.root);
  const chosen = o.id ? backups.find((b) => b.id === o.id) : backups.at(-1);
  if (!chosen) throw new Error(o.id ? `no finished backup ${o.id} under ${baseDir(o.root)}` : `no finished backup under ${baseDir(o.root)}`);
  const problems = await verifyBackup(o.root, chosen.id);
  if (problems.length) throw new Error(`backup ${chosen.id} failed its integrity check:\n  ${problems.join("\n  ")}`);
  log(`backup ${chosen.id}: ${chosen.manifest.files.length} files and ${chosen.manifest.wal.length} WAL segments match the manifest`);
  if (existsSync(o.targetDir) && readdirSync(o.targetDir).length > 0) throw new Error(`${o.targetDir} is not empty: restore into a new directory (move the old one aside first)`);
  mkdirSync(o.targetDir, { recursive: true, mode: 0o700 });
  const data = join(chosen.dir, "data");
  for (const d of chosen.manifest.dirs) mkdirSync(join(o.targetDir, d), { recursive: true });
  mkdirSync(join(o.targetDir, "pg_wal", "archive_status"), { recursive: true });
  for (const f of chosen.manifest.files) copyFileSync(join(data, f.path), join(o.targetDir, f.path));
  copyFileSync(join(chosen.dir, "backup_label"), join(o.targetDir, "backup_label"));
  const q = (p: string) => `'${p.replace(/'/g, "''")}'`;
  const settings = [
    "",
    `# restored from backup ${chosen.id} (npm run restore)`,
    `restore_command = ${q(`test -f '${walDir(o.root)}/%f.gz' && gunzip -c '${walDir(o.root)}/%f.gz' > '%p'`)}`,
    "recovery_target_action = 'promote'",
    // PostgreSQL's timestamptz input: "2026-12-07 11:30:00.123+00" (it refuses the ISO "T…Z" form here).
    ...(o.targetTime ? [`recovery_target_time = ${q(o.targetTime.toISOString().replace("T", " ").replace("Z", "+00"))}`] : []),
    "",
  ];
  appendFileSync(join(o.targetDir, "postgresql.auto.conf"), settings.join("\n"));
  writeFileSync(join(o.targetDir, "recovery.signal"), "");
  chmodSync(o.targetDir, 0o700);
  if (process.getuid?.() === 0) spawnSync("chown", ["-R", "postgres:postgres", o.targetDir]);
  log(`backup ${chosen.id}: laid out in ${o.targetDir}; PostgreSQL replays ${walDir(o.root)} from ${chosen.manifest.startWal}${o.targetTime ? ` up to ${o.targetTime.toISOString()}` : " to its end"} when started`);
  return chosen.manifest;
}

/** Waits until a restored server has finished recovery (promoted: no longer in recovery). */
export async function waitForRecovery(databaseUrl: string, timeoutMs = 300_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const client = new pg.Client({ connectionString: databaseUrl });
    try {
      await client.connect();
      const { rows } = await client.query<{ r: boolean }>("SELECT pg_is_in_recovery() AS r");
      if (!rows[0]!.r) return;
    } catch {
      // starting up
    } finally {
      await client.end().catch(() => {});
    }
    if (Date.now() > deadline) throw new Error(`the restored server was still recovering after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

// ---- JetStream

const codec = { encode: (o: unknown) => new TextEncoder().encode(JSON.stringify(o)), decode: (b: Uint8Array) => JSON.parse(new TextDecoder().decode(b)) as Record<string, unknown> };

async function apiRequest(nc: NatsConnection, subject: string, body: unknown, timeout = 10_000): Promise<Record<string, unknown>> {
  const res = codec.decode((await nc.request(subject, codec.encode(body), { timeout })).data);
  const error = res["error"] as { description?: string; code?: number } | undefined;
  if (error) throw new Error(`${subject}: ${error.description ?? JSON.stringify(error)}`);
  return res;
}

/** Snapshots streams (all by default) into `dir`: <name>.snapshot (the server's packed form) and <name>.json. */
export async function snapshotStreams(natsUrl: string, dir: string, names: string[] | undefined, log: (line: string) => void = () => {}): Promise<StreamEntry[]> {
  mkdirSync(dir, { recursive: true });
  const nc = await connect({ servers: natsUrl, name: "backup" });
  try {
    let streams = names;
    if (!streams) {
      const res = await apiRequest(nc, "$JS.API.STREAM.NAMES", {});
      streams = ((res["streams"] as string[] | null) ?? []).sort();
    }
    const out: StreamEntry[] = [];
    for (const name of streams) {
      const inbox = `_INBOX.backup.${name}.${Math.random().toString(36).slice(2)}`;
      const chunks: Uint8Array[] = [];
      const sub = nc.subscribe(inbox);
      const done = (async () => {
        for await (const m of sub) {
          // An empty message ends the snapshot; every chunk is acknowledged (flow control).
          if (m.data.length === 0) {
            const status = m.headers?.code;
            if (status && status >= 400) throw new Error(`snapshot of ${name}: ${m.headers?.description ?? status}`);
            break;
          }
          chunks.push(m.data);
          if (m.reply) m.respond();
        }
      })();
      const info = await apiRequest(nc, `$JS.API.STREAM.SNAPSHOT.${name}`, { deliver_subject: inbox, chunk_size: 128 * 1024, jsck: true });
      await done;
      sub.unsubscribe();
      const file = `${name}.snapshot`;
      await writeFile(join(dir, file), Buffer.concat(chunks));
      writeFileSync(join(dir, `${name}.json`), JSON.stringify({ config: info["config"], state: info["state"] }, null, 1));
      const e = await entry(dir, join(dir, file));
      const state = info["state"] as StreamEntry["info"]["state"];
      out.push({ name, file, size: e.size, sha256: e.sha256, info: { config: info["config"] as Record<string, unknown>, state } });
      log(`stream ${name}: ${state.messages} messages (${state.first_seq}..${state.last_seq}), snapshot ${(e.size / 1e3).toFixed(0)} kB`);
    }
    return out;
  } finally {
    await nc.close();
  }
}

/** Restores the backup's stream snapshots into a JetStream that does not have them (a fresh or wiped server). */
export async function restoreStreams(root: string, id: string | undefined, natsUrl: string, log: (line: string) => void = () => {}): Promise<{ name: string; messages: number }[]> {
  const chosen = id ? listBackups(root).find((b) => b.id === id) : listBackups(root).at(-1);
  if (!chosen) throw new Error(`no finished backup under ${baseDir(root)}`);
  const nc = await connect({ servers: natsUrl, name: "restore" });
  try {
    const out: { name: string; messages: number }[] = [];
    for (const s of chosen.manifest.streams) {
      const data = readFileSync(join(chosen.dir, "jetstream", s.file));
      const res = await apiRequest(nc, `$JS.API.STREAM.RESTORE.${s.name}`, { config: s.info.config, state: s.info.state });
      const deliver = res["deliver_subject"] as string;
      const chunk = 128 * 1024;
      for (let off = 0; off < data.length; off += chunk) await nc.request(deliver, data.subarray(off, off + chunk), { timeout: 10_000 });
      const end = codec.decode((await nc.request(deliver, new Uint8Array(0), { timeout: 60_000 })).data);
      if (end["error"]) throw new Error(`restoring stream ${s.name}: ${JSON.stringify(end["error"])}`);
      const messages = Number((end["state"] as { messages?: number } | undefined)?.messages ?? 0);
      log(`stream ${s.name}: restored, ${messages} messages`);
      out.push({ name: s.name, messages });
    }
    return out;
  } finally {
    await nc.close();
  }
}
