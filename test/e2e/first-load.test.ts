// The admin web's first load stays within issue 20's budget: ≤ 120 kB gzip of JavaScript
// before anything is drawn (index.html's module script and its modulepreloads), as
// scripts/web-first-load.mjs measures it on the production build. The shell is React, the
// router, the layout and the session; the platform (Connect, protobuf, TanStack Query,
// generated code) and every page load on demand (docs/web.md, "First load").
import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { expect, it } from "vitest";
import { ensureWebBuild, repoRoot, webDistDir } from "@adminkiosk/devstack";

it("the production build's first load is at most 120 kB gzip of JavaScript", async () => {
  await ensureWebBuild(repoRoot);
  const run = promisify(execFile);
  const { stdout } = await run(process.execPath, [join(repoRoot, "scripts/web-first-load.mjs"), "--dist", webDistDir(repoRoot), "--json"]).catch((err: { stdout?: string; stderr?: string }) => {
    throw new Error(`over budget:\n${err.stdout ?? ""}${err.stderr ?? ""}`);
  });
  const report = JSON.parse(stdout) as { files: { file: string; gzip: number }[]; totalGzip: number };
  expect(report.files.length).toBeGreaterThan(0);
  expect(report.totalGzip).toBeLessThanOrEqual(120_000);
  // The shell holds no generated code or protobuf runtime: their descriptors boot elsewhere.
  for (const f of report.files) expect(f.file).not.toMatch(/_pb-|platform-/);
}, 120_000);
