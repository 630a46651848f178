// What admins do with a fleet beyond single commands, on real processes: desired vs
// reported configuration, bulk jobs at a rate with an abort threshold, and telemetry
// history that survives a fleet crash with nothing lost.
import { durationFromMs, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CommandService, CommandState } from "@adminkiosk/proto/adminkiosk/fleet/v1/commands_pb";
import { ConfigService } from "@adminkiosk/proto/adminkiosk/fleet/v1/config_pb";
import { KioskService, KioskStatus } from "@adminkiosk/proto/adminkiosk/fleet/v1/fleet_pb";
import { JobService, JobState } from "@adminkiosk/proto/adminkiosk/fleet/v1/jobs_pb";
import { TelemetryService } from "@adminkiosk/proto/adminkiosk/fleet/v1/telemetry_pb";
import { AuditService } from "@adminkiosk/proto/adminkiosk/fleet/v1/audit_pb";
import { DeviceStatus } from "@adminkiosk/proto/adminkiosk/link/v1/link_pb";
import type { KioskClient } from "@adminkiosk/kiosk-sdk";
import { failure, Role } from "../support/auth.js";
import { startFleet, type FleetFixture } from "../support/fleet.js";

let f: FleetFixture;

beforeAll(async () => {
  f = await startFleet({ name: "ops", links: 1 });
});
afterAll(async () => {
  await f?.stop();
});

const online = (client: KioskClient) => expect.poll(() => client.isConnected, { timeout: 10_000, interval: 50 }).toBe(true);
const shownOnline = (kioskId: string) =>
  expect.poll(async () => (await f.fleetClient(KioskService).getKiosk({ kioskId })).kiosk?.status, { timeout: 10_000, interval: 100 }).toBe(KioskStatus.ONLINE);

describe("desired and reported configuration", () => {
  it("a change reaches the connected kiosk at once; the group's document is merged under the kiosk's; reported catches up", async () => {
    const creds = await f.enroll(["ops-cfg-1"], { groupId: "ops-lobby" });
    const applied: Record<string, unknown>[] = [];
    const kiosk = f.kiosk(creds.get("ops-cfg-1")!).onConfig((config) => void applied.push(config));
    kiosk.start();
    await online(kiosk);
    await shownOnline("ops-cfg-1");
    const config = f.fleetClient(ConfigService);

    const group = await config.setGroupConfig({ groupId: "ops-lobby", config: { screen: { brightness: 70, language: "cs" }, volume: 3 } });
    expect(group.kiosksAffected).toBe(1);
    const set = await config.setKioskConfig({ kioskId: "ops-cfg-1", config: { screen: { brightness: 90 } } });
    const expected = { screen: { brightness: 90, language: "cs" }, volume: 3 };
    expect(set.config?.desired).toEqual(expected);
    await expect.poll(() => applied.at(-1), { timeout: 5_000, interval: 50 }).toEqual(expected);
    await expect
      .poll(async () => (await config.getKioskConfig({ kioskId: "ops-cfg-1" })).config, { timeout: 5_000, interval: 100 })
      .toMatchObject({ inSync: true, reportedVersion: set.config!.desiredVersion, desiredVersion: set.config!.desiredVersion });

    // Optimistic concurrency: a change based on an old version is refused.
    const stale = await failure(config.setKioskConfig({ kioskId: "ops-cfg-1", config: {}, expectedVersion: set.config!.desiredVersion - 1n }));
    expect(stale.code).toBe(Code.Aborted);

    const { events } = await f.fleetClient(AuditService).listAuditEvents({ type: "config." });
    expect(events.map((e) => [e.type, e.subject])).toEqual([
      ["config.kiosk_set", "ops-cfg-1"],
      ["config.group_set", "ops-lobby"],
    ]);
  });

  it("an offline kiosk gets the newest configuration when it connects; one it cannot apply is reported, not pushed again", async () => {
    const creds = await f.enroll(["ops-cfg-2"]);
    const config = f.fleetClient(ConfigService);
    await config.setKioskConfig({ kioskId: "ops-cfg-2", config: { mode: "first" } });
    const second = await config.setKioskConfig({ kioskId: "ops-cfg-2", config: { mode: "broken" } });
    let attempts = 0;
    const kiosk = f.kiosk(creds.get("ops-cfg-2")!).onConfig((c) => {
      attempts++;
      if (c["mode"] === "broken") throw new Error("mode broken is not supported by this firmware");
    });
    kiosk.start();
    await expect
      .poll(async () => (await config.getKioskConfig({ kioskId: "ops-cfg-2" })).config?.reportedError, { timeout: 5_000, interval: 100 })
      .toBe("mode broken is not supported by this firmware");
    const state = (await config.getKioskConfig({ kioskId: "ops-cfg-2" })).config!;
    expect(state).toMatchObject({ inSync: false, desiredVersion: second.config!.desiredVersion, reportedVersion: 0n });
    await new Promise((r) => setTimeout(r, 1_500)); // a few sweeps
    expect(attempts).toBe(1);
    const fixed = await config.setKioskConfig({ kioskId: "ops-cfg-2", config: { mode: "fixed" } });
    await expect
      .poll(async () => (await config.getKioskConfig({ kioskId: "ops-cfg-2" })).config, { timeout: 5_000, interval: 100 })
      .toMatchObject({ inSync: true, reportedVersion: fixed.config!.desiredVersion, reportedError: "" });
  });

  it("only admins change configuration; viewers read it", async () => {
    const operator = (await f.auth.userWithRole(Role.OPERATOR)).accessToken;
    const viewer = (await f.auth.userWithRole(Role.VIEWER)).accessToken;
    expect((await failure(f.fleetClient(ConfigService, operator).setKioskConfig({ kioskId: "ops-cfg-1", config: {} }))).code).toBe(Code.PermissionDenied);
    expect((await f.fleetClient(ConfigService, viewer).getKioskConfig({ kioskId: "ops-cfg-1" })).config?.kioskId).toBe("ops-cfg-1");
    const bad = await failure(f.fleetClient(ConfigService).setKioskConfig({ kioskId: "ops-cfg-1" }));
    expect(bad.code).toBe(Code.InvalidArgument);
    expect(bad.rawMessage).toContain("config");
  });
});

describe("bulk jobs", () => {
  const ids = Array.from({ length: 200 }, (_, i) => `ops-job-${String(i).padStart(3, "0")}`);
  const kiosks: KioskClient[] = [];
  const executions = new Map<string, number>();

  beforeAll(async () => {
    const creds = await f.enroll(ids, { tags: ["ops-jobs"] });
    for (const id of ids) {
      const k = f
        .kiosk(creds.get(id)!)
        .onCommand("displayMessage", (_m, d) => void executions.set(d.commandId, (executions.get(d.commandId) ?? 0) + 1))
        .onCommand("collectDiagnostics", () => {
          throw new Error("disk full");
        });
      k.start();
      kiosks.push(k);
    }
    for (const k of kiosks) while (!k.isConnected) await new Promise((r) => setTimeout(r, 50));
  }, 90_000);

  it("a job over 200 kiosks creates their commands at its rate, and can be paused, resumed and canceled", async () => {
    const jobs = f.fleetClient(JobService);
    // 1200 a minute: 20 a second.
    const { job } = await jobs.createJob({ description: "greeting", action: { kind: { case: "displayMessage", value: { text: "hello" } } }, target: { tag: "ops-jobs" }, ratePerMinute: 1200 });
    expect(job).toMatchObject({ state: JobState.RUNNING, progress: { total: 200 } });
    const started = Date.now();
    await new Promise((r) => setTimeout(r, 3_000));
    const at3s = (await jobs.getJob({ jobId: job!.jobId })).job!;
    const seconds = (Date.now() - started) / 1000;
    // The rate, plus at most one second's worth of burst.
    // Moving (the lower bound is loose: a loaded machine runs the job's ticks late) ...
    expect(at3s.progress!.dispatched).toBeGreaterThanOrEqual(10);
    // ... and never faster than the rate.
    expect(at3s.progress!.dispatched).toBeLessThanOrEqual(Math.ceil(20 * (seconds + 1)));
    expect(at3s.progress!.succeeded).toBeGreaterThan(0);

    const paused = (await jobs.pauseJob({ jobId: job!.jobId })).job!;
    expect(paused.state).toBe(JobState.PAUSED);
    await new Promise((r) => setTimeout(r, 1_000));
    const afterPause = (await jobs.getJob({ jobId: job!.jobId })).job!.progress!.dispatched;
    expect(afterPause).toBe(paused.progress!.dispatched);
    await jobs.resumeJob({ jobId: job!.jobId });
    await expect.poll(async () => (await jobs.getJob({ jobId: job!.jobId })).job!.progress!.dispatched, { timeout: 5_000 }).toBeGreaterThan(afterPause);
    const canceled = (await jobs.cancelJob({ jobId: job!.jobId })).job!;
    expect(canceled.state).toBe(JobState.CANCELED);
    expect(canceled.progress!.dispatched).toBeLessThan(200);
    expect((await failure(jobs.resumeJob({ jobId: job!.jobId }))).code).toBe(Code.FailedPrecondition);
    // Every kiosk that got the command ran it once.
    await expect
      .poll(async () => (await jobs.getJob({ jobId: job!.jobId })).job!.progress!.inFlight, { timeout: 10_000, interval: 200 })
      .toBe(0);
    const { commands } = await f.fleetClient(CommandService).listCommands({ jobId: job!.jobId, pageSize: 1000 });
    for (const c of commands.filter((c) => c.state === CommandState.SUCCEEDED)) expect(executions.get(c.commandId)).toBe(1);
  }, 40_000);

  it("a job at the highest rate (100000 a minute) reaches all 200 kiosks within seconds", async () => {
    // 1666.67 a second: the token bucket never holds a whole number, which once made every tick fail.
    const jobs = f.fleetClient(JobService);
    const { job } = await jobs.createJob({ description: "fast", action: { kind: { case: "displayMessage", value: { text: "fast" } } }, target: { tag: "ops-jobs" }, ratePerMinute: 100_000 });
    await expect.poll(async () => (await jobs.getJob({ jobId: job!.jobId })).job!.state, { timeout: 10_000, interval: 200 }).toBe(JobState.COMPLETED);
    expect((await jobs.getJob({ jobId: job!.jobId })).job!.progress).toMatchObject({ total: 200, dispatched: 200, succeeded: 200 });
  }, 20_000);

  it("a job whose failures pass its threshold aborts and sends no more", async () => {
    const jobs = f.fleetClient(JobService);
    const { job } = await jobs.createJob({
      action: { kind: { case: "collectDiagnostics", value: {} } },
      target: { tag: "ops-jobs" },
      ratePerMinute: 600,
      maxFailures: 5,
      commandTtl: durationFromMs(60_000),
    });
    await expect.poll(async () => (await jobs.getJob({ jobId: job!.jobId })).job!.state, { timeout: 15_000, interval: 100 }).toBe(JobState.ABORTED);
    const aborted = (await jobs.getJob({ jobId: job!.jobId })).job!;
    expect(aborted.progress!.failed).toBeGreaterThan(5);
    expect(aborted.progress!.dispatched).toBeLessThan(40);
    expect(aborted.endReason).toMatch(/more than the 5 allowed/);
    await new Promise((r) => setTimeout(r, 1_000));
    expect((await jobs.getJob({ jobId: job!.jobId })).job!.progress!.dispatched).toBe(aborted.progress!.dispatched);
  });

  it("jobs are for admins, bad input names the field, and a target that matches nothing is refused", async () => {
    const operator = (await f.auth.userWithRole(Role.OPERATOR)).accessToken;
    const action = { kind: { case: "refreshCatalog" as const, value: {} } };
    expect((await failure(f.fleetClient(JobService, operator).createJob({ action, target: { tag: "ops-jobs" } }))).code).toBe(Code.PermissionDenied);
    const noTarget = await failure(f.fleetClient(JobService).createJob({ action, target: {} }));
    expect([noTarget.code, noTarget.rawMessage]).toEqual([Code.InvalidArgument, expect.stringContaining("target")]);
    const badRate = await failure(f.fleetClient(JobService).createJob({ action, target: { tag: "ops-jobs" }, ratePerMinute: -1 }));
    expect(badRate.rawMessage).toContain("rate_per_minute");
    expect((await failure(f.fleetClient(JobService).createJob({ action, target: { tag: "nobody-has-this" } }))).code).toBe(Code.FailedPrecondition);
  });
});

describe("telemetry", () => {
  it("fleet killed (SIGKILL) and restarted while kiosks send telemetry: every sample is stored exactly once", async () => {
    const ids = Array.from({ length: 10 }, (_, i) => `ops-tel-${i}`);
    const creds = await f.enroll(ids);
    const clients = ids.map((id) => f.kiosk(creds.get(id)!));
    clients.forEach((c) => c.start());
    for (const c of clients) await online(c);
    const start = new Date(Date.now() - 60_000);
    let produced = 0;
    let producing = true;
    const producer = (async () => {
      while (producing) {
        for (const c of clients) c.recordTelemetry({ cpuPercent: 10, paperLevelPercent: 50, cashLevelMinor: 100n, printer: DeviceStatus.OK });
        produced += clients.length;
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    await new Promise((r) => setTimeout(r, 1_500));
    await f.restartFleet("SIGKILL");
    await new Promise((r) => setTimeout(r, 1_500));
    producing = false;
    await producer;
    await expect.poll(() => clients.reduce((n, c) => n + c.outboxSize, 0), { timeout: 10_000 }).toBe(0);
    const stored = async () => {
      let n = 0;
      for (const kioskId of ids) {
        const { points } = await f.fleetClient(TelemetryService).getTelemetryHistory({ kioskId, startTime: timestampFromDate(start), maxPoints: 1 });
        n += points.reduce((s, p) => s + p.sampleCount, 0);
      }
      return n;
    };
    await expect.poll(stored, { timeout: 20_000, interval: 250 }).toBe(produced);
    expect(produced).toBeGreaterThan(1000);
  }, 60_000);

  it("history over a range comes back downsampled into buckets", async () => {
    const creds = await f.enroll(["ops-hist"]);
    const client = f.kiosk(creds.get("ops-hist")!);
    const hourAgo = Math.floor((Date.now() - 3_600_000) / 600_000) * 600_000;
    // One sample a minute for an hour: CPU = the minute number, paper falls.
    for (let m = 0; m < 60; m++) {
      client.recordTelemetry({ time: timestampFromDate(new Date(hourAgo + m * 60_000 + 1_000)), cpuPercent: m, paperLevelPercent: 100 - m, cashLevelMinor: BigInt(m * 100), errors: m === 30 ? ["jam"] : [] });
    }
    client.start();
    await expect.poll(() => client.outboxSize, { timeout: 10_000 }).toBe(0);
    const history = f.fleetClient(TelemetryService);
    const query = { kioskId: "ops-hist", startTime: timestampFromDate(new Date(hourAgo)), endTime: timestampFromDate(new Date(hourAgo + 3_600_000)), bucket: durationFromMs(600_000) };
    await expect.poll(async () => (await history.getTelemetryHistory(query)).points.length, { timeout: 10_000 }).toBe(6);
    const { points, retention } = await history.getTelemetryHistory(query);
    expect(points.map((p) => p.sampleCount)).toEqual([10, 10, 10, 10, 10, 10]);
    expect(points[0]).toMatchObject({ cpuPercentAvg: 4.5, cpuPercentMax: 9, paperLevelPercentMin: 91, cashLevelMinorMin: 0n, cashLevelMinorMax: 900n });
    expect(points.map((p) => p.faultSamples)).toEqual([0, 0, 0, 1, 0, 0]);
    expect(Number(retention?.seconds)).toBe(30 * 86_400);
    const tooFine = await failure(history.getTelemetryHistory({ ...query, bucket: durationFromMs(1_000), maxPoints: 100 }));
    expect([tooFine.code, tooFine.rawMessage]).toEqual([Code.InvalidArgument, expect.stringContaining("bucket")]);
  });
});
