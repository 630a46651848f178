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

/** Rejects when the connection fails or `signal` aborts; any HTTP status resolves. */
export function postJson(url: URL, headers: Record<string, string>, body: string, signal: AbortSignal): Promise<PostAnswer> {
  const secure = url.protocol === "https:";
  return new Promise((resolve, reject) => {
    const req = (secure ? https : http).request(
      url,
      { method: "POST", agent: secure ? agents.https : agents.http, headers: { ...headers, "content-length": String(Buffer.byteLength(body)) }, signal },
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
    req.on("error", reject);
    req.end(body);
  });
}
