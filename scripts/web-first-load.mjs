#!/usr/bin/env node
// The admin web's first load: the JavaScript web/dist/index.html loads before anything is drawn
// (its module script and the chunks it modulepreloads), gzip-compressed as vite's build output
// reports it (zlib's default level). Fails above the budget (issue 20: 120 kB).
//
//   npm run build:web && node scripts/web-first-load.mjs [--budget-kb 120] [--json]
//
// test/e2e/first-load.test.ts runs it after building; docs/web.md, "First load", has the numbers.
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";

const args = process.argv.slice(2);
const option = (name, fallback) => {
  const at = args.indexOf(name);
  return at >= 0 ? args[at + 1] : fallback;
};
const budgetKb = Number(option("--budget-kb", "120"));
const dist = option("--dist", join(dirname(fileURLToPath(import.meta.url)), "..", "web", "dist"));

const html = readFileSync(join(dist, "index.html"), "utf8");
const scripts = [...html.matchAll(/<script[^>]*type="module"[^>]*src="([^"]+)"/g)].map((m) => m[1]);
const preloads = [...html.matchAll(/<link[^>]*rel="modulepreload"[^>]*href="([^"]+)"/g)].map((m) => m[1]);
if (scripts.length === 0) throw new Error(`${dist}/index.html loads no module script`);
const files = [...new Set([...scripts, ...preloads])].map((src) => {
  const code = readFileSync(join(dist, src.replace(/^\//, "")));
  return { file: src, bytes: code.length, gzip: gzipSync(code).length };
});
const total = files.reduce((n, f) => n + f.gzip, 0);
const kb = (n) => (n / 1000).toFixed(2);
if (args.includes("--json")) console.log(JSON.stringify({ files, totalGzip: total, budgetKb }));
else {
  for (const f of files) console.log(`${f.file.padEnd(40)} ${kb(f.bytes).padStart(8)} kB  gzip ${kb(f.gzip).padStart(7)} kB`);
  console.log(`first load: ${kb(total)} kB gzip (budget ${budgetKb} kB)`);
}
if (total > budgetKb * 1000) {
  console.error(`the first load is ${kb(total)} kB gzip, over the ${budgetKb} kB budget`);
  process.exit(1);
}
