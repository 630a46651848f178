// An S3-compatible artifact store (AWS S3, MinIO, Ceph, R2...): objects <prefix><sha256> in
// one bucket, path-style URLs, AWS Signature Version 4 written with node:crypto and fetch.
// An upload is first streamed to a local spool file (hashing it), then PUT with its SHA-256
// as the signed payload hash (S3 checks it) — so the object's key and content always agree.
// Tested against AWS's published SigV4 example values (test/releases-s3-signing.test.ts);
// it has not been run against a real bucket here (docs/operations.md).
import { createHash, createHmac } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { mkdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { randomUUID } from "node:crypto";
import { hashingCounter, isSha256, type ArtifactStat, type ArtifactStore } from "./artifacts.js";

export interface S3Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

export interface SignInput {
  method: string;
  url: URL;
  /** Header names in any case; host is taken from the URL. */
  headers: Record<string, string>;
  /** Hex SHA-256 of the body, or "UNSIGNED-PAYLOAD". */
  payloadHash: string;
  region: string;
  service: string;
  /** "20130524T000000Z" */
  amzDate: string;
  credentials: S3Credentials;
}

const sha256Hex = (s: string | Buffer) => createHash("sha256").update(s).digest("hex");
const hmac = (key: Buffer | string, data: string) => createHmac("sha256", key).update(data).digest();
/** RFC 3986 encoding as SigV4 wants it (every byte but unreserved characters). */
const encode = (s: string) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

export function canonicalRequest(i: SignInput, signedHeaders: string[], headers: Record<string, string>): string {
  // S3 paths are encoded once (each segment), not twice as other services want.
  const path = i.url.pathname.split("/").map((seg) => encode(decodeURIComponent(seg))).join("/") || "/";
  const query = [...i.url.searchParams].map(([k, v]) => [encode(k), encode(v)] as const).sort((a, b) => (a[0] === b[0] ? (a[1] < b[1] ? -1 : 1) : a[0] < b[0] ? -1 : 1));
  return [
    i.method,
    path,
    query.map(([k, v]) => `${k}=${v}`).join("&"),
    signedHeaders.map((h) => `${h}:${headers[h]}\n`).join(""),
    signedHeaders.join(";"),
    i.payloadHash,
  ].join("\n");
}

/** The headers to send (with Authorization, x-amz-date, x-amz-content-sha256) and the intermediate values. */
export function signV4(i: SignInput): { headers: Record<string, string>; canonicalRequest: string; stringToSign: string; signature: string } {
  const headers: Record<string, string> = { host: i.url.host };
  for (const [k, v] of Object.entries(i.headers)) headers[k.toLowerCase()] = v.trim().replace(/\s+/g, " ");
  headers["x-amz-date"] = i.amzDate;
  headers["x-amz-content-sha256"] = i.payloadHash;
  if (i.credentials.sessionToken) headers["x-amz-security-token"] = i.credentials.sessionToken;
  const signed = Object.keys(headers).sort();
  const creq = canonicalRequest(i, signed, headers);
  const day = i.amzDate.slice(0, 8);
  const scope = `${day}/${i.region}/${i.service}/aws4_request`;
  const stringToSign = ["AWS4-HMAC-SHA256", i.amzDate, scope, sha256Hex(creq)].join("\n");
  const key = hmac(hmac(hmac(hmac(`AWS4${i.credentials.secretAccessKey}`, day), i.region), i.service), "aws4_request");
  const signature = createHmac("sha256", key).update(stringToSign).digest("hex");
  const out: Record<string, string> = { ...headers };
  delete out["host"];
  out["authorization"] = `AWS4-HMAC-SHA256 Credential=${i.credentials.accessKeyId}/${scope}, SignedHeaders=${signed.join(";")}, Signature=${signature}`;
  return { headers: out, canonicalRequest: creq, stringToSign, signature };
}

export const amzDate = (d = new Date()) => d.toISOString().replace(/[-:]/g, "").replace(/\.\d{3}/, "");

export interface S3StoreOptions {
  /** The endpoint, e.g. https://s3.eu-central-1.amazonaws.com or http://minio:9000 */
  endpoint: string;
  bucket: string;
  region: string;
  prefix: string;
  credentials: S3Credentials;
  /** Where uploads are spooled before they go to the bucket. */
  spoolDir: string;
}

export function s3ArtifactStore(o: S3StoreOptions): ArtifactStore {
  const objectUrl = (sha256: string) => new URL(`${o.endpoint.replace(/\/$/, "")}/${o.bucket}/${o.prefix}${sha256}`);
  const call = (method: string, url: URL, headers: Record<string, string>, payloadHash: string, body?: Readable) => {
    const signed = signV4({ method, url, headers, payloadHash, region: o.region, service: "s3", amzDate: amzDate(), credentials: o.credentials });
    return fetch(url, {
      method,
      headers: signed.headers,
      ...(body ? { body: Readable.toWeb(body) as ReadableStream, duplex: "half" } : {}),
    } as RequestInit);
  };
  const statOf = async (sha256: string): Promise<ArtifactStat | undefined> => {
    if (!isSha256(sha256)) return undefined;
    const res = await call("HEAD", objectUrl(sha256), {}, sha256Hex(""));
    if (res.status === 404) return undefined;
    if (!res.ok) throw new Error(`S3 HEAD answered ${res.status}`);
    return { sha256, size: Number(res.headers.get("content-length") ?? 0) };
  };
  return {
    async put(body, maxBytes) {
      await mkdir(o.spoolDir, { recursive: true });
      const spool = join(o.spoolDir, randomUUID());
      const counter = hashingCounter(maxBytes);
      try {
        await pipeline(body, counter.stream, createWriteStream(spool, { flags: "wx" }));
        const result = counter.result();
        if (await statOf(result.sha256)) return result;
        const res = await call("PUT", objectUrl(result.sha256), { "content-length": String(result.size), "content-type": "application/octet-stream" }, result.sha256, createReadStream(spool));
        if (!res.ok) throw new Error(`S3 PUT answered ${res.status}: ${(await res.text()).slice(0, 200)}`);
        return result;
      } finally {
        await rm(spool, { force: true });
      }
    },
    stat: statOf,
    exists: async (sha256) => (await statOf(sha256)) !== undefined,
    async read(sha256, range) {
      const res = await call("GET", objectUrl(sha256), { range: `bytes=${range.start}-${range.end}` }, sha256Hex(""));
      if (!res.ok || !res.body) throw new Error(`S3 GET answered ${res.status}`);
      return Readable.fromWeb(res.body as import("node:stream/web").ReadableStream);
    },
  };
}
