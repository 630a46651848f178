// Counts the statements each Node process sends to PostgreSQL, by text (first 140 characters),
// and writes them as JSON when the process exits. The services run as child processes of a
// bench and inherit NODE_OPTIONS, so one variable counts them all:
//   NODE_OPTIONS="--import $PWD/bench/pg-statements.mjs" BENCH_SINGLE=0 npm run bench:orders
// (an absolute path: the services run in their own folders)
//   node bench/pg-statements.mjs --summary <sales>   (statements per sale by process, top texts)
// Files go to BENCH_PG_STATEMENTS_DIR (default <tmp>/adminkiosk-pg-statements), one per process.
// A plain .mjs (not .ts) so it loads before tsx does.
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import os from "node:os";
import { join } from "node:path";

const dir = process.env.BENCH_PG_STATEMENTS_DIR ?? join(os.tmpdir(), "adminkiosk-pg-statements");

if (process.argv[2] === "--summary") {
  const sales = Number(process.argv[3] ?? 1);
  for (const file of readdirSync(dir).filter((f) => f.endsWith(".json"))) {
    const { program, counts } = JSON.parse(readFileSync(join(dir, file), "utf8"));
    const total = counts.reduce((sum, [, n]) => sum + n, 0);
    if (total < sales) continue;
    // Texts with literals in them (idempotency.ts, the relay's UPDATE) are grouped by their start.
    const grouped = new Map();
    for (const [text, n] of counts) grouped.set(text.slice(0, 60), (grouped.get(text.slice(0, 60)) ?? 0) + n);
    console.log(`${program}: ${(total / sales).toFixed(1)} statements per sale`);
    for (const [text, n] of [...grouped].sort((a, b) => b[1] - a[1]).slice(0, 12)) console.log(`  ${(n / sales).toFixed(2)}  ${text}`);
  }
} else {
  let pg;
  try {
    pg = createRequire(join(process.cwd(), "package.json"))("pg");
  } catch {
    pg = undefined; // a process that does not use pg (nats-server's wrapper, npm itself)
  }
  if (pg) {
    const counts = new Map();
    const query = pg.Client.prototype.query;
    pg.Client.prototype.query = function (config, values, callback) {
      const text = (typeof config === "string" ? config : (config?.text ?? "?")).replace(/\s+/g, " ").slice(0, 140);
      counts.set(text, (counts.get(text) ?? 0) + 1);
      return query.call(this, config, values, callback);
    };
    process.on("exit", () => {
      if (counts.size === 0) return;
      mkdirSync(dir, { recursive: true });
      const program = process.argv.slice(1).find((a) => a.endsWith(".ts")) ?? process.argv[1] ?? "node";
      writeFileSync(join(dir, `${process.pid}.json`), JSON.stringify({ program, counts: [...counts].sort((a, b) => b[1] - a[1]) }));
    });
  }
}
