// The development mailbox: an SMTP server (smtp-server) that accepts every message and
// keeps the last ones in memory, and a tiny HTTP JSON endpoint to read them
// (GET /messages, DELETE /messages). npm start runs it and points notifications'
// SMTP_URL at it, and DEV_MAILBOX_URL, so the admin web lists the mail through
// DeliveryService.ListDevMail; tests start one of their own. Not for production: no auth, no TLS.
import http from "node:http";
import type { AddressInfo } from "node:net";
import { SMTPServer } from "smtp-server";

export interface StoredMail {
  id: number;
  from: string;
  to: string[];
  subject: string;
  /** The body as text: the first text/plain part (or the only part), transfer-decoded. */
  text: string;
  /** Every header and the body, as received. */
  raw: string;
  receivedAt: string;
}

export interface Mailbox {
  readonly smtpPort: number;
  readonly httpUrl: string;
  messages(): StoredMail[];
  clear(): void;
  close(): Promise<void>;
}

/** The Subject header, unfolded; MIME encoded-words are left as they are. */
function subjectOf(raw: string): string {
  const head = raw.split(/\r?\n\r?\n/, 1)[0] ?? "";
  const m = /^subject:[ \t]*(.*(?:\r?\n[ \t].*)*)/im.exec(head);
  return m ? m[1]!.replace(/\r?\n[ \t]+/g, " ").trim() : "";
}

/** Splits a message (or a MIME part) into its headers (lower-case names, unfolded) and body. */
function splitPart(raw: string): { headers: Map<string, string>; body: string } {
  const at = raw.search(/\r?\n\r?\n/);
  const head = at < 0 ? raw : raw.slice(0, at);
  const body = at < 0 ? "" : raw.slice(at).replace(/^\r?\n\r?\n/, "");
  const headers = new Map<string, string>();
  for (const line of head.replace(/\r?\n[ \t]+/g, " ").split(/\r?\n/)) {
    const colon = line.indexOf(":");
    if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
  }
  return { headers, body };
}

function decodeBody(body: string, encoding: string): string {
  if (/^base64$/i.test(encoding)) return Buffer.from(body.replace(/\s+/g, ""), "base64").toString("utf8");
  if (/^quoted-printable$/i.test(encoding)) {
    const bytes = body.replace(/=\r?\n/g, "").replace(/=([0-9A-Fa-f]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)));
    return Buffer.from(bytes, "latin1").toString("utf8");
  }
  return body;
}

/** The message's text: the first text/plain part of a multipart message, or its only body; transfer-decoded (UTF-8). */
export function textOf(raw: string): string {
  const { headers, body } = splitPart(raw);
  const type = headers.get("content-type") ?? "text/plain";
  const boundary = /boundary="?([^";]+)"?/i.exec(type)?.[1];
  if (/^multipart\//i.test(type) && boundary) {
    for (const part of body.split(`--${boundary}`).slice(1)) {
      if (part.startsWith("--")) break;
      const text = textOf(part.replace(/^\r?\n/, ""));
      if (text) return text;
    }
    return "";
  }
  if (!/^text\/plain/i.test(type)) return "";
  return decodeBody(body, headers.get("content-transfer-encoding") ?? "7bit").replace(/\r\n/g, "\n");
}

export async function startMailbox(options: { host?: string; smtpPort?: number; httpPort?: number; keep?: number; onMail?: (m: StoredMail) => void } = {}): Promise<Mailbox> {
  const host = options.host ?? "127.0.0.1";
  const keep = options.keep ?? 1000;
  const stored: StoredMail[] = [];
  let nextId = 1;
  const smtp = new SMTPServer({
    authOptional: true,
    disabledCommands: ["STARTTLS"],
    logger: false,
    size: 10 * 1024 * 1024,
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on("data", (c: Buffer) => chunks.push(c));
      stream.on("end", () => {
        const raw = Buffer.concat(chunks).toString("utf8");
        const mail: StoredMail = {
          id: nextId++,
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : "",
          to: session.envelope.rcptTo.map((r) => r.address),
          subject: subjectOf(raw),
          text: textOf(raw),
          raw,
          receivedAt: new Date().toISOString(),
        };
        stored.push(mail);
        if (stored.length > keep) stored.shift();
        options.onMail?.(mail);
        callback();
      });
    },
  });
  await new Promise<void>((resolve, reject) => {
    smtp.once("error", reject);
    smtp.listen(options.smtpPort ?? 0, host, () => resolve());
  });
  const smtpPort = (smtp.server.address() as AddressInfo).port;
  const web = http.createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (path === "/messages" && req.method === "GET") {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ messages: stored }));
    } else if (path === "/messages" && req.method === "DELETE") {
      stored.length = 0;
      res.writeHead(204).end();
    } else res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => web.listen(options.httpPort ?? 0, host, () => resolve()));
  const httpUrl = `http://${host}:${(web.address() as AddressInfo).port}`;
  return {
    smtpPort,
    httpUrl,
    messages: () => [...stored],
    clear: () => void (stored.length = 0),
    async close() {
      web.closeAllConnections();
      await Promise.all([new Promise<void>((r) => web.close(() => r())), new Promise<void>((r) => smtp.close(() => r()))]);
    },
  };
}
