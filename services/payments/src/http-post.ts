// A POST of a JSON body over node:http(s) on kept-alive connections: the provider's API
// (provider.ts) and the simulator's webhooks (provider-sim). fetch (undici) cost ~0.4 ms more
// CPU per call on this path than node:http with a keep-alive agent (issue 13, bench:orders).
import http from "node:http";
import https from "node:https";

export interface PostAnswer {
  status: number;
  ok: boolean;
  text: string;
}

const agents = { http: new http.Agent({ keepAlive: true }), https: new https.Agent({ keepAlive: true }) };

/**
 * `method` GET sends no body (the provider's lookups). Rejects when the connection fails, no answer has ended within `timeoutMs`, or `signal` aborts;
 * any HTTP status resolves. The deadline is a timer of its own, held until the request closes
 * (not AbortSignal.timeout, whose timer does not keep its signal alive).
 */
export function postJson(url: URL, headers: Record<string, string>, body: string, options: { timeoutMs: number; signal?: AbortSignal; method?: "POST" | "GET" }): Promise<PostAnswer> {
  const secure = url.protocol === "https:";
  return new Promise((resolve, reject) => {
    const req = (secure ? https : http).request(
      url,
      { method: options.method ?? "POST", agent: secure ? agents.https : agents.http, headers: { ...headers, "content-length": String(Buffer.byteLength(body)) }, ...(options.signal ? { signal: options.signal } : {}) },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("error", reject);
        res.on("end", () => {
          const status = res.statusCode ?? 0;
          resolve({ status, ok: status >= 200 && status < 300, text: Buffer.concat(chunks).toString("utf8") });
        });
      },
    );
    const timer = setTimeout(() => req.destroy(new Error(`no answer within ${options.timeoutMs} ms`)), options.timeoutMs);
    req.on("close", () => clearTimeout(timer));
    req.on("error", reject);
    req.end(body);
  });
}
