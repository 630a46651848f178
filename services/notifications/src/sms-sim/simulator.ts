// An SMS provider that behaves like a real one, for local runs and tests (as payments'
// provider simulator does for cards): a JSON API with a bearer API key, messages to E.164
// numbers kept in memory, an Idempotency-Key so a retried send is one message, and a control
// API that makes the next N sends fail (HTTP 503, or another status). GET / shows the messages.
import { randomBytes, timingSafeEqual } from "node:crypto";
import http from "node:http";
import type { Logger } from "@adminkiosk/runtime";
import { z } from "zod";

export interface SmsSimulatorOptions {
  apiKey: string;
  /** How many messages are kept (oldest dropped first). */
  keep: number;
  log: Logger;
}

export interface SmsMessage {
  id: string;
  to: string;
  from: string;
  text: string;
  reference: string;
  status: "delivered";
  created: string;
}

const sendRequest = z.object({
  to: z.string().regex(/^\+[1-9][0-9]{7,14}$/, "must be an E.164 phone number"),
  from: z.string().min(1).max(20),
  text: z.string().min(1).max(1600),
  reference: z.string().max(255).default(""),
});
const controlRequest = z.object({
  /** The next `count` sends fail with `status`. */
  count: z.number().int().min(0).max(1000),
  status: z.number().int().min(400).max(599).default(503),
});

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

export function createSmsSimulator(options: SmsSimulatorOptions): http.Server {
  const { log } = options;
  const messages: SmsMessage[] = [];
  const byKey = new Map<string, SmsMessage>();
  const failing = { count: 0, status: 503 };
  let attempts = 0;
  const expected = Buffer.from(`Bearer ${options.apiKey}`);
  const authorized = (req: http.IncomingMessage) => {
    const got = Buffer.from(req.headers.authorization ?? "");
    return got.length === expected.length && timingSafeEqual(got, expected);
  };
  const json = (res: http.ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
  };
  const error = (res: http.ServerResponse, status: number, code: string, message: string) => json(res, status, { error: { code, message } });

  return http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (size <= 64 * 1024) chunks.push(c);
    });
    req.on("end", () => {
      const url = new URL(req.url ?? "/", "http://sim");
      const body = () => {
        try {
          return JSON.parse(Buffer.concat(chunks).toString("utf8")) as unknown;
        } catch {
          return undefined;
        }
      };
      if (req.method === "GET" && url.pathname === "/") {
        const rows = [...messages]
          .reverse()
          .map((m) => `<tr><td>${escapeHtml(m.created)}</td><td>${escapeHtml(m.to)}</td><td>${escapeHtml(m.from)}</td><td><pre>${escapeHtml(m.text)}</pre></td></tr>`)
          .join("");
        res
          .writeHead(200, { "content-type": "text/html; charset=utf-8" })
          .end(
            `<!doctype html><title>SMS simulator</title><h1>SMS simulator</h1><p>${messages.length} message(s) kept; the next ${failing.count} send(s) fail.</p><table border="1" cellpadding="4"><tr><th>Time</th><th>To</th><th>From</th><th>Text</th></tr>${rows}</table>`,
          );
        return;
      }
      if (url.pathname === "/healthz") return json(res, 200, { ok: true });
      if (!authorized(req)) return error(res, 401, "unauthorized", "a valid API key is required");
      if (req.method === "GET" && url.pathname === "/v1/messages") {
        const to = url.searchParams.get("to");
        return json(res, 200, { data: messages.filter((m) => !to || m.to === to), attempts });
      }
      if (req.method === "POST" && url.pathname === "/v1/messages") {
        attempts++;
        if (failing.count > 0) {
          failing.count--;
          log.info({ status: failing.status, left: failing.count }, "failing a send as told");
          return error(res, failing.status, "simulated_failure", "the simulator was told to fail this send");
        }
        const parsed = sendRequest.safeParse(body());
        if (!parsed.success) return error(res, 400, "invalid_request", parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; "));
        const key = req.headers["idempotency-key"];
        const existing = typeof key === "string" && key ? byKey.get(key) : undefined;
        if (existing) return json(res, 200, existing);
        const message: SmsMessage = { id: `sms_${randomBytes(12).toString("hex")}`, ...parsed.data, status: "delivered", created: new Date().toISOString() };
        messages.push(message);
        if (typeof key === "string" && key) byKey.set(key, message);
        while (messages.length > options.keep) {
          const dropped = messages.shift()!;
          for (const [k, m] of byKey) if (m === dropped) byKey.delete(k);
        }
        // The number is personal data: logged by its last digits only.
        log.info({ id: message.id, to: `…${message.to.slice(-3)}` }, "sms accepted");
        return json(res, 201, message);
      }
      if (req.method === "POST" && url.pathname === "/control/fail") {
        const parsed = controlRequest.safeParse(body());
        if (!parsed.success) return error(res, 400, "invalid_request", parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; "));
        failing.count = parsed.data.count;
        failing.status = parsed.data.status;
        return json(res, 200, failing);
      }
      return error(res, 404, "not_found", `${req.method} ${url.pathname}`);
    });
  });
}
