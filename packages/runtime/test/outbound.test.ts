// Calls to other services: callOptions (request id, remaining deadline less a margin, the
// person's token only on behalf), the outbound interceptor (a request id, never empty; the
// service token unless a call carries an authorization) and serviceCredentials (one request
// at a time, renewed with a third of its life left) against a real in-process server.
import http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient, createContextValues, createHandlerContext, createRouterTransport, type HandlerContext } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { AuthService, ServiceIdentityService } from "@adminkiosk/proto/adminkiosk/auth/v1/auth_pb";
import { callOptions, createLogger, outboundInterceptor, requestKey, serviceCredentials, type ServiceCredentials } from "../src/index.js";

const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** The context of a call being served, as createService makes it (request info with its id). */
function servedCall(o: { requestId?: string; timeoutMs?: number; authorization?: string } = {}): HandlerContext & { abort(): void } {
  const values = createContextValues();
  if (o.requestId) values.set(requestKey, { id: o.requestId, peer: "test", log: createLogger("test", "silent"), principal: undefined });
  return createHandlerContext({
    service: AuthService,
    method: AuthService.method.whoAmI,
    protocolName: "grpc",
    requestMethod: "POST",
    url: "http://test/adminkiosk.auth.v1.AuthService/WhoAmI",
    timeoutMs: o.timeoutMs,
    requestHeader: o.authorization ? { authorization: o.authorization } : {},
    contextValues: values,
  });
}

describe("callOptions", () => {
  const contexts: { abort(): void }[] = [];
  const served = (o: Parameters<typeof servedCall>[0]) => {
    const ctx = servedCall(o);
    contexts.push(ctx);
    return ctx;
  };
  afterEach(() => {
    contexts.splice(0).forEach((c) => c.abort());
    vi.useRealTimers();
  });

  it("background work (no call served): the default deadline, or the one asked for, and nothing else", () => {
    expect(callOptions(undefined)).toEqual({ timeoutMs: 5_000 });
    expect(callOptions(undefined, { timeoutMs: 1_234, onBehalf: true })).toEqual({ timeoutMs: 1_234 });
  });

  it("carries the served call's request id and abort signal", () => {
    const ctx = served({ requestId: "req-42" });
    const options = callOptions(ctx);
    expect(options.headers).toEqual({ "x-request-id": "req-42" });
    expect(options.signal).toBe(ctx.signal);
  });

  it("sends no request id header of its own where the call has none (the interceptor makes one)", () => {
    expect(callOptions(served({})).headers).toEqual({});
  });

  it("the caller's remaining deadline less the margin (100 ms unless told)", () => {
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(1_000_000);
    const ctx = served({ requestId: "r", timeoutMs: 2_000 });
    expect(callOptions(ctx).timeoutMs).toBe(1_900);
    vi.setSystemTime(1_000_500);
    expect(callOptions(ctx).timeoutMs).toBe(1_400);
    expect(callOptions(ctx, { marginMs: 400 }).timeoutMs).toBe(1_100);
  });

  it("never a deadline of zero or less: a call with nearly no time left gets 1 ms", () => {
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(2_000_000);
    const ctx = served({ timeoutMs: 150 });
    vi.setSystemTime(2_000_100);
    expect(callOptions(ctx).timeoutMs).toBe(1);
  });

  it("a served call without a deadline gets the default one", () => {
    expect(callOptions(served({ requestId: "r" })).timeoutMs).toBe(5_000);
    expect(callOptions(served({ requestId: "r" }), { timeoutMs: 800 }).timeoutMs).toBe(800);
  });

  it("forwards the person's authorization only on behalf", () => {
    const ctx = served({ requestId: "r", authorization: "Bearer person" });
    expect(callOptions(ctx).headers).not.toHaveProperty("authorization");
    expect(callOptions(ctx, { onBehalf: true }).headers).toEqual({ "x-request-id": "r", authorization: "Bearer person" });
    expect(callOptions(served({ requestId: "r" }), { onBehalf: true }).headers).toEqual({ "x-request-id": "r" });
  });
});

describe("outboundInterceptor", () => {
  let seen: Headers | undefined;
  const upstream = (credentials?: ServiceCredentials) =>
    createClient(
      AuthService,
      createRouterTransport(
        (router) =>
          router.service(AuthService, {
            whoAmI: (_req, ctx) => {
              seen = ctx.requestHeader;
              return {};
            },
          }),
        { transport: { interceptors: [outboundInterceptor(credentials)] } },
      ),
    );
  const counting = () => {
    const creds = { service: "orders", calls: 0, token: async () => `svc-token-${++creds.calls}` };
    return creds;
  };

  it("adds a request id where the call has none, or an empty one; keeps one it was given", async () => {
    const client = upstream();
    await client.whoAmI({});
    expect(seen?.get("x-request-id")).toMatch(uuid);
    const first = seen?.get("x-request-id");
    await client.whoAmI({});
    expect(seen?.get("x-request-id")).not.toBe(first);
    await client.whoAmI({}, { headers: { "x-request-id": "" } });
    expect(seen?.get("x-request-id")).toMatch(uuid);
    await client.whoAmI({}, { headers: { "x-request-id": "caller-1" } });
    expect(seen?.get("x-request-id")).toBe("caller-1");
  });

  it("sends the service's own token, asked for on every call (the credentials renew it)", async () => {
    const creds = counting();
    const client = upstream(creds);
    await client.whoAmI({});
    expect(seen?.get("authorization")).toBe("Bearer svc-token-1");
    await client.whoAmI({});
    expect(seen?.get("authorization")).toBe("Bearer svc-token-2");
  });

  it("a call on behalf keeps the person's authorization, and the service token is not even fetched", async () => {
    const creds = counting();
    await upstream(creds).whoAmI({}, callOptions(servedCall({ requestId: "r-1", authorization: "Bearer person" }), { onBehalf: true }));
    expect(seen?.get("authorization")).toBe("Bearer person");
    expect(seen?.get("x-request-id")).toBe("r-1");
    expect(creds.calls).toBe(0);
  });

  it("without credentials sends no authorization at all", async () => {
    await upstream().whoAmI({});
    expect(seen?.has("authorization")).toBe(false);
  });
});

describe("serviceCredentials", () => {
  // A real auth stand-in: ServiceIdentityService on an in-process HTTP/2 server.
  let server: http2.Http2Server;
  let authUrl = "";
  let issued = 0;
  let lifetimeMs = 30_000;
  let refuse = false;
  const sessions = new Set<http2.ServerHttp2Session>();
  let lastRequestId: string | null = null;
  beforeAll(async () => {
    server = http2.createServer(
      connectNodeAdapter({
        routes: (router) =>
          router.service(ServiceIdentityService, {
            async issueServiceToken(req, ctx) {
              lastRequestId = ctx.requestHeader.get("x-request-id");
              if (refuse || req.secret !== "right-secret") throw new ConnectError("wrong service name or secret", Code.Unauthenticated);
              const n = ++issued;
              // Held until the test lets it go, to see concurrent callers share one request.
              if (holding) await holding;
              return { accessToken: `${req.service}-token-${n}`, expireTime: timestampFromMs(Date.now() + lifetimeMs) };
            },
          }),
      }),
    );
    server.on("session", (s) => {
      sessions.add(s);
      s.once("close", () => sessions.delete(s));
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    authUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    // The clients keep their HTTP/2 sessions open; close() waits for them.
    for (const s of sessions) s.destroy();
    await new Promise((resolve) => server.close(resolve));
  });
  let holding: Promise<void> | undefined;
  afterEach(() => {
    vi.useRealTimers();
    refuse = false;
    holding = undefined;
    lifetimeMs = 30_000;
  });

  it("concurrent callers share one request; the token is kept until a third of its life is left", async () => {
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(10_000_000);
    const start = issued;
    let letGo!: () => void;
    holding = new Promise<void>((r) => (letGo = r));
    const creds = serviceCredentials({ authUrl, service: "orders", secret: "right-secret" });
    const waiting = Promise.all([creds.token(), creds.token(), creds.token()]);
    // Polled on real timers (vi.waitFor would move the faked clock along).
    for (const deadline = performance.now() + 20_000; issued === start && performance.now() < deadline; ) await new Promise((r) => setTimeout(r, 10));
    expect(issued).toBe(start + 1);
    letGo();
    const tokens = await waiting;
    expect(new Set(tokens)).toEqual(new Set([`orders-token-${start + 1}`]));
    expect(lastRequestId).toMatch(uuid);

    // Issued at 10_000_000 for 30 s: renewed from 10_020_000 on, not before.
    vi.setSystemTime(10_019_999);
    expect(await creds.token()).toBe(`orders-token-${start + 1}`);
    vi.setSystemTime(10_020_000);
    expect(await creds.token()).toBe(`orders-token-${start + 2}`);
    expect(issued).toBe(start + 2);
  });

  it("a refusal is Unavailable naming the service and auth's reason; the next call asks again", async () => {
    const creds = serviceCredentials({ authUrl, service: "orders", secret: "wrong-secret" });
    const err = await creds.token().then(
      () => undefined,
      (e: unknown) => ConnectError.from(e),
    );
    expect(err?.code).toBe(Code.Unavailable);
    expect(err?.rawMessage).toBe("orders could not obtain its service token from auth: wrong service name or secret");

    refuse = true;
    const good = serviceCredentials({ authUrl, service: "catalog", secret: "right-secret" });
    await expect(good.token()).rejects.toThrow(/catalog could not obtain/);
    refuse = false;
    expect(await good.token()).toMatch(/^catalog-token-\d+$/);
  });

  it("auth unreachable is Unavailable too", async () => {
    const creds = serviceCredentials({ authUrl: "http://127.0.0.1:1", service: "orders", secret: "right-secret", timeoutMs: 2_000 });
    await expect(creds.token()).rejects.toMatchObject({ code: Code.Unavailable });
  });
});
