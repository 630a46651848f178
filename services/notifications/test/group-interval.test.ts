// Group interval (GROUP_INTERVAL, Alertmanager's group_interval) against real processes and the
// real SMTP dev mailbox: after a group's first notification, kiosks going offline over the
// following seconds are collected into ONE further notification, not one per GROUP_WAIT.
// link's disconnections are published on the real JetStream as link publishes them.
import { describe, expect, it, beforeAll, afterAll } from "vitest";
import { AlertService, AlertState, RuleService, Severity } from "@adminkiosk/proto/adminkiosk/notifications/v1/notifications_pb";
import { KioskService } from "@adminkiosk/proto/adminkiosk/fleet/v1/fleet_pb";
import { waitFor } from "@adminkiosk/devstack";
import { clientFor } from "../../../test/support/auth.js";
import { startNotifications, type NotificationsFixture } from "./fixture.js";

const run = Date.now().toString(36);
let f: NotificationsFixture;
beforeAll(async () => {
  f = await startNotifications({ GROUP_WAIT: "1s", GROUP_INTERVAL: "20s" });
}, 120_000);
afterAll(async () => {
  await f?.stop();
});

const ms = (n: number) => ({ seconds: BigInt(Math.floor(n / 1000)), nanos: (n % 1000) * 1_000_000 });

describe("group interval", () => {
  it("kiosks going offline after the group's first notification are batched into one notification per GROUP_INTERVAL", async () => {
    const storm = `storm-${run}@example.com`;
    const clock = `clock-${run}@example.com`;
    const kiosk = (i: number) => `gi-${run}-${i}`;
    // The test's kiosks in a group of their own (other test files' kiosks share NATS), kiosk 0
    // last: fleet's events are applied in order, so its alert shows they all are.
    const group = `gi-${run}`;
    const registry = clientFor(KioskService, f.fleet.url, f.tokens.admin);
    for (const kioskId of [`gi-clock-${run}`, ...[1, 2, 3, 4, 5, 6, 7, 8, 0].map(kiosk)]) await registry.createKiosk({ kiosk: { kioskId, name: kioskId, groupId: group } });
    const rules = f.as(RuleService, f.tokens.admin);
    const { rule } = await rules.createRule({
      definition: { name: "offline", severity: Severity.WARNING, kind: { case: "kioskOffline", value: { forDuration: ms(1) } }, matcher: { groupIds: [group] }, receivers: { emails: [storm] } },
    });
    // Another rule (another group of changes) whose email tells the test that GROUP_WAIT has passed.
    await rules.createRule({
      definition: { name: "clock", severity: Severity.INFO, kind: { case: "lowPaper", value: { belowPercent: 50, forDuration: ms(1) } }, matcher: { groupIds: [group] }, receivers: { emails: [clock] } },
    });
    const alerts = f.as(AlertService, f.tokens.viewer);
    const firing = async () => (await alerts.listAlerts({ ruleId: rule!.ruleId, states: [AlertState.FIRING], pageSize: 100 })).alerts.length;
    const stormMails = () => f.mailbox.messages().filter((m) => m.to.includes(storm));

    // The first kiosk: the group's first notification, after GROUP_WAIT.
    await f.publishDisconnected(kiosk(0));
    await waitFor("the first notification", () => stormMails()[0]);
    expect(stormMails().map((m) => m.subject)).toEqual([`[FIRING] offline: 1 kiosk in group ${group}`]);

    // Four more go offline and fire; the clock's email comes GROUP_WAIT after them, by when they
    // would have had their own notification without the group interval.
    for (let i = 1; i <= 4; i++) await f.publishDisconnected(kiosk(i));
    await expect.poll(firing, { timeout: 20_000 }).toBe(5);
    await f.publishTelemetry(`gi-clock-${run}`, { paperLevelPercent: 5 });
    await waitFor("the clock's notification", () => f.mailbox.messages().find((m) => m.to.includes(clock)));
    expect(stormMails()).toHaveLength(1);

    // Four more, later still: the group's next notification names all eight.
    for (let i = 5; i <= 8; i++) await f.publishDisconnected(kiosk(i));
    await expect.poll(firing, { timeout: 20_000 }).toBe(9);
    await waitFor("the second notification", () => stormMails()[1], { timeout: 40_000 });
    expect(stormMails().map((m) => m.subject)).toEqual([`[FIRING] offline: 1 kiosk in group ${group}`, `[FIRING] offline: 8 kiosks in group ${group}`]);
    for (let i = 1; i <= 8; i++) expect(stormMails()[1]!.text).toContain(kiosk(i));
  }, 90_000);
});
