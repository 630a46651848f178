// The client's own rules, without the platform: backoff, the bounded outbox, and
// command handling / goodbyes against a scripted link (a grpc-js server in-process).
import * as grpc from "@grpc/grpc-js";
import { afterEach, describe, expect, it, vi } from "vitest";
import { eventually } from "@adminkiosk/devstack";
import { CommandOutcome } from "@adminkiosk/proto/adminkiosk/fleet/v1/commands_pb";
import { ConnectRequestSchema, ConnectResponseSchema, Goodbye_Reason, type ConnectRequest } from "@adminkiosk/proto/adminkiosk/link/v1/link_pb";
import { backoffDelay, KioskClient } from "../src/index.js";
import * as backoff from "../src/backoff.js";
import { deserializer, serializer } from "../src/grpc.js";

// The client's own backoffDelay, recorded: the waits it chose are read from here rather
// than from how long the runner took between attempts.
vi.mock("../src/backoff.js", async (original) => {
  const real = await original<typeof import("../src/backoff.js")>();
  return { ...real, backoffDelay: vi.fn(real.backoffDelay) };
});

describe("backoff", () => {
  it("grows with each attempt, is jittered within the upper half, and never exceeds maxMs", () => {
    const options = { initialMs: 500, maxMs: 30_000 };
    for (const r of [0, 0.5, 0.999]) {
      const delays = Array.from({ length: 12 }, (_, attempt) => backoffDelay(attempt, options, () => r));
      for (let i = 1; i < delays.length; i++) expect(delays[i]!).toBeGreaterThanOrEqual(delays[i - 1]!);
      expect(Math.max(...delays)).toBeLessThanOrEqual(30_000);
      expect(delays.at(-1)).toBeGreaterThanOrEqual(15_000);
    }
    expect(backoffDelay(0, options, () => 0)).toBe(250);
    expect(backoffDelay(0, options, () => 1)).toBe(500);
    expect(backoffDelay(3, options, () => 0.5)).toBe(3_000);
    expect(backoffDelay(1000, options, () => 1)).toBe(30_000);
  });
});

describe("telemetry outbox", () => {
  it("keeps at most telemetryOutboxLimit samples, dropping the oldest and counting them", () => {
    const client = new KioskClient({ linkAddress: "127.0.0.1:1", credential: "x", firmwareVersion: "1", appVersion: "1", telemetryOutboxLimit: 5 });
    for (let i = 0; i < 8; i++) client.recordTelemetry({ sampleId: `s-${i}` });
    expect(client.outboxSize).toBe(5);
    expect(client.droppedSamples).toBe(3);
  });
});

/** A scripted link: hands each stream to the test. */
async function fakeLink(onStream: (call: grpc.ServerDuplexStream<ConnectRequest, unknown>, n: number) => void) {
  const server = new grpc.Server();
  let n = 0;
  server.addService(
    {
      connect: {
        path: "/adminkiosk.link.v1.LinkService/Connect",
        requestStream: true,
        responseStream: true,
        requestSerialize: serializer(ConnectRequestSchema),
        requestDeserialize: deserializer(ConnectRequestSchema),
        responseSerialize: serializer(ConnectResponseSchema),
        responseDeserialize: deserializer(ConnectResponseSchema),
      },
    },
    { connect: (call: grpc.ServerDuplexStream<ConnectRequest, unknown>) => onStream(call, ++n) },
  );
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  return { address: `127.0.0.1:${port}`, streams: () => n, stop: () => server.forceShutdown() };
}

const welcome = { body: { case: "welcome", value: { kioskId: "k", heartbeatIntervalSeconds: 30, linkReplica: "fake" } } };
const goodbye = (reason: Goodbye_Reason) => ({ body: { case: "goodbye", value: { reason } } });

describe("against a scripted link", () => {
  const cleanup: Array<() => unknown> = [];
  afterEach(async () => {
    for (const f of cleanup.splice(0)) await f();
  });
  const client = (address: string, random?: () => number) => {
    const c = new KioskClient({ linkAddress: address, credential: "x", firmwareVersion: "1", appVersion: "1", backoff: { initialMs: 40, maxMs: 160 }, ...(random ? { random } : {}) });
    cleanup.push(() => c.stop());
    return c;
  };

  it("acks every delivery, executes a command once, answers unknown kinds UNSUPPORTED, and names executed ids in the next hello", async () => {
    const received: ConnectRequest[][] = [];
    const link = await fakeLink((call, n) => {
      const got: ConnectRequest[] = (received[n - 1] = []);
      let said = false;
      call.on("data", (m: ConnectRequest) => {
        got.push(m);
        // The first stream says goodbye once the kiosk has answered all three deliveries
        // (three acks, a result for each command), however long that took.
        const acks = got.filter((g) => g.body.case === "ack").length;
        const resultFor = (id: string) => got.some((g) => g.body.case === "result" && g.body.value.commandId === id);
        if (n === 1 && !said && acks === 3 && resultFor("c-1") && resultFor("c-2")) {
          said = true;
          call.write(goodbye(Goodbye_Reason.DRAINING));
          call.end();
        }
      });
      call.on("end", () => call.end());
      call.write(welcome);
      if (n === 1) {
        const reboot = { body: { case: "command", value: { commandId: "c-1", action: { kind: { case: "reboot", value: { graceful: true } } } } } };
        call.write(reboot);
        call.write(reboot); // redelivered
        call.write({ body: { case: "command", value: { commandId: "c-2", action: { kind: { case: "openServiceDoor", value: { technician: "Jan" } } } } } });
      }
    });
    cleanup.push(link.stop);
    const kiosk = client(link.address);
    let reboots = 0;
    kiosk.onCommand("reboot", (action) => {
      reboots++;
      return { graceful: action.graceful };
    });
    kiosk.start();
    await expect.poll(() => link.streams(), eventually).toBe(2); // DRAINING: it came back
    expect(reboots).toBe(1);
    const first = received[0]!.map((m) => m.body);
    expect(first.filter((b) => b.case === "ack").map((b) => b.value.commandId)).toEqual(["c-1", "c-1", "c-2"]);
    const results = first.flatMap((b) => (b.case === "result" ? [b.value] : []));
    expect(results.find((r) => r.commandId === "c-1")).toMatchObject({ outcome: CommandOutcome.SUCCEEDED, payload: { graceful: true } });
    expect(results.find((r) => r.commandId === "c-2")).toMatchObject({ outcome: CommandOutcome.UNSUPPORTED });
    await expect.poll(() => received[1]?.[0]?.body.case, eventually).toBe("hello");
    const hello = received[1]![0]!.body;
    expect(hello.case === "hello" && [...hello.value.executedCommandIds].sort()).toEqual(["c-1", "c-2"]);
  });

  it("stops after Goodbye REPLACED (another instance took over)", async () => {
    const link = await fakeLink((call) => {
      call.on("data", () => {});
      call.write(welcome);
      call.write(goodbye(Goodbye_Reason.REPLACED));
      call.end();
    });
    cleanup.push(link.stop);
    const kiosk = client(link.address);
    const reasons: string[] = [];
    kiosk.on("disconnected", (r) => reasons.push(r));
    kiosk.start();
    await expect.poll(() => reasons, eventually).toEqual(["replaced"]);
    // Not running: every reconnect is gated on that (a retry opens a stream only while
    // running), so none is coming. The pause, several times the first backoff (40 ms), also
    // looks for one on the wire; a slow machine can make it look too briefly, never fail it.
    expect(kiosk.isRunning).toBe(false);
    await new Promise((r) => setTimeout(r, 300));
    expect(link.streams()).toBe(1);
  });

  it("reconnects after errors, with waits that grow up to maxMs", async () => {
    const times: number[] = [];
    const link = await fakeLink((call) => {
      times.push(Date.now());
      call.on("data", () => {});
      call.emit("error", { code: grpc.status.UNAVAILABLE, details: "scripted" });
    });
    cleanup.push(link.stop);
    const chosen = vi.mocked(backoff.backoffDelay);
    chosen.mockClear();
    const kiosk = client(link.address, () => 1); // no jitter: waits of 40, 80, 160, 160 ms
    kiosk.start();
    await expect.poll(() => times.length, eventually).toBeGreaterThanOrEqual(5);
    await kiosk.stop();
    // The waits the client chose grow and stop at maxMs (160), whatever the machine's speed...
    expect(chosen.mock.results.slice(0, 4).map((r) => r.value)).toEqual([40, 80, 160, 160]);
    // ...and it did wait them: each reconnect came at least that long after the one before
    // (lower bounds only; a slow machine makes the gaps longer, never shorter).
    const gaps = times.slice(1, 5).map((t, i) => t - times[i]!);
    expect(gaps[0]!).toBeGreaterThanOrEqual(40);
    expect(gaps[1]!).toBeGreaterThanOrEqual(80);
    expect(gaps[2]!).toBeGreaterThanOrEqual(160);
    expect(gaps[3]!).toBeGreaterThanOrEqual(160);
  });

  it("told to come back later (UNAVAILABLE with grpc-retry-pushback-ms, a reconnect storm), waits that long, plus at most a tenth", async () => {
    const times: number[] = [];
    const link = await fakeLink((call, n) => {
      times.push(Date.now());
      call.on("data", () => {});
      if (n === 1) {
        const metadata = new grpc.Metadata();
        metadata.set("grpc-retry-pushback-ms", "600");
        call.emit("error", { code: grpc.status.UNAVAILABLE, details: "too many connections opening at once", metadata });
      } else call.write({ body: { case: "welcome", value: { kioskId: "k-1", heartbeatIntervalSeconds: 30 } } });
    });
    cleanup.push(link.stop);
    const kiosk = client(link.address, () => 1); // the most jitter: 600 + 60 ms (its own backoff would be 40)
    const welcomed = new Promise((resolve) => kiosk.on("connected", resolve));
    kiosk.start();
    await welcomed;
    await kiosk.stop();
    expect(times).toHaveLength(2);
    // A lower bound only: a slow machine makes the wait longer, never shorter.
    expect(times[1]! - times[0]!).toBeGreaterThanOrEqual(660);
  });
});
