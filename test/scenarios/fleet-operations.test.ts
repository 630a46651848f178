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
import pg from "pg";
import { eventually, waitFor } from "@adminkiosk/devstack";
import { failure, Role } from "../support/auth.js";
import { startFleet, type FleetFixture } from "../support/fleet.js";

let f: FleetFixture;

beforeAll(async () => {
  f = await startFleet({ name: "ops", links: 1 });
});
afterAll(async () => {
  await f?.stop();
});

const online = (client: KioskClient) => expect.poll(() => client.isConnected, { ...eventually, interval: 50 }).toBe(true);
const shownOnline = (kioskId: string) =>
  expect.poll(async () => (await f.fleetClient(KioskService).getKiosk({ kioskId })).kiosk?.status, eventually).toBe(KioskStatus.ONLINE);

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
    await expect.poll(() => applied.at(-1), { ...eventually, interval: 50 }).toEqual(expected);
    await expect
      .poll(async () => (await config.getKioskConfig({ kioskId: "ops-cfg-1" })).config, eventually)
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
      .poll(async () => (await config.getKioskConfig({ kioskId: "ops-cfg-2" })).config?.reportedError, eventually)
      .toBe("mode broken is not supported by this firmware");
    const state = (await config.getKioskConfig({ kioskId: "ops-cfg-2" })).config!;
    expect(state).toMatchObject({ inSync: false, desiredVersion: second.config!.desiredVersion, reportedVersion: 0n });
    // Not pushed again, even once its push is older than COMMAND_RESEND_MS (3 s here), when
    // fleet would resend an unapplied one: wait until fleet's own record of the push says so
    // (by PostgreSQL's clock, which fleet's resend sweep uses). Then a command makes fleet
    // deliver to this kiosk: fleet sends a due configuration right after the kiosk's
    // commands, and the kiosk handles its stream in order, so a broken one sent again would
    // reach onConfig before the fixed one below.
    const db = new pg.Client({ connectionString: f.fleetDatabaseUrl });
    await db.connect();
    try {
      await waitFor("the configuration's push to be older than COMMAND_RESEND_MS", async () => {
        const { rows } = await db.query<{ stale: boolean }>("SELECT config_pushed_at < now() - interval '3 seconds' AS stale FROM fleet.kiosks WHERE kiosk_id = $1", ["ops-cfg-2"]);
        return rows[0]?.stale ? true : undefined;
      });
    } finally {
      await db.end();
    }
    const { command } = await f.fleetClient(CommandService).sendCommand({ kioskId: "ops-cfg-2", action: { kind: { case: "displayMessage", value: { text: "ping" } } } });
    await expect.poll(async () => (await f.fleetClient(CommandService).getCommand({ commandId: command!.commandId })).command?.finishTime, eventually).toBeDefined();
    const fixed = await config.setKioskConfig({ kioskId: "ops-cfg-2", config: { mode: "fixed" } });
    await expect
      .poll(async () => (await config.getKioskConfig({ kioskId: "ops-cfg-2" })).config, eventually)
      .toMatchObject({ inSync: true, reportedVersion: fixed.config!.desiredVersion, reportedError: "" });
    expect(attempts).toBe(2); // the broken one once, the fixed one once
  }, 40_000);

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
    await waitFor("all 200 kiosks to connect", () => kiosks.every((k) => k.isConnected) || undefined, { timeout: 60_000 });
  }, 90_000);

  /**
   * Resolves once the job runner has run a tick that began after this call: a one-kiosk
   * canary job is dispatched by such a tick (ticks run one at a time, and a tick picks
   * jobs that are running when it starts). Used instead of a fixed pause before checking
   * that a paused or aborted job dispatched nothing more: that tick saw it paused/aborted.
   */
  async function aRunnerTickLater() {
    const jobs = f.fleetClient(JobService);
    const { job } = await jobs.createJob({ description: "canary", action: { kind: { case: "displayMessage", value: { text: "canary" } } }, target: { kioskIds: [ids[0]!] } });
    await expect.poll(async () => (await jobs.getJob({ jobId: job!.jobId })).job!.progress!.dispatched, eventually).toBe(1);
  }

  /**
   * Fails unless the job's commands were created no faster than `perSecond`, with at most
   * one second's worth at once (its token bucket), judged by fleet's own creation times:
   * within any span of t seconds at most perSecond·(t + 1) commands. A slow machine only
   * creates them more slowly.
   */
  function expectAtMostRate(commands: { createTime?: { seconds: bigint; nanos: number } }[], perSecond: number) {
    const at = commands.map((c) => Number(c.createTime!.seconds) + c.createTime!.nanos / 1e9).sort((a, b) => a - b);
    for (let i = 0; i < at.length; i++)
      for (let j = i; j < at.length; j++) expect(j - i + 1, `commands created from ${at[i]} to ${at[j]}`).toBeLessThanOrEqual(perSecond * (at[j]! - at[i]! + 1) + 1e-6);
  }

  it("a job over 200 kiosks creates their commands at its rate, and can be paused, resumed and canceled", async () => {
    const jobs = f.fleetClient(JobService);
    // 300 a minute: 5 a second, so the whole rollout would take 40 s; the steps below act
    // on it long before (they wait for what they need, not for a time).
    const { job } = await jobs.createJob({ description: "greeting", action: { kind: { case: "displayMessage", value: { text: "hello" } } }, target: { tag: "ops-jobs" }, ratePerMinute: 300 });
    expect(job).toMatchObject({ state: JobState.RUNNING, progress: { total: 200 } });
    const progress = async () => (await jobs.getJob({ jobId: job!.jobId })).job!.progress!;
    // Moving: commands are created and kiosks run them.
    await expect.poll(async () => { const p = await progress(); return p.dispatched >= 10 && p.succeeded > 0; }, eventually).toBe(true);

    const paused = (await jobs.pauseJob({ jobId: job!.jobId })).job!;
    expect(paused.state).toBe(JobState.PAUSED);
    await aRunnerTickLater();
    const afterPause = (await progress()).dispatched;
    expect(afterPause).toBe(paused.progress!.dispatched);
    await jobs.resumeJob({ jobId: job!.jobId });
    await expect.poll(async () => (await progress()).dispatched, eventually).toBeGreaterThan(afterPause);
    const canceled = (await jobs.cancelJob({ jobId: job!.jobId })).job!;
    expect(canceled.state).toBe(JobState.CANCELED);
    expect(canceled.progress!.dispatched).toBeLessThan(200);
    expect((await failure(jobs.resumeJob({ jobId: job!.jobId }))).code).toBe(Code.FailedPrecondition);
    // Every kiosk that got the command ran it once.
    await expect.poll(async () => (await progress()).inFlight, eventually).toBe(0);
    const { commands } = await f.fleetClient(CommandService).listCommands({ jobId: job!.jobId, pageSize: 1000 });
    expect(commands).toHaveLength(canceled.progress!.dispatched);
    for (const c of commands.filter((c) => c.state === CommandState.SUCCEEDED)) expect(executions.get(c.commandId)).toBe(1);
    // Never faster than the rate (with one second's worth at once), by fleet's own clock.
    expectAtMostRate(commands, 5);
  }, 60_000);

  it("a job at the highest rate (100000 a minute) reaches all 200 kiosks within seconds, in a few delivery messages rather than one per kiosk", async () => {
    // 1666.67 a second: the token bucket never holds a whole number, which once made every tick fail.
    const jobs = f.fleetClient(JobService);
    const sentBefore = await deliveryMessages();
    const { job } = await jobs.createJob({ description: "fast", action: { kind: { case: "displayMessage", value: { text: "fast" } } }, target: { tag: "ops-jobs" }, ratePerMinute: 100_000 });
    await expect.poll(async () => (await jobs.getJob({ jobId: job!.jobId })).job!.state, eventually).toBe(JobState.COMPLETED);
    expect((await jobs.getJob({ jobId: job!.jobId })).job!.progress).toMatchObject({ total: 200, dispatched: 200, succeeded: 200 });
    // Deliveries go to link in batches (each kiosk's commands are created as the job's bucket
    // allows, so a few batches per second of the job, not 200 requests). A count, not a time:
    // a slower machine ticks less often and so sends bigger batches, never more of them.
    expect((await deliveryMessages()) - sentBefore).toBeLessThan(100);
  }, 30_000);

  it("a job whose failures pass its threshold aborts and sends no more", async () => {
    const jobs = f.fleetClient(JobService);
    // 60 a minute: reaching all 200 kiosks would take over 3 minutes, longer than this test may
    // run, so however slow the machine it cannot get there first; the abort comes once six
    // have failed (about 6 s of rollout).
    const { job } = await jobs.createJob({
      action: { kind: { case: "collectDiagnostics", value: {} } },
      target: { tag: "ops-jobs" },
      ratePerMinute: 60,
      maxFailures: 5,
      commandTtl: durationFromMs(60_000),
    });
    await expect.poll(async () => (await jobs.getJob({ jobId: job!.jobId })).job!.state, { ...eventually, timeout: 60_000 }).toBe(JobState.ABORTED);
    const aborted = (await jobs.getJob({ jobId: job!.jobId })).job!;
    expect(aborted.progress!.failed).toBeGreaterThan(5);
    expect(aborted.progress!.dispatched).toBeLessThan(200); // it stopped short of the fleet
    expect(aborted.endReason).toMatch(/more than the 5 allowed/);
    // Nothing it created is still waiting to go out, and no tick after the abort added any.
    const { commands } = await f.fleetClient(CommandService).listCommands({ jobId: job!.jobId, pageSize: 1000 });
    expect(commands.filter((c) => c.state === CommandState.QUEUED || c.state === CommandState.SENT)).toEqual([]);
    await aRunnerTickLater();
    expect((await jobs.getJob({ jobId: job!.jobId })).job!.progress!.dispatched).toBe(aborted.progress!.dispatched);
  }, 90_000);

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
    const stored = async () => {
      let n = 0;
      for (const kioskId of ids) {
        const { points } = await f.fleetClient(TelemetryService).getTelemetryHistory({ kioskId, startTime: timestampFromDate(start), maxPoints: 1 });
        n += points.reduce((s, p) => s + p.sampleCount, 0);
      }
      return n;
    };
    // Kiosks record a sample each every 100 ms throughout (each goes up as its own message:
    // half of link's budget of 20 messages a second per kiosk, however long this runs). Each
    // phase lasts until what it needs has been seen, and at least 200 samples.
    let produced = 0;
    let producing = true;
    const producer = (async () => {
      while (producing) {
        for (const c of clients) c.recordTelemetry({ cpuPercent: 10, paperLevelPercent: 50, cashLevelMinor: 100n, printer: DeviceStatus.OK });
        produced += clients.length;
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    // Fleet is storing them when it is killed...
    await expect.poll(async () => produced >= 200 && (await stored()) > 0, { ...eventually, interval: 250 }).toBe(true);
    const beforeKill = produced;
    await f.restartFleet("SIGKILL");
    // ...kiosks went on recording while it was down and starting again...
    expect(produced).toBeGreaterThan(beforeKill);
    // ...and the new fleet stores too before they stop.
    const restartedAt = produced;
    const storedByNew = await stored();
    await expect.poll(async () => produced >= restartedAt + 200 && (await stored()) > storedByNew, { ...eventually, interval: 250 }).toBe(true);
    producing = false;
    await producer;
    await expect.poll(() => clients.reduce((n, c) => n + c.outboxSize, 0), eventually).toBe(0);
    await expect.poll(stored, { ...eventually, interval: 250 }).toBe(produced);
  }, 90_000);

  it("history over a range comes back downsampled into buckets", async () => {
    const creds = await f.enroll(["ops-hist"]);
    const client = f.kiosk(creds.get("ops-hist")!);
    const hourAgo = Math.floor((Date.now() - 3_600_000) / 600_000) * 600_000;
    // One sample a minute for an hour: CPU = the minute number, paper falls.
    for (let m = 0; m < 60; m++) {
      client.recordTelemetry({ time: timestampFromDate(new Date(hourAgo + m * 60_000 + 1_000)), cpuPercent: m, paperLevelPercent: 100 - m, cashLevelMinor: BigInt(m * 100), errors: m === 30 ? ["jam"] : [] });
    }
    client.start();
    await expect.poll(() => client.outboxSize, eventually).toBe(0);
    const history = f.fleetClient(TelemetryService);
    const query = { kioskId: "ops-hist", startTime: timestampFromDate(new Date(hourAgo)), endTime: timestampFromDate(new Date(hourAgo + 3_600_000)), bucket: durationFromMs(600_000) };
    await expect.poll(async () => (await history.getTelemetryHistory(query)).points.length, eventually).toBe(6);
    const { points, retention } = await history.getTelemetryHistory(query);
    expect(points.map((p) => p.sampleCount)).toEqual([10, 10, 10, 10, 10, 10]);
    expect(points[0]).toMatchObject({ cpuPercentAvg: 4.5, cpuPercentMax: 9, paperLevelPercentMin: 91, cashLevelMinorMin: 0n, cashLevelMinorMax: 900n });
    expect(points.map((p) => p.faultSamples)).toEqual([0, 0, 0, 1, 0, 0]);
    expect(Number(retention?.seconds)).toBe(30 * 86_400);
    const tooFine = await failure(history.getTelemetryHistory({ ...query, bucket: durationFromMs(1_000), maxPoints: 100 }));
    expect([tooFine.code, tooFine.rawMessage]).toEqual([Code.InvalidArgument, expect.stringContaining("bucket")]);
  });
});

/** Delivery batches fleet has sent to the link replicas (fleet_delivery_messages_total). */
async function deliveryMessages(): Promise<number> {
  const text = await (await fetch(`${f.fleet.url}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith("fleet_delivery_messages_total{"));
  return line ? Number(line.slice(line.lastIndexOf(" ") + 1)) : 0;
}
