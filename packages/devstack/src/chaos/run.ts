// One chaos run: the platform up, the live load on it, faults from the seeded PRNG for the
// given time, then the load's traffic stopped, the platform left to settle, and the
// invariants checked and reported (text on the console, markdown to a file).
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import { dirname, join } from "node:path";
import { KioskService, KioskStatus } from "@adminkiosk/proto/adminkiosk/fleet/v1/fleet_pb";
import { OrderService } from "@adminkiosk/proto/adminkiosk/orders/v1/orders_pb";
import { waitFor } from "../testing.js";
import { runFaults, type FaultRecord } from "./faults.js";
import { checkInvariants, type InvariantResult } from "./invariants.js";
import { chaosTag, Load } from "./load.js";
import { ChaosPlatform, chaosSettings } from "./platform.js";
import { rng } from "./prng.js";

export interface ChaosOptions {
  minutes: number;
  seed: number;
  kiosks: number;
  sellers: number;
  replicas: number;
  links: number;
  /** Only these fault kinds (all when empty). */
  kinds?: string[];
  /** Where the markdown report goes (none when undefined). */
  reportFile?: string;
  log?: (line: string) => void;
}

export interface ChaosResult {
  seed: number;
  faults: FaultRecord[];
  invariants: InvariantResult[];
  pass: boolean;
  report: string;
  /** From the last fault's end until every invariant passed (undefined: not within the settle bound). */
  settledMs: number | undefined;
  /** From the last fault's end until every kiosk was ONLINE at fleet. */
  onlineMs: number | undefined;
  logDir: string;
}

const s = chaosSettings;
/**
 * After the last fault: a held order can wait for its payment (PAYMENT_CONFIRM_TIMEOUT) and
 * its hold (ORDER_HOLD_SECONDS); a kiosk's presence expires after PRESENCE_TTL_SECONDS and is
 * swept every PRESENCE_SWEEP_MS; a command is resent after COMMAND_RESEND_MS. A minute on top
 * for a slow machine.
 */
export const settleBoundMs = (s.orderHoldSeconds + s.paymentConfirmTimeoutSeconds + s.presenceTtlSeconds) * 1000 + s.presenceSweepMs + 2 * s.commandResendMs + 60_000;
/** Kiosks reconnect within their backoff (2 s at most here); fleet sees them once link's event is applied. */
export const onlineBoundMs = s.presenceTtlSeconds * 1000 + s.presenceSweepMs + 2_000 + 60_000;
/** After one fault: processes restarted by then (a start takes seconds on a busy machine), kiosks reconnected. */
const recoveryBoundMs = 90_000;

export async function runChaos(options: ChaosOptions): Promise<ChaosResult> {
  const log = options.log ?? ((line: string) => console.log(line));
  const started = Date.now();
  const stamp = (line: string) => log(`[${((Date.now() - started) / 1000).toFixed(1).padStart(6)} s] ${line}`);
  const random = rng(options.seed);
  stamp(`chaos run: seed ${options.seed} (replay with --seed ${options.seed}), ${options.minutes} min, ${options.kiosks} kiosks, ${options.replicas} replicas, ${options.links} link replicas`);
  const dir = mkdtempSync(join(os.tmpdir(), "adminkiosk-chaos-"));
  const platform = new ChaosPlatform({ dir, replicas: options.replicas, links: options.links, log: stamp });
  const load = new Load(
    platform,
    {
      kiosks: options.kiosks,
      sellers: options.sellers,
      telemetryMs: 2_000,
      commandEveryMs: 2_000,
      // Enough for the run to sell most of it, so kiosks sell out and seats run short near the
      // end (a selling loop sells ~40 units and ~5 seats a minute here), not in its first minutes.
      seats: Math.max(40, options.kiosks * 4, Math.ceil(options.minutes * options.sellers * 8)),
      stockPerKiosk: 20 + Math.ceil((options.minutes * options.sellers * 30) / options.kiosks),
      log: stamp,
    },
    random.fork(),
  );
  const faultRandom = random.fork();
  let keepDir = false;
  try {
    await platform.start();
    await load.setup();
    await waitFor("every kiosk to connect", () => load.allConnected || undefined, { timeout: 120_000, interval: 200 });
    stamp("every kiosk connected; load on");
    load.start();
    const chaosStart = Date.now();
    const probes = {
      fleet: load.client(KioskService, "fleet"),
      orders: load.client(OrderService, "orders"),
    };
    const whole = async () => {
      if (!platform.instances().every((i) => i.running) || !platform.providerSim.running) return false;
      if (!load.allConnected) return false;
      // Whole as an admin sees it: every kiosk ONLINE at fleet, orders answering.
      const { kiosks } = await probes.fleet.listKiosks({ tag: chaosTag, pageSize: 1000 }, { timeoutMs: 3_000 });
      if (kiosks.filter((k) => k.status === KioskStatus.ONLINE || k.status === KioskStatus.ALERTING).length < options.kiosks) return false;
      await probes.orders.listOrders({ pageSize: 1 }, { timeoutMs: 3_000 });
      return true;
    };
    const faults = await runFaults(platform, faultRandom, {
      until: chaosStart + options.minutes * 60_000,
      startedAt: started,
      gapMs: [1_000, 5_000],
      recoveryBoundMs,
      whole,
      log: stamp,
      ...(options.kinds ? { kinds: options.kinds } : {}),
    });
    const lastFaultEnd = Date.now();
    stamp(`${faults.length} faults injected; traffic stopped, waiting for the platform to settle (at most ${settleBoundMs / 1000} s)`);
    await load.stopTraffic();

    let invariants: InvariantResult[] = [];
    let settledMs: number | undefined;
    let onlineMs: number | undefined;
    for (;;) {
      invariants = await checkInvariants(platform, load, { lastFaultEnd }).catch((err: unknown) => [
        { name: "invariants could be read", pass: false, detail: err instanceof Error ? err.message : String(err) },
      ]);
      const online = invariants.find((i) => i.name === "every kiosk back ONLINE");
      if (online?.pass && onlineMs === undefined) onlineMs = Date.now() - lastFaultEnd;
      if (invariants.every((i) => i.pass)) {
        settledMs = Date.now() - lastFaultEnd;
        break;
      }
      if (Date.now() - lastFaultEnd > settleBoundMs) break;
      await new Promise((r) => setTimeout(r, 1_000));
    }
    const onlineInvariant = invariants.find((i) => i.name === "every kiosk back ONLINE");
    if (onlineInvariant) {
      const within = onlineMs !== undefined && onlineMs <= onlineBoundMs;
      onlineInvariant.pass = within;
      onlineInvariant.detail += `; all ONLINE ${onlineMs === undefined ? "never" : `${(onlineMs / 1000).toFixed(1)} s`} after the last fault (bound ${onlineBoundMs / 1000} s)`;
    }
    const pass = invariants.every((i) => i.pass);
    const result: ChaosResult = { seed: options.seed, faults, invariants, pass, settledMs, onlineMs, logDir: platform.logDir, report: "" };
    result.report = report(options, result, load, platform, Date.now() - started);
    for (const i of invariants) stamp(`${i.pass ? "PASS" : "FAIL"}  ${i.name}: ${i.detail}`);
    if (options.reportFile) {
      mkdirSync(dirname(options.reportFile), { recursive: true });
      writeFileSync(options.reportFile, result.report);
      stamp(`report: ${options.reportFile}`);
    }
    keepDir = !pass;
    if (keepDir) stamp(`logs of every process kept in ${platform.logDir}`);
    return result;
  } catch (err) {
    keepDir = true;
    stamp(`the run failed: ${err instanceof Error ? err.message : String(err)}; logs in ${platform.logDir}`);
    throw err;
  } finally {
    await load.stop().catch(() => {});
    await platform.stop().catch(() => {});
    if (!keepDir) rmSync(dir, { recursive: true, force: true });
  }
}

function report(options: ChaosOptions, result: ChaosResult, load: Load, platform: ChaosPlatform, wallMs: number): string {
  const byKind = new Map<string, FaultRecord[]>();
  for (const f of result.faults) byKind.set(f.kind, [...(byKind.get(f.kind) ?? []), f]);
  const recovered = (fs: FaultRecord[]) => fs.map((f) => f.recoveredMs).filter((x): x is number => x !== undefined);
  const sec = (ms: number | undefined) => (ms === undefined ? "—" : `${(ms / 1000).toFixed(1)} s`);
  const lines = [
    `### Chaos run, seed ${result.seed}`,
    "",
    `\`npm run chaos -- --minutes ${options.minutes} --seed ${result.seed} --kiosks ${options.kiosks} --replicas ${options.replicas} --links ${options.links}\``,
    "",
    `${new Date().toISOString().slice(0, 16)} UTC on ${os.cpus().length} cores; wall ${sec(wallMs)}. **${result.pass ? "Every invariant passed" : "INVARIANTS FAILED"}**; ` +
      `all passing ${sec(result.settledMs)} after the last fault, every kiosk ONLINE after ${sec(result.onlineMs)}.`,
    "",
    `Load: ${options.kiosks} kiosks over ${options.links} link replicas; sales attempted ${load.sales.attempted}: completed ${load.sales.completed} (${load.sales.unitsSold} units, ${load.sales.seatsSold} seats), ` +
      `failed ${load.sales.failed}, refused ${load.sales.refused}, given up by the kiosk ${load.sales.gaveUp}; commands sent ${load.commandsSent.ok} (given up ${load.commandsSent.gaveUp}) and one job; ` +
      `WatchFleet: ${load.watch.messages} messages, ${load.watch.reconnects} reconnects. Processes that exited on their own (restarted): ${platform.crashes.length ? platform.crashes.map((c) => `${c.name} (${c.code})`).join(", ") : "none"}.`,
    "",
    "| invariant | result | numbers |",
    "|---|---|---|",
    ...result.invariants.map((i) => `| ${i.name} | ${i.pass ? "pass" : "**FAIL**"} | ${i.detail.replace(/\|/g, "\\|")} |`),
    "",
    "| fault | count | back to whole (median / max) |",
    "|---|---|---|",
    ...[...byKind].map(([kind, fs]) => {
      const r = recovered(fs).sort((a, b) => a - b);
      const missed = fs.length - r.length;
      return `| ${kind} | ${fs.length} | ${sec(r[Math.floor(r.length / 2)])} / ${sec(r.at(-1))}${missed ? ` (${missed} not within ${recoveryBoundMs / 1000} s)` : ""} |`;
    }),
    "",
    "<details><summary>Every fault</summary>",
    "",
    "| at | fault | target | what | held | back to whole |",
    "|---|---|---|---|---|---|",
    ...result.faults.map((f) => `| ${sec(f.at)} | ${f.kind} | ${f.target} | ${(f.error ? `failed: ${f.error}` : f.detail).replace(/\|/g, "\\|")} | ${sec(f.heldMs)} | ${sec(f.recoveredMs)} |`),
    "",
    "</details>",
    "",
  ];
  return lines.join("\n");
}
