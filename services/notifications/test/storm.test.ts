// The storm of issue 15's acceptance, against real processes (auth, link, fleet, notifications),
// the real NATS and PostgreSQL and a real SMTP server (the dev mailbox): 10,000 kiosks of one
// group go offline within 10 s → at most a handful of grouped emails, each naming its count,
// within 60 s, and every one of the 10,000 alerts listed.
//
// The kiosks are registered and disconnected by publishing the real event contracts on the
// real JetStream streams, as fleet (fleet.kiosk.<id>.created, KioskRegistryEvent) and link
// (link.kiosk.<id>.disconnected, KioskDisconnectedEvent) do: 10,000 enrollments and streams
// would measure fleet and link, not notifications.
import { randomUUID } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { join } from "node:path";
import { create, toBinary } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { jetstream, jetstreamManager, type JetStreamClient } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { KioskRegistryEventSchema } from "@adminkiosk/proto/adminkiosk/fleet/v1/events_pb";
import { KioskDisconnectedEventSchema } from "@adminkiosk/proto/adminkiosk/link/v1/events_pb";
import { AlertService, AlertState, Channel, DeliveryService, DeliveryState, RuleService, Severity } from "@adminkiosk/proto/adminkiosk/notifications/v1/notifications_pb";
import { freePort, startNats, waitFor, type ManagedProcess } from "@adminkiosk/devstack";
import { ensureStream, fleetSubjects, linkSubjects } from "@adminkiosk/runtime";
import { startNotifications, type NotificationsFixture } from "./fixture.js";

const run = Date.now().toString(36);
const fleetDurable = `notifications-fleet-storm-${process.pid}-${run}`;
const kioskCount = 10_000;
const group = `region-${run}`;
const kiosks = Array.from({ length: kioskCount }, (_, i) => `storm-${run}-${i}`);

let f: NotificationsFixture;
let nats: ManagedProcess;
let nc: NatsConnection;
let js: JetStreamClient;
beforeAll(async () => {
  // On a NATS of its own: 10,000 kiosks' registrations and disconnects on the run's shared
  // streams would reach every other file's fleet, notifications and customers (rules matching
  // every kiosk mailed about this storm's 10,000, consumers fell behind their tests).
  nats = await startNats(mkdtempSync(join(inject("infra").tmpDir, "nats-storm-")), await freePort());
  // The production grouping: changes of one rule and group collected for 10 s.
  [f, nc] = await Promise.all([startNotifications({ FLEET_EVENTS_CONSUMER: fleetDurable, GROUP_WAIT: "10s" }, { natsUrl: nats.url }), connect({ servers: nats.url })]);
  await ensureStream(nc, fleetSubjects.stream);
  js = jetstream(nc);
}, 120_000);
afterAll(async () => {
  await nc?.close();
  await f?.stop();
  await nats?.stop();
});

/** Publishes in parallel slices (JetStream acks each), every message with its own Nats-Msg-Id as the producers' outboxes set. */
async function publishAll(messages: { subject: string; data: Uint8Array }[]) {
  for (let i = 0; i < messages.length; i += 1000)
    await Promise.all(messages.slice(i, i + 1000).map((m) => js.publish(m.subject, m.data, { msgID: randomUUID() })));
}

describe("a storm of 10,000 kiosks", () => {
  it("going offline within 10 s makes a handful of grouped emails naming the count within 60 s, and every alert is listed", async () => {
    // fleet registers the 10,000 kiosks in one group; notifications has applied them all
    // once its durable consumer of stream FLEET has nothing pending or unacknowledged.
    await publishAll(
      kiosks.map((kioskId) => ({
        subject: fleetSubjects.kiosk(kioskId, "created"),
        data: toBinary(KioskRegistryEventSchema, create(KioskRegistryEventSchema, { kioskId, groupId: group, tags: ["storm"], time: timestampFromDate(new Date()) })),
      })),
    );
    const jsm = await jetstreamManager(nc);
    await waitFor(
      "notifications to apply the 10,000 registrations",
      async () => {
        const info = await jsm.consumers.info(fleetSubjects.stream.name, fleetDurable);
        return info.num_pending === 0 && info.num_ack_pending === 0 ? true : undefined;
      },
      { timeout: 60_000, interval: 250 },
    );

    const { rule } = await f.as(RuleService, f.tokens.admin).createRule({
      definition: {
        name: "region offline",
        severity: Severity.CRITICAL,
        kind: { case: "kioskOffline", value: { forDuration: { seconds: 5n, nanos: 0 } } },
        matcher: { groupIds: [group] },
        receivers: { emails: ["storm@example.com"] },
      },
    });
    try {
      // The storm: link reports every kiosk's stream gone, each at the moment it is published.
      await publishAll(
        kiosks.map((kioskId) => ({
          subject: linkSubjects.disconnected(kioskId),
          data: toBinary(KioskDisconnectedEventSchema, create(KioskDisconnectedEventSchema, { kioskId, linkReplica: "storm", reason: "network", time: timestampFromDate(new Date()) })),
        })),
      );

      // Grouped emails naming counts that add up to 10,000, within the acceptance's 60 s.
      const countOf = (subject: string) => Number(/: (\d+) kiosks? in group /.exec(subject)?.[1] ?? NaN);
      const mails = await waitFor(
        "grouped emails naming all 10,000 kiosks",
        () => {
          const got = f.mailbox.messages().filter((m) => m.to.includes("storm@example.com"));
          return got.reduce((n, m) => n + countOf(m.subject), 0) === kioskCount ? got : undefined;
        },
        { timeout: 60_000, interval: 250 },
      );
      expect(mails.length).toBeGreaterThanOrEqual(1);
      expect(mails.length).toBeLessThanOrEqual(5);
      for (const m of mails) {
        expect(m.subject).toMatch(new RegExp(`^\\[FIRING\\] region offline: \\d+ kiosks? in group ${group}$`));
        // The body lists the first 50 and says how many more there are.
        const count = countOf(m.subject);
        if (count > 50) expect(m.raw.replace(/=\r?\n/g, "")).toContain(`and ${count - 50} more`);
      }
      // The delivery log agrees: one delivered email per notification, the same counts (recorded
      // DELIVERED once the SMTP server has answered, so possibly just after the mail arrived).
      const delivered = async () =>
        (await f.as(DeliveryService, f.tokens.viewer).listDeliveries({ ruleId: rule!.ruleId, pageSize: 100 })).deliveries
          .filter((d) => d.channel === Channel.EMAIL && d.state === DeliveryState.DELIVERED)
          .map((d) => d.alertCount)
          .sort();
      await expect.poll(delivered).toEqual(mails.map((m) => countOf(m.subject)).sort());

      // No alert is lost: all 10,000 listed as firing, page by page.
      const listed = new Set<string>();
      let pageToken = "";
      let pages = 0;
      do {
        const page = await f.as(AlertService, f.tokens.viewer).listAlerts({ ruleId: rule!.ruleId, states: [AlertState.FIRING], pageSize: 500, pageToken });
        for (const a of page.alerts) {
          expect(a.groupId).toBe(group);
          listed.add(a.kioskId);
        }
        pageToken = page.nextPageToken;
        pages++;
      } while (pageToken && pages < 100);
      expect(listed.size).toBe(kioskCount);
      expect([...listed].sort()).toEqual([...kiosks].sort());
    } finally {
      await f.as(RuleService, f.tokens.admin).deleteRule({ ruleId: rule!.ruleId });
    }
  }, 240_000);
});
