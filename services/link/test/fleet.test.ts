// What a kiosk sends through link, as fleet ends up holding it: a configuration version
// fleet never assigned is not believed, and a batch with a sample the store cannot hold
// does not stop fleet's consumer (the sample never leaves link).
import type { MessageInitShape } from "@bufbuild/protobuf";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, expect, it } from "vitest";
import { ConfigService } from "@adminkiosk/proto/adminkiosk/fleet/v1/config_pb";
import { KioskService, KioskStatus } from "@adminkiosk/proto/adminkiosk/fleet/v1/fleet_pb";
import { TelemetryService } from "@adminkiosk/proto/adminkiosk/fleet/v1/telemetry_pb";
import { LinkService, type ConnectRequestSchema, type ConnectResponse } from "@adminkiosk/proto/adminkiosk/link/v1/link_pb";
import { bearer } from "../../../test/support/auth.js";
import { startFleet, type FleetFixture } from "../../../test/support/fleet.js";
import { StreamOutbox } from "../src/outbox.js";

let f: FleetFixture;
const deadline = { timeout: 20_000, interval: 100 } as const;

beforeAll(async () => {
  f = await startFleet({ name: "link-claims", links: 1 });
});
afterAll(async () => {
  await f?.stop();
});

function openStream(token: string) {
  const up = new StreamOutbox<MessageInitShape<typeof ConnectRequestSchema>>(1000);
  const client = createClient(LinkService, createGrpcTransport({ baseUrl: f.links[0]!.url, interceptors: [bearer(token)] }));
  const down = client.connect(up)[Symbol.asyncIterator]();
  return {
    send: (m: MessageInitShape<typeof ConnectRequestSchema>) => up.push(m),
    next: async (): Promise<ConnectResponse | undefined> => {
      const r = await down.next();
      return r.done ? undefined : r.value;
    },
    close: () => up.close(),
  };
}

async function rejected(reason: string): Promise<number> {
  const text = await (await fetch(`${f.fleet.url}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith("fleet_link_events_rejected_total{") && l.includes(`reason="${reason}"`));
  return line ? Number(line.slice(line.lastIndexOf(" ") + 1)) : 0;
}

it("a kiosk cannot claim a configuration version fleet never assigned to it, in its hello or as applied", async () => {
  const creds = await f.enroll(["claims-1"]);
  const stream = openStream(creds.get("claims-1")!);
  const config = f.fleetClient(ConfigService);
  stream.send({ body: { case: "hello", value: { configVersion: 1_000_000_000_000_000n } } });
  expect((await stream.next())?.body.case).toBe("welcome");
  await expect.poll(async () => (await f.fleetClient(KioskService).getKiosk({ kioskId: "claims-1" })).kiosk?.status, deadline).toBe(KioskStatus.ONLINE);
  expect((await config.getKioskConfig({ kioskId: "claims-1" })).config?.reportedVersion).toBe(0n);

  stream.send({ body: { case: "configApplied", value: { version: 1_000_000_000_000_000n } } });
  await expect.poll(() => rejected("unsent config version"), deadline).toBe(1);
  expect((await config.getKioskConfig({ kioskId: "claims-1" })).config?.reportedVersion).toBe(0n);

  // A version fleet did send is believed.
  const set = await config.setKioskConfig({ kioskId: "claims-1", config: { volume: 2 } });
  const version = set.config!.desiredVersion;
  let pushed: ConnectResponse | undefined;
  while ((pushed = await stream.next()) && pushed.body.case !== "desiredConfig");
  expect(pushed?.body.case === "desiredConfig" && pushed.body.value.version).toBe(version);
  stream.send({ body: { case: "configApplied", value: { version } } });
  await expect.poll(async () => (await config.getKioskConfig({ kioskId: "claims-1" })).config, deadline).toMatchObject({ reportedVersion: version, inSync: true });
  stream.close();
});

it("a batch with a sample the store cannot hold stores the rest, and fleet's consumer carries on", async () => {
  const creds = await f.enroll(["claims-2"]);
  const stream = openStream(creds.get("claims-2")!);
  stream.send({ body: { case: "hello", value: {} } });
  expect((await stream.next())?.body.case).toBe("welcome");
  stream.send({ body: { case: "telemetry", value: { batchId: "b1", samples: [{ sampleId: "bad", cpuPercent: 1e39, printer: 70000 as never }, { sampleId: "good", cpuPercent: 42 }] } } });
  expect((await stream.next())?.body.case).toBe("telemetryAck");
  stream.send({ body: { case: "telemetry", value: { batchId: "b2", samples: [{ sampleId: "later", cpuPercent: 7, errors: ["jam\u0000"] }, { sampleId: "later-ok", cpuPercent: 8 }] } } });
  expect((await stream.next())?.body.case).toBe("telemetryAck");
  const history = f.fleetClient(TelemetryService);
  await expect
    .poll(async () => (await history.getTelemetryHistory({ kioskId: "claims-2" })).points.reduce((n, p) => n + p.sampleCount, 0), deadline)
    .toBe(2);
  stream.close();
});
