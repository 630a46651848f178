// The rules editor's dry run (RuleService.DryRunRule) and the dev mailbox in the admin web
// (DeliveryService.ListDevMail), against real processes: fleet's registry (the kiosks' groups),
// link's events published on the real JetStream with the times link would have stamped over
// the last hour, and the real SMTP dev mailbox.
import { mkdtempSync } from "node:fs";
import { join } from "node:path";
import { create, toBinary, type MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { jetstream, type JetStreamClient } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { KioskService } from "@adminkiosk/proto/adminkiosk/fleet/v1/fleet_pb";
import { KioskConnectedEventSchema, KioskDisconnectedEventSchema, KioskTelemetryEventSchema } from "@adminkiosk/proto/adminkiosk/link/v1/events_pb";
import { DeviceStatus } from "@adminkiosk/proto/adminkiosk/link/v1/link_pb";
import { DeliveryService, RuleService, Severity, type RuleDefinitionSchema } from "@adminkiosk/proto/adminkiosk/notifications/v1/notifications_pb";
import { eventually, freePort, startNats, waitFor, type ManagedProcess } from "@adminkiosk/devstack";
import { linkSubjects } from "@adminkiosk/runtime";
import { clientFor } from "../../../test/support/auth.js";
import { startNotifications, type NotificationsFixture } from "./fixture.js";

let f: NotificationsFixture;
let nc: NatsConnection;
let js: JetStreamClient;
// A NATS of this file's own: the dry run counts every event of the hour (eventsEvaluated), and
// the run's other files' link processes and events would count on the shared one.
let nats: ManagedProcess;
beforeAll(async () => {
  nats = await startNats(mkdtempSync(join(inject("infra").tmpDir, "nats-dry-")), await freePort());
  [f, nc] = await Promise.all([startNotifications({}, { natsUrl: nats.url }), connect({ servers: nats.url })]);
  js = jetstream(nc);
}, 120_000);
afterAll(async () => {
  await nc?.close();
  await f?.stop();
  await nats?.stop();
});

const run = Date.now().toString(36);
// Every event is stamped against one instant, so what the dry run answers about them (fire
// times) is the same however long the machine takes between publishing and asking.
const t0 = Date.now();
const minutesAgo = (m: number) => new Date(t0 - m * 60_000);
const minutes = (m: number) => ({ seconds: BigInt(m * 60), nanos: 0 });
type Definition = MessageInitShape<typeof RuleDefinitionSchema>;

async function disconnected(kioskId: string, at: Date) {
  const e = create(KioskDisconnectedEventSchema, { kioskId, linkReplica: "test", reason: "network", time: timestampFromDate(at) });
  await js.publish(linkSubjects.disconnected(kioskId), toBinary(KioskDisconnectedEventSchema, e));
}
async function connected(kioskId: string, at: Date) {
  const e = create(KioskConnectedEventSchema, { kioskId, linkReplica: "test", time: timestampFromDate(at) });
  await js.publish(linkSubjects.connected(kioskId), toBinary(KioskConnectedEventSchema, e));
}
async function paper(kioskId: string, at: Date, percent: number) {
  const e = create(KioskTelemetryEventSchema, {
    kioskId,
    receiveTime: timestampFromDate(at),
    batch: { batchId: `b-${kioskId}-${at.getTime()}`, samples: [{ sampleId: `s-${kioskId}-${at.getTime()}`, time: timestampFromDate(at), paperLevelPercent: percent, printer: DeviceStatus.OK, scanner: DeviceStatus.OK }] },
  });
  await js.publish(linkSubjects.telemetry(kioskId), toBinary(KioskTelemetryEventSchema, e));
}

async function refusal(call: Promise<unknown>): Promise<ConnectError> {
  try {
    await call;
  } catch (err) {
    return ConnectError.from(err);
  }
  throw new Error("the call succeeded");
}

describe("DryRunRule", () => {
  const group = `dry-${run}`;
  const other = `wet-${run}`;
  const [k1, k2, k3, k4, k5, k6] = [1, 2, 3, 4, 5, 6].map((i) => `dry-${run}-${i}`) as [string, string, string, string, string, string];
  const offline = (forMinutes: number, groupIds = [group]): Definition => ({
    name: "would it fire",
    severity: Severity.WARNING,
    kind: { case: "kioskOffline", value: { forDuration: minutes(forMinutes) } },
    matcher: { groupIds },
    receivers: { emails: ["dry@example.com"] },
  });

  beforeAll(async () => {
    const registry = clientFor(KioskService, f.fleet.url, f.tokens.admin);
    for (const [kioskId, groupId] of [[k1, group], [k2, group], [k3, group], [k4, other], [k5, group], [k6, group]] as const)
      await registry.createKiosk({ kiosk: { kioskId, name: kioskId, groupId } });
    // The last hour as link saw it:
    await disconnected(k1, minutesAgo(30)); // offline 30 min, still
    await disconnected(k2, minutesAgo(40)); // back after 2 min
    await connected(k2, minutesAgo(38));
    await disconnected(k3, minutesAgo(50)); // offline 30 min, then back
    await connected(k3, minutesAgo(20));
    await disconnected(k4, minutesAgo(30)); // another group
    await disconnected(k5, minutesAgo(120)); // before the window
    // Offline 2 min, its reconnection (through another link replica) heard before its
    // disconnection: late, it changes nothing now, but it is history all the same.
    await connected(k6, minutesAgo(33));
    await disconnected(k6, minutesAgo(35));
    // Paper: k1 below 10 % for 10 min, k2 below for 2 min (whole percents kept; 9.4 → 9.2 is no change).
    await paper(k1, minutesAgo(25), 9.4);
    await paper(k1, minutesAgo(24), 9.2);
    await paper(k1, minutesAgo(15), 60);
    await paper(k2, minutesAgo(25), 5);
    await paper(k2, minutesAgo(23), 70);
    // k6 below 10 % for 8 min, its low sample heard after the later one (kept all the same).
    await paper(k6, minutesAgo(10), 70);
    await paper(k6, minutesAgo(18), 4);
  });

  it("answers which alerts the rule would have fired over the last hour, with samples, and saves nothing", async () => {
    const rules = f.as(RuleService, f.tokens.admin);
    const lowPaper: Definition = { name: "paper", severity: Severity.INFO, kind: { case: "lowPaper", value: { belowPercent: 10, forDuration: minutes(5) } }, matcher: { groupIds: [group] } };
    // Polled until fleet's labels and all of link's events are applied; then it stays.
    const counts = async () => Promise.all([offline(5), offline(1), offline(5, [other]), lowPaper].map(async (definition) => (await rules.dryRunRule({ definition })).alertCount));
    await expect.poll(counts, eventually).toEqual([2, 4, 1, 2]);
    const r = await rules.dryRunRule({ definition: offline(5) });
    expect(r.kiosksMatched).toBe(4);
    expect(r.alertsByGroup).toEqual({ [group]: 2 });
    // k1, k2 (twice), k3 (twice), k4, k6 (twice); k5's is older than the hour.
    expect(r.eventsEvaluated).toBe(8n);
    // Latest first: k1 would have fired 25 min ago and still be firing; k3 45 min ago, resolved 20 min ago.
    expect(r.samples.map((s) => s.kioskId)).toEqual([k1, k3]);
    expect(r.samples[0]).toMatchObject({ groupId: group, labels: { kiosk_id: k1, group_id: group }, summary: `kiosk ${k1} is offline (network)` });
    expect(r.samples[0]!.resolveTime).toBeUndefined();
    expect(r.samples[1]!.resolveTime).toBeDefined();
    const fired = Number(r.samples[0]!.fireTime!.seconds) * 1000;
    expect(Math.abs(fired - minutesAgo(25).getTime())).toBeLessThan(60_000);
    expect(Number(r.windowEnd!.seconds - r.windowStart!.seconds)).toBe(3600);

    // Shorter for-duration: k2's and k6's 2 minutes count too. Another group: only k4.
    expect((await rules.dryRunRule({ definition: offline(1) })).alertCount).toBe(4);
    const elsewhere = await rules.dryRunRule({ definition: offline(5, [other]) });
    expect(elsewhere.samples.map((s) => s.kioskId)).toEqual([k4]);

    // Telemetry: paper below 10 % for 5 min — k6 (8 min), k1 (10 min), not k2 (2 min).
    const low = await rules.dryRunRule({ definition: lowPaper });
    expect(low.samples.map((s) => [s.kioskId, s.summary])).toEqual([
      [k6, `kiosk ${k6}: paper at 4 % (below 10 %)`],
      [k1, `kiosk ${k1}: paper at 9 % (below 10 %)`],
    ]);

    // Nothing was saved.
    expect((await rules.listRules({ pageSize: 500 })).rules.filter((x) => x.definition?.name === "would it fire")).toEqual([]);
  });

  it("refuses a bad rule exactly as CreateRule does, and only admins may run it", async () => {
    const rules = f.as(RuleService, f.tokens.admin);
    const bad: [Definition | undefined, string][] = [
      [undefined, "definition"],
      [{ ...offline(5), kind: { case: "kioskOffline", value: { forDuration: { seconds: -5n, nanos: 0 } } } } as Definition, "definition.kiosk_offline.for_duration"],
      [{ ...offline(5), kind: { case: "lowPaper", value: { belowPercent: 150, forDuration: minutes(1) } } } as Definition, "definition.low_paper.below_percent"],
      [{ ...offline(5), matcher: { groupIds: ["no spaces"] } } as Definition, "definition.matcher.group_ids[0]"],
      [{ ...offline(5), receivers: { emails: ["nope"] } } as Definition, "definition.receivers.emails[0]"],
    ];
    for (const [definition, field] of bad) {
      const dry = await refusal(rules.dryRunRule({ definition }));
      const created = await refusal(rules.createRule({ definition }));
      expect(dry.code, field).toBe(Code.InvalidArgument);
      expect(dry.rawMessage.startsWith(`${field}:`), `${dry.rawMessage} names ${field}`).toBe(true);
      expect(dry.rawMessage).toBe(created.rawMessage);
    }
    expect((await refusal(f.as(RuleService, f.tokens.operator).dryRunRule({ definition: offline(5) }))).code).toBe(Code.PermissionDenied);
  });
});

describe("ListDevMail", () => {
  it("lists what the email channel sent to the dev mailbox, newest first, with the body as text", async () => {
    const to = `mailbox-${run}@example.com`;
    const { rule } = await f.as(RuleService, f.tokens.admin).createRule({
      definition: { name: "paper now", severity: Severity.INFO, kind: { case: "lowPaper", value: { belowPercent: 20, forDuration: { seconds: 1n, nanos: 0 } } }, receivers: { emails: [to] } },
    });
    try {
      await paper(`mail-${run}`, new Date(), 4);
      const mail = await waitFor("the alert email in ListDevMail", async () => (await f.as(DeliveryService, f.tokens.admin).listDevMail({ to: to.toUpperCase() })).messages[0]);
      expect(mail).toMatchObject({ to: [to], subject: "[FIRING] paper now: 1 alert" });
      // Quoted-printable and UTF-8 decoded: the dash and the kiosk's line as the rule wrote them.
      expect(mail.text).toContain("FIRING: paper now (info) — 1 alert");
      expect(mail.text).toContain(`kiosk mail-${run}: paper at 4 % (below 20 %)`);
      const all = await f.as(DeliveryService, f.tokens.admin).listDevMail({ pageSize: 500 });
      expect(all.total).toBeGreaterThanOrEqual(1);
      expect(all.messages.map((m) => Number(m.id))).toEqual([...all.messages.map((m) => Number(m.id))].sort((a, b) => b - a));
      expect((await refusal(f.as(DeliveryService, f.tokens.viewer).listDevMail({}))).code).toBe(Code.PermissionDenied);
    } finally {
      await f.as(RuleService, f.tokens.admin).deleteRule({ ruleId: rule!.ruleId });
    }
  });
});
