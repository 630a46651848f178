// The admin web app's one origin, as Envoy gives it in deployment: the built app's files,
// and every Connect path prefix /adminkiosk.<service>.v1. forwarded to that service, so
// the browser never needs CORS. `npm start` serves the production build; `npm run dev`
// runs Vite (hot reload) with the same routes. Cookie and Set-Cookie pass through untouched
// (auth's HttpOnly refresh cookie is scoped to its own path on this origin).
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, rmSync, statSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { createProxyServer } from "http-proxy-3";
import sirv from "sirv";

export const webDir = (repoRoot: string) => join(repoRoot, "web");
export const webDistDir = (repoRoot: string) => join(webDir(repoRoot), "dist");

/** The path prefix of a service's Connect, gRPC-Web and gRPC routes (its proto package). */
export const connectPrefix = (service: string) => `/adminkiosk.${service}.v1.`;

/** Upstream URL per service name, e.g. { auth: "http://127.0.0.1:7001" }. */
export type Upstreams = Record<string, string>;

// What the browser may load: only this origin's own files and calls. React sets styles
// through the CSSOM, which style-src does not govern, so no 'unsafe-inline' is needed.
const securityHeaders: Record<string, string> = {
  "content-security-policy":
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "x-frame-options": "DENY",
};

/** Names the build emits or a browser asks for by themselves: a miss is a 404, never the app. */
const staticFile = /\.(?:m?js|css|map|html|png|jpe?g|gif|svg|ico|webp|avif|json|webmanifest|txt|xml|woff2?|ttf|wasm)$/i;

export interface WebServerOptions {
  /** The built app (web/dist). */
  distDir: string;
  upstreams: Upstreams;
  host?: string;
  /** 0 picks a free port. */
  port: number;
}

export interface WebServer {
  url: string;
  port: number;
  close(): Promise<void>;
}

/** A Connect error body (https://connectrpc.com/docs/protocol#error-end-stream) with its HTTP status. */
function connectError(res: http.ServerResponse, status: number, code: string, message: string) {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify({ code, message }));
}

function upstreamFor(path: string, upstreams: Upstreams): { name: string; url: string | undefined } | undefined {
  // Release artifacts (uploads from the Releases page) are plain HTTP on fleet's port.
  if (path === "/v1/artifacts" || path.startsWith("/v1/artifacts/") || path.startsWith("/v1/artifacts?")) return { name: "fleet", url: Object.hasOwn(upstreams, "fleet") ? upstreams["fleet"] : undefined };
  const match = /^\/adminkiosk\.([a-z]+)\.v1\./.exec(path);
  if (!match?.[1]) return undefined;
  // Own keys only: "constructor" and the like must not resolve to Object.prototype's members.
  return { name: match[1], url: Object.hasOwn(upstreams, match[1]) ? upstreams[match[1]] : undefined };
}

export async function startWebServer(options: WebServerOptions): Promise<WebServer> {
  if (!existsSync(join(options.distDir, "index.html"))) throw new Error(`no built web app in ${options.distDir} (run: npm run build -w @adminkiosk/web)`);
  // Keep-alive to each service; responses are piped as they arrive, so server streams
  // flow through unbuffered. No proxy timeout: streams stay open as long as the caller wants.
  const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
  const proxy = createProxyServer({ agent, xfwd: true });
  proxy.on("error", (err, req, res) => {
    const service = upstreamFor(req.url ?? "", options.upstreams)?.name ?? "the service";
    if (res instanceof http.ServerResponse) connectError(res, 503, "unavailable", `${service} is not reachable (${(err as NodeJS.ErrnoException).code ?? err.message})`);
    else res.destroy();
  });
  const files = sirv(options.distDir, {
    single: true,
    etag: true,
    // Hashed file names under assets/ never change; index.html is always revalidated.
    setHeaders: (res, pathname) => res.setHeader("cache-control", pathname.startsWith("/assets/") ? "public, max-age=31536000, immutable" : "no-cache"),
  });

  const server = http.createServer((req, res) => {
    const path = req.url ?? "/";
    const upstream = upstreamFor(path, options.upstreams);
    if (upstream) {
      req.socket.setNoDelay(true);
      if (!upstream.url) return connectError(res, 404, "unimplemented", `${upstream.name} is not running here`);
      proxy.web(req, res, { target: upstream.url });
      return;
    }
    if (path === "/healthz") {
      res.writeHead(200, { "content-type": "application/json" });
      res.end('{"status":"ok"}');
      return;
    }
    for (const [name, value] of Object.entries(securityHeaders)) res.setHeader(name, value);
    const notFound = () => {
      res.writeHead(404, { "content-type": "text/plain" });
      res.end("not found");
    };
    files(req, res, () => {
      // sirv takes any last segment like "name.word" for a missing file, but a client route's
      // parameter can look so (a review link's token is rv1.<payload>.<signature>): outside
      // assets/ and without a static file's extension, a path is the app's.
      const pathname = path.split("?")[0]!;
      if ((req.method === "GET" || req.method === "HEAD") && !pathname.startsWith("/assets/") && !staticFile.test(pathname)) {
        req.url = "/index.html";
        files(req, res, notFound);
        return;
      }
      notFound();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host ?? "127.0.0.1", resolve);
  });
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    url: `http://${options.host && options.host !== "0.0.0.0" ? options.host : "127.0.0.1"}:${port}`,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      proxy.close();
      agent.destroy();
    },
  };
}

/** The web app's own Vite (the root's node_modules holds vitest's, an older major). */
export function viteBin(repoRoot: string): string {
  const pkg = createRequire(join(webDir(repoRoot), "package.json")).resolve("vite/package.json");
  return join(dirname(pkg), "bin", "vite.js");
}

function newestMtime(path: string): number {
  if (!existsSync(path)) return 0;
  const stat = statSync(path);
  if (!stat.isDirectory()) return stat.mtimeMs;
  return readdirSync(path).reduce((newest, entry) => Math.max(newest, newestMtime(join(path, entry))), stat.mtimeMs);
}

/** True when web/dist is missing or older than the app's sources (or the generated clients). */
export function webBuildIsStale(repoRoot: string): boolean {
  const built = join(webDistDir(repoRoot), "index.html");
  if (!existsSync(built)) return true;
  const web = webDir(repoRoot);
  const inputs = [join(web, "src"), join(web, "public"), join(web, "index.html"), join(web, "vite.config.ts"), join(web, "package.json"), join(repoRoot, "packages/proto/src/gen")];
  return Math.max(...inputs.map(newestMtime)) > statSync(built).mtimeMs;
}

/** A build older than this holds no lock: its process died (a build takes well under a minute). */
const buildLockStaleMs = 10 * 60_000;

/**
 * Builds web/dist with Vite when it is stale; returns whether it built. Throws with Vite's output
 * on failure. One build at a time across processes (test files in parallel, `npm start`): Vite
 * empties dist/ first, so a second build would pull the chunks from under a page another process
 * is serving. The others wait for the lock (a directory beside dist/) and find dist/ fresh.
 */
export async function ensureWebBuild(repoRoot: string, log: (line: string) => void = () => {}): Promise<boolean> {
  const lock = join(webDir(repoRoot), ".build-lock");
  for (;;) {
    if (!webBuildIsStale(repoRoot)) return false;
    try {
      mkdirSync(lock);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      const since = existsSync(lock) ? Date.now() - statSync(lock).mtimeMs : 0;
      if (since > buildLockStaleMs) rmSync(lock, { recursive: true, force: true });
      else await sleep(250);
    }
  }
  try {
    if (!webBuildIsStale(repoRoot)) return false;
    log("building the admin web app (vite build)...");
    // NODE_ENV=production whatever the caller's (vitest's is "test"): Vite builds with the
    // caller's NODE_ENV, and "test" gave React's development build in one 500 kB chunk.
    const child = spawn(process.execPath, [viteBin(repoRoot), "build", "--logLevel", "warn"], { cwd: webDir(repoRoot), env: { ...process.env, NODE_ENV: "production" }, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
    const code = await new Promise<number | null>((resolve, reject) => {
      child.once("error", reject);
      child.once("exit", resolve);
    });
    if (code !== 0) throw new Error(`building the web app failed:\n${output}`);
    return true;
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}
