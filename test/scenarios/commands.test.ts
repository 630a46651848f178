// Commands end to end (ARCHITECTURE flow 3), on real processes: an operator sends a
// command in fleet; it travels through NATS to the link replica holding the kiosk's
// stream; the kiosk (the SDK) acks it, runs it once and reports; fleet shows each step.
import type { MessageInitShape } from "@bufbuild/protobuf";
import { durationFromMs, timestampMs, timestampNow } from "@bufbuild/protobuf/wkt";
import { BadRequestSchema } from "@adminkiosk/proto/google/rpc/error_details_pb";
import { Code, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AuditService } from "@adminkiosk/proto/adminkiosk/fleet/v1/audit_pb";
import { CommandOutcome, CommandService, CommandState, type Command } from "@adminkiosk/proto/adminkiosk/fleet/v1/commands_pb";
import { KioskService, KioskStatus } from "@adminkiosk/proto/adminkiosk/fleet/v1/fleet_pb";
import { LinkService, type ConnectRequestSchema } from "@adminkiosk/proto/adminkiosk/link/v1/link_pb";
import type { KioskClient } from "@adminkiosk/kiosk-sdk";
import { eventually } from "@adminkiosk/devstack";
import { bearer, failure, Role } from "../support/auth.js";
import { startFleet, type FleetFixture } from "../support/fleet.js";
import { StreamOutbox } from "../../services/link/src/outbox.js";

let f: FleetFixture;
let operator: string;
let viewer: string;

beforeAll(async () => {
  f = await startFleet({ name: "cmd", links: 2 });
  operator = (await f.auth.userWithRole(Role.OPERATOR)).accessToken;
  viewer = (await f.auth.userWithRole(Role.VIEWER)).accessToken;
});
afterAll(async () => {
  await f?.stop();
});

const commands = () => f.fleetClient(CommandService, operator);
const getCommand = async (commandId: string) => (await commands().getCommand({ commandId })).command!;
const stateOf = async (commandId: string) => (await getCommand(commandId)).state;
const display = (text: string) => ({ kind: { case: "displayMessage" as const, value: { text } } });

/** A kiosk on the SDK that records every execution of every command. */
function executingKiosk(credential: string, options: { linkAddress?: string | string[] } = {}) {
  const executed: string[] = [];
  const client = f.kiosk(credential, options).onCommand("displayMessage", (_m, d) => void executed.push(d.commandId));
  return { client, executed };
}

const online = async (client: KioskClient) => expect.poll(() => client.isConnected, { ...eventually, interval: 50 }).toBe(true);
const shownOnline = (kioskId: string) =>
  expect.poll(async () => (await f.fleetClient(KioskService).getKiosk({ kioskId })).kiosk?.status, eventually).toBe(KioskStatus.ONLINE);

describe("one kiosk", () => {
  it("a command to an online kiosk is acked and succeeds, and fleet shows every step", async () => {
    const creds = await f.enroll(["cmd-online"]);
    const { client, executed } = executingKiosk(creds.get("cmd-online")!);
    client.start();
    await online(client);
    await shownOnline("cmd-online");

    const { command } = await commands().sendCommand({ kioskId: "cmd-online", action: display("Closed for cleaning") });
    expect(command).toMatchObject({ kioskId: "cmd-online", state: CommandState.QUEUED });
    await expect.poll(() => stateOf(command!.commandId), { ...eventually, interval: 20 }).toBe(CommandState.SUCCEEDED);
    const done = await getCommand(command!.commandId);
    // Every step shown, in order, and run once. How fast is the machine's speed, so not
    // asserted; nor is a single delivery: an ack slower than COMMAND_RESEND_MS (3 s here)
    // rightly gets the command resent, and the kiosk still runs it once.
    expect(done).toMatchObject({ outcome: CommandOutcome.SUCCEEDED });
    expect(done.deliveryAttempts).toBeGreaterThanOrEqual(1);
    expect(done.sentTime && done.ackTime && done.finishTime).toBeTruthy();
    // Created before it was sent and acked, acked no later than finished. sent_time is when
    // fleet heard link took it, which can come after the kiosk's ack (its own path), so
    // sent and ack are not ordered against each other.
    const [created, sent, acked, finished] = [done.createTime!, done.sentTime!, done.ackTime!, done.finishTime!].map((t) => timestampMs(t));
    expect(created).toBeLessThanOrEqual(sent!);
    expect(created).toBeLessThanOrEqual(acked!);
    expect(acked).toBeLessThanOrEqual(finished!);
    expect(executed).toEqual([command!.commandId]);
  });

  it("commands to an offline kiosk wait, then arrive on reconnect, in order, each once", async () => {
    const creds = await f.enroll(["cmd-offline"]);
    const sent: string[] = [];
    for (const text of ["one", "two", "three", "four"]) sent.push((await commands().sendCommand({ kioskId: "cmd-offline", action: display(text) })).command!.commandId);
    for (const id of sent) expect(await stateOf(id)).toBe(CommandState.QUEUED);

    const { client, executed } = executingKiosk(creds.get("cmd-offline")!);
    client.start();
    await expect.poll(() => executed.length, { ...eventually, interval: 50 }).toBe(4);
    expect(executed).toEqual(sent);
    for (const id of sent) await expect.poll(() => stateOf(id), { ...eventually, interval: 50 }).toBe(CommandState.SUCCEEDED);
  });

  it("a command past its TTL expires and is never delivered", async () => {
    const creds = await f.enroll(["cmd-ttl"]);
    const { command } = await commands().sendCommand({ kioskId: "cmd-ttl", action: display("too late"), ttl: durationFromMs(10_000) });
    // Its 10 s TTL, then the shared deadline for fleet's sweep to mark it.
    await expect.poll(() => stateOf(command!.commandId), { timeout: 10_000 + eventually.timeout, interval: 200 }).toBe(CommandState.EXPIRED);
    const { client, executed } = executingKiosk(creds.get("cmd-ttl")!);
    const delivered: string[] = [];
    client.on("command", (d) => delivered.push(d.commandId));
    client.start();
    await online(client);
    await shownOnline("cmd-ttl");
    // Something after it does arrive, so the kiosk was listening.
    const later = (await commands().sendCommand({ kioskId: "cmd-ttl", action: display("on time") })).command!;
    await expect.poll(() => stateOf(later.commandId), { ...eventually, interval: 50 }).toBe(CommandState.SUCCEEDED);
    expect(delivered).toEqual([later.commandId]);
    expect(executed).toEqual([later.commandId]);
    expect(await stateOf(command!.commandId)).toBe(CommandState.EXPIRED);
  }, 60_000);

  it("a retried SendCommand with the same idempotency key is one command; another body under that key is refused", async () => {
    await f.enroll(["cmd-idem"]);
    const request = { kioskId: "cmd-idem", action: display("hello"), idempotencyKey: "retry-1" };
    const [a, b] = await Promise.all([commands().sendCommand(request), commands().sendCommand(request)]);
    const c = await commands().sendCommand(request);
    expect(new Set([a.command!.commandId, b.command!.commandId, c.command!.commandId]).size).toBe(1);
    const err = await failure(commands().sendCommand({ ...request, action: display("something else") }));
    expect(err.code).toBe(Code.InvalidArgument);
    expect(err.findDetails(BadRequestSchema)[0]?.fieldViolations[0]?.field).toBe("idempotency_key");
    expect((await commands().listCommands({ kioskId: "cmd-idem" })).commands).toHaveLength(1);
  });

  it("an unacknowledged command can be canceled and is then not delivered", async () => {
    const creds = await f.enroll(["cmd-cancel"]);
    const { command } = await commands().sendCommand({ kioskId: "cmd-cancel", action: display("never mind") });
    expect((await commands().cancelCommand({ commandId: command!.commandId })).command?.state).toBe(CommandState.CANCELED);
    expect((await failure(commands().cancelCommand({ commandId: command!.commandId }))).code).toBe(Code.FailedPrecondition);
    const { client, executed } = executingKiosk(creds.get("cmd-cancel")!);
    client.start();
    await online(client);
    const after = (await commands().sendCommand({ kioskId: "cmd-cancel", action: display("this one") })).command!;
    await expect.poll(() => stateOf(after.commandId), { ...eventually, interval: 50 }).toBe(CommandState.SUCCEEDED);
    expect(executed).toEqual([after.commandId]);
  });
});

describe("who may command", () => {
  it("a viewer cannot send or cancel commands; an operator can; both are in the audit log with who and what", async () => {
    await f.enroll(["cmd-roles"]);
    const asViewer = f.fleetClient(CommandService, viewer);
    expect((await failure(asViewer.sendCommand({ kioskId: "cmd-roles", action: display("x") }))).code).toBe(Code.PermissionDenied);
    const { command } = await commands().sendCommand({ kioskId: "cmd-roles", action: display("by the operator") });
    expect((await asViewer.getCommand({ commandId: command!.commandId })).command?.commandId).toBe(command!.commandId);
    expect((await failure(asViewer.cancelCommand({ commandId: command!.commandId }))).code).toBe(Code.PermissionDenied);
    await commands().cancelCommand({ commandId: command!.commandId });

    const { events } = await f.fleetClient(AuditService).listAuditEvents({ subject: "cmd-roles" });
    const operatorId = command!.issuedBy;
    expect(operatorId).not.toBe("");
    expect(events.map((e) => [e.type, e.actor])).toEqual([
      ["command.canceled", operatorId],
      ["command.sent", operatorId],
      ["kiosk.created", expect.any(String)],
    ]);
    expect(JSON.parse(events[1]!.detailsJson)).toMatchObject({ commandId: command!.commandId, action: "displayMessage" });
    expect((await failure(f.fleetClient(AuditService, operator).listAuditEvents({}))).code).toBe(Code.PermissionDenied);
  });

  it("bad input is refused with InvalidArgument naming the field", async () => {
    const bad = async (req: Parameters<ReturnType<typeof commands>["sendCommand"]>[0], field: string) => {
      const err = await failure(commands().sendCommand(req));
      expect(err.code).toBe(Code.InvalidArgument);
      expect(err.rawMessage).toContain(field);
    };
    await bad({ kioskId: "cmd-online", action: {} }, "action");
    await bad({ kioskId: "cmd-online", action: display("") }, "action.display_message.text");
    await bad({ kioskId: "cmd-online", action: display("x"), ttl: durationFromMs(1_000) }, "ttl");
    await bad({ kioskId: "no.dots", action: display("x") }, "kiosk_id");
    expect((await failure(commands().sendCommand({ kioskId: "cmd-nobody", action: display("x") }))).code).toBe(Code.NotFound);
    expect((await failure(commands().getCommand({ commandId: "nope" }))).code).toBe(Code.InvalidArgument);
  });
});

describe("a kiosk speaks only for itself", () => {
  it("a kiosk cannot ack or finish another kiosk's command", async () => {
    const creds = await f.enroll(["cmd-victim", "cmd-intruder"]);
    const { command } = await commands().sendCommand({ kioskId: "cmd-victim", action: display("mine") });
    const up = new StreamOutbox<MessageInitShape<typeof ConnectRequestSchema>>(100);
    const stream = createClient(LinkService, createGrpcTransport({ baseUrl: f.links[0]!.url, interceptors: [bearer(creds.get("cmd-intruder")!)] }))
      .connect(up)
      [Symbol.asyncIterator]();
    up.push({ body: { case: "hello", value: {} } });
    expect((await stream.next()).value?.body.case).toBe("welcome");
    up.push({ body: { case: "ack", value: { commandId: command!.commandId } } });
    up.push({ body: { case: "result", value: { commandId: command!.commandId, outcome: CommandOutcome.FAILED, errorMessage: "hijacked" } } });
    // Its own telemetry goes through (so the stream is alive and fleet has read past the forged messages).
    up.push({ body: { case: "telemetry", value: { batchId: "b1", samples: [{ sampleId: "s1", time: timestampNow(), paperLevelPercent: 33 }] } } });
    expect((await stream.next()).value?.body.case).toBe("telemetryAck");
    await expect
      .poll(async () => (await f.fleetClient(KioskService).getKiosk({ kioskId: "cmd-intruder" })).kiosk?.state?.paperLevelPercent, eventually)
      .toBe(33);
    expect(await getCommand(command!.commandId)).toMatchObject({ state: CommandState.QUEUED, errorMessage: "", outcome: CommandOutcome.UNSPECIFIED });
    const metrics = await (await fetch(`${f.fleet.url}/metrics`)).text();
    const rejected = /fleet_link_events_rejected_total\{reason="foreign command",service="fleet"\} (\d+)/.exec(metrics)?.[1];
    expect(Number(rejected)).toBe(2);
    up.close();
  });
});

describe("two link replicas", () => {
  it("a command reaches a kiosk on the other replica", async () => {
    const creds = await f.enroll(["cmd-replica-b"]);
    const { client, executed } = executingKiosk(creds.get("cmd-replica-b")!, { linkAddress: f.links[1]!.url });
    const welcomes: string[] = [];
    client.on("connected", (w) => welcomes.push(w.linkReplica));
    client.start();
    await online(client);
    expect(welcomes).toEqual(["cmd-link-1"]);
    await shownOnline("cmd-replica-b");
    const { command } = await commands().sendCommand({ kioskId: "cmd-replica-b", action: display("over there") });
    await expect.poll(() => stateOf(command!.commandId), { ...eventually, interval: 50 }).toBe(CommandState.SUCCEEDED);
    expect(executed).toEqual([command!.commandId]);
  });

  it("killing a replica (SIGKILL): its kiosks reconnect to another and every command is executed exactly once", async () => {
    const doomed = await f.startLink("cmd-link-doomed");
    const survivor = f.links[0]!;
    const ids = Array.from({ length: 12 }, (_, i) => `cmd-kill-${i}`);
    const creds = await f.enroll(ids);
    const kiosks = ids.map((id) => ({ id, ...executingKiosk(creds.get(id)!, { linkAddress: [doomed.url, survivor.url] }) }));
    kiosks.forEach((k) => k.client.start());
    for (const k of kiosks) await online(k.client);
    for (const id of ids) await shownOnline(id);

    const sent: Command[] = [];
    const send = async (round: number) => {
      for (const k of kiosks) sent.push((await commands().sendCommand({ kioskId: k.id, action: display(`round ${round}`) })).command!);
    };
    await send(1);
    doomed.child.kill("SIGKILL");
    await send(2); // while the kiosks are finding the other replica
    await Promise.all(kiosks.map((k) => online(k.client)));
    await send(3);

    for (const c of sent) await expect.poll(() => stateOf(c.commandId), eventually).toBe(CommandState.SUCCEEDED);
    for (const k of kiosks) {
      const mine = sent.filter((c) => c.kioskId === k.id).map((c) => c.commandId);
      // Exactly once each, in the order they were sent.
      expect(k.executed).toEqual(mine);
    }
  }, 60_000);
});

describe("live views", () => {
  it("WatchKiosk shows a command move through its lifecycle; WatchFleet shows the kiosk come online", async () => {
    const creds = await f.enroll(["cmd-watch"]);
    const abort = new AbortController();
    const seen: CommandState[] = [];
    const fleetView = f.fleetClient(KioskService, viewer).watchFleet({}, { signal: abort.signal });
    const kioskView = f.fleetClient(KioskService, viewer).watchKiosk({ kioskId: "cmd-watch" }, { signal: abort.signal });
    const first = await kioskView[Symbol.asyncIterator]().next();
    expect(first.value?.event.case).toBe("kiosk");

    const onlineInFleetView = (async () => {
      for await (const m of fleetView) if (m.changed.some((k) => k.kioskId === "cmd-watch" && k.status === KioskStatus.ONLINE)) return m.summary;
    })();
    const { client } = executingKiosk(creds.get("cmd-watch")!);
    client.start();
    const summary = await onlineInFleetView;
    expect(summary?.online).toBeGreaterThan(0);

    const { command } = await commands().sendCommand({ kioskId: "cmd-watch", action: display("watched") });
    for await (const m of kioskView) {
      if (m.event.case === "command" && m.event.value.commandId === command!.commandId) {
        if (seen.at(-1) !== m.event.value.state) seen.push(m.event.value.state);
        if (m.event.value.state === CommandState.SUCCEEDED) break;
      }
    }
    abort.abort();
    // The view reads the command when told it changed, so a fast kiosk may skip a state.
    expect([CommandState.QUEUED, CommandState.SENT, CommandState.ACKED]).toContain(seen[0]);
    expect(seen.at(-1)).toBe(CommandState.SUCCEEDED);
    // States only move forward.
    expect([...seen].sort((a, b) => a - b)).toEqual(seen);
  });
});

