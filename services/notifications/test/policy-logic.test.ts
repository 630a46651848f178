// The alert policy's pure parts, no servers: matchers over alert labels, quiet hours in a time
// zone (across midnight and a daylight-saving change), and whom a notification reaches.
import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { Channel, Severity } from "@adminkiosk/proto/adminkiosk/notifications/v1/notifications_pb";
import { MatchOperator, OnCallTierSchema, SubscriptionSchema } from "@adminkiosk/proto/adminkiosk/notifications/v1/policy_pb";
import { dedupeTargets, inQuietHours, matchesAll, subscriberTargets, tierTargets, validateMatchers, validateSubscription, type AlertLabels } from "../src/policy.js";

const labels = (over: Partial<AlertLabels> = {}): AlertLabels => ({
  alertname: "kiosk offline",
  rule_id: "r-1",
  severity: "warning",
  kiosk_id: "prague-001",
  group_id: "cz",
  sku: "",
  tags: ["lobby", "tickets"],
  ...over,
});
const m = (label: string, operator: MatchOperator, value: string) => validateMatchers("m", [{ $typeName: "adminkiosk.notifications.v1.Matcher", label, operator, value }])[0]!;

describe("matchers", () => {
  it("= and != compare the whole value; =~ and !~ match the whole value, not a part", () => {
    expect(matchesAll([m("kiosk_id", MatchOperator.EQUAL, "prague-001")], labels())).toBe(true);
    expect(matchesAll([m("kiosk_id", MatchOperator.NOT_EQUAL, "prague-001")], labels())).toBe(false);
    expect(matchesAll([m("kiosk_id", MatchOperator.REGEX, "prague-.*")], labels())).toBe(true);
    expect(matchesAll([m("kiosk_id", MatchOperator.REGEX, "prague")], labels())).toBe(false);
    expect(matchesAll([m("kiosk_id", MatchOperator.NOT_REGEX, "brno-.*")], labels())).toBe(true);
  });

  it("all must hold; a label the alert lacks is empty", () => {
    expect(matchesAll([m("group_id", MatchOperator.EQUAL, "cz"), m("severity", MatchOperator.EQUAL, "critical")], labels())).toBe(false);
    expect(matchesAll([m("sku", MatchOperator.EQUAL, "")], labels())).toBe(true);
    expect(matchesAll([m("sku", MatchOperator.REGEX, ".+")], labels())).toBe(false);
  });

  it("tags: = and =~ hold when any tag matches, != and !~ when none does", () => {
    expect(matchesAll([m("tags", MatchOperator.EQUAL, "tickets")], labels())).toBe(true);
    expect(matchesAll([m("tags", MatchOperator.NOT_EQUAL, "tickets")], labels())).toBe(false);
    expect(matchesAll([m("tags", MatchOperator.REGEX, "tick.*")], labels())).toBe(true);
    expect(matchesAll([m("tags", MatchOperator.NOT_REGEX, "outdoor|garden")], labels())).toBe(true);
    expect(matchesAll([m("tags", MatchOperator.EQUAL, "")], labels({ tags: [] }))).toBe(true);
  });

  it("a bad regular expression, lookaround or backreference is refused naming the matcher", () => {
    expect(() => m("kiosk_id", MatchOperator.REGEX, "(")).toThrow(/^m\[0\]\.value: is not a valid regular expression/);
    expect(() => m("kiosk_id", MatchOperator.REGEX, "(?=a)a")).toThrow(/^m\[0\]\.value: lookaround/);
    expect(() => m("kiosk_id", MatchOperator.REGEX, "(a)\\1")).toThrow(/^m\[0\]\.value: lookaround and backreferences/);
    expect(() => m("region", MatchOperator.EQUAL, "eu")).toThrow(/^m\[0\]\.label: must be one of/);
  });
});

describe("quiet hours", () => {
  it("span midnight when the start is after the end; the start is inside, the end is not", () => {
    const q = { start: "22:00", end: "07:00", timeZone: "Europe/Prague" };
    // 2026-01-15, Prague is UTC+1.
    expect(inQuietHours(q, new Date("2026-01-15T20:59:00Z"))).toBe(false); // 21:59
    expect(inQuietHours(q, new Date("2026-01-15T21:00:00Z"))).toBe(true); // 22:00
    expect(inQuietHours(q, new Date("2026-01-15T23:30:00Z"))).toBe(true); // 00:30
    expect(inQuietHours(q, new Date("2026-01-16T05:59:00Z"))).toBe(true); // 06:59
    expect(inQuietHours(q, new Date("2026-01-16T06:00:00Z"))).toBe(false); // 07:00
  });

  it("are judged in the person's zone, daylight saving included", () => {
    const q = { start: "09:00", end: "17:00", timeZone: "America/New_York" };
    // 13:30 UTC is 09:30 in New York in summer (UTC-4) but 08:30 in winter (UTC-5).
    expect(inQuietHours(q, new Date("2026-07-01T13:30:00Z"))).toBe(true);
    expect(inQuietHours(q, new Date("2026-01-15T13:30:00Z"))).toBe(false);
  });
});

describe("routing", () => {
  const at = new Date("2026-01-15T23:30:00Z"); // 00:30 in Prague
  const sleeper = create(SubscriptionSchema, {
    userId: "u-sleeper",
    email: "night@example.com",
    routes: [{ channel: Channel.EMAIL, groupIds: ["cz"] }],
    quietHours: { start: "22:00", end: "07:00", timeZone: "Europe/Prague" },
  });
  const picky = create(SubscriptionSchema, { userId: "u-picky", email: "picky@example.com", routes: [{ channel: Channel.EMAIL, severities: [Severity.CRITICAL], tags: ["tickets"] }] });
  const facts = (severity: Severity, tags: string[] = ["lobby"]) => ({ severity, groupId: "cz", tags: new Set(tags), at });

  it("a route matches by severity, group and any tag; quiet hours suppress all but critical", () => {
    expect(subscriberTargets([sleeper, picky], facts(Severity.WARNING))).toEqual([
      { channel: "email", target: "night@example.com", secretName: "", recipient: "user:u-sleeper", suppressed: "quiet hours 22:00–07:00 Europe/Prague" },
    ]);
    expect(subscriberTargets([sleeper, picky], facts(Severity.CRITICAL, ["tickets"])).map((t) => [t.target, t.suppressed])).toEqual([
      ["night@example.com", undefined],
      ["picky@example.com", undefined],
    ]);
    expect(subscriberTargets([sleeper], { ...facts(Severity.CRITICAL), groupId: "sk" })).toEqual([]);
  });

  it("on-call tiers reach their people at every contact, whatever their routes or quiet hours; one delivery per address, a sent one winning", () => {
    const tier = create(OnCallTierSchema, { level: 2, userIds: ["u-sleeper", "u-unknown"], receivers: { emails: ["night@example.com", "ops@example.com"] } });
    const targets = tierTargets(tier, new Map([[sleeper.userId, sleeper]]));
    expect(targets.map((t) => [t.target, t.recipient])).toEqual([
      ["night@example.com", "tier:2"],
      ["night@example.com", "tier:2"],
      ["ops@example.com", "tier:2"],
    ]);
    const merged = dedupeTargets([...subscriberTargets([sleeper], facts(Severity.WARNING)), ...targets]);
    expect(merged.map((t) => [t.target, t.recipient, t.suppressed])).toEqual([
      ["night@example.com", "tier:2", undefined],
      ["ops@example.com", "tier:2", undefined],
    ]);
  });

  it("SMS and Web Push: a person's phone and every browser where they turned push on, when the deployment has them", () => {
    const both = { sms: true, webPush: true };
    const sub = validateSubscription(
      create(SubscriptionSchema, { phoneNumber: "+420 601 234 567", routes: [{ channel: Channel.SMS, severities: [Severity.CRITICAL] }, { channel: Channel.WEB_PUSH }] }),
      "u-1",
      new Set(),
      both,
    );
    expect(sub.phoneNumber).toBe("+420601234567");
    const push = new Map([["u-1", ["https://push.example/a", "https://push.example/b"]]]);
    expect(subscriberTargets([sub], facts(Severity.CRITICAL), push).map((t) => [t.channel, t.target])).toEqual([
      ["sms", "+420601234567"],
      ["web_push", "https://push.example/a"],
      ["web_push", "https://push.example/b"],
    ]);
    expect(subscriberTargets([sub], facts(Severity.WARNING), push).map((t) => t.channel)).toEqual(["web_push", "web_push"]);
    expect(() => validateSubscription(create(SubscriptionSchema, { phoneNumber: "+420601234567", routes: [{ channel: Channel.SMS }] }), "u-1", new Set(), { sms: false, webPush: true })).toThrow(
      /^subscription\.routes\[0\]\.channel: SMS is not configured/,
    );
    expect(() => validateSubscription(create(SubscriptionSchema, { routes: [{ channel: Channel.SMS }] }), "u-1", new Set(), both)).toThrow(/^subscription\.phone_number: is required/);
    expect(() => validateSubscription(create(SubscriptionSchema, { phoneNumber: "601 234" }), "u-1", new Set(), both)).toThrow(/subscription\.phone_number: must be an E\.164/);
  });
});
