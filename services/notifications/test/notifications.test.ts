// notifications against real processes: auth, link (kiosks on their streams), notifications,
// a real SMTP server (the dev mailbox) and real HTTP servers as webhook receivers.
import http from "node:http";
import type { AddressInfo } from "node:net";
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DeviceStatus } from "@adminkiosk/proto/adminkiosk/link/v1/link_pb";
import {
  AlertService,
  AlertState,
  Channel,
  DeliveryService,
  DeliveryState,
  RuleService,
  Severity,
  type Alert,
} from "@adminkiosk/proto/adminkiosk/notifications/v1/notifications_pb";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { RuleDefinitionSchema } from "@adminkiosk/proto/adminkiosk/notifications/v1/notifications_pb";
import { eventually, waitFor } from "@adminkiosk/devstack";
import { verifySignature } from "@adminkiosk/runtime";
import { KioskService } from "@adminkiosk/proto/adminkiosk/fleet/v1/fleet_pb";
import { clientFor } from "../../../test/support/auth.js";
import { startNotifications, webhookSecret, type NotificationsFixture } from "./fixture.js";

let f: NotificationsFixture;
beforeAll(async () => {
  f = await startNotifications();
}, 120_000);
afterAll(async () => {
  await f?.stop();
});

const seconds = (s: number) => ({ seconds: BigInt(s), nanos: 0 });
const rulesAs = (token: string) => f.as(RuleService, token);

async function refusal(call: Promise<unknown>): Promise<ConnectError> {
  try {
    await call;
  } catch (err) {
    return ConnectError.from(err);
  }
  throw new Error("the call succeeded");
}

/** A webhook receiver: answers each request with `status(n)` (n counts from 1), keeps what it got. */
async function receiver(status: (n: number) => number) {
  const got: { body: Buffer; signature: string | undefined; status: number }[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const code = status(got.length + 1);
      got.push({ body: Buffer.concat(chunks), signature: req.headers["x-adminkiosk-signature"] as string | undefined, status: code });
      res.writeHead(code).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, got, close: () => new Promise<void>((r) => server.close(() => r())) };
}

async function deliveriesOf(ruleId: string) {
  return (await f.as(DeliveryService, f.tokens.viewer).listDeliveries({ ruleId, pageSize: 500 })).deliveries;
}

describe("rules", () => {
  const valid = () => ({
    name: "paper",
    severity: Severity.WARNING,
    kind: { case: "lowPaper" as const, value: { belowPercent: 10, forDuration: seconds(60) } },
    receivers: { emails: ["ops@example.com"] },
  });

  it("bad rules are InvalidArgument naming the field", async () => {
    const rules = rulesAs(f.tokens.admin);
    const cases: [object, string][] = [
      [{ ...valid(), kind: { case: undefined } }, "definition.kind"],
      [{ ...valid(), kind: { case: "lowPaper", value: { belowPercent: 150, forDuration: seconds(60) } } }, "definition.low_paper.below_percent"],
      [{ ...valid(), kind: { case: "lowPaper", value: { belowPercent: 10, forDuration: seconds(-5) } } }, "definition.low_paper.for_duration"],
      [{ ...valid(), kind: { case: "kioskOffline", value: { forDuration: seconds(0) } } }, "definition.kiosk_offline.for_duration"],
      [{ ...valid(), kind: { case: "printerFault", value: {} } }, "definition.printer_fault.for_duration"],
      [{ ...valid(), kind: { case: "stockoutPredicted", value: { sku: "has space" } } }, "definition.stockout_predicted.sku"],
      [{ ...valid(), kind: { case: "stockoutPredicted", value: { forDuration: seconds(-1) } } }, "definition.stockout_predicted.for_duration"],
      [{ ...valid(), severity: Severity.UNSPECIFIED }, "definition.severity"],
      [{ ...valid(), receivers: { emails: ["not an address"] } }, "definition.receivers.emails[0]"],
      [{ ...valid(), receivers: { webhooks: [{ url: "ftp://x", secretName: "hooks" }] } }, "definition.receivers.webhooks[0].url"],
      [{ ...valid(), receivers: { webhooks: [{ url: "http://x.test/h", secretName: "nope" }] } }, "definition.receivers.webhooks[0].secret_name"],
    ];
    for (const [definition, field] of cases) {
      const err = await refusal(rules.createRule({ definition: definition as MessageInitShape<typeof RuleDefinitionSchema> }));
      expect(err.code, field).toBe(Code.InvalidArgument);
      expect(err.rawMessage.startsWith(`${field}:`), `${err.rawMessage} names ${field}`).toBe(true);
    }
  });

  it("are versioned, listed, updated and deleted by admins only", async () => {
    const rules = rulesAs(f.tokens.admin);
    const { rule } = await rules.createRule({ definition: valid() });
    expect(rule).toMatchObject({ version: 1n, definition: { name: "paper" } });
    const updated = (await rules.updateRule({ ruleId: rule!.ruleId, definition: { ...valid(), name: "paper low" }, expectedVersion: 1n })).rule!;
    expect(updated).toMatchObject({ version: 2n, definition: { name: "paper low" } });
    expect((await refusal(rules.updateRule({ ruleId: rule!.ruleId, definition: valid(), expectedVersion: 1n }))).code).toBe(Code.FailedPrecondition);
    expect((await rules.listRules({})).rules.map((r) => r.ruleId)).toContain(rule!.ruleId);
    expect((await refusal(rulesAs(f.tokens.operator).createRule({ definition: valid() }))).code).toBe(Code.PermissionDenied);
    await rules.deleteRule({ ruleId: rule!.ruleId });
    expect((await refusal(rules.getRule({ ruleId: rule!.ruleId }))).code).toBe(Code.NotFound);
  });
});

describe("webhooks", () => {
  it("one that fails 3 times then succeeds gets the notification once, signed; one that always fails is dead-lettered", async () => {
    const flaky = await receiver((n) => (n <= 3 ? 500 : 200));
    const dead = await receiver(() => 503);
    const { rule } = await rulesAs(f.tokens.admin).createRule({
      definition: {
        name: "printer",
        severity: Severity.CRITICAL,
        kind: { case: "printerFault", value: { forDuration: seconds(1) } },
        receivers: { webhooks: [{ url: flaky.url, secretName: "hooks" }, { url: dead.url, secretName: "hooks" }] },
      },
    });
    try {
      await f.publishTelemetry("hook-1", { printer: DeviceStatus.FAULT });
      const done = await waitFor("both webhook deliveries to finish", async () => {
        const ds = await deliveriesOf(rule!.ruleId);
        return ds.length === 2 && ds.every((d) => d.state !== DeliveryState.PENDING) ? ds : undefined;
      });
      const toFlaky = done.find((d) => d.target === flaky.url)!;
      const toDead = done.find((d) => d.target === dead.url)!;
      expect(toFlaky).toMatchObject({ channel: Channel.WEBHOOK, state: DeliveryState.DELIVERED, attempts: 4, alertCount: 1, lastResult: "HTTP 200" });
      expect(toDead).toMatchObject({ state: DeliveryState.DEAD_LETTERED, attempts: 4, lastResult: "HTTP 503" });
      expect(flaky.got.map((g) => g.status)).toEqual([500, 500, 500, 200]);
      expect(dead.got).toHaveLength(4);
      const accepted = flaky.got[3]!;
      expect(() => verifySignature([webhookSecret], accepted.signature, accepted.body, 300_000, Date.now(), "x-adminkiosk-signature")).not.toThrow();
      const payload = JSON.parse(accepted.body.toString()) as { text: string; count: number; status: string; attachments: unknown[] };
      expect(payload).toMatchObject({ status: "firing", count: 1 });
      expect(payload.text).toContain("printer: 1 alert");
      expect(payload.attachments).toHaveLength(1);
      // The dead-letter list.
      const deadLetters = (await f.as(DeliveryService, f.tokens.viewer).listDeliveries({ states: [DeliveryState.DEAD_LETTERED], ruleId: rule!.ruleId })).deliveries;
      expect(deadLetters.map((d) => d.target)).toEqual([dead.url]);
    } finally {
      await rulesAs(f.tokens.admin).deleteRule({ ruleId: rule!.ruleId });
      await Promise.all([flaky.close(), dead.close()]);
    }
  });
});

describe("a kiosk that stops heartbeating", () => {
  it("produces one email and one in-app alert, and a resolution when it returns", async () => {
    const { rule } = await rulesAs(f.tokens.admin).createRule({
      definition: { name: "offline", severity: Severity.CRITICAL, kind: { case: "kioskOffline", value: { forDuration: seconds(2) } }, receivers: { emails: ["oncall@example.com"] } },
    });
    const watch = new AbortController();
    const seen: Alert[] = [];
    const watching = (async () => {
      try {
        for await (const m of f.as(AlertService, f.tokens.viewer).watchAlerts({}, { signal: watch.signal }))
          if (m.body.case === "alert" && m.body.value.kioskId === "quiet-1") seen.push(m.body.value);
      } catch {
        // ended by the abort below
      }
    })();
    let heartbeat: NodeJS.Timeout | undefined;
    try {
      const mailsFor = (status: string) => f.mailbox.messages().filter((m) => m.to.includes("oncall@example.com") && m.subject.startsWith(`[${status}] offline`));
      // Says hello, then nothing: link ends the silent stream, notifications waits out the rule's 2 s.
      const silent = await f.kiosk("quiet-1");
      await silent.ended;
      await waitFor("the alert email", () => (mailsFor("FIRING").length > 0 ? true : undefined));
      await expect.poll(() => seen.filter((a) => a.state === AlertState.FIRING).length, eventually).toBe(1);
      const fired = seen.find((a) => a.state === AlertState.FIRING)!;
      expect(fired).toMatchObject({ ruleId: rule!.ruleId, severity: Severity.CRITICAL, kioskId: "quiet-1" });
      expect(mailsFor("FIRING")[0]!.subject).toContain("1 kiosk");
      expect(mailsFor("FIRING")[0]!.raw).toContain("kiosk quiet-1 is offline");

      // The kiosk returns (and keeps heartbeating): the alert resolves and the resolution is sent.
      const back = await f.kiosk("quiet-1");
      heartbeat = setInterval(() => back.send({ body: { case: "heartbeat", value: {} } }), 300);
      await waitFor("the resolution email", () => (mailsFor("RESOLVED").length > 0 ? true : undefined));
      await expect.poll(() => seen.some((a) => a.state === AlertState.RESOLVED && a.alertId === fired.alertId), eventually).toBe(true);
      expect((await f.as(AlertService, f.tokens.viewer).getAlert({ alertId: fired.alertId })).alert).toMatchObject({ state: AlertState.RESOLVED, resolveReason: "condition cleared" });
      expect(mailsFor("FIRING")).toHaveLength(1);
      expect(seen.filter((a) => a.state === AlertState.FIRING)).toHaveLength(1);
      const emails = (await deliveriesOf(rule!.ruleId)).filter((d) => d.channel === Channel.EMAIL);
      expect(emails.map((d) => [d.status, d.state]).sort()).toEqual([
        ["firing", DeliveryState.DELIVERED],
        ["resolved", DeliveryState.DELIVERED],
      ]);
    } finally {
      watch.abort();
      await watching;
      await rulesAs(f.tokens.admin).deleteRule({ ruleId: rule!.ruleId });
      // The returned kiosk keeps heartbeating until the fixture stops, so it stays online.
      void heartbeat;
    }
  });
});

describe("alerts", () => {
  it("operators acknowledge and resolve; viewers may not", async () => {
    const { rule } = await rulesAs(f.tokens.admin).createRule({
      definition: { name: "paper-ack", severity: Severity.INFO, kind: { case: "lowPaper", value: { belowPercent: 20, forDuration: seconds(1) } } },
    });
    try {
      await f.publishTelemetry("ack-1", { paperLevelPercent: 5 });
      const alerts = f.as(AlertService, f.tokens.operator);
      const alert = await waitFor("the paper alert to fire", async () => (await alerts.listAlerts({ ruleId: rule!.ruleId, states: [AlertState.FIRING] })).alerts[0]);
      expect(alert.summary).toContain("paper at 5 %");
      expect((await refusal(f.as(AlertService, f.tokens.viewer).acknowledgeAlert({ alertId: alert.alertId }))).code).toBe(Code.PermissionDenied);
      expect((await alerts.acknowledgeAlert({ alertId: alert.alertId })).alert?.state).toBe(AlertState.ACKNOWLEDGED);
      const resolved = (await alerts.resolveAlert({ alertId: alert.alertId })).alert!;
      expect(resolved.state).toBe(AlertState.RESOLVED);
      expect(resolved.resolveReason).toMatch(/^resolved by /);
      expect((await refusal(alerts.acknowledgeAlert({ alertId: alert.alertId }))).code).toBe(Code.FailedPrecondition);
    } finally {
      await rulesAs(f.tokens.admin).deleteRule({ ruleId: rule!.ruleId });
    }
  });
});

describe("a storm", () => {
  it("200 kiosks of one group going offline make a handful of grouped notifications naming the count; every alert is listed", async () => {
    let hooks = 0;
    const hook = await receiver(() => (hooks++, 200));
    const { rule } = await rulesAs(f.tokens.admin).createRule({
      definition: {
        name: "storm",
        severity: Severity.WARNING,
        kind: { case: "kioskOffline", value: { forDuration: seconds(1) } },
        receivers: { emails: ["storm@example.com"], webhooks: [{ url: hook.url, secretName: "hooks" }] },
      },
    });
    try {
      const kiosks = Array.from({ length: 200 }, (_, i) => `storm-${i}`);
      await Promise.all(kiosks.map((k) => f.publishDisconnected(k)));
      const webhooks = await waitFor("all 200 alerts to be notified by webhook", async () => {
        const ds = (await deliveriesOf(rule!.ruleId)).filter((d) => d.channel === Channel.WEBHOOK && d.status === "firing");
        return ds.reduce((n, d) => n + d.alertCount, 0) === 200 && ds.every((d) => d.state === DeliveryState.DELIVERED) ? ds : undefined;
      }, { timeout: 60_000 });
      expect(webhooks.length).toBeLessThanOrEqual(5);
      for (const d of webhooks) expect(d.subject).toContain(`${d.alertCount} kiosk`);
      const emails = await waitFor("the storm's emails", () => {
        const mails = f.mailbox.messages().filter((m) => m.to.includes("storm@example.com"));
        return mails.length === webhooks.length ? mails : undefined;
      });
      expect(emails.map((m) => m.subject).sort()).toEqual(webhooks.map((d) => d.subject).sort());
      expect(hooks).toBe(webhooks.length);
      // No alert is lost: all 200 listed, page by page.
      const listed: string[] = [];
      let pageToken = "";
      do {
        const page = await f.as(AlertService, f.tokens.viewer).listAlerts({ ruleId: rule!.ruleId, states: [AlertState.FIRING], pageSize: 70, pageToken });
        listed.push(...page.alerts.map((a) => a.kioskId));
        pageToken = page.nextPageToken;
      } while (pageToken);
      expect(listed.sort()).toEqual([...kiosks].sort());
    } finally {
      await rulesAs(f.tokens.admin).deleteRule({ ruleId: rule!.ruleId });
      await hook.close();
    }
  }, 90_000);
});

describe("kiosk labels from fleet's registry", () => {
  const run = Date.now().toString(36);
  const registry = () => clientFor(KioskService, f.fleet.url, f.tokens.admin);
  const firing = async (ruleId: string) => (await f.as(AlertService, f.tokens.viewer).listAlerts({ ruleId, states: [AlertState.FIRING], pageSize: 500 })).alerts;

  it("a rule matching a tag alerts only for kiosks with that tag, and follows the kiosk's tags as fleet changes them", async () => {
    const group = `lab-${run}`;
    const tag = `lobby-${run}`;
    const rules = rulesAs(f.tokens.admin);
    const offline = { case: "kioskOffline" as const, value: { forDuration: seconds(1) } };
    const { rule: byTag } = await rules.createRule({ definition: { name: "lobby offline", severity: Severity.WARNING, kind: offline, matcher: { tags: [tag] } } });
    // Every kiosk of the group: shows both kiosks' labels and disconnections were applied.
    const { rule: byGroup } = await rules.createRule({ definition: { name: "group offline", severity: Severity.INFO, kind: offline, matcher: { groupIds: [group] } } });
    const [a, b] = [`lab-a-${run}`, `lab-b-${run}`];
    try {
      await registry().createKiosk({ kiosk: { kioskId: a, name: a, groupId: group, tags: [tag, "indoor"] } });
      await registry().createKiosk({ kiosk: { kioskId: b, name: b, groupId: group, tags: ["indoor"] } });
      await Promise.all([f.publishDisconnected(a), f.publishDisconnected(b)]);
      await waitFor("both kiosks' group alerts", async () => ((await firing(byGroup!.ruleId)).length === 2 ? true : undefined));
      const tagged = await waitFor("the tag rule's alert", async () => {
        const alerts = await firing(byTag!.ruleId);
        return alerts.length > 0 ? alerts : undefined;
      });
      expect(tagged.map((x) => x.kioskId)).toEqual([a]);
      // (fleet keeps a kiosk's tags sorted)
      expect(tagged[0]).toMatchObject({ groupId: group, tags: ["indoor", tag] });
      expect(tagged[0]!.labels).toMatchObject({ kiosk_id: a, group_id: group, tags: `indoor,${tag}` });

      // fleet tags b (it is offline): the rule now selects it; a loses the tag: its alert resolves.
      await registry().updateKiosk({ kioskId: b, updateTags: true, tags: [tag] });
      await registry().updateKiosk({ kioskId: a, updateTags: true, tags: ["indoor"] });
      await expect.poll(async () => (await firing(byTag!.ruleId)).map((x) => x.kioskId), eventually).toEqual([b]);
      const gone = (await f.as(AlertService, f.tokens.viewer).getAlert({ alertId: tagged[0]!.alertId })).alert!;
      expect(gone).toMatchObject({ state: AlertState.RESOLVED, resolveReason: "kiosk no longer selected by the rule" });

      // Deleted from the registry: its alerts resolve and no rule selects it any more.
      await registry().deleteKiosk({ kioskId: b });
      await expect.poll(async () => (await firing(byGroup!.ruleId)).map((x) => x.kioskId), eventually).toEqual([a]);
    } finally {
      await rules.deleteRule({ ruleId: byTag!.ruleId });
      await rules.deleteRule({ ruleId: byGroup!.ruleId });
    }
  }, 60_000);

  it("a storm in one group is grouped by that group", async () => {
    const tag = `storm-${run}`;
    const [north, south] = [`north-${run}`, `south-${run}`];
    const { rule } = await rulesAs(f.tokens.admin).createRule({
      definition: { name: "regional", severity: Severity.CRITICAL, kind: { case: "kioskOffline", value: { forDuration: seconds(1) } }, matcher: { tags: [tag] }, receivers: { emails: ["regions@example.com"] } },
    });
    const kiosks = [...Array.from({ length: 20 }, (_, i) => ({ id: `n-${run}-${i}`, group: north })), ...Array.from({ length: 5 }, (_, i) => ({ id: `s-${run}-${i}`, group: south }))];
    try {
      for (let i = 0; i < kiosks.length; i += 10)
        await Promise.all(kiosks.slice(i, i + 10).map((k) => registry().createKiosk({ kiosk: { kioskId: k.id, name: k.id, groupId: k.group, tags: [tag] } })));
      await Promise.all(kiosks.map((k) => f.publishDisconnected(k.id)));
      const sent = await waitFor(
        "all 25 alerts notified",
        async () => {
          const ds = (await deliveriesOf(rule!.ruleId)).filter((d) => d.status === "firing");
          return ds.reduce((n, d) => n + d.alertCount, 0) === 25 ? ds : undefined;
        },
        { timeout: 60_000 },
      );
      const byGroup = (g: string) => sent.filter((d) => d.groupId === g);
      expect(byGroup(north).reduce((n, d) => n + d.alertCount, 0)).toBe(20);
      expect(byGroup(south).reduce((n, d) => n + d.alertCount, 0)).toBe(5);
      expect(sent.filter((d) => d.groupId !== north && d.groupId !== south)).toEqual([]);
      expect(byGroup(north).length).toBeLessThanOrEqual(3);
      for (const d of sent) expect(d.subject).toContain(`${d.alertCount} kiosk${d.alertCount === 1 ? "" : "s"} in group ${d.groupId}`);
      const alerts = await firing(rule!.ruleId);
      expect(alerts).toHaveLength(25);
      for (const a of alerts) expect(a.groupId).toBe(a.kioskId.startsWith("n-") ? north : south);
    } finally {
      await rulesAs(f.tokens.admin).deleteRule({ ruleId: rule!.ruleId });
    }
  }, 90_000);
});

describe("ai's stock-out predictions", () => {
  it("a predicted stock-out makes one alert and one email naming the kiosk and product; cleared resolves it", async () => {
    const run = Date.now().toString(36);
    const kioskId = `shelf-${run}`;
    const { rule } = await rulesAs(f.tokens.admin).createRule({
      definition: { name: "cola running out", severity: Severity.WARNING, kind: { case: "stockoutPredicted", value: { sku: "SNK-COLA" } }, receivers: { emails: ["restock@example.com"] } },
    });
    // Every product, held 1 h: nothing fires within the test.
    const { rule: held } = await rulesAs(f.tokens.admin).createRule({
      definition: { name: "any stock-out, held", severity: Severity.INFO, kind: { case: "stockoutPredicted", value: { forDuration: seconds(3600) } }, receivers: { emails: ["held@example.com"] } },
    });
    try {
      expect(rule!.definition!.kind).toMatchObject({ case: "stockoutPredicted", value: { sku: "SNK-COLA" } });
      const alerts = f.as(AlertService, f.tokens.viewer);
      const mailsFor = (status: string) => f.mailbox.messages().filter((m) => m.to.includes("restock@example.com") && m.subject.startsWith(`[${status}] cola running out`));
      // The message as text (quoted-printable soft line breaks joined).
      const text = (m: { raw: string }) => m.raw.replace(/=\r?\n/g, "");
      // Another product: the rule's sku filter leaves it out.
      await f.publishStockout(kioskId, "SNK-CHIPS", "predicted", 0.7);
      await f.publishStockout(kioskId, "SNK-COLA", "predicted", 0.83);
      const alert = await waitFor("the stock-out alert", async () => (await alerts.listAlerts({ ruleId: rule!.ruleId, states: [AlertState.FIRING] })).alerts[0]);
      expect(alert).toMatchObject({ kioskId, severity: Severity.WARNING, labels: { kiosk_id: kioskId, sku: "SNK-COLA" } });
      expect(alert.summary).toContain(`kiosk ${kioskId}: product SNK-COLA may run out`);
      expect(alert.summary).toContain("probability 83 %");
      await waitFor("the alert email", () => (mailsFor("FIRING").length > 0 ? true : undefined));
      expect(mailsFor("FIRING")).toHaveLength(1);
      expect(mailsFor("FIRING")[0]!.subject).toContain("1 alert");
      expect(text(mailsFor("FIRING")[0]!)).toContain(`kiosk ${kioskId}: product SNK-COLA may run out`);
      expect((await alerts.listAlerts({ ruleId: rule!.ruleId })).alerts).toHaveLength(1);

      // ai says the risk fell below the threshold: the alert resolves and the resolution is sent.
      await f.publishStockout(kioskId, "SNK-COLA", "cleared", 0.1);
      await expect.poll(async () => (await alerts.getAlert({ alertId: alert.alertId })).alert?.state, eventually).toBe(AlertState.RESOLVED);
      expect((await alerts.getAlert({ alertId: alert.alertId })).alert?.resolveReason).toBe("stock-out no longer predicted");
      await waitFor("the resolution email", () => (mailsFor("RESOLVED").length > 0 ? true : undefined));
      expect(text(mailsFor("RESOLVED")[0]!)).toContain(`kiosk ${kioskId}, product SNK-COLA: resolved`);
      expect(mailsFor("FIRING")).toHaveLength(1);
      // The held rule saw both products predicted but its hour has not passed: nothing fired or sent.
      expect((await alerts.listAlerts({ ruleId: held!.ruleId })).alerts).toEqual([]);
      expect(f.mailbox.messages().filter((m) => m.to.includes("held@example.com"))).toEqual([]);
    } finally {
      await rulesAs(f.tokens.admin).deleteRule({ ruleId: rule!.ruleId });
      await rulesAs(f.tokens.admin).deleteRule({ ruleId: held!.ruleId });
    }
  }, 60_000);
});
