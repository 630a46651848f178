// Benchmark: the fleet query language at 100,000 kiosks, beside hand-written SQL in the same run.
//   fleet: QueryKiosks over gRPC on a fleet process (token check, parse, compile, two
//     statements in parallel — the sorted page with its total, the grouped aggregates —
//     and the answer encoded), timed at the client.
//   compiled SQL: the same two statements fleet's compiler writes, sent straight through pg
//     (the language's SQL without the service around it).
//   baseline: the equivalent SQL written by hand (page + total, grouped count), two
//     statements in parallel through pg.
// The three are interleaved run by run, so the machine's load falls on all of them alike.
// 100,000 kiosks are inserted straight into fleet's table (INSERT … SELECT generate_series)
// after fleet has migrated it, with what fleet's projections would hold: 20 SKUs' stock at
// every kiosk (2,000,000 rows of kiosk_stock) and open alerts at about 1 kiosk in 23 (a
// second at 1 in 115), resolved ones beside them; then ANALYZEd.
// Run: npm run bench:fleet-query (BENCH_KIOSKS=100000 BENCH_RUNS=200; loopback only;
// BENCH_ONLY=broad,commerce runs the scenarios whose names start with those words;
// BENCH_EXPLAIN=1 prints each statement's plan).
import { createClient, type Interceptor } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import pg from "pg";
import { AuthService } from "@adminkiosk/proto/adminkiosk/auth/v1/auth_pb";
import { FleetQueryService } from "@adminkiosk/proto/adminkiosk/fleet/v1/query_pb";
import { compileQuery, parseQuery } from "../services/fleet/src/query/index.js";
import { loadAverage, machine, percentile } from "./kiosk-fleet.js";
import { benchAdmin, withStack } from "./stack.js";

const kioskCount = Number(process.env["BENCH_KIOSKS"] ?? 100_000);
const runs = Number(process.env["BENCH_RUNS"] ?? 200);
const log = (line: string) => console.error(`[${new Date().toISOString().slice(11, 19)}] ${line}`);

interface Scenario {
  name: string;
  query: string;
  /** The same answer written by hand: the page (a top-N sort) and the groups, whose counts add up to the total. */
  page: string;
  groups: string;
}

const paper = "(state->>'paperLevelPercent')::float8";
const scenarios: Scenario[] = [
  {
    name: "selective: one site's kiosks on app 2.3 low on paper, online",
    query: "group = madrid-airport and app = 2.3 and paper < 20 and connected | sort paper | stats count() by status",
    page: `SELECT * FROM kiosks WHERE deleted_at IS NULL AND group_id = 'madrid-airport'
             AND (app_version = '2.3' OR app_version LIKE '2.3.%') AND ${paper} < 20 AND connected
           ORDER BY ${paper}, kiosk_id LIMIT 101`,
    groups: `SELECT CASE WHEN connected THEN CASE WHEN state->>'printerStatus' = 'FAULT' OR state->>'scannerStatus' = 'FAULT'
               OR jsonb_array_length(COALESCE(state->'errors', '[]')) > 0 OR ${paper} < 10 THEN 'alerting' ELSE 'online' END
               WHEN last_seen_at IS NULL THEN 'provisioned' ELSE 'offline' END AS status, count(*) AS n
             FROM kiosks WHERE deleted_at IS NULL AND group_id = 'madrid-airport'
               AND (app_version = '2.3' OR app_version LIKE '2.3.%') AND ${paper} < 20 AND connected
             GROUP BY 1 ORDER BY 1`,
  },
  {
    name: "broad: airports seen in the last hour with paper under 50 %, by group",
    query: "tag = airport and last_seen_age < 1h and paper < 50 | sort paper desc, count() desc | stats count() by group",
    page: `SELECT * FROM kiosks WHERE deleted_at IS NULL AND tags @> ARRAY['airport']
             AND last_seen_at > now() - interval '1 hour' AND ${paper} < 50
           ORDER BY ${paper} DESC, kiosk_id LIMIT 101`,
    groups: `SELECT group_id, count(*) AS n FROM kiosks WHERE deleted_at IS NULL AND tags @> ARRAY['airport']
               AND last_seen_at > now() - interval '1 hour' AND ${paper} < 50
             GROUP BY group_id ORDER BY n DESC, group_id LIMIT 1001`,
  },
  {
    name: "commerce: seen in the last hour, under 5 of SKU-07 and an open alert, by group",
    query: 'stock("SKU-07") < 5 and alerts > 0 and last_seen_age < 1h | sort stock("SKU-07"), count() desc | stats count() by group',
    page: `SELECT k.* FROM kiosks k JOIN kiosk_stock s ON s.kiosk_id = k.kiosk_id AND s.sku = 'SKU-07'
           WHERE k.deleted_at IS NULL AND s.on_hand < 5 AND k.last_seen_at > now() - interval '1 hour'
             AND EXISTS (SELECT 1 FROM kiosk_alerts a WHERE a.kiosk_id = k.kiosk_id AND a.state <> 'resolved')
           ORDER BY s.on_hand, k.kiosk_id LIMIT 101`,
    groups: `SELECT k.group_id, count(*) AS n FROM kiosks k JOIN kiosk_stock s ON s.kiosk_id = k.kiosk_id AND s.sku = 'SKU-07'
             WHERE k.deleted_at IS NULL AND s.on_hand < 5 AND k.last_seen_at > now() - interval '1 hour'
               AND EXISTS (SELECT 1 FROM kiosk_alerts a WHERE a.kiosk_id = k.kiosk_id AND a.state <> 'resolved')
             GROUP BY k.group_id ORDER BY n DESC, k.group_id LIMIT 1001`,
  },
  {
    name: "whole fleet: every kiosk sorted by CPU, p95 CPU by app version",
    query: "| sort cpu desc | stats count(), p95(cpu) by app",
    page: `SELECT * FROM kiosks WHERE deleted_at IS NULL ORDER BY (state->>'cpuPercent')::float8 DESC NULLS LAST, kiosk_id LIMIT 101`,
    groups: `SELECT app_version, count(*) AS n, percentile_cont(0.95) WITHIN GROUP (ORDER BY (state->>'cpuPercent')::float8)
             FROM kiosks WHERE deleted_at IS NULL GROUP BY app_version ORDER BY fleet_version_key(app_version) LIMIT 1001`,
  },
];

await withStack({ PASSWORD_SCRYPT_LOG_N: "10" }, async ({ databaseUrl, auth, redisUrl, natsUrl, start }) => {
  const fleet = await start("fleet", {
    DATABASE_URL: databaseUrl,
    REDIS_URL: redisUrl,
    NATS_URL: natsUrl,
    AUTH_JWKS_URL: `${auth.url}/.well-known/jwks.json`,
    AUTH_URL: auth.url,
  });
  const db = new pg.Pool({ connectionString: databaseUrl, max: 4, options: "-c search_path=fleet" });
  db.on("error", () => {}); // an idle connection ended by the stack's teardown
  let t = performance.now();
  // Last seen within 30 minutes, or 2–3 hours ago: "last_seen_age < 1h" matches the same
  // kiosks however long the run takes (up to 30 minutes).
  const age = "CASE WHEN i % 3 = 0 THEN 7200 + (i * 37) % 3600 ELSE (i * 37) % 1800 END";
  // 20 cities × 5 kinds of site = 100 groups; versions, tags, telemetry spread by hashes of i.
  await db.query(
    `INSERT INTO kiosks (kiosk_id, name, latitude, longitude, timezone, tags, group_id, hardware_model, firmware_version, app_version,
       last_seen_at, connected, state, state_sampled_at)
     SELECT 'k-' || lpad(i::text, 6, '0'), 'Kiosk ' || i,
       c.lat + ((i * 7919) % 1000 - 500) / 5000.0, c.lon + ((i::bigint * 104729) % 1000 - 500) / 5000.0, 'UTC',
       CASE (i / 20) % 5 WHEN 0 THEN ARRAY['airport'] WHEN 1 THEN ARRAY['indoor', 'mall'] WHEN 2 THEN ARRAY['street'] WHEN 3 THEN ARRAY['indoor', 'station'] ELSE ARRAY[]::text[] END,
       c.name || '-' || (ARRAY['airport', 'mall', 'street', 'station', 'center'])[1 + (i / 20) % 5],
       'k2', '1.' || (i % 4), (ARRAY['2.2.9', '2.3.0', '2.3.1', '2.3.4', '2.4.0', '2.10.0'])[1 + (i * 31) % 6],
       CASE WHEN i % 50 = 7 THEN NULL ELSE now() - make_interval(secs => ${age}) END,
       i % 50 <> 7 AND i % 10 <> 3,
       CASE WHEN i % 50 = 7 THEN NULL ELSE jsonb_build_object('cpuPercent', (i * 13) % 100, 'temperatureCelsius', 30 + i % 20,
         'paperLevelPercent', (i * 17) % 101, 'cashLevelMinor', ((i * 101) % 50000)::text, 'printerStatus', CASE WHEN i % 97 = 0 THEN 'FAULT' ELSE 'OK' END,
         'scannerStatus', 'OK', 'errors', '[]'::jsonb) END,
       CASE WHEN i % 50 = 7 THEN NULL ELSE now() - make_interval(secs => ${age}) END
     FROM generate_series(1, $1) AS i
     CROSS JOIN LATERAL (SELECT (ARRAY['madrid', 'lisbon', 'paris', 'berlin', 'rome', 'prague', 'vienna', 'warsaw', 'dublin', 'oslo',
         'milan', 'porto', 'lyon', 'munich', 'brno', 'sevilla', 'valencia', 'hamburg', 'zurich', 'geneva'])[1 + i % 20] AS name,
       (ARRAY[40.4, 38.7, 48.9, 52.5, 41.9, 50.1, 48.2, 52.2, 53.3, 59.9, 45.5, 41.2, 45.8, 48.1, 49.2, 37.4, 39.5, 53.6, 47.4, 46.2])[1 + i % 20] AS lat,
       (ARRAY[-3.7, -9.1, 2.4, 13.4, 12.5, 14.4, 16.4, 21.0, -6.3, 10.8, 9.2, -8.6, 4.8, 11.6, 16.6, -6.0, -0.4, 10.0, 8.5, 6.1])[1 + i % 20] AS lon) AS c`,
    [kioskCount],
  );
  // The projections (stock.ts, open-alerts.ts): 20 SKUs at every kiosk, 0–49 units each.
  await db.query(
    `INSERT INTO kiosk_stock (kiosk_id, sku, on_hand, available, low_stock_threshold, updated_at)
     SELECT 'k-' || lpad(i::text, 6, '0'), 'SKU-' || lpad(j::text, 2, '0'), (i * 7919 + j * 104729) % 50, (i * 7919 + j * 104729) % 50, 5, now()
     FROM generate_series(1, $1) AS i, generate_series(1, 20) AS j`,
    [kioskCount],
  );
  await db.query(
    `INSERT INTO kiosk_alerts (alert_id, kiosk_id, rule_kind, severity, rule_name, state)
     SELECT s || '-' || i, 'k-' || lpad(i::text, 6, '0'), (ARRAY['low_paper', 'kiosk_offline', 'printer_fault', 'low_stock'])[1 + i % 4],
       (ARRAY['warning', 'critical', 'info'])[1 + i % 3], 'rule', CASE WHEN s = 'r' THEN 'resolved' WHEN s = 'b' THEN 'acknowledged' ELSE 'firing' END
     FROM generate_series(1, $1) AS i, unnest(ARRAY['a', 'b', 'r']) AS s
     WHERE (s = 'a' AND i % 23 = 1) OR (s = 'b' AND i % 115 = 1) OR (s = 'r' AND i % 10 = 2)`,
    [kioskCount],
  );
  await db.query("ANALYZE kiosks");
  await db.query("ANALYZE kiosk_stock");
  await db.query("ANALYZE kiosk_alerts");
  log(`inserted ${kioskCount} kiosks in ${((performance.now() - t) / 1000).toFixed(1)} s`);

  const { tokens } = await createClient(AuthService, createGrpcTransport({ baseUrl: auth.url })).login(benchAdmin);
  const bearer: Interceptor = (next) => (req) => {
    req.header.set("authorization", `Bearer ${tokens!.accessToken}`);
    return next(req);
  };
  const api = createClient(FleetQueryService, createGrpcTransport({ baseUrl: fleet.url, interceptors: [bearer] }));

  const out: string[] = [];
  const only = (process.env["BENCH_ONLY"] ?? "").split(",").filter(Boolean);
  for (const s of scenarios.filter((x) => only.length === 0 || only.some((o) => x.name.startsWith(o)))) {
    const compiled = compileQuery(parseQuery(s.query));
    const page = compiled.page(101, 0, false);
    const stats = compiled.stats!;
    const variants: Record<string, () => Promise<number>> = {
      fleet: async () => (await api.queryKiosks({ query: s.query, pageSize: 100 })).totalSize,
      compiled: async () => Number((await Promise.all([db.query(page.sql, page.params), db.query(stats.sql, stats.params)]))[1].rows[0]?.total ?? 0),
      baseline: async () => (await Promise.all([db.query(s.page), db.query<{ n: string }>(s.groups)]))[1].rows.reduce((sum, r) => sum + Number(r.n), 0),
    };
    if (process.env["BENCH_EXPLAIN"]) {
      for (const [label, sql, ps] of [["compiled page", page.sql, page.params], ["compiled stats", stats.sql, stats.params], ["hand page", s.page, []], ["hand groups", s.groups, []]] as const) {
        const plan = await db.query<{ "QUERY PLAN": string }>(`EXPLAIN (ANALYZE, BUFFERS) ${sql}`, [...ps]);
        log(`${s.name} — ${label}:\n${plan.rows.map((r) => r["QUERY PLAN"]).join("\n")}`);
      }
    }
    // Same answer first (the totals agree), then warm-up, then interleaved runs.
    const totals = await Promise.all(Object.values(variants).map((v) => v()));
    if (new Set(totals).size !== 1) throw new Error(`${s.name}: the totals differ: ${totals.join(", ")}`);
    for (let i = 0; i < 10; i++) for (const v of Object.values(variants)) await v();
    const times: Record<string, number[]> = { fleet: [], compiled: [], baseline: [] };
    const loadBefore = loadAverage();
    t = performance.now();
    for (let i = 0; i < runs; i++) {
      for (const [name, v] of Object.entries(variants)) {
        const t0 = performance.now();
        await v();
        times[name]!.push(performance.now() - t0);
      }
    }
    const ms = (n: number) => n.toFixed(1);
    const cell = (name: string) => `${ms(percentile(times[name]!, 50))} / ${ms(percentile(times[name]!, 95))}`;
    const line = `| ${s.name} (${totals[0]} match) | \`${s.query.replaceAll("|", "\\|")}\` | **${cell("fleet")}** | ${cell("compiled")} | ${cell("baseline")} | ${(percentile(times["compiled"]!, 95) / percentile(times["baseline"]!, 95)).toFixed(2)} | ${loadBefore} → ${loadAverage()} |`;
    out.push(line);
    log(line);
    log(`  ${runs} × 3 runs in ${((performance.now() - t) / 1000).toFixed(1)} s`);
  }
  await db.end();
  console.log(`\n${machine()} · ${kioskCount} kiosks in PostgreSQL · ${runs} runs each, interleaved · BENCH_KIOSKS=${kioskCount} BENCH_RUNS=${runs} npm run bench:fleet-query\n`);
  console.log("| scenario | query | fleet QueryKiosks p50 / p95 ms | its SQL alone p50 / p95 ms | hand-written SQL p50 / p95 ms | SQL p95 ratio (compiled / hand) | load before → after |");
  console.log("|---|---|---|---|---|---|---|");
  for (const line of out) console.log(line);
});
