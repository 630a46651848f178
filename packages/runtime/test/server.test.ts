// One port serves everything: the server sniffs HTTP/2 prior knowledge from HTTP/1.1 on the
// first bytes and routes plain GET/POST paths before the RPC adapter. A real in-process
// service (startService on a free port; no PostgreSQL, NATS or Redis) called every way a
// client does: gRPC over HTTP/2, Connect and gRPC-Web over HTTP/1.1, plain HTTP.
import http from "node:http";
import net from "node:net";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AuthService } from "@adminkiosk/proto/adminkiosk/auth/v1/auth_pb";
import { Role } from "@adminkiosk/proto/adminkiosk/common/v1/access_pb";
import { Health, HealthCheckResponse_ServingStatus } from "@adminkiosk/proto/grpc/health/v1/health_pb";
import { createLogger, principalOf, requestInfo, startService, TokenRejected, type RunningService } from "../src/index.js";

let service: RunningService;
let dependencyUp = true;

beforeAll(async () => {
  service = await startService(
    {
      name: "test",
      log: createLogger("test", "silent"),
      config: { READ_MAX_BYTES: 64 * 1024, MAX_TIMEOUT_MS: 60_000, HEALTH_PROBE_INTERVAL_MS: 100, SHUTDOWN_GRACE_MS: 1_000 },
      services: [AuthService],
      routes: (router) =>
        router.service(AuthService, {
          // Echoes who called and under which request id and peer.
          whoAmI: (_req, ctx) => {
            const p = principalOf(ctx);
            const info = requestInfo(ctx);
            ctx.responseHeader.set("x-test-peer", info.peer);
            return { principal: { case: "user", value: { userId: p.kind === "user" ? p.userId : "", displayName: info.id } } };
          },
        }),
      verifyToken: async (token) => {
        if (token !== "good") throw new TokenRejected("unknown token");
        return { kind: "user", userId: "u-1", role: Role.VIEWER, sessionId: "s" };
      },
      probes: [
        {
          name: "dependency",
          check: async () => {
            if (!dependencyUp) throw new Error("down");
          },
        },
      ],
      httpRoutes: { "/custom": (_req, res) => void res.writeHead(200, { "content-type": "text/plain" }).end("custom route") },
      httpPostRoutes: {
        "/hook": async (req, res) => {
          let body = "";
          for await (const chunk of req) body += chunk;
          res.writeHead(202).end(`got ${body}`);
        },
      },
    },
    "127.0.0.1",
    0,
  );
});
afterAll(async () => {
  await service?.close();
});

const auth = { headers: { authorization: "Bearer good" } };

/** A plain HTTP/1.1 request; the response status and body. */
function h1(method: string, path: string, body?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${service.url}${path}`, { method, agent: false }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (text += c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on("error", reject);
    req.end(body);
  });
}

describe("one port, every protocol", () => {
  it("gRPC over HTTP/2 with prior knowledge", async () => {
    const client = createClient(AuthService, createGrpcTransport({ baseUrl: service.url }));
    let peer: string | null = null;
    const res = await client.whoAmI({}, { ...auth, onHeader: (h) => (peer = h.get("x-test-peer")) });
    expect(res.principal).toMatchObject({ case: "user", value: { userId: "u-1" } });
    // The HTTP/2 session's peer is the socket's (recorded while the sniffed socket is handed over).
    expect(peer).toBe("127.0.0.1");
  });

  it("Connect over HTTP/1.1", async () => {
    const client = createClient(AuthService, createConnectTransport({ baseUrl: service.url, httpVersion: "1.1" }));
    let peer: string | null = null;
    expect((await client.whoAmI({}, { ...auth, onHeader: (h) => (peer = h.get("x-test-peer")) })).principal.case).toBe("user");
    expect(peer).toBe("127.0.0.1");
  });

  it("gRPC-Web over HTTP/1.1 (a browser's protocol)", async () => {
    const client = createClient(AuthService, createGrpcWebTransport({ baseUrl: service.url, httpVersion: "1.1" }));
    expect((await client.whoAmI({}, auth)).principal.case).toBe("user");
  });

  it("Connect over HTTP/2 as well", async () => {
    const client = createClient(AuthService, createConnectTransport({ baseUrl: service.url, httpVersion: "2" }));
    expect((await client.whoAmI({}, auth)).principal.case).toBe("user");
  });

  it("a first packet shorter than the HTTP/2 preface still gets HTTP/1.1", async () => {
    const reply = await new Promise<string>((resolve, reject) => {
      const socket = net.connect(service.port, "127.0.0.1");
      let text = "";
      socket.on("data", (c) => (text += c.toString("latin1")));
      socket.on("end", () => resolve(text));
      socket.on("error", reject);
      socket.write("G");
      setImmediate(() => socket.end("ET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
    });
    expect(reply).toMatch(/^HTTP\/1\.1 200/);
    expect(reply).toContain('{"status":"ok"}');
  });
});

describe("plain routes", () => {
  it("/healthz is liveness, /readyz readiness with the failing dependency", async () => {
    expect(await h1("GET", "/healthz")).toEqual({ status: 200, body: '{"status":"ok"}' });
    expect(await h1("GET", "/readyz")).toMatchObject({ status: 200 });
    dependencyUp = false;
    await service.health.probe();
    const notReady = await h1("GET", "/readyz");
    expect(notReady.status).toBe(503);
    expect(JSON.parse(notReady.body)).toMatchObject({ status: "NOT_SERVING" });
    expect(notReady.body).toContain("dependency");
    dependencyUp = true;
    await service.health.probe();
    expect((await h1("GET", "/readyz")).status).toBe(200);
  });

  it("gRPC health over HTTP/2 for the server and each service it serves", async () => {
    const health = createClient(Health, createGrpcTransport({ baseUrl: service.url }));
    expect((await health.check({ service: "" })).status).toBe(HealthCheckResponse_ServingStatus.SERVING);
    expect((await health.check({ service: "adminkiosk.auth.v1.AuthService" })).status).toBe(HealthCheckResponse_ServingStatus.SERVING);
  });

  it("/metrics counts the calls with grpc-prometheus's names and the service label", async () => {
    const metrics = await h1("GET", "/metrics");
    expect(metrics.status).toBe(200);
    expect(metrics.body).toMatch(/grpc_server_handled_total\{[^}]*grpc_method="WhoAmI"[^}]*grpc_code="OK"[^}]*service="test"/);
    expect(metrics.body).toContain("adminkiosk_health_serving");
  });

  it("a service's own GET and POST routes, each only for its method", async () => {
    expect(await h1("GET", "/custom?x=1")).toEqual({ status: 200, body: "custom route" });
    expect(await h1("POST", "/hook", "payload")).toEqual({ status: 202, body: "got payload" });
    // A POST to a GET route (and a GET to a POST route) falls through to the RPC adapter, which knows neither.
    expect((await h1("POST", "/custom")).status).toBe(404);
    expect((await h1("GET", "/hook")).status).toBe(404);
  });
});

describe("each call's request id", () => {
  const client = () => createClient(AuthService, createGrpcTransport({ baseUrl: service.url }));
  const idOf = async (requestId?: string) => {
    let echoed: string | null = null;
    const res = await client().whoAmI({}, { headers: { ...auth.headers, ...(requestId === undefined ? {} : { "x-request-id": requestId }) }, onHeader: (h) => (echoed = h.get("x-request-id")) });
    const seen = res.principal.case === "user" ? res.principal.value.displayName : "";
    expect(echoed).toBe(seen);
    return seen;
  };

  it("keeps a well-formed one (Envoy's), echoes it back and hands it to the handler", async () => {
    expect(await idOf("edge-1234.abc:def_9")).toBe("edge-1234.abc:def_9");
  });

  it("makes one up where there is none, or a malformed one", async () => {
    const uuid = /^[0-9a-f-]{36}$/;
    expect(await idOf()).toMatch(uuid);
    expect(await idOf("")).toMatch(uuid);
    expect(await idOf("has spaces and ünïcode")).toMatch(uuid);
    expect(await idOf("x".repeat(129))).toMatch(uuid);
  });

  it("a refused call carries the request id too, in the error's metadata", async () => {
    const err = await client()
      .whoAmI({}, { headers: { authorization: "Bearer bad", "x-request-id": "refused-1" } })
      .then(() => undefined, (e: unknown) => ConnectError.from(e));
    expect(err?.code).toBe(Code.Unauthenticated);
    expect(err?.metadata.get("x-request-id")).toBe("refused-1");
  });
});
