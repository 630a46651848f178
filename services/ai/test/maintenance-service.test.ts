// Maintenance risk and silent failures on a real ai process: link's events (connections and
// telemetry) are published onto the real NATS as link publishes them, ai consumes them with
// its durable consumer, answers GetMaintenanceRisks / ListSilentFailures (operators, with bad
// input named) and publishes ai.maintenance.<kiosk>.due/.cleared and
// ai.silent_failure.<kiosk>.detected/.cleared on stream AI. The model is trained by the
// CronJob's script (retrain-job.ts) signing in as ai.
import { execFile } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { create, fromBinary, toBinary, toJson } from "@bufbuild/protobuf";
import { timestampFromMs, timestampMs } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { ModelService } from "@adminkiosk/proto/adminkiosk/ai/v1/ai_pb";
import { MaintenanceDueEventSchema, SilentFailureEventSchema } from "@adminkiosk/proto/adminkiosk/ai/v1/maintenance_events_pb";
import { MaintenanceItem, MaintenanceRiskSchema, MaintenanceService } from "@adminkiosk/proto/adminkiosk/ai/v1/maintenance_pb";
import { KioskConnectedEventSchema, KioskDisconnectedEventSchema, KioskTelemetryEventSchema } from "@adminkiosk/proto/adminkiosk/link/v1/events_pb";
import { DeviceStatus } from "@adminkiosk/proto/adminkiosk/link/v1/link_pb";
import { eventually, freePort, repoRoot, startNats, type ManagedProcess } from "@adminkiosk/devstack";
import { aiSubjects, ensureStream, linkSubjects } from "@adminkiosk/runtime";
import { Role, failure } from "../../../test/support/auth.js";
import { dayMs, dayOf, generateSales } from "../src/generator.js";
import { sales } from "../src/store.js";
import { startAi, type AiFixture } from "./fixture.js";

const hourMs = 3_600_000;
const run = promisify(execFile);
let f: AiFixture;
let nc: NatsConnection;
let operator: string;

// A NATS of this file's own: it counts the maintenance events published for its kiosks, and
// other files' ai processes on the shared one consume the same link events and publish too.
let nats: ManagedProcess;

beforeAll(async () => {
  nats = await startNats(mkdtempSync(join(inject("infra").tmpDir, "nats-maintenance-")), await freePort());
  nc = await connect({ servers: nats.url });
  await ensureStream(nc, linkSubjects.stream);
  await ensureStream(nc, aiSubjects.stream);
  // Its own durable on LINK from its start (the fixture's).
  f = await startAi({
    AI_SILENT_INTERVAL_MS: "300",
    // A whole day: the test means the same at any hour it runs.
    AI_SILENT_WINDOW_HOURS: "24",
  }, { natsUrl: nats.url });
  operator = (await f.auth.userWithRole(Role.OPERATOR)).accessToken;
});
afterAll(async () => {
  await nc?.close();
  await f?.stop();
  await nats?.stop();
});

const js = () => jetstream(nc);
const connected = (kioskId: string, at: number) =>
  js().publish(linkSubjects.connected(kioskId), toBinary(KioskConnectedEventSchema, create(KioskConnectedEventSchema, { kioskId, linkReplica: "test", sessionId: `s-${at}`, time: timestampFromMs(at) })));
const disconnected = (kioskId: string, at: number) =>
  js().publish(linkSubjects.disconnected(kioskId), toBinary(KioskDisconnectedEventSchema, create(KioskDisconnectedEventSchema, { kioskId, linkReplica: "test", reason: "closed", time: timestampFromMs(at) })));
/** Samples (time, paper %) as one telemetry batch, printer and scanner OK, 38 °C. */
const telemetry = (kioskId: string, samples: { time: number; paper: number }[]) =>
  js().publish(
    linkSubjects.telemetry(kioskId),
    toBinary(
      KioskTelemetryEventSchema,
      create(KioskTelemetryEventSchema, {
        kioskId,
        receiveTime: timestampFromMs(Date.now()),
        batch: {
          batchId: `b-${samples[0]!.time}`,
          samples: samples.map((s) => ({ sampleId: `s-${s.time}`, time: timestampFromMs(s.time), paperLevelPercent: s.paper, temperatureCelsius: 38, printer: DeviceStatus.OK, scanner: DeviceStatus.OK })),
        },
      }),
    ),
  );
async function lastEvent(subject: string) {
  const jsm = await jetstreamManager(nc);
  await expect.poll(async () => (await jsm.streams.getMessage(aiSubjects.stream.name, { last_by_subj: subject }).catch(() => null)) !== null, eventually).toBe(true);
  return (await jsm.streams.getMessage(aiSubjects.stream.name, { last_by_subj: subject }))!.data;
}

describe("ai maintenance", () => {
  it("is for operators, and names bad input", async () => {
    expect((await failure(f.as(MaintenanceService, f.tokens.viewer).getMaintenanceRisks({}))).code).toBe(Code.PermissionDenied);
    const m = f.as(MaintenanceService, operator);
    for (const [call, field] of [
      [() => m.getMaintenanceRisks({ kioskId: "bad kiosk" }), "kiosk_id"],
      [() => m.getMaintenanceRisks({ pageSize: 501 }), "page_size"],
      [() => m.listSilentFailures({ pageToken: "not-a-token" }), "page_token"],
      [() => m.listSilentFailures({ kioskId: "a.b" }), "kiosk_id"],
    ] as const) {
      const err = await failure(call());
      expect(err.code).toBe(Code.InvalidArgument);
      expect(err.rawMessage).toMatch(new RegExp(`^${field}:`));
    }
  });

  it("predicts when paper runs out from the kiosk's telemetry, publishes it as due, and clears it after a refill", async () => {
    const kioskId = `mt-paper-${process.pid}`;
    const now = Date.now();
    // 12 hours of a sample a minute: 30 % falling 2 points an hour, to 6 % now.
    const start = now - 12 * hourMs;
    await connected(kioskId, start - 60_000);
    for (let h = 0; h < 12; h++) {
      await telemetry(
        kioskId,
        Array.from({ length: 60 }, (_, i) => {
          const time = start + (h * 60 + i) * 60_000;
          return { time, paper: Math.round((30 - ((time - start) / hourMs) * 2 + ((i % 3) - 1) * 0.3) * 10) / 10 };
        }),
      );
    }
    const m = f.as(MaintenanceService, operator);
    // Once ai has taken the last batch (its risk is as of the last quarter hour; paper was due
    // already a few batches earlier, when the last sample was hours old).
    const risk = await expect
      .poll(async () => {
        const r = (await m.getMaintenanceRisks({ kioskId })).risks[0];
        return r?.sampleTime && timestampMs(r.sampleTime) >= now - 20 * 60_000 ? r.due : [];
      }, eventually)
      .toContain(MaintenanceItem.PAPER)
      .then(async () => (await m.getMaintenanceRisks({ kioskId })).risks[0]!);
    expect(risk.online, JSON.stringify(toJson(MaintenanceRiskSchema, risk))).toBe(true);
    expect(risk.paperLevelPercent).toBeGreaterThan(4);
    expect(risk.paperLevelPercent).toBeLessThan(9);
    expect(risk.paperRatePercentPerHour).toBeGreaterThan(1.6);
    expect(risk.paperRatePercentPerHour).toBeLessThan(2.4);
    // ~6 % at 2 %/h: about 3 hours from the last sample.
    expect(risk.paperOutExpected, JSON.stringify(toJson(MaintenanceRiskSchema, risk))).toBe(true);
    expect(risk.paperOutHours).toBeGreaterThan(1.5);
    expect(risk.paperOutHours).toBeLessThan(4.5);
    // Listed among the kiosks with something due.
    expect((await m.getMaintenanceRisks({ dueOnly: true, pageSize: 500 })).risks.map((r) => r.kioskId)).toContain(kioskId);

    // Prometheus sees it too (read at scrape time).
    expect(await (await fetch(`${f.ai.url}/metrics`)).text()).toMatch(/^ai_maintenance_due_kiosks\{item="paper",service="ai"\} [1-9]/m);
    const due = fromBinary(MaintenanceDueEventSchema, await lastEvent(aiSubjects.maintenanceDue(kioskId)));
    expect(due.item).toBe(MaintenanceItem.PAPER);
    expect(due.risk!.kioskId).toBe(kioskId);

    // A new roll: paper is no longer due, and the clearing is published.
    await telemetry(kioskId, [
      { time: now + 1_000, paper: 100 },
      { time: now + 2_000, paper: 99.9 },
    ]);
    await expect.poll(async () => (await m.getMaintenanceRisks({ kioskId })).risks[0]?.due, eventually).toEqual([]);
    const cleared = fromBinary(MaintenanceDueEventSchema, await lastEvent(aiSubjects.maintenanceCleared(kioskId)));
    expect(cleared.item).toBe(MaintenanceItem.PAPER);
    expect(cleared.risk!.paperLevelPercent).toBeGreaterThan(95);
    // Published once each, not at every batch of the backlog.
    const jsm = await jetstreamManager(nc);
    const counts = (await jsm.streams.info(aiSubjects.stream.name, { subjects_filter: `ai.maintenance.${kioskId}.>` })).state.subjects;
    expect(counts).toEqual({ [aiSubjects.maintenanceDue(kioskId)]: 1, [aiSubjects.maintenanceCleared(kioskId)]: 1 });
  });

  it("does not alert on states long past when hours of telemetry arrive at once", async () => {
    // A kiosk flushes 12 hours of samples after an outage: its paper ran low 8 hours ago and was
    // replaced 5 hours ago. Nothing of that is news now: no due, no cleared.
    const kioskId = `mt-backlog-${process.pid}`;
    const now = Date.now();
    const start = now - 12 * hourMs;
    const level = (t: number) => (t < start + 7 * hourMs ? 16 - ((t - start) / hourMs) * 2 : 100 - ((t - start - 7 * hourMs) / hourMs) * 2);
    for (let h = 0; h < 12; h++) await telemetry(kioskId, Array.from({ length: 60 }, (_, i) => ({ time: start + (h * 60 + i) * 60_000, paper: Math.round(level(start + (h * 60 + i) * 60_000) * 10) / 10 })));
    const m = f.as(MaintenanceService, operator);
    const risk = await expect
      .poll(async () => (await m.getMaintenanceRisks({ kioskId })).risks[0], eventually)
      .toSatisfy((r: { sampleTime?: Parameters<typeof timestampMs>[0] } | undefined) => !!r?.sampleTime && timestampMs(r.sampleTime) >= now - 20 * 60_000)
      .then(async () => (await m.getMaintenanceRisks({ kioskId })).risks[0]!);
    expect(risk.paperLevelPercent).toBeGreaterThan(85);
    expect(risk.due).toEqual([]);
    const jsm = await jetstreamManager(nc);
    expect((await jsm.streams.info(aiSubjects.stream.name, { subjects_filter: `ai.maintenance.${kioskId}.>` })).state.subjects ?? {}).toEqual({});
  });

  it("detects a healthy kiosk that stopped selling, not its busy neighbours, and clears it once offline", async () => {
    const quiet = `mt-quiet-${process.pid}`;
    const busy = [`mt-busy-${process.pid}`, `mt-b2-${process.pid}`, `mt-b3-${process.pid}`];
    const now = Date.now();
    const today = Math.floor(now / dayMs);
    const hourNow = Math.floor((now % dayMs) / hourMs);
    const { sales: generated } = generateSales({ seed: 11, kiosks: [quiet, ...busy], days: 64, endDay: dayOf(today) });
    // Nothing after this hour has happened yet; the quiet kiosk sold nothing for the last 30 hours.
    const quietFrom = now - 30 * hourMs;
    for (const s of generated) {
      const day = Math.floor(Date.parse(`${s.day}T00:00:00Z`) / dayMs);
      s.hourly = s.hourly.map((q, h) => {
        const at = day * dayMs + h * hourMs;
        return (day === today && h >= hourNow) || (s.kioskId === quiet && at + hourMs > quietFrom) ? 0 : q;
      });
      s.quantity = s.hourly.reduce((a, b) => a + b, 0);
    }
    await sales.insertGenerated(f.pool, generated);
    // Trained as the CronJob trains (istio/base/ai/cron-job-ai-retrain.yaml): the script, as ai itself.
    const { stdout } = await run(process.execPath, ["--import", "tsx", "services/ai/src/retrain-job.ts"], { cwd: repoRoot, env: { ...process.env, AI_URL: f.ai.url, ...f.auth.serviceEnv("ai") } }).catch((err: { stderr?: string }) => {
      throw new Error(`retrain-job.ts: ${err.stderr ?? String(err)}`);
    });
    const outcome = JSON.parse(stdout.trim().split("\n").pop()!) as { version: string; promoted: boolean };
    expect(outcome.promoted).toBe(true);
    expect((await f.as(ModelService, f.tokens.admin).getModel({ version: BigInt(outcome.version) })).model!.createdBy).toBe("service:ai");
    // All four online and healthy for more than a day.
    for (const kioskId of [quiet, ...busy]) {
      await connected(kioskId, now - 26 * hourMs);
      await telemetry(kioskId, [
        { time: now - 26 * hourMs + 1000, paper: 80 },
        { time: now - 60_000, paper: 79 },
      ]);
    }
    const m = f.as(MaintenanceService, operator);
    // Once a pass has assessed all four (their telemetry may reach ai in more than one batch).
    await expect
      .poll(async () => (await m.listSilentFailures({ includeAssessed: true, pageSize: 500 })).failures.filter((x) => [quiet, ...busy].includes(x.kioskId)).length, eventually)
      .toBe(4);
    const found = await expect
      .poll(async () => (await m.listSilentFailures({})).failures.find((x) => x.kioskId === quiet), eventually)
      .toBeDefined()
      .then(async () => (await m.listSilentFailures({ kioskId: quiet })).failures[0]!);
    expect(found.detected).toBe(true);
    expect(Number(found.observedUnits)).toBe(0);
    expect(found.expectedUnits).toBeGreaterThan(20);
    expect(found.probability).toBeLessThan(1e-4);
    const all = await m.listSilentFailures({ includeAssessed: true, pageSize: 500 });
    for (const kioskId of busy) {
      const b = all.failures.find((x) => x.kioskId === kioskId);
      expect(b, kioskId).toBeDefined();
      expect(b!.detected).toBe(false);
    }
    expect((await m.listSilentFailures({ pageSize: 500 })).failures.map((x) => x.kioskId)).not.toContain(busy[0]);
    expect(await (await fetch(`${f.ai.url}/metrics`)).text()).toMatch(/^ai_silent_failures_detected\{service="ai"\} 1$/m);
    const detected = fromBinary(SilentFailureEventSchema, await lastEvent(aiSubjects.silentFailureDetected(quiet)));
    expect(detected.failure!.kioskId).toBe(quiet);
    expect(detected.threshold).toBe(1e-4);

    // Offline: no longer silent (its offline alert speaks); cleared.
    await disconnected(quiet, Date.now());
    const cleared = fromBinary(SilentFailureEventSchema, await lastEvent(aiSubjects.silentFailureCleared(quiet)));
    expect(cleared.clearReason).toBe("not online and healthy");
    expect((await m.listSilentFailures({ kioskId: quiet })).failures).toEqual([]);
  });
});
