// The web app's one origin (startWebServer): files with their security headers, client
// routes answered with index.html, Connect prefixes forwarded, and a server stream passed
// on chunk by chunk as the service writes it (the upstream here is a bare node:http server
// that holds its stream open until told: what is tested is the forwarding, not a service).
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { eventually } from "../src/testing.js";
import { startWebServer, type WebServer } from "../src/web.js";

let web: WebServer;
let upstream: http.Server;
/** Lets the upstream finish its stream; until then only its first chunk exists. */
let finishStream: () => void = () => {};

beforeAll(async () => {
  const dist = mkdtempSync(join(tmpdir(), "adminkiosk-web-"));
  mkdirSync(join(dist, "assets"));
  writeFileSync(join(dist, "index.html"), "<!doctype html><title>Admin Kiosk</title>");
  writeFileSync(join(dist, "assets", "app-1234.js"), "console.log(1)");
  upstream = http.createServer((req, res) => {
    if (req.url?.endsWith("/Cookie")) {
      res.writeHead(200, { "content-type": "application/json", "x-cookie": req.headers.cookie ?? "", "set-cookie": ["a=1; Path=/adminkiosk.fleet.v1.KioskService/; HttpOnly; Secure; SameSite=Strict", "b=2; Max-Age=0"] });
      res.end("{}");
      return;
    }
    res.writeHead(200, { "content-type": "application/connect+json", "x-request-id": "from-upstream", "x-path": req.url ?? "" });
    res.write("first");
    finishStream = () => res.end("second");
  });
  await new Promise<void>((resolve) => upstream.listen(0, "127.0.0.1", resolve));
  const upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
  web = await startWebServer({ distDir: dist, port: 0, upstreams: { fleet: upstreamUrl, auth: "http://127.0.0.1:1" } });
});

afterAll(async () => {
  await web?.close();
  await new Promise((resolve) => upstream?.close(resolve));
});

it("passes a server stream on as the service writes it, not when it ends", async () => {
  const res = await fetch(`${web.url}/adminkiosk.fleet.v1.KioskService/WatchFleet`, { method: "POST", body: "{}" });
  expect(res.headers.get("x-request-id")).toBe("from-upstream");
  expect(res.headers.get("x-path")).toBe("/adminkiosk.fleet.v1.KioskService/WatchFleet");
  const reader = res.body!.getReader();
  // The upstream has not ended (it ends only when told, below): a buffering proxy would
  // deliver nothing, ever. The deadline only names that failure; it is not a speed limit.
  const first = await Promise.race([reader.read(), new Promise<never>((_, reject) => setTimeout(() => reject(new Error("the first chunk was held back")), eventually.timeout))]);
  expect(new TextDecoder().decode(first.value)).toBe("first");
  finishStream();
  let rest = "";
  for (let r = await reader.read(); !r.done; r = await reader.read()) rest += new TextDecoder().decode(r.value);
  expect(rest).toBe("second");
});

it("answers in Connect's words when a service is not running or not reachable", async () => {
  const missing = await fetch(`${web.url}/adminkiosk.catalog.v1.CatalogService/ListProducts`, { method: "POST", body: "{}" });
  expect(missing.status).toBe(404);
  expect(await missing.json()).toEqual({ code: "unimplemented", message: "catalog is not running here" });
  const down = await fetch(`${web.url}/adminkiosk.auth.v1.AuthService/Login`, { method: "POST", body: "{}" });
  expect(down.status).toBe(503);
  expect(await down.json()).toMatchObject({ code: "unavailable", message: expect.stringMatching(/^auth is not reachable/) });
});

it("passes cookies to the service and its Set-Cookie headers back, untouched", async () => {
  const res = await fetch(`${web.url}/adminkiosk.fleet.v1.KioskService/Cookie`, { method: "POST", body: "{}", headers: { cookie: "a=1; b=2" } });
  expect(res.headers.get("x-cookie")).toBe("a=1; b=2");
  expect(res.headers.getSetCookie()).toEqual(["a=1; Path=/adminkiosk.fleet.v1.KioskService/; HttpOnly; Secure; SameSite=Strict", "b=2; Max-Age=0"]);
});

it("knows only the services it was given: a name like constructor is not running here", async () => {
  for (const name of ["constructor", "hasownproperty", "proto"]) {
    const res = await fetch(`${web.url}/adminkiosk.${name}.v1.Service/Method`, { method: "POST", body: "{}" });
    expect(res.status, name).toBe(404);
    expect(await res.json()).toEqual({ code: "unimplemented", message: `${name} is not running here` });
  }
});

it("serves the app for client routes, with a strict content security policy", async () => {
  const page = await fetch(`${web.url}/kiosks/sim-0001`);
  expect(page.status).toBe(200);
  expect(await page.text()).toContain("<title>Admin Kiosk</title>");
  expect(page.headers.get("content-security-policy")).toContain("default-src 'self'");
  expect(page.headers.get("cache-control")).toBe("no-cache");
  const asset = await fetch(`${web.url}/assets/app-1234.js`);
  expect(asset.headers.get("cache-control")).toContain("immutable");
});

it("serves the app for a client route whose last segment looks like a file name; a missing file stays a 404", async () => {
  // A review link's token: rv1.<payload>.<signature>, the signature without a "-" half the time.
  const review = await fetch(`${web.url}/review/rv1.YWJj.c2lnbmF0dXJlX3dpdGhvdXRfYV9kYXNoX2luX2l0`);
  expect(review.status).toBe(200);
  expect(await review.text()).toContain("<title>Admin Kiosk</title>");
  expect(review.headers.get("cache-control")).toBe("no-cache");
  for (const missing of ["/assets/app-9999.js", "/favicon.ico", "/robots.txt"]) expect((await fetch(`${web.url}${missing}`)).status, missing).toBe(404);
});
