// Many light kiosks (bench/light-kiosk.ts) across several child processes, and the
// numbers the benchmarks need from /proc (RSS, CPU seconds) and `uptime`.
import { fork, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import { repoRoot } from "@adminkiosk/devstack";

export interface Received {
  kioskId: string;
  commandId: string;
  at: number;
}

export interface KioskFleet {
  /** Opens every kiosk's stream; resolves when all are welcomed (or failed). */
  open(): Promise<{ ok: number; failed: number; unwelcomed: number; seconds: number; lastErrors: string[] }>;
  /** Every command any kiosk received, in arrival order at this process. */
  received: Received[];
  onReceived(listener: (r: Received) => void): void;
  /** Each kiosk sends `batches` telemetry batches; resolves when all are acked by link. */
  telemetry(batches: number, samplesPerBatch: number): Promise<number>;
  stats(): Promise<{ open: number; endedAfterOpen: number; errors: number; lastError: string; rssMiB: number; rewelcomed: number; lastRewelcomeMs: number; pushbacks: number; retriedErrors: number }[]>;
  /** From now on every kiosk reconnects (to `url`, if given) as the SDK does when its stream ends, and those welcomed again are counted (stats). */
  storm(url?: string): void;
  pids: number[];
  close(): Promise<void>;
}

export function startKioskFleet(o: {
  urls: string[];
  kiosks: [string, string][];
  processes: number;
  streamsPerConnection?: number;
  heartbeatMs?: number;
  window?: number;
}): KioskFleet {
  const children: ChildProcess[] = [];
  const received: Received[] = [];
  const listeners: ((r: Received) => void)[] = [];
  const waiters = new Map<string, ((m: Record<string, unknown>) => void)[]>();
  const wait = (child: ChildProcess, type: string) =>
    new Promise<Record<string, unknown>>((resolve) => {
      const key = `${child.pid}:${type}`;
      waiters.set(key, [...(waiters.get(key) ?? []), resolve]);
    });
  for (let p = 0; p < o.processes; p++) {
    const child = fork(join(repoRoot, "bench/light-kiosk.ts"), [], {
      execArgv: ["--import", "tsx", "--max-old-space-size=8192"],
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    });
    child.on("message", (m: Record<string, unknown>) => {
      if (m["type"] === "commands") {
        for (const [kioskId, commandId, at] of m["got"] as [string, string, number][]) {
          const r = { kioskId, commandId, at };
          received.push(r);
          listeners.forEach((l) => l(r));
        }
        return;
      }
      const key = `${child.pid}:${String(m["type"])}`;
      const w = waiters.get(key)?.shift();
      w?.(m);
    });
    children.push(child);
  }
  const share = (p: number) => o.kiosks.filter((_, i) => i % o.processes === p);
  return {
    received,
    pids: children.map((c) => c.pid!),
    onReceived: (l) => void listeners.push(l),
    async open() {
      const results = await Promise.all(
        children.map((c, p) => {
          const done = wait(c, "opened");
          c.send({ type: "open", urls: o.urls, kiosks: share(p), streamsPerConnection: o.streamsPerConnection ?? 1000, heartbeatMs: o.heartbeatMs ?? 30_000, window: o.window ?? 200 });
          return done;
        }),
      );
      return {
        ok: results.reduce((n, r) => n + Number(r["ok"]), 0),
        failed: results.reduce((n, r) => n + Number(r["failed"]), 0),
        unwelcomed: results.reduce((n, r) => n + Number(r["unwelcomed"] ?? 0), 0),
        // Until the last welcome (streams that failed or were never welcomed do not stretch it).
        seconds: Math.max(...results.map((r) => Number(r["ms"]))) / 1000,
        lastErrors: results.map((r) => String(r["lastError"] ?? "")).filter(Boolean),
      };
    },
    async telemetry(batches, samplesPerBatch) {
      const t0 = performance.now();
      await Promise.all(
        children.map((c) => {
          const done = wait(c, "telemetry-acked");
          c.send({ type: "telemetry", batches, samplesPerBatch });
          return done;
        }),
      );
      return (performance.now() - t0) / 1000;
    },
    storm(url) {
      for (const c of children) c.send({ type: "storm", url });
    },
    async stats() {
      return (await Promise.all(
        children.map((c) => {
          const done = wait(c, "stats");
          c.send({ type: "stats" });
          return done;
        }),
      )) as never;
    },
    async close() {
      await Promise.all(
        children.map(async (c) => {
          if (c.exitCode !== null) return;
          const done = Promise.race([wait(c, "closed"), new Promise((r) => setTimeout(r, 5_000))]);
          c.send({ type: "close" });
          await done;
          await new Promise((r) => setTimeout(r, 300));
          if (c.exitCode === null) c.kill("SIGKILL");
        }),
      );
    },
  };
}

export function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return Number(m?.[1] ?? 0) / 1024;
}

/** User + system CPU seconds of a live process; 0 once it has exited. */
export function cpuSeconds(pid: number): number {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return 0;
  }
  const fields = stat.split(") ")[1]!.split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

export const loadAverage = () => os.loadavg().map((l) => l.toFixed(2)).join(", ");

export const machine = () =>
  `${new Date().toISOString().replace("T", " ").slice(0, 16)} UTC · ${os.cpus().length} × ${os.cpus()[0]?.model ?? "?"} · ${Math.round(os.totalmem() / 2 ** 30)} GiB · Node ${process.version}`;

export const memAvailableMiB = () => Number(/MemAvailable:\s+(\d+) kB/.exec(readFileSync("/proc/meminfo", "utf8"))?.[1] ?? 0) / 1024;

export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}
