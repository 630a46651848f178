// The resilience policies on service-to-service calls (resilience.ts, through
// serviceTransport) against a real Connect server on a local port: retries only for
// idempotent calls and only on Unavailable, never past the caller's deadline; a breaker
// per upstream that opens on a stopped upstream, fails fast naming it and closes once it
// answers; a bulkhead; the Prometheus metrics each of them exports; and a connection
// reset mid-call (a TCP proxy cutting it) answered Unavailable (a read sent again), a caller's
// own abort Canceled.
import http2 from "node:http2";
import net, { type AddressInfo } from "node:net";
import { Code, ConnectError, createClient, type ConnectRouter } from "@connectrpc/connect";
import { connectNodeAdapter, createGrpcTransport } from "@connectrpc/connect-node";
import { Registry } from "prom-client";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { ReservationService } from "@adminkiosk/proto/adminkiosk/catalog/v1/catalog_pb";
import { CircuitState } from "cockatiel";
import { registerResilienceMetrics, serviceTransport, type ResilienceOptions, type UpstreamPolicies } from "../src/index.js";
import { resilienceInterceptor } from "../src/resilience.js";

/** What the upstream answers: per method, how many Unavailable answers before a success, or an error to give every time. */
const script: Record<string, { unavailable?: number; always?: Code; hold?: Promise<void> }> = {};
const attempts: Record<string, number> = {};

function routes(router: ConnectRouter) {
  const answer = async (method: string) => {
    attempts[method] = (attempts[method] ?? 0) + 1;
    const s = script[method] ?? {};
    if (s.hold) await s.hold;
    if (s.always !== undefined) throw new ConnectError(`${method} says no`, s.always);
    if ((s.unavailable ?? 0) > 0) {
      s.unavailable!--;
      throw new ConnectError("draining, try another replica", Code.Unavailable);
    }
  };
  router.service(ReservationService, {
    async reserve(req) {
      await answer("Reserve");
      return { reservation: { reservationId: req.reservationId } };
    },
    async getReservation(req) {
      await answer("GetReservation");
      return { reservation: { reservationId: req.reservationId } };
    },
    async releaseReservation(req) {
      await answer("ReleaseReservation");
      return { reservation: { reservationId: req.reservationId } };
    },
    async commitReservation(req) {
      await answer("CommitReservation");
      return { reservation: { reservationId: req.reservationId } };
    },
  });
}

/** A real HTTP/2 Connect server that can be stopped and started again on its port. */
class Upstream {
  server?: http2.Http2Server;
  sessions = new Set<http2.ServerHttp2Session>();
  port = 0;
  async start() {
    const server = http2.createServer(connectNodeAdapter({ routes }));
    server.on("session", (s) => {
      this.sessions.add(s);
      s.on("close", () => this.sessions.delete(s));
    });
    await new Promise<void>((resolve) => server.listen(this.port, "127.0.0.1", resolve));
    this.port = (server.address() as AddressInfo).port;
    this.server = server;
  }
  async stop() {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    for (const s of this.sessions) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
  get url() {
    return `http://127.0.0.1:${this.port}`;
  }
}

const upstream = new Upstream();
beforeAll(() => upstream.start());
afterAll(() => upstream.stop());
afterEach(() => {
  for (const k of Object.keys(script)) delete script[k];
  for (const k of Object.keys(attempts)) delete attempts[k];
});

let n = 0;
/** A client for a fresh upstream name (its own breaker and metric labels). */
function client(options: ResilienceOptions = {}) {
  const name = `catalog-${++n}`;
  return { name, reservations: createClient(ReservationService, serviceTransport(upstream.url, undefined, { upstream: name, initialBackoffMs: 5, maxBackoffMs: 20, ...options })) };
}

async function failure(p: Promise<unknown>): Promise<ConnectError> {
  try {
    await p;
  } catch (err) {
    return ConnectError.from(err);
  }
  throw new Error("the call succeeded");
}

const registry = new Registry();
registerResilienceMetrics(registry);
/** A metric's value for one upstream (and method), as /metrics shows it. */
async function metric(name: string, labels: Record<string, string>): Promise<number | undefined> {
  const m = (await registry.getMetricsAsJSON()).find((x) => x.name === name);
  const v = (m?.values as { labels: Record<string, string | number>; value: number }[] | undefined)?.find((x) => Object.entries(labels).every(([k, l]) => x.labels[k] === l));
  return v?.value;
}

describe("retries", () => {
  it("a read (GetReservation) answered Unavailable is sent again and succeeds; each retry is counted", async () => {
    const { name, reservations } = client();
    script.GetReservation = { unavailable: 2 };
    const res = await reservations.getReservation({ reservationId: "r-1" }, { timeoutMs: 5_000 });
    expect(res.reservation?.reservationId).toBe("r-1");
    expect(attempts.GetReservation).toBe(3);
    expect(await metric("adminkiosk_upstream_retries_total", { upstream: name, method: "GetReservation" })).toBe(2);
  });

  it("a write nobody declared idempotent (ReleaseReservation) is sent once; the Unavailable names the upstream", async () => {
    const { name, reservations } = client();
    script.ReleaseReservation = { unavailable: 1 };
    const err = await failure(reservations.releaseReservation({ reservationId: "r-2" }));
    expect(err.code).toBe(Code.Unavailable);
    expect(err.rawMessage).toBe(`${name} is unavailable: draining, try another replica`);
    expect(attempts.ReleaseReservation).toBe(1);
    expect(await metric("adminkiosk_upstream_retries_total", { upstream: name, method: "ReleaseReservation" })).toBeUndefined();
  });

  it("a write the client declares idempotent (Reserve, by its reservation id) is retried", async () => {
    const { reservations } = client({ idempotent: [ReservationService.method.reserve] });
    script.Reserve = { unavailable: 1 };
    expect((await reservations.reserve({ reservationId: "r-3", kioskId: "k" })).reservation?.reservationId).toBe("r-3");
    expect(attempts.Reserve).toBe(2);
  });

  it("an answer other than Unavailable (NotFound) is never retried, nor counted against the upstream", async () => {
    const { name, reservations } = client({ consecutiveFailures: 3 });
    script.GetReservation = { always: Code.NotFound };
    for (let i = 0; i < 5; i++) expect((await failure(reservations.getReservation({ reservationId: "x" }))).code).toBe(Code.NotFound);
    expect(attempts.GetReservation).toBe(5);
    expect(await metric("adminkiosk_upstream_breaker_state", { upstream: name })).toBe(0);
  });

  it("stops at the caller's deadline: an upstream that keeps answering Unavailable is not asked ten more times", async () => {
    const { reservations } = client({ retries: 10, initialBackoffMs: 100, maxBackoffMs: 1_000, consecutiveFailures: 100 });
    script.GetReservation = { always: Code.Unavailable };
    const err = await failure(reservations.getReservation({ reservationId: "x" }, { timeoutMs: 300 }));
    expect([Code.DeadlineExceeded, Code.Unavailable]).toContain(err.code);
    // Ten retries sleep at least 50+100+200+400+500·6 ms, far past the 300 ms deadline.
    expect(attempts.GetReservation).toBeLessThan(11);
  });
});

describe("the circuit breaker", () => {
  it("opens after consecutive failures of a stopped upstream, fails fast naming it, and closes once it answers again", async () => {
    const name = "payments-breaker";
    const transport = serviceTransport(upstream.url, undefined, { upstream: name, retries: 0, consecutiveFailures: 3, halfOpenAfterMs: 200 });
    const reservations = createClient(ReservationService, transport);

    await upstream.stop();
    try {
      for (let i = 0; i < 3; i++) {
        const err = await failure(reservations.getReservation({ reservationId: "x" }, { timeoutMs: 5_000 }));
        expect(err.code).toBe(Code.Unavailable);
        expect(err.rawMessage).toMatch(new RegExp(`^${name} is unavailable: `));
      }
      // Open: the next call does not reach the network, and says why.
      const open = await failure(reservations.getReservation({ reservationId: "x" }));
      expect(open.code).toBe(Code.Unavailable);
      expect(open.rawMessage).toMatch(new RegExp(`^${name} is unavailable: its circuit breaker is open after 3 failed calls in a row`));
      expect(await metric("adminkiosk_upstream_breaker_state", { upstream: name })).toBe(1);
      expect(await metric("adminkiosk_upstream_breaker_rejections_total", { upstream: name })).toBeGreaterThanOrEqual(1);
      expect(await metric("adminkiosk_upstream_breaker_opened_total", { upstream: name })).toBe(1);
    } finally {
      await upstream.start();
    }
    // Back: after halfOpenAfter a probe goes through and closes it.
    const deadline = Date.now() + 20_000;
    for (;;) {
      try {
        await reservations.getReservation({ reservationId: "back" });
        break;
      } catch (err) {
        expect(ConnectError.from(err).code).toBe(Code.Unavailable);
        if (Date.now() > deadline) throw err;
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    expect(await metric("adminkiosk_upstream_breaker_state", { upstream: name })).toBe(0);
    await reservations.getReservation({ reservationId: "again" });
  });

  it("a policy's breaker reports its state (closed, then open after the failures)", async () => {
    let policies: UpstreamPolicies | undefined;
    const interceptor = resilienceInterceptor({ upstream: "direct", consecutiveFailures: 2, retries: 0 }, (p) => (policies = p));
    const reservations = createClient(ReservationService, createGrpcTransport({ baseUrl: upstream.url, interceptors: [interceptor] }));
    expect(policies!.breaker.state).toBe(CircuitState.Closed);
    script.CommitReservation = { always: Code.Unavailable };
    await failure(reservations.commitReservation({ reservationId: "x" }));
    await failure(reservations.commitReservation({ reservationId: "x" }));
    expect(policies!.breaker.state).toBe(CircuitState.Open);
  });
});

describe("the bulkhead", () => {
  it("with every slot taken and no queue left, a call fails at once with Unavailable (busy), and is counted", async () => {
    const { name, reservations } = client({ maxConcurrent: 1, queue: 0 });
    let release!: () => void;
    script.GetReservation = { hold: new Promise<void>((r) => (release = r)) };
    const first = reservations.getReservation({ reservationId: "slow" });
    await expect.poll(() => attempts.GetReservation ?? 0, { timeout: 10_000, interval: 10 }).toBe(1);
    expect(await metric("adminkiosk_upstream_in_flight", { upstream: name })).toBe(1);
    const err = await failure(reservations.getReservation({ reservationId: "second" }));
    expect(err.code).toBe(Code.Unavailable);
    expect(err.rawMessage).toMatch(new RegExp(`^${name} is busy: 1 calls in flight`));
    expect(attempts.GetReservation).toBe(1); // the second never left
    expect(await metric("adminkiosk_upstream_bulkhead_rejections_total", { upstream: name })).toBe(1);
    release();
    expect((await first).reservation?.reservationId).toBe("slow");
  });
});

/** A TCP proxy in front of the upstream whose connections the test can reset mid-call. */
async function resettingProxy(target: number) {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const up = net.connect(target, "127.0.0.1");
    sockets.add(client);
    client.on("close", () => sockets.delete(client));
    client.on("error", () => up.destroy());
    up.on("error", () => client.destroy());
    client.pipe(up).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    /** Cuts every connection the proxy carries: a TCP RST to the caller, or a plain close (FIN). */
    reset: (how: "rst" | "fin") => sockets.forEach((s) => (how === "rst" ? s.resetAndDestroy() : s.destroy())),
    close: () => {
      sockets.forEach((s) => s.destroy());
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe("a connection reset mid-call", () => {
  it.each(["rst", "fin"] as const)("(%s) is Unavailable naming the upstream, not Canceled (a write, tried once)", async (how) => {
    const proxy = await resettingProxy(upstream.port);
    try {
      const reservations = createClient(ReservationService, serviceTransport(proxy.url, undefined, { upstream: `catalog-reset-${how}`, initialBackoffMs: 5, maxBackoffMs: 20 }));
      let release!: () => void;
      script.ReleaseReservation = { hold: new Promise<void>((r) => (release = r)) };
      const write = failure(reservations.releaseReservation({ reservationId: "x" }, { timeoutMs: 10_000 }));
      await expect.poll(() => attempts.ReleaseReservation ?? 0, { timeout: 10_000, interval: 10 }).toBe(1);
      proxy.reset(how);
      const err = await write;
      release();
      expect(Code[err.code]).toBe(Code[Code.Unavailable]);
      expect(err.rawMessage).toMatch(new RegExp(`^catalog-reset-${how} is unavailable: connection reset`));
      expect(attempts.ReleaseReservation).toBe(1);
    } finally {
      await proxy.close();
    }
  });

  it.each(["rst", "fin"] as const)("(%s) under an idempotent read: sent again on a new connection and answered", async (how) => {
    const proxy = await resettingProxy(upstream.port);
    try {
      const reservations = createClient(ReservationService, serviceTransport(proxy.url, undefined, { upstream: `catalog-reread-${how}`, initialBackoffMs: 5, maxBackoffMs: 20 }));
      let release!: () => void;
      script.GetReservation = { hold: new Promise<void>((r) => (release = r)) };
      const read = reservations.getReservation({ reservationId: "again" }, { timeoutMs: 10_000 });
      await expect.poll(() => attempts.GetReservation ?? 0, { timeout: 10_000, interval: 10 }).toBe(1);
      delete script.GetReservation;
      proxy.reset(how);
      expect((await read).reservation?.reservationId).toBe("again");
      release();
      expect(attempts.GetReservation).toBe(2);
      expect(await metric("adminkiosk_upstream_retries_total", { upstream: `catalog-reread-${how}`, method: "GetReservation" })).toBe(1);
    } finally {
      await proxy.close();
    }
  });

  it("a caller that aborts its own call still sees Canceled, and it is not retried", async () => {
    const { reservations } = client();
    let release!: () => void;
    script.GetReservation = { hold: new Promise<void>((r) => (release = r)) };
    const abort = new AbortController();
    const call = failure(reservations.getReservation({ reservationId: "mine" }, { signal: abort.signal, timeoutMs: 10_000 }));
    await expect.poll(() => attempts.GetReservation ?? 0, { timeout: 10_000, interval: 10 }).toBe(1);
    abort.abort();
    const err = await call;
    release();
    expect(Code[err.code]).toBe(Code[Code.Canceled]);
    expect(attempts.GetReservation).toBe(1);
  });
});
