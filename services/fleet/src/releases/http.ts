// Artifacts over plain HTTP on fleet's port (beside Connect; runtime httpPrefixRoutes):
//   PUT /v1/artifacts            an admin uploads the bytes (streamed, hashed, at most
//                                FLEET_ARTIFACT_MAX_BYTES); answers {"sha256", "size"}.
//   GET|HEAD /v1/artifacts/<sha> a kiosk (its device credential) or a viewer downloads,
//                                whole or one byte range: 206 with Content-Range, 416 for a
//                                range past the end, ETag = "<sha256>", If-Range, If-None-Match.
// The bearer token is verified as every RPC's is (the runtime's verifier: signature,
// expiry, revocation); who may do what follows the same rules as ReleaseService.
import { create } from "@bufbuild/protobuf";
import type http from "node:http";
import type http2 from "node:http2";
import { pipeline } from "node:stream/promises";
import { AccessRuleSchema, Role } from "@adminkiosk/proto/adminkiosk/common/v1/access_pb";
import { describePrincipal, recordAuditEvent, refusalFor, TokenRejected, type HttpRoute, type Logger, type Pool, type Principal, type TokenVerifier } from "@adminkiosk/runtime";
import { Counter } from "prom-client";
import { ArtifactTooLarge, isSha256, type ArtifactStore } from "./artifacts.js";

type Req = http.IncomingMessage | http2.Http2ServerRequest;
type Res = http.ServerResponse | http2.Http2ServerResponse;

const uploadRule = create(AccessRuleSchema, { minRole: Role.ADMIN });
const downloadRule = create(AccessRuleSchema, { minRole: Role.VIEWER, allowDevice: true });

export const artifactBytesServed = new Counter({ name: "fleet_artifact_bytes_served_total", help: "Artifact bytes sent to kiosks and admins (GET /v1/artifacts/<sha256>).", registers: [] });
export const artifactRequests = new Counter({ name: "fleet_artifact_requests_total", help: "Artifact requests by method and status.", labelNames: ["method", "status"], registers: [] });

function answer(res: Res, status: number, body: unknown, headers: Record<string, string> = {}) {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": String(Buffer.byteLength(text)), ...headers });
  res.end(text);
}

const problem = (res: Res, status: number, code: string, message: string, headers?: Record<string, string>) => answer(res, status, { code, message }, headers);

async function authenticate(req: Req, res: Res, verify: TokenVerifier, rule: typeof uploadRule): Promise<Principal | undefined> {
  const header = req.headers["authorization"];
  const m = typeof header === "string" ? /^Bearer\s+(\S+)$/i.exec(header.trim()) : null;
  if (!m) {
    problem(res, 401, "unauthenticated", "missing credential: send authorization: Bearer <access token>", { "www-authenticate": "Bearer" });
    return undefined;
  }
  let principal: Principal;
  try {
    principal = await verify(m[1]!);
  } catch (err) {
    if (err instanceof TokenRejected) problem(res, 401, "unauthenticated", err.message, { "www-authenticate": "Bearer" });
    else problem(res, 503, "unavailable", "could not verify the credential");
    return undefined;
  }
  const refusal = refusalFor(rule, principal);
  if (refusal) {
    problem(res, 403, "permission_denied", refusal);
    return undefined;
  }
  return principal;
}

/** One byte range of `size` bytes from a Range header: undefined for none (or several: the whole file is sent), "unsatisfiable" past the end. */
export function parseRange(header: string | undefined, size: number): { start: number; end: number } | "unsatisfiable" | undefined {
  if (!header) return undefined;
  const m = /^bytes=\s*(\d*)\s*-\s*(\d*)\s*$/.exec(header.trim());
  if (!m || (m[1] === "" && m[2] === "")) return undefined;
  if (m[1] === "") {
    const suffix = Number(m[2]);
    if (suffix === 0 || size === 0) return "unsatisfiable";
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(m[1]);
  const end = m[2] === "" ? size - 1 : Math.min(Number(m[2]), size - 1);
  if (start >= size || end < start) return "unsatisfiable";
  return { start, end };
}

export interface ArtifactRouteOptions {
  pool: Pool;
  store: ArtifactStore;
  verify: TokenVerifier;
  maxBytes: number;
  log: Logger;
}

export function artifactRoutes(o: ArtifactRouteOptions): Record<string, HttpRoute> {
  const route = async (req: Req, res: Res) => {
    const path = (req.url ?? "/").split("?")[0]!;
    const method = req.method ?? "GET";
    res.on("finish", () => artifactRequests.inc({ method, status: String(res.statusCode) }));
    if (path === "/v1/artifacts" || path === "/v1/artifacts/") {
      if (method !== "PUT") return problem(res, 405, "method_not_allowed", "PUT /v1/artifacts uploads; GET /v1/artifacts/<sha256> downloads", { allow: "PUT" });
      return upload(req, res);
    }
    const sha256 = path.slice("/v1/artifacts/".length);
    if (method !== "GET" && method !== "HEAD") return problem(res, 405, "method_not_allowed", "artifacts are read with GET or HEAD", { allow: "GET, HEAD" });
    if (!isSha256(sha256)) return problem(res, 400, "invalid_argument", "sha256: must be 64 lowercase hex characters");
    return download(req, res, sha256, method === "HEAD");
  };

  async function upload(req: Req, res: Res) {
    const principal = await authenticate(req, res, o.verify, uploadRule);
    if (!principal) {
      req.resume();
      return;
    }
    const declared = Number(req.headers["content-length"] ?? NaN);
    if (Number.isFinite(declared) && declared > o.maxBytes) {
      req.resume();
      return problem(res, 413, "too_large", `body: the artifact is larger than ${o.maxBytes} bytes (FLEET_ARTIFACT_MAX_BYTES)`);
    }
    let stored;
    try {
      stored = await o.store.put(req as NodeJS.ReadableStream as import("node:stream").Readable, o.maxBytes);
    } catch (err) {
      if (err instanceof ArtifactTooLarge) return problem(res, 413, "too_large", `body: ${err.message} (FLEET_ARTIFACT_MAX_BYTES)`);
      if (req.destroyed || req.aborted) return; // the uploader went away; nothing kept
      throw err;
    }
    const actor = describePrincipal(principal);
    const { rowCount } = await o.pool.query("INSERT INTO artifacts (sha256, size_bytes, uploaded_by) VALUES ($1, $2, $3) ON CONFLICT (sha256) DO NOTHING", [stored.sha256, stored.size, actor]);
    await recordAuditEvent(o.pool, undefined, "artifact.uploaded", stored.sha256, { size: stored.size, new: (rowCount ?? 0) > 0 }, actor);
    o.log.info({ sha256: stored.sha256, size: stored.size, by: actor }, "artifact uploaded");
    answer(res, rowCount ? 201 : 200, { sha256: stored.sha256, size: stored.size });
  }

  async function download(req: Req, res: Res, sha256: string, headOnly: boolean) {
    if (!(await authenticate(req, res, o.verify, downloadRule))) return;
    const stat = await o.store.stat(sha256);
    if (!stat) return problem(res, 404, "not_found", `artifact ${sha256} not found`);
    const etag = `"${sha256}"`;
    const common = { etag, "accept-ranges": "bytes", "cache-control": "private, max-age=31536000, immutable", "content-type": "application/octet-stream" };
    const inm = req.headers["if-none-match"];
    if (typeof inm === "string" && inm.split(",").some((t) => t.trim() === etag || t.trim() === "*")) {
      res.writeHead(304, common);
      return void res.end();
    }
    // If-Range with another validator: the client's partial copy is of something else; send it all.
    const ifRange = req.headers["if-range"];
    const rangeHeader = typeof ifRange === "string" && ifRange.trim() !== etag ? undefined : (req.headers["range"] as string | undefined);
    const range = parseRange(rangeHeader, stat.size);
    if (range === "unsatisfiable") return problem(res, 416, "range_not_satisfiable", `range: the artifact has ${stat.size} bytes`, { "content-range": `bytes */${stat.size}` });
    const { start, end } = range ?? { start: 0, end: stat.size - 1 };
    const length = Math.max(0, end - start + 1);
    res.writeHead(range ? 206 : 200, { ...common, "content-length": String(length), ...(range ? { "content-range": `bytes ${start}-${end}/${stat.size}` } : {}) });
    if (headOnly || length === 0) return void res.end();
    const body = await o.store.read(sha256, { start, end });
    body.on("data", (chunk: Buffer) => artifactBytesServed.inc(chunk.length));
    try {
      await pipeline(body, res as NodeJS.WritableStream);
    } catch (err) {
      // The kiosk hung up mid-download (it resumes with a Range): nothing to answer.
      if (!res.destroyed && !(res as http.ServerResponse).writableEnded) o.log.warn({ err, sha256 }, "artifact download failed");
    }
  }

  return { "/v1/artifacts": route };
}
