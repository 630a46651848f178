// The alert policy against real processes (auth, link, fleet, notifications, the dev mailbox's
// SMTP server): silences, inhibition, repeat intervals, escalation through on-call tiers, and
// people's subscriptions with quiet hours. Durations are seconds; everything is polled.
import { Code, ConnectError } from "@connectrpc/connect";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { mkdtempSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { DeviceStatus } from "@adminkiosk/proto/adminkiosk/link/v1/link_pb";
import { KioskService } from "@adminkiosk/proto/adminkiosk/fleet/v1/fleet_pb";
import { AlertService, AlertState, Channel, DeliveryService, DeliveryState, RuleService, Severity } from "@adminkiosk/proto/adminkiosk/notifications/v1/notifications_pb";
import { InhibitRuleService, MatchOperator, SilenceService, SubscriptionService } from "@adminkiosk/proto/adminkiosk/notifications/v1/policy_pb";
import { eventually, freePort, startNats, waitFor, type ManagedProcess } from "@adminkiosk/devstack";
import { clientFor, Role } from "../../../test/support/auth.js";
import { startNotifications, type NotificationsFixture } from "./fixture.js";

let f: NotificationsFixture;
// A NATS of this file's own: its rules match every kiosk, and other files' kiosks reporting low
// paper on the shared one would join its alerts and notifications.
let nats: ManagedProcess;
beforeAll(async () => {
  nats = await startNats(mkdtempSync(join(inject("infra").tmpDir, "nats-policy-")), await freePort());
  f = await startNotifications({}, { natsUrl: nats.url });
  // link's events count from the moment notifications' consumer exists (LINK_EVENTS_SINCE_START):
  // publish until one is seen, so no test's first event goes before it.
  const { rule } = await f.as(RuleService, f.tokens.admin).createRule({
    definition: { name: "consumer ready", severity: Severity.INFO, kind: { case: "lowPaper", value: { belowPercent: 20, forDuration: { seconds: 1n, nanos: 0 } } } },
  });
  await waitFor(
    "notifications to consume link's events",
    async () => {
      await f.publishTelemetry(`ready-${process.pid}`, { paperLevelPercent: 1 });
      return (await f.as(AlertService, f.tokens.viewer).listAlerts({ ruleId: rule!.ruleId })).alerts[0];
    },
    { timeout: 60_000, interval: 500 },
  );
  await f.as(RuleService, f.tokens.admin).deleteRule({ ruleId: rule!.ruleId });
}, 120_000);
afterAll(async () => {
  await f?.stop();
  await nats?.stop();
});

const run = Date.now().toString(36);
const seconds = (s: number) => ({ seconds: BigInt(s), nanos: 0 });
const rules = () => f.as(RuleService, f.tokens.admin);
const alertsAs = (token: string) => f.as(AlertService, token);

async function refusal(call: Promise<unknown>): Promise<ConnectError> {
  try {
    await call;
  } catch (err) {
    return ConnectError.from(err);
  }
  throw new Error("the call succeeded");
}

async function expectInvalid(call: Promise<unknown>, field: string) {
  const err = await refusal(call);
  expect(err.code, field).toBe(Code.InvalidArgument);
  expect(err.rawMessage.startsWith(`${field}:`), `"${err.rawMessage}" names ${field}`).toBe(true);
}

/** Mails to `to` whose subject starts with `prefix`, as text (quoted-printable soft breaks joined). */
const mails = (to: string, prefix = "") =>
  f.mailbox
    .messages()
    .filter((m) => m.to.includes(to) && m.subject.startsWith(prefix))
    .map((m) => ({ subject: m.subject, text: m.raw.replace(/=\r?\n/g, "") }));

const firingOf = async (ruleId: string) => (await alertsAs(f.tokens.viewer).listAlerts({ ruleId, states: [AlertState.FIRING, AlertState.ACKNOWLEDGED], pageSize: 100 })).alerts;

/** "HH:MM" in `timeZone`, `offsetMinutes` from now. */
function localClock(timeZone: string, offsetMinutes: number): string {
  const at = new Date(Date.now() + offsetMinutes * 60_000);
  return new Intl.DateTimeFormat("en-GB", { timeZone, hour: "2-digit", minute: "2-digit", hourCycle: "h23" }).format(at);
}

describe("validation and access", () => {
  it("bad silences, inhibit rules, subscriptions, tiers and rule policies are InvalidArgument naming the field", async () => {
    const silences = f.as(SilenceService, f.tokens.operator);
    const inAnHour = timestampFromDate(new Date(Date.now() + 3_600_000));
    const ok = { label: "kiosk_id", operator: MatchOperator.EQUAL, value: "k-1" };
    await expectInvalid(silences.createSilence({ matchers: [], endTime: inAnHour, comment: "x" }), "matchers");
    await expectInvalid(silences.createSilence({ matchers: [ok, { label: "kiosk_id", operator: MatchOperator.REGEX, value: "k-(" }], endTime: inAnHour, comment: "x" }), "matchers[1].value");
    await expectInvalid(silences.createSilence({ matchers: [{ label: "colour", operator: MatchOperator.EQUAL, value: "red" }], endTime: inAnHour, comment: "x" }), "matchers[0].label");
    await expectInvalid(silences.createSilence({ matchers: [{ ...ok, operator: MatchOperator.UNSPECIFIED }], endTime: inAnHour, comment: "x" }), "matchers[0].operator");
    await expectInvalid(silences.createSilence({ matchers: [ok], endTime: timestampFromDate(new Date(Date.now() - 60_000)), comment: "x" }), "end_time");
    await expectInvalid(silences.createSilence({ matchers: [ok], comment: "x" }), "end_time");
    await expectInvalid(silences.createSilence({ matchers: [ok], endTime: timestampFromDate(new Date(Date.now() + 365 * 86_400_000)), comment: "x" }), "end_time");
    await expectInvalid(silences.createSilence({ matchers: [ok], endTime: inAnHour, comment: "" }), "comment");
    expect((await refusal(f.as(SilenceService, f.tokens.viewer).createSilence({ matchers: [ok], endTime: inAnHour, comment: "x" }))).code).toBe(Code.PermissionDenied);
    await expectInvalid(silences.expireSilence({ silenceId: "" }), "silence_id");
    // One starting later is listed as not yet active; expired, it is gone from the list of those that have not ended.
    const { silence: later } = await silences.createSilence({
      matchers: [ok],
      startTime: timestampFromDate(new Date(Date.now() + 3_600_000)),
      endTime: timestampFromDate(new Date(Date.now() + 7_200_000)),
      comment: "tomorrow's maintenance",
    });
    expect((await silences.listSilences({})).silences.find((x) => x.silenceId === later!.silenceId)).toMatchObject({ active: false });
    expect((await silences.expireSilence({ silenceId: later!.silenceId })).silence).toMatchObject({ active: false });
    expect((await silences.listSilences({})).silences.map((x) => x.silenceId)).not.toContain(later!.silenceId);

    const inhibit = f.as(InhibitRuleService, f.tokens.admin);
    await expectInvalid(inhibit.createInhibitRule({ inhibitRule: { sourceMatchers: [ok] } }), "inhibit_rule.target_matchers");
    await expectInvalid(inhibit.createInhibitRule({ inhibitRule: { sourceMatchers: [ok], targetMatchers: [ok], equal: ["region-ish"] } }), "inhibit_rule.equal[0]");
    expect((await refusal(f.as(InhibitRuleService, f.tokens.operator).createInhibitRule({ inhibitRule: { sourceMatchers: [ok], targetMatchers: [ok] } }))).code).toBe(Code.PermissionDenied);

    const subs = f.as(SubscriptionService, f.tokens.viewer);
    await expectInvalid(subs.setMySubscription({ subscription: { routes: [{ channel: Channel.EMAIL }] } }), "subscription.email");
    await expectInvalid(subs.setMySubscription({ subscription: { email: "me@example.com", routes: [{ channel: Channel.UNSPECIFIED }] } }), "subscription.routes[0].channel");
    await expectInvalid(subs.setMySubscription({ subscription: { email: "me@example.com", quietHours: { start: "22:00", end: "07:00", timeZone: "Mars/Olympus" } } }), "subscription.quiet_hours.time_zone");
    await expectInvalid(subs.setMySubscription({ subscription: { email: "me@example.com", quietHours: { start: "25:00", end: "07:00", timeZone: "Europe/Prague" } } }), "subscription.quiet_hours.start");
    await expectInvalid(subs.setMySubscription({ subscription: { webhook: { url: "http://x.test/h", secretName: "nope" } } }), "subscription.webhook.secret_name");
    // This deployment has no SMS provider: an SMS route is refused, naming it.
    await expectInvalid(subs.setMySubscription({ subscription: { phoneNumber: "+420601234567", routes: [{ channel: Channel.SMS }] } }), "subscription.routes[0].channel");
    await expectInvalid(f.as(SubscriptionService, f.tokens.admin).setOnCallTier({ tier: { level: 0, receivers: { emails: ["a@example.com"] } } }), "tier.level");
    await expectInvalid(f.as(SubscriptionService, f.tokens.admin).setOnCallTier({ tier: { level: 1 } }), "tier");
    await expectInvalid(f.as(SubscriptionService, f.tokens.admin).setOnCallTier({ tier: { level: 1, receivers: { phoneNumbers: ["+420601234567"] } } }), "tier.receivers.phone_numbers");
    expect((await refusal(subs.setOnCallTier({ tier: { level: 1, receivers: { emails: ["a@example.com"] } } }))).code).toBe(Code.PermissionDenied);

    const base = { name: "p", severity: Severity.WARNING, kind: { case: "printerFault" as const, value: { forDuration: seconds(1) } } };
    await expectInvalid(rules().createRule({ definition: { ...base, repeatInterval: seconds(-5) } }), "definition.repeat_interval");
    await expectInvalid(rules().createRule({ definition: { ...base, repeatInterval: seconds(30 * 86_400) } }), "definition.repeat_interval");
    await expectInvalid(rules().createRule({ definition: { ...base, escalation: {} } }), "definition.escalation.escalate_after");

    // A viewer's own subscription round-trips, normalized (time zone canonical, email lower-cased).
    const saved = (await subs.setMySubscription({ subscription: { email: "Me@Example.com", routes: [{ channel: Channel.EMAIL, severities: [Severity.CRITICAL] }], quietHours: { start: "22:00", end: "07:00", timeZone: "europe/prague" } } })).subscription!;
    expect(saved).toMatchObject({ email: "me@example.com", quietHours: { timeZone: "Europe/Prague" } });
    expect((await subs.getMySubscription({})).subscription).toMatchObject({ userId: saved.userId, email: "me@example.com", routes: [{ channel: Channel.EMAIL, severities: [Severity.CRITICAL] }] });
    await subs.setMySubscription({});
  });
});

describe("silences", () => {
  it("a silenced alert is listed, marked silenced, and not notified; when the silence is expired the still-firing alert notifies", async () => {
    const to = `silence-${run}@example.com`;
    const { rule } = await rules().createRule({
      definition: { name: `paper ${run}`, severity: Severity.WARNING, kind: { case: "lowPaper", value: { belowPercent: 20, forDuration: seconds(1) } }, receivers: { emails: [to] } },
    });
    const [quiet, loud] = [`sil-${run}`, `loud-${run}`];
    try {
      const { silence } = await f.as(SilenceService, f.tokens.operator).createSilence({
        matchers: [
          { label: "alertname", operator: MatchOperator.EQUAL, value: `paper ${run}` },
          { label: "kiosk_id", operator: MatchOperator.REGEX, value: `sil-${run}|nothing-else` },
        ],
        endTime: timestampFromDate(new Date(Date.now() + 3_600_000)),
        comment: "paper is on its way",
      });
      expect(silence).toMatchObject({ active: true, comment: "paper is on its way" });
      expect(silence!.createdBy).not.toBe("");
      expect((await f.as(SilenceService, f.tokens.viewer).listSilences({})).silences.map((s) => s.silenceId)).toContain(silence!.silenceId);

      await f.publishTelemetry(quiet, { paperLevelPercent: 5 });
      const silenced = await waitFor("the silenced alert to fire", async () => (await firingOf(rule!.ruleId)).find((a) => a.kioskId === quiet));
      expect(silenced.silencedBy).toEqual([silence!.silenceId]);
      // Another kiosk of the same rule and group is not silenced: its notification, made with or
      // after the one the silenced alert would have joined, names it alone.
      await f.publishTelemetry(loud, { paperLevelPercent: 5 });
      const first = await waitFor("the unsilenced alert's email", () => mails(to, "[FIRING]")[0]);
      expect(first.subject).toContain("1 alert");
      expect(first.text).toContain(`kiosk ${loud}`);
      expect(first.text).not.toContain(quiet);
      expect((await alertsAs(f.tokens.viewer).getAlert({ alertId: silenced.alertId })).alert).toMatchObject({ state: AlertState.FIRING, silencedBy: [silence!.silenceId] });

      // Expired early: the alert it held back still fires, so it notifies now.
      const expired = (await f.as(SilenceService, f.tokens.operator).expireSilence({ silenceId: silence!.silenceId })).silence!;
      expect(expired.active).toBe(false);
      expect(expired.expiredBy).not.toBe("");
      const late = await waitFor("the silenced alert's email once the silence expired", () => mails(to, "[FIRING]").find((m) => m.text.includes(`kiosk ${quiet}`)));
      expect(late.subject).toContain("1 alert");
      expect(late.text).not.toContain(loud);
      expect(mails(to, "[FIRING]")).toHaveLength(2);
      expect((await alertsAs(f.tokens.viewer).getAlert({ alertId: silenced.alertId })).alert?.silencedBy).toEqual([]);
      expect((await f.as(SilenceService, f.tokens.viewer).listSilences({})).silences.map((s) => s.silenceId)).not.toContain(silence!.silenceId);
      expect((await f.as(SilenceService, f.tokens.viewer).listSilences({ includeExpired: true })).silences.map((s) => s.silenceId)).toContain(silence!.silenceId);
    } finally {
      await rules().deleteRule({ ruleId: rule!.ruleId });
    }
  }, 60_000);
});

describe("inhibition", () => {
  it("a group's network alert mutes that group's kiosk-offline alerts until it resolves; other groups are notified", async () => {
    const to = `inhibit-${run}@example.com`;
    const [north, south] = [`inh-north-${run}`, `inh-south-${run}`];
    const offline = { case: "kioskOffline" as const, value: { forDuration: seconds(1) } };
    const { rule: network } = await rules().createRule({
      definition: { name: `network ${run}`, severity: Severity.CRITICAL, kind: offline, matcher: { tags: [`gateway-${run}`] }, receivers: { emails: [to] } },
    });
    const { rule: kiosks } = await rules().createRule({
      definition: { name: `offline ${run}`, severity: Severity.WARNING, kind: offline, matcher: { tags: [`kiosk-${run}`] }, receivers: { emails: [to] } },
    });
    const { inhibitRule } = await f.as(InhibitRuleService, f.tokens.admin).createInhibitRule({
      inhibitRule: {
        sourceMatchers: [{ label: "alertname", operator: MatchOperator.EQUAL, value: `network ${run}` }],
        targetMatchers: [{ label: "alertname", operator: MatchOperator.EQUAL, value: `offline ${run}` }],
        equal: ["group_id"],
        comment: "a group without network: its kiosks are offline because of it",
      },
    });
    const registry = clientFor(KioskService, f.fleet.url, f.tokens.admin);
    const gateway = `inh-gw-${run}`;
    const members = [
      { id: gateway, group: north, tag: `gateway-${run}` },
      { id: `inh-n1-${run}`, group: north, tag: `kiosk-${run}` },
      { id: `inh-n2-${run}`, group: north, tag: `kiosk-${run}` },
      { id: `inh-s1-${run}`, group: south, tag: `kiosk-${run}` },
    ];
    try {
      expect((await f.as(InhibitRuleService, f.tokens.viewer).listInhibitRules({})).inhibitRules.map((r) => r.inhibitRuleId)).toContain(inhibitRule!.inhibitRuleId);
      for (const k of members) await registry.createKiosk({ kiosk: { kioskId: k.id, name: k.id, groupId: k.group, tags: [k.tag] } });
      await f.publishDisconnected(gateway);
      const source = await waitFor("the network alert", async () => (await firingOf(network!.ruleId))[0]);
      expect(source.groupId).toBe(north);
      await Promise.all(members.slice(1).map((k) => f.publishDisconnected(k.id)));
      // north's kiosk alerts are listed, inhibited by the network alert; south's is notified.
      await expect
        .poll(async () => (await firingOf(kiosks!.ruleId)).map((a) => [a.kioskId, a.inhibitedBy]).sort(), eventually)
        .toEqual([
          [`inh-n1-${run}`, source.alertId],
          [`inh-n2-${run}`, source.alertId],
          [`inh-s1-${run}`, ""],
        ]);
      const southMail = await waitFor("south's kiosk-offline email", () => mails(to, `[FIRING] offline ${run}`).find((m) => m.subject.includes(south)));
      expect(southMail.subject).toContain("1 kiosk");
      expect(mails(to, `[FIRING] offline ${run}`).filter((m) => m.subject.includes(north))).toEqual([]);
      await waitFor("the network alert's email", () => mails(to, `[FIRING] network ${run}`)[0]);

      // The network alert resolves (an operator closes it): north's kiosks, still offline, notify.
      await alertsAs(f.tokens.operator).resolveAlert({ alertId: source.alertId });
      const northMail = await waitFor("north's kiosk-offline email once the network alert resolved", () => mails(to, `[FIRING] offline ${run}`).find((m) => m.subject.includes(north)));
      expect(northMail.subject).toContain(`2 kiosks in group ${north}`);
      await expect.poll(async () => (await firingOf(kiosks!.ruleId)).map((a) => a.inhibitedBy), eventually).toEqual(["", "", ""]);
    } finally {
      await f.as(InhibitRuleService, f.tokens.admin).deleteInhibitRule({ inhibitRuleId: inhibitRule!.inhibitRuleId });
      await rules().deleteRule({ ruleId: network!.ruleId });
      await rules().deleteRule({ ruleId: kiosks!.ruleId });
    }
  }, 60_000);
});

describe("repeat interval", () => {
  it("a still-firing, unacknowledged alert is notified again after the rule's repeat interval; acknowledged, it is not", async () => {
    const to = `repeat-${run}@example.com`;
    const definition = (name: string, kind: "printerFault" | "lowPaper") => ({
      name,
      severity: Severity.WARNING,
      kind: kind === "printerFault" ? { case: kind, value: { forDuration: seconds(1) } } : { case: kind, value: { belowPercent: 20, forDuration: seconds(1) } },
      repeatInterval: seconds(3),
      receivers: { emails: [to] },
    });
    const { rule: a } = await rules().createRule({ definition: definition(`repeat-a ${run}`, "printerFault") });
    let b: Awaited<ReturnType<ReturnType<typeof rules>["createRule"]>>["rule"];
    try {
      await f.publishTelemetry(`rep-a-${run}`, { printer: DeviceStatus.FAULT });
      await waitFor("the first email", () => mails(to, `[FIRING] repeat-a ${run}`)[0]);
      const again = await waitFor("the repeat", () => mails(to, `[FIRING] repeat-a ${run}`)[1]);
      expect(again.subject).toContain("still firing");
      expect(again.text).toContain(`kiosk rep-a-${run}: printer fault`);

      // Acknowledged: no more repeats. Rule b's alert, fired after the acknowledgement with the same
      // interval, repeats; a's would have come before.
      const alert = (await firingOf(a!.ruleId))[0]!;
      const acked = (await alertsAs(f.tokens.operator).acknowledgeAlert({ alertId: alert.alertId })).alert!;
      ({ rule: b } = await rules().createRule({ definition: definition(`repeat-b ${run}`, "lowPaper") }));
      // (paper, not the printer: rule a does not select it)
      await f.publishTelemetry(`rep-b-${run}`, { paperLevelPercent: 5 });
      await waitFor("rule b's repeat", () => mails(to, `[FIRING] repeat-b ${run}`)[1], { timeout: 30_000 });
      const ackedAt = Number(acked.acknowledgeTime!.seconds) * 1000 + acked.acknowledgeTime!.nanos / 1e6;
      // (half a second's margin: a notification begun while the acknowledgement was committing may still name it)
      const afterAck = (await f.as(DeliveryService, f.tokens.viewer).listDeliveries({ ruleId: a!.ruleId, pageSize: 100 })).deliveries.filter(
        (d) => Number(d.createTime!.seconds) * 1000 + d.createTime!.nanos / 1e6 > ackedAt + 500,
      );
      expect(afterAck).toEqual([]);
    } finally {
      await rules().deleteRule({ ruleId: a!.ruleId });
      if (b) await rules().deleteRule({ ruleId: b.ruleId });
    }
  }, 60_000);
});

describe("escalation and subscriptions", () => {
  it("an alert nobody acknowledges in time escalates to the next on-call tier; an acknowledged one does not; a silenced one waits for the silence to end", async () => {
    const admin = f.as(SubscriptionService, f.tokens.admin);
    const [tier1, tier2] = [`tier1-${run}@example.com`, `tier2-${run}@example.com`];
    // Tier 2 is a person, reached at their subscription's address.
    const person = await f.auth.userWithRole(Role.OPERATOR);
    await clientFor(SubscriptionService, f.notifications.url, person.accessToken).setMySubscription({ subscription: { email: tier2 } });
    await admin.setOnCallTier({ tier: { level: 1, receivers: { emails: [tier1] } } });
    await admin.setOnCallTier({ tier: { level: 2, userIds: [person.userId] } });
    expect((await f.as(SubscriptionService, f.tokens.viewer).listOnCallTiers({})).tiers.map((t) => t.level)).toEqual([1, 2]);
    const { rule } = await rules().createRule({
      definition: { name: `escalating ${run}`, severity: Severity.CRITICAL, kind: { case: "printerFault", value: { forDuration: seconds(1) } }, escalation: { escalateAfter: seconds(5) } },
    });
    const [acked, ignored, silenced] = [`esc-ack-${run}`, `esc-ign-${run}`, `esc-sil-${run}`];
    try {
      await Promise.all([acked, ignored, silenced].map((k) => f.publishTelemetry(k, { printer: DeviceStatus.FAULT })));
      await waitFor("tier 1's email naming all three", () => {
        const text = mails(tier1, `[FIRING] escalating ${run}`)
          .map((m) => m.text)
          .join("\n");
        return [acked, ignored, silenced].every((k) => text.includes(k)) ? true : undefined;
      });
      const alert = (await firingOf(rule!.ruleId)).find((a) => a.kioskId === acked)!;
      expect(alert.escalationTier).toBe(1);
      await alertsAs(f.tokens.operator).acknowledgeAlert({ alertId: alert.alertId });
      const { silence } = await f.as(SilenceService, f.tokens.operator).createSilence({
        matchers: [{ label: "kiosk_id", operator: MatchOperator.EQUAL, value: silenced }],
        endTime: timestampFromDate(new Date(Date.now() + 3_600_000)),
        comment: "being repaired",
      });

      const escalated = await waitFor("tier 2's email", () => mails(tier2, `[ESCALATED to tier 2] escalating ${run}`)[0]);
      expect(escalated.subject).toContain("1 alert");
      expect(escalated.text).toContain(ignored);
      expect(escalated.text).not.toContain(acked);
      expect(escalated.text).not.toContain(silenced);
      expect(mails(tier1, "[ESCALATED")).toEqual([]);
      // The silence ends: the silenced alert, still unacknowledged, reaches tier 2 at its next try.
      await f.as(SilenceService, f.tokens.operator).expireSilence({ silenceId: silence!.silenceId });
      const late = await waitFor("tier 2's email for the alert once unsilenced", () => mails(tier2, `[ESCALATED to tier 2] escalating ${run}`).find((m) => m.text.includes(silenced)));
      expect(late.text).not.toContain(ignored);
      const deliveries = (await f.as(DeliveryService, f.tokens.viewer).listDeliveries({ ruleId: rule!.ruleId, pageSize: 100 })).deliveries;
      expect(deliveries.find((d) => d.target === tier2)).toMatchObject({ recipient: "tier:2" });
      expect(deliveries.find((d) => d.target === tier1)).toMatchObject({ recipient: "tier:1" });
      await expect.poll(async () => (await firingOf(rule!.ruleId)).map((a) => [a.kioskId, a.escalationTier]).sort(), eventually).toEqual([
        [acked, 1],
        [ignored, 2],
        [silenced, 2],
      ]);
    } finally {
      await rules().deleteRule({ ruleId: rule!.ruleId });
      await admin.deleteOnCallTier({ level: 1 });
      await admin.deleteOnCallTier({ level: 2 });
    }
  }, 60_000);

  it("a person whose quiet hours cover now gets no warning, but gets a critical alert; someone without quiet hours gets both", async () => {
    const group = `quiet-${run}`;
    const kiosk = `quiet-k-${run}`;
    await clientFor(KioskService, f.fleet.url, f.tokens.admin).createKiosk({ kiosk: { kioskId: kiosk, name: kiosk, groupId: group } });
    const zone = "Pacific/Auckland";
    const [sleeper, awake] = [await f.auth.userWithRole(Role.OPERATOR), await f.auth.userWithRole(Role.VIEWER)];
    const [night, day] = [`night-${run}@example.com`, `day-${run}@example.com`];
    const route = { channel: Channel.EMAIL, groupIds: [group] };
    await clientFor(SubscriptionService, f.notifications.url, sleeper.accessToken).setMySubscription({
      subscription: { email: night, routes: [route], quietHours: { start: localClock(zone, -120), end: localClock(zone, 120), timeZone: zone } },
    });
    await clientFor(SubscriptionService, f.notifications.url, awake.accessToken).setMySubscription({ subscription: { email: day, routes: [route] } });
    // Both rules select the group only, so their alerts open once fleet's label event arrived.
    const { rule: warning } = await rules().createRule({
      definition: { name: `paper low ${run}`, severity: Severity.WARNING, kind: { case: "lowPaper", value: { belowPercent: 20, forDuration: seconds(1) } }, matcher: { groupIds: [group] } },
    });
    const { rule: critical } = await rules().createRule({
      definition: { name: `printer broken ${run}`, severity: Severity.CRITICAL, kind: { case: "printerFault", value: { forDuration: seconds(1) } }, matcher: { groupIds: [group] } },
    });
    try {
      await waitFor("the kiosk's alerts", async () => {
        await f.publishTelemetry(kiosk, { paperLevelPercent: 5, printer: DeviceStatus.FAULT });
        return (await firingOf(warning!.ruleId)).find((a) => a.groupId === group);
      });
      await waitFor("the critical email to the person in quiet hours", () => mails(night, `[FIRING] printer broken ${run}`)[0]);
      await waitFor("both emails to the person without quiet hours", () => (mails(day, "[FIRING]").length === 2 ? true : undefined));
      const suppressed = await waitFor("the warning's delivery to the person in quiet hours", async () =>
        (await f.as(DeliveryService, f.tokens.viewer).listDeliveries({ ruleId: warning!.ruleId, pageSize: 100 })).deliveries.find((d) => d.target === night),
      );
      expect(suppressed).toMatchObject({ state: DeliveryState.SUPPRESSED, recipient: `user:${sleeper.userId}`, attempts: 0 });
      expect(suppressed.lastResult).toContain(`quiet hours`);
      expect(suppressed.lastResult).toContain(zone);
      expect((await f.as(DeliveryService, f.tokens.viewer).listDeliveries({ states: [DeliveryState.SUPPRESSED], pageSize: 100 })).deliveries.map((d) => d.deliveryId)).toContain(suppressed.deliveryId);
      expect(mails(night, `[FIRING] paper low ${run}`)).toEqual([]);
      expect(mails(night)).toHaveLength(1);
    } finally {
      await rules().deleteRule({ ruleId: warning!.ruleId });
      await rules().deleteRule({ ruleId: critical!.ruleId });
    }
  }, 60_000);
});
