// A launcher (npm start, a test worker, a bench) that dies without stopping what it started —
// SIGKILL, an out-of-memory kill — leaves nothing running: its services, Redis and PostgreSQL are
// stopped by its reaper, and their ports are free again.
import { spawn } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { expect, it } from "vitest";
import { freePort, waitFor, waitForPort } from "../src/index.js";

const accepts = (port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = net.connect(port, "127.0.0.1");
    socket.once("connect", () => (socket.destroy(), resolve(true)));
    socket.once("error", () => resolve(false));
  });

it("what a launcher started stops when the launcher is killed", async () => {
  const dir = mkdtempSync(join(tmpdir(), "adminkiosk-reaper-"));
  const [programPort, redisPort, pgPort] = [await freePort(), await freePort(), await freePort()];
  writeFileSync(join(dir, "program.mts"), `import http from "node:http"; http.createServer((_, res) => res.end("ok")).listen(${programPort}, "127.0.0.1");\n`);
  const devstack = pathToFileURL(join(import.meta.dirname, "../src/index.ts")).href;
  writeFileSync(
    join(dir, "launcher.mts"),
    `import { startPostgres, startProgramProcess, startRedis } from ${JSON.stringify(devstack)};
await startProgramProcess("program", ${JSON.stringify(join(dir, "program.mts"))}, ${JSON.stringify(process.cwd())}, ${programPort}, {}, () => {});
await startRedis(${JSON.stringify(join(dir, "redis"))}, ${redisPort});
await startPostgres(${JSON.stringify(join(dir, "pg"))}, ${pgPort});
console.log("started");
setInterval(() => {}, 60_000);
`,
  );
  const launcher = spawn(process.execPath, ["--import", "tsx", join(dir, "launcher.mts")], { stdio: ["ignore", "pipe", "inherit"] });
  const started = new Promise<void>((resolve, reject) => {
    launcher.stdout.on("data", (d: Buffer) => d.toString().includes("started") && resolve());
    launcher.once("exit", (code) => reject(new Error(`the launcher exited with ${code}`)));
  });
  await started;
  await waitForPort(programPort, 10_000, "program");
  expect(await accepts(redisPort)).toBe(true);
  expect(await accepts(pgPort)).toBe(true);

  launcher.kill("SIGKILL");
  await waitFor("the program, Redis and PostgreSQL to stop", async () => (!(await accepts(programPort)) && !(await accepts(redisPort)) && !(await accepts(pgPort)) ? true : undefined), { timeout: 30_000 });
}, 60_000);
