// notifications end to end, against a real notifications process on PostgreSQL, NATS and Redis
// (auth for the admin's token), link's and fleet's events published on the real JetStream
// streams with their real contracts, a real SMTP server (the dev mailbox) and a real HTTP
// webhook receiver in this process:
//   1. event → notification delivered at 1,000 events/s: each of BENCH_NOTIFY_EVENTS kiosks
//      disconnects once (link.kiosk.<id>.disconnected), a kiosk_offline rule (for 1 ms) sends
//      every notification to the webhook receiver; an alert's latency is from its event's
//      publish to the arrival of the webhook delivery that carried it (which alerts a delivery
//      carried is read from notifications' tables afterwards: a body names at most 1,000). GROUP_WAIT 0 and SWEEP_MS 100 here,
//      so this is the pipeline's own latency: production adds its GROUP_WAIT (10 s) by design.
//      Baseline, same run, same pacing: bare JetStream publish → durable consumer → ack.
//   2. the storm: BENCH_STORM_KIOSKS (10,000) kiosks registered in one group (fleet.kiosk.<id>.
//      created), then all disconnected as fast as JetStream takes them; a kiosk_offline rule
//      (for 1 s, the production GROUP_WAIT of 10 s) emails the dev mailbox. Timed: registration
//      applied, storm published, emails naming all of them received, all listed, rule deleted.
// Run: npm run bench:notifications (loopback only; bounded: ~2 minutes).
import os from "node:os";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { randomUUID } from "node:crypto";
import pg from "pg";
import { create, toBinary } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { AuthService } from "@adminkiosk/proto/adminkiosk/auth/v1/auth_pb";
import { KioskRegistryEventSchema } from "@adminkiosk/proto/adminkiosk/fleet/v1/events_pb";
import { KioskDisconnectedEventSchema } from "@adminkiosk/proto/adminkiosk/link/v1/events_pb";
import { AlertService, AlertState, DeliveryService, RuleService, Severity } from "@adminkiosk/proto/adminkiosk/notifications/v1/notifications_pb";
import { ensureStream, fleetSubjects, linkSubjects } from "@adminkiosk/runtime";
import { startMailbox } from "../services/notifications/src/dev-mailbox/mailbox.js";
import { benchAdmin, withStack } from "./stack.js";

const events = Number(process.env["BENCH_NOTIFY_EVENTS"] ?? 5000);
const rate = Number(process.env["BENCH_NOTIFY_RATE"] ?? 1000);
const stormKiosks = Number(process.env["BENCH_STORM_KIOSKS"] ?? 10_000);
const deadlineMs = 90_000;

const now = () => performance.timeOrigin + performance.now();
const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const load = () =>
  os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(" / ");

async function until<T>(what: string, check: () => Promise<T | undefined> | T | undefined, interval = 100): Promise<T> {
  const deadline = Date.now() + deadlineMs;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${deadlineMs / 1000} s`);
    await sleep(interval);
  }
}

/** Calls publish(i) for i < n at `perSecond`, paced to the clock; returns each one's publish time. */
async function paced(n: number, perSecond: number, publish: (i: number) => Promise<unknown>): Promise<number[]> {
  const times: number[] = new Array(n);
  const acks: Promise<unknown>[] = [];
  const start = now();
  for (let i = 0; i < n; i++) {
    const due = start + (i * 1000) / perSecond;
    const ahead = due - now();
    if (ahead > 1) await sleep(ahead);
    times[i] = now();
    acks.push(publish(i));
  }
  await Promise.all(acks);
  return times;
}

const stats = (latencies: number[]) => {
  const s = [...latencies].sort((a, b) => a - b);
  return { n: s.length, p50: pct(s, 50), p99: pct(s, 99), max: s.at(-1) ?? NaN };
};

const loadBefore = load();
await withStack({}, async ({ redisUrl, natsUrl, databaseUrl, auth, start }) => {
  const mailbox = await startMailbox({ keep: 10_000 });
  // The webhook receiver: when each delivery (x-adminkiosk-delivery) first arrived.
  const arrived = new Map<string, number>();
  const receiver = http.createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      const id = String(req.headers["x-adminkiosk-delivery"] ?? "");
      if (id && !arrived.has(id)) arrived.set(id, now());
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((r) => receiver.listen(0, "127.0.0.1", () => r()));
  const hookUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
  const nc = await connect({ servers: natsUrl });
  try {
    const js = jetstream(nc);
    const jsm = await jetstreamManager(nc);
    const { tokens } = await createClient(AuthService, createGrpcTransport({ baseUrl: auth.url })).login(benchAdmin);
    const as = { headers: { authorization: `Bearer ${tokens!.accessToken}` } };
    const notificationsEnv = (groupWait: string) => ({
      DATABASE_URL: databaseUrl,
      REDIS_URL: redisUrl,
      NATS_URL: natsUrl,
      AUTH_JWKS_URL: `${auth.url}/.well-known/jwks.json`,
      SMTP_URL: `smtp://127.0.0.1:${mailbox.smtpPort}`,
      WEBHOOK_SECRETS: "bench=bench-webhook-secret-0123456789",
      GROUP_WAIT: groupWait,
      // No group interval: every notification the pipeline can make, as before it existed.
      GROUP_INTERVAL: "0ms",
      SWEEP_MS: "100",
    });
    await ensureStream(nc, linkSubjects.stream);
    await ensureStream(nc, fleetSubjects.stream);

    // ---- 1. latency at 1,000 events/s, and the bare JetStream baseline ----
    const base = { name: "BENCHBASE", subjects: ["benchbase.>"] };
    await ensureStream(nc, base);
    await jsm.consumers.add(base.name, { durable_name: "bench", ack_policy: AckPolicy.Explicit, deliver_policy: DeliverPolicy.All });
    const received: number[] = new Array(events);
    let got = 0;
    const messages = await js.consumers.get(base.name, "bench").then((c) => c.consume());
    const consuming = (async () => {
      for await (const m of messages) {
        received[Number(m.subject.split(".")[1])] = now();
        m.ack();
        if (++got === events) break;
      }
    })();
    const baseSent = await paced(events, rate, (i) => js.publish(`benchbase.${i}`, new Uint8Array(64)));
    await Promise.race([consuming, sleep(deadlineMs)]);
    messages.stop();
    const baseline = stats(baseSent.map((t, i) => received[i]! - t));

    // A fresh process fetches auth's JWKS on its first authenticated call (Unavailable until then).
    const verifying = (client: { listRules(r: { pageSize: number }, o: typeof as): Promise<unknown> }) =>
      until("notifications to verify tokens", async () => {
        try {
          await client.listRules({ pageSize: 1 }, as);
          return true;
        } catch (err) {
          if (ConnectError.from(err).code === Code.Unavailable) return undefined;
          throw err;
        }
      }, 200);
    let notifications = await start("notifications", notificationsEnv("0ms"));
    const rules = createClient(RuleService, createGrpcTransport({ baseUrl: notifications.url }));
    await verifying(rules);
    const { rule } = await rules.createRule(
      {
        definition: {
          name: "bench offline",
          severity: Severity.WARNING,
          kind: { case: "kioskOffline", value: { forDuration: { seconds: 0n, nanos: 1_000_000 } } },
          receivers: { webhooks: [{ url: hookUrl, secretName: "bench" }] },
        },
      },
      as,
    );
    const kiosk = (i: number) => `lat-${i}`;
    const disconnect = (kioskId: string) =>
      js.publish(linkSubjects.disconnected(kioskId), toBinary(KioskDisconnectedEventSchema, create(KioskDisconnectedEventSchema, { kioskId, linkReplica: "bench", reason: "network", time: timestampFromDate(new Date()) })), { msgID: randomUUID() });
    const t0 = now();
    const sent = await paced(events, rate, (i) => disconnect(kiosk(i)));
    const publishSeconds = (now() - t0) / 1000;
    // Which alerts each delivery carried (a notification names at most 1,000 alert ids in its
    // body, so the bench reads notifications' own tables: alert_changes → deliveries).
    const db = new pg.Client({ connectionString: databaseUrl, options: "-c search_path=notifications" });
    await db.connect();
    const carried = async () =>
      (
        await db.query<{ delivery_id: string; kiosk_id: string; fired_at: Date }>(
          `SELECT d.delivery_id, a.kiosk_id, a.fired_at FROM deliveries d JOIN alert_changes c ON c.notification_id = d.notification_id JOIN alerts a ON a.alert_id = c.alert_id
           WHERE d.rule_id = $1 AND c.status = 'firing'`,
          [rule!.ruleId],
        )
      ).rows;
    const rows = await until(`every alert delivered by webhook (${events})`, async () => {
      const r = await carried();
      return r.length >= events && r.every((x) => arrived.has(x.delivery_id)) ? r : undefined;
    }, 250);
    await db.end();
    const sentAt = new Map(sent.map((t, i) => [kiosk(i), t]));
    const latency = stats(rows.map((r) => arrived.get(r.delivery_id)! - sentAt.get(r.kiosk_id)!));
    // Where the time goes: publish → fired (consumer, pending alert, the sweeper's fire step), fired → received (group, deliver).
    const toFire = stats(rows.map((r) => r.fired_at.getTime() - sentAt.get(r.kiosk_id)!));
    const toSend = stats(rows.map((r) => arrived.get(r.delivery_id)! - r.fired_at.getTime()));
    const deliveries = (await createClient(DeliveryService, createGrpcTransport({ baseUrl: notifications.url })).listDeliveries({ ruleId: rule!.ruleId, pageSize: 500 }, as)).deliveries;
    await rules.deleteRule({ ruleId: rule!.ruleId }, as);
    await notifications.stop();

    // ---- 2. the storm ----
    notifications = await start("notifications", { ...notificationsEnv("10s"), LINK_EVENTS_CONSUMER: "notifications-storm", FLEET_EVENTS_CONSUMER: "notifications-fleet-storm", LINK_EVENTS_SINCE_START: "true" });
    const rules2 = createClient(RuleService, createGrpcTransport({ baseUrl: notifications.url }));
    await verifying(rules2);
    const group = "storm-region";
    const storm = Array.from({ length: stormKiosks }, (_, i) => `storm-${i}`);
    const inSlices = async (items: string[], one: (id: string) => Promise<unknown>) => {
      for (let i = 0; i < items.length; i += 1000) await Promise.all(items.slice(i, i + 1000).map(one));
    };
    const r0 = now();
    await inSlices(storm, (kioskId) =>
      js.publish(fleetSubjects.kiosk(kioskId, "created"), toBinary(KioskRegistryEventSchema, create(KioskRegistryEventSchema, { kioskId, groupId: group, time: timestampFromDate(new Date()) })), { msgID: randomUUID() }),
    );
    await until("the registrations applied", async () => {
      const info = await jsm.consumers.info(fleetSubjects.stream.name, "notifications-fleet-storm").catch(() => undefined);
      return info && info.num_pending === 0 && info.num_ack_pending === 0 && info.delivered.stream_seq >= stormKiosks ? true : undefined;
    }, 50);
    const registered = (now() - r0) / 1000;
    const { rule: stormRule } = await rules2.createRule(
      {
        definition: {
          name: "region offline",
          severity: Severity.CRITICAL,
          kind: { case: "kioskOffline", value: { forDuration: { seconds: 1n, nanos: 0 } } },
          matcher: { groupIds: [group] },
          receivers: { emails: ["storm@bench.local"] },
        },
      },
      as,
    );
    const s0 = now();
    await inSlices(storm, disconnect);
    const published = (now() - s0) / 1000;
    const alerts2 = createClient(AlertService, createGrpcTransport({ baseUrl: notifications.url }));
    const countOf = (subject: string) => Number(/: (\d+) kiosks? in group /.exec(subject)?.[1] ?? 0);
    const mails = await until(
      "emails naming every kiosk",
      () => {
        const got = mailbox.messages().filter((m) => m.to.includes("storm@bench.local"));
        return got.reduce((n, m) => n + countOf(m.subject), 0) >= stormKiosks ? got : undefined;
      },
      100,
    );
    const emailed = (now() - s0) / 1000;
    // Every alert listed (what ListAlerts paging costs at this size).
    const l0 = now();
    let listed = 0;
    let pageToken = "";
    do {
      const page = await alerts2.listAlerts({ ruleId: stormRule!.ruleId, states: [AlertState.FIRING], pageSize: 500, pageToken }, as);
      listed += page.alerts.length;
      pageToken = page.nextPageToken;
    } while (pageToken);
    const listSeconds = (now() - l0) / 1000;
    const d0 = now();
    await rules2.deleteRule({ ruleId: stormRule!.ruleId }, as);
    const deleteSeconds = (now() - d0) / 1000;

    const ms = (v: number) => v.toFixed(1);
    console.log(`\nnotifications bench — ${new Date().toISOString()}, ${os.cpus().length} CPUs, load average (1/5/15 min) before ${loadBefore}, after ${load()}\n`);
    console.log(`1. event → notification delivered (webhook), ${events} events at ${rate}/s (published in ${publishSeconds.toFixed(1)} s), GROUP_WAIT 0, SWEEP_MS 100, rule for 1 ms`);
    console.log("| path | events | p50 ms | p99 ms | max ms |");
    console.log("|---|---:|---:|---:|---:|");
    console.log(`| notifications: link event → signed webhook received | ${latency.n} | ${ms(latency.p50)} | ${ms(latency.p99)} | ${ms(latency.max)} |`);
    console.log(`| … of which: event published → alert fired | ${toFire.n} | ${ms(toFire.p50)} | ${ms(toFire.p99)} | ${ms(toFire.max)} |`);
    console.log(`| … of which: alert fired → webhook received | ${toSend.n} | ${ms(toSend.p50)} | ${ms(toSend.p99)} | ${ms(toSend.max)} |`);
    console.log(`| baseline: bare JetStream publish → durable consumer | ${baseline.n} | ${ms(baseline.p50)} | ${ms(baseline.p99)} | ${ms(baseline.max)} |`);
    console.log(`ratio notifications / baseline: p50 ${(latency.p50 / baseline.p50).toFixed(0)}×, p99 ${(latency.p99 / baseline.p99).toFixed(0)}×; ${deliveries.length} grouped webhook notifications for ${events} alerts`);
    console.log(`\n2. storm: ${stormKiosks} kiosks of one group, rule for 1 s, GROUP_WAIT 10 s`);
    console.log("| step | seconds |");
    console.log("|---|---:|");
    console.log(`| ${stormKiosks} registrations published and applied | ${registered.toFixed(1)} |`);
    console.log(`| ${stormKiosks} disconnections published | ${published.toFixed(1)} |`);
    console.log(`| first disconnection published → emails naming all ${stormKiosks} received (${mails.length} email${mails.length === 1 ? "" : "s"}: ${mails.map((m) => countOf(m.subject)).join(" + ")}) | ${emailed.toFixed(1)} |`);
    console.log(`| ListAlerts, all ${listed} firing, 500 a page | ${listSeconds.toFixed(1)} |`);
    console.log(`| DeleteRule (resolves the ${listed} alerts) | ${deleteSeconds.toFixed(1)} |`);
  } finally {
    await nc.close();
    await new Promise<void>((r) => receiver.close(() => r()));
    await mailbox.close();
  }
});
