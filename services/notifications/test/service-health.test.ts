// Rule kind service_not_serving against real processes: a real link process announcing its
// health (the runtime's heartbeat on stream OPS) is killed with SIGKILL — it says nothing —
// and the rule's alert fires and is emailed; a restarted link process replaces it and the
// alert resolves, the resolution emailed too. A link stopped gracefully (draining) while
// another link serves alerts nobody.
import { mkdtempSync } from "node:fs";
import { join } from "node:path";
import { fromBinary } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { AlertService, AlertState, RuleService, Severity } from "@adminkiosk/proto/adminkiosk/notifications/v1/notifications_pb";
import { ServiceHealthEventSchema, type ServiceHealthEvent } from "@adminkiosk/proto/adminkiosk/ops/v1/health_events_pb";
import { freePort, startNats, startTestService, waitFor, type ManagedProcess, type StartedService } from "@adminkiosk/devstack";
import { opsSubjects } from "@adminkiosk/runtime";
import { startNotifications, type NotificationsFixture } from "./fixture.js";

const suffix = `${process.pid}-${Date.now().toString(36)}`;
let f: NotificationsFixture;
let nc: NatsConnection;
// A NATS of this file's own: every link process of the test run announces itself on
// ops.health.link, and another file killing its link would otherwise count here as well.
let nats: ManagedProcess;
let natsUrl: string;
const seen: ServiceHealthEvent[] = [];
const started: StartedService[] = [];

beforeAll(async () => {
  const port = await freePort();
  nats = await startNats(mkdtempSync(join(inject("infra").tmpDir, "nats-health-")), port);
  natsUrl = nats.url;
  [f, nc] = await Promise.all([
    startNotifications({
      SERVICE_HEALTH_CONSUMER: `n-health-${suffix}`,
      TELEMETRY_EVENTS_CONSUMER: `n-telemetry-${suffix}`,
      CATALOG_EVENTS_CONSUMER: `n-catalog-${suffix}`,
      PAYMENTS_EVENTS_CONSUMER: `n-payments-${suffix}`,
      ORDERS_EVENTS_CONSUMER: `n-orders-${suffix}`,
      SILENT_FAILURE_EVENTS_CONSUMER: `n-silent-${suffix}`,
      COMMERCE_EVENTS_SINCE_START: "true",
    }, { natsUrl }),
    connect({ servers: natsUrl }),
  ]);
  // What the processes announce, as notifications reads it (to know a process was heard).
  const sub = nc.subscribe(opsSubjects.health("link"));
  void (async () => {
    for await (const m of sub) seen.push(fromBinary(ServiceHealthEventSchema, m.data));
  })();
}, 120_000);

afterAll(async () => {
  for (const s of started) await s.stop();
  await nc?.close();
  await f?.stop();
  await nats?.stop();
});

const seconds = (s: number) => ({ seconds: BigInt(s), nanos: 0 });

/**
 * A link process of its own that announces its health every second, once it was heard serving
 * (its own announcement: the instance names the process id — the fixture's link announces
 * on this NATS too, and under load started close enough to pass for a new one by time).
 */
async function startLink(name: string): Promise<{ proc: StartedService; instance: string }> {
  const proc = await startTestService("link", {
    REDIS_URL: f.auth.redisUrl,
    NATS_URL: natsUrl,
    AUTH_JWKS_URL: `${f.auth.service.url}/.well-known/jwks.json`,
    LINK_REPLICA_ID: `${name}-${suffix}`,
    // Its heartbeat's ttl is three of these: long enough that a loaded machine delaying one
    // heartbeat does not make a live process look dead for a moment.
    HEALTH_ANNOUNCE_INTERVAL_MS: "1000",
    HEALTH_PROBE_INTERVAL_MS: "300",
    SHUTDOWN_GRACE_MS: "1000",
  });
  started.push(proc);
  const pid = String(proc.child.pid);
  const heard = await waitFor(`${name} to announce SERVING`, () => seen.find((e) => e.serving && !e.draining && e.instance.split("/")[1] === pid));
  return { proc, instance: heard.instance };
}

/**
 * The rule's firing alert that names `instance` missing; on a timeout the error says what the
 * rule's alerts and the processes heard were. Named, because another link process may have
 * been not serving for a moment first (a process starting up is, until its Redis client has
 * connected: its alert fires and resolves on its own, and is not the one looked for).
 */
async function firing(what: string, ruleId: string, instance: string) {
  const alerts = f.as(AlertService, f.tokens.viewer);
  try {
    return await waitFor(what, async () => (await alerts.listAlerts({ ruleId, states: [AlertState.FIRING] })).alerts.find((a) => a.summary.includes(`${instance}: no heartbeat since`)), {
      timeout: 30_000,
    });
  } catch (err) {
    const all = (await alerts.listAlerts({ ruleId })).alerts.map((a) => `${AlertState[a.state]}: ${a.summary}`);
    const heard = [...new Map(seen.map((e) => [e.instance, `${e.instance} serving=${e.serving} draining=${e.draining}`])).values()];
    throw new Error(`${(err as Error).message}; the rule's alerts: ${JSON.stringify(all)}; processes heard: ${JSON.stringify(heard)}`);
  }
}

async function refusal(call: Promise<unknown>): Promise<ConnectError> {
  try {
    await call;
  } catch (err) {
    return ConnectError.from(err);
  }
  throw new Error("the call succeeded");
}

describe("service_not_serving", () => {
  it("refuses a bad service name, a kiosk matcher and a missing for_duration, naming the field", async () => {
    const rules = f.as(RuleService, f.tokens.admin);
    const base = { name: "svc", severity: Severity.CRITICAL, receivers: { emails: ["ops@example.com"] } };
    const cases: [object, string][] = [
      [{ kind: { case: "serviceNotServing", value: { service: "Link Service", forDuration: seconds(5) } } }, "definition.service_not_serving.service"],
      [{ kind: { case: "serviceNotServing", value: { service: "link" } } }, "definition.service_not_serving.for_duration"],
      [{ kind: { case: "serviceNotServing", value: { service: "link", forDuration: seconds(5) } }, matcher: { groupIds: ["north"] } }, "definition.matcher"],
    ];
    for (const [def, field] of cases) {
      const err = await refusal(rules.createRule({ definition: { ...base, ...def } as never }));
      expect(err.code).toBe(Code.InvalidArgument);
      expect(err.rawMessage).toContain(field);
    }
  });

  it("a link process killed with SIGKILL fires the alert (emailed); its restart resolves it (emailed)", async () => {
    const to = `svc-${suffix}@example.com`;
    const { rule } = await f.as(RuleService, f.tokens.admin).createRule({
      definition: { name: "link down", severity: Severity.CRITICAL, kind: { case: "serviceNotServing", value: { service: "link", forDuration: seconds(1) } }, receivers: { emails: [to] } },
    });
    const alerts = f.as(AlertService, f.tokens.viewer);
    const { proc, instance } = await startLink("doomed");

    proc.child.kill("SIGKILL"); // no goodbye: its heartbeats just stop
    await proc.exited;
    const alert = await firing("the link alert to fire", rule!.ruleId, instance);
    expect(alert.labels).toEqual({ service: "link" });
    expect(alert.kioskId).toBe("");
    const fired = await waitFor("the firing email", () => f.mailbox.messages().find((m) => m.to.includes(to) && m.subject.startsWith("[FIRING] link down") && m.text.includes(instance)));
    expect(fired.subject).toBe("[FIRING] link down: 1 alert");

    // A new link process (its restart) serves: the dead one is replaced, and nothing of the rule is open.
    const restarted = await startLink("restarted");
    await expect
      .poll(async () => (await alerts.listAlerts({ ruleId: rule!.ruleId })).alerts.map((a) => [a.alertId, a.state]).filter(([id, state]) => id === alert.alertId || state !== AlertState.RESOLVED), {
        timeout: 30_000,
      })
      .toEqual([[alert.alertId, AlertState.RESOLVED]]);
    const resolved = await waitFor("the resolution email", () =>
      f.mailbox.messages().slice(f.mailbox.messages().indexOf(fired)).find((m) => m.to.includes(to) && m.subject.startsWith("[RESOLVED] link down")),
    );
    expect(resolved.text).toContain("service link: resolved");

    // The rules editor's dry run replays it: link was down once in the last hour, catalog never.
    const dry = async (service: string) =>
      f.as(RuleService, f.tokens.admin).dryRunRule({ definition: { name: "dry", severity: Severity.INFO, kind: { case: "serviceNotServing", value: { service, forDuration: seconds(1) } } } });
    const linkRun = await dry("link");
    const killed = linkRun.samples.filter((x) => x.summary.includes(`${instance}: no heartbeat since`));
    expect(killed).toHaveLength(1);
    expect(killed[0]).toMatchObject({ kioskId: "", labels: { service: "link" } });
    expect(killed[0]!.resolveTime).toBeDefined();
    expect(linkRun.alertCount).toBe(linkRun.samples.length);
    expect((await dry("catalog")).alertCount).toBe(0);

    // Stopped gracefully (it announces its draining) while another link serves: not counted.
    // Shown by the next alert, of a third process killed after it, naming that one alone.
    await restarted.proc.stop();
    const third = await startLink("third");
    third.proc.child.kill("SIGKILL");
    await third.proc.exited;
    const next = await firing("the second link alert to fire", rule!.ruleId, third.instance);
    expect(next.summary).not.toContain(restarted.instance);
    expect(next.summary).toMatch(/^service link: 1 of \d+ process/);
  }, 120_000);
});
