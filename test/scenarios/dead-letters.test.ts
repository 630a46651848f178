// The runtime's durable consumer on real processes (fleet consuming link's events): a
// message PostgreSQL refuses is dead-lettered — terminated, kept with its reason, logged
// once, counted — while every other kiosk's events keep applying; an admin lists it
// through adminkiosk.ops.v1.DeadLetterService, and replays one once the cause is fixed.
// The bad messages are published straight to JetStream on link's subjects: link itself
// validates what kiosks send, and the platform must not depend on that.
import { create, toBinary } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import { jetstream } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { KioskService } from "@adminkiosk/proto/adminkiosk/fleet/v1/fleet_pb";
import { KioskConnectedEventSchema, KioskTelemetryEventSchema } from "@adminkiosk/proto/adminkiosk/link/v1/events_pb";
import { DeviceStatus } from "@adminkiosk/proto/adminkiosk/link/v1/link_pb";
import { DeadLetterService, type DeadLetter } from "@adminkiosk/proto/adminkiosk/ops/v1/dead_letters_pb";
import { eventually, waitFor } from "@adminkiosk/devstack";
import { linkSubjects } from "@adminkiosk/runtime";
import { failure } from "../support/auth.js";
import { startFleet, type FleetFixture } from "../support/fleet.js";

let f: FleetFixture;
let nc: NatsConnection;
/** The deadline the acceptance criterion sets for a dead letter to appear. */
const within30s = { timeout: 30_000, interval: 100 };

beforeAll(async () => {
  f = await startFleet({ name: "dl", links: 1 });
  nc = await connect({ servers: inject("infra").natsUrl });
});
afterAll(async () => {
  await nc?.close();
  await f?.stop();
});

const deadLetters = () => f.fleetClient(DeadLetterService);
const consumer = () => f.fleetEnv["LINK_EVENTS_CONSUMER"]!;
/** The dead letter of `subject`, once there is one. */
const deadLetterOf = (subject: string, includeReplayed = false) =>
  waitFor(
    `a dead letter for ${subject}`,
    async () => (await deadLetters().listDeadLetters({ consumer: consumer(), includeReplayed, pageSize: 500 })).deadLetters.find((d) => d.subject === subject),
    within30s,
  );
const logLines = (needle: string) => f.fleet.output.filter((line) => line.includes(needle));
const kioskState = async (kioskId: string) => (await f.fleetClient(KioskService).getKiosk({ kioskId })).kiosk;

describe("dead letters", () => {
  it("a telemetry sample PostgreSQL refuses is dead-lettered with its reason, logged once and counted; other kiosks' events keep applying", async () => {
    const creds = await f.enroll(["dl-good-1", "dl-good-2", "dl-bad"]);
    const good = ["dl-good-1", "dl-good-2"].map((id) => f.kiosk(creds.get(id)!));
    good.forEach((k) => k.start());
    for (const id of ["dl-good-1", "dl-good-2"]) await expect.poll(async () => (await kioskState(id))?.lastSeenTime, eventually).toBeDefined();

    // 1e39 does not fit a PostgreSQL real: "value out of range: overflow" (22003).
    const now = timestampFromDate(new Date());
    const bad = toBinary(
      KioskTelemetryEventSchema,
      create(KioskTelemetryEventSchema, {
        kioskId: "dl-bad",
        batch: { batchId: "bad-1", samples: [{ sampleId: "s-1", time: now, cpuPercent: 1e39, paperLevelPercent: 50, printer: DeviceStatus.OK }] },
        receiveTime: now,
      }),
    );
    const ack = await jetstream(nc).publish(linkSubjects.telemetry("dl-bad"), bad, { msgID: "dl-bad/bad-1" });

    // Published after it, the good kiosks' samples apply all the same.
    good.forEach((k, i) => k.recordTelemetry({ cpuPercent: 41 + i, paperLevelPercent: 60, cashLevelMinor: 100n, printer: DeviceStatus.OK }));
    await expect.poll(async () => (await kioskState("dl-good-1"))?.state?.cpuPercent, eventually).toBe(41);
    await expect.poll(async () => (await kioskState("dl-good-2"))?.state?.cpuPercent, eventually).toBe(42);

    const letter = await deadLetterOf(linkSubjects.telemetry("dl-bad"));
    expect(letter).toMatchObject({
      consumer: consumer(),
      stream: "LINK",
      streamSequence: BigInt(ack.seq),
      msgId: "dl-bad/bad-1",
      reason: "refused by the database",
      error: expect.stringContaining("22003"),
    });
    expect(letter.deliveries).toBeGreaterThanOrEqual(1);
    expect(letter.headers["Nats-Msg-Id"]).toBe("dl-bad/bad-1");
    expect(Buffer.from(letter.data).equals(Buffer.from(bad))).toBe(true);
    expect(letter.firstFailureTime && letter.lastFailureTime).toBeTruthy();
    expect((await kioskState("dl-bad"))?.state).toBeUndefined();

    // Counted...
    const metrics = await (await fetch(`${f.fleet.url}/metrics`)).text();
    const counted = metrics
      .split("\n")
      .find((l) => l.startsWith("adminkiosk_consumer_dead_letters_total{") && l.includes(`consumer="${consumer()}"`) && l.includes('reason="refused by the database"'));
    expect(counted?.split(" ").at(-1)).toBe("1");

    // ...and logged once: more events applied after it bring no second line (no retry loop).
    good.forEach((k) => k.recordTelemetry({ cpuPercent: 7, paperLevelPercent: 60, cashLevelMinor: 100n, printer: DeviceStatus.OK }));
    await expect.poll(async () => (await kioskState("dl-good-1"))?.state?.cpuPercent, eventually).toBe(7);
    await expect.poll(async () => (await kioskState("dl-good-2"))?.state?.cpuPercent, eventually).toBe(7);
    const lines = logLines("dead-lettered").filter((l) => l.includes(`"seq":${ack.seq},`));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain('"reason":"refused by the database"');
    expect(logLines("will retry").filter((l) => l.includes(`"seq":${ack.seq},`))).toEqual([]);
    // (Before link had created the stream LINK at start-up, the consumer only waited for it.)
    expect(logLines("failed; retrying").filter((l) => l.includes('"stream":"LINK"'))).toEqual([]);

    // A replay of something still refused fails again and leaves it listed.
    const again = await failure(deadLetters().replayDeadLetter({ deadLetterId: letter.deadLetterId }));
    expect([again.code, again.rawMessage]).toEqual([Code.FailedPrecondition, expect.stringContaining("22003")]);
    const still = await deadLetterOf(linkSubjects.telemetry("dl-bad"));
    expect(still.replayTime).toBeUndefined();
    expect(still.deliveries).toBe(letter.deliveries + 1);
  });

  it("fixed, then replayed: the stored message is applied once and marked replayed", async () => {
    await f.enroll(["dl-fix"]);
    const db = new pg.Client({ connectionString: f.fleetDatabaseUrl });
    await db.connect();
    try {
      // Something PostgreSQL refuses until an operator changes the database.
      await db.query("ALTER TABLE fleet.kiosks ADD CONSTRAINT dl_test_block CHECK (firmware_version <> 'blocked-by-test') NOT VALID");
      const connected = create(KioskConnectedEventSchema, {
        kioskId: "dl-fix",
        deviceId: "dl-device",
        linkReplica: "dl-test",
        sessionId: "dl-session",
        hello: { firmwareVersion: "blocked-by-test", appVersion: "1.0.0" },
        time: timestampFromDate(new Date()),
      });
      await jetstream(nc).publish(linkSubjects.connected("dl-fix"), toBinary(KioskConnectedEventSchema, connected));
      const letter: DeadLetter = await deadLetterOf(linkSubjects.connected("dl-fix"));
      expect(letter).toMatchObject({ reason: "refused by the database", msgId: "", error: expect.stringContaining("23514") });
      expect((await kioskState("dl-fix"))?.firmwareVersion).not.toBe("blocked-by-test");

      await db.query("ALTER TABLE fleet.kiosks DROP CONSTRAINT dl_test_block");
      const { deadLetter } = await deadLetters().replayDeadLetter({ deadLetterId: letter.deadLetterId });
      expect(deadLetter?.replayTime).toBeDefined();
      expect((await kioskState("dl-fix"))?.firmwareVersion).toBe("blocked-by-test");

      // Replayed ones are listed only when asked for; a second replay is refused.
      const open = await deadLetters().listDeadLetters({ consumer: consumer() });
      expect(open.deadLetters.map((d) => d.deadLetterId)).not.toContain(letter.deadLetterId);
      const all = await deadLetters().listDeadLetters({ consumer: consumer(), includeReplayed: true });
      expect(all.deadLetters.map((d) => d.deadLetterId)).toContain(letter.deadLetterId);
      expect((await failure(deadLetters().replayDeadLetter({ deadLetterId: letter.deadLetterId }))).code).toBe(Code.FailedPrecondition);
    } finally {
      await db.end();
    }
  });

  it("pages through dead letters; a forged page token or an unknown id is refused", async () => {
    const first = await deadLetters().listDeadLetters({ consumer: consumer(), includeReplayed: true, pageSize: 1 });
    expect(first.deadLetters).toHaveLength(1);
    expect(first.nextPageToken).not.toBe("");
    const second = await deadLetters().listDeadLetters({ consumer: consumer(), includeReplayed: true, pageSize: 1, pageToken: first.nextPageToken });
    expect(second.deadLetters).toHaveLength(1);
    expect(second.deadLetters[0]!.deadLetterId).not.toBe(first.deadLetters[0]!.deadLetterId);
    expect((await failure(deadLetters().listDeadLetters({ pageToken: "forged" }))).code).toBe(Code.InvalidArgument);
    expect((await failure(deadLetters().replayDeadLetter({ deadLetterId: "00000000-0000-4000-8000-000000000000" }))).code).toBe(Code.NotFound);
    expect((await deadLetters().listDeadLetters({ consumer: "someone-else" })).deadLetters).toEqual([]);
  });
});
