// Signed webhooks, Stripe's scheme, one implementation for every sender and receiver
// (payments' simulated provider signs and payments verifies; notifications signs its
// outgoing webhooks). A header such as
//   Provider-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>[,v1=...]
// signs the exact bytes sent. A receiver verifies the raw bytes before parsing anything,
// in constant time, against every secret it holds (rotation), and refuses timestamps too
// old or too far in the future. Each use names its own header.
import { createHmac, timingSafeEqual } from "node:crypto";

export function sign(secret: string, timestamp: number, body: Buffer | string): string {
  return createHmac("sha256", secret).update(`${timestamp}.`).update(body).digest("hex");
}

/** The header value for `body` signed now (or at `timestamp`) with each of `secrets`. */
export function signatureFor(secrets: string[], body: Buffer | string, timestamp = Math.floor(Date.now() / 1000)): string {
  return [`t=${timestamp}`, ...secrets.map((s) => `v1=${sign(s, timestamp, body)}`)].join(",");
}

export type SignatureRejection = "malformed" | "stale" | "bad_signature";

export class WebhookRejected extends Error {
  override name = "WebhookRejected";
  constructor(
    readonly reason: SignatureRejection,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Throws WebhookRejected unless `header` (the value of the header named `headerName`)
 * carries a v1 signature of `body` by one of `secrets` with a timestamp within
 * `toleranceMs` of `nowMs`.
 */
export function verifySignature(secrets: string[], header: string | undefined, body: Buffer, toleranceMs: number, nowMs = Date.now(), headerName = "signature"): void {
  if (!header) throw new WebhookRejected("malformed", `missing ${headerName} header`);
  let timestamp: number | undefined;
  const signatures: Buffer[] = [];
  for (const part of header.split(",")) {
    const eq = part.indexOf("=");
    const [key, value] = [part.slice(0, eq).trim(), part.slice(eq + 1).trim()];
    if (key === "t" && /^\d{1,12}$/.test(value)) timestamp = Number(value);
    else if (key === "v1" && /^[0-9a-f]{64}$/.test(value)) signatures.push(Buffer.from(value, "hex"));
  }
  if (timestamp === undefined || signatures.length === 0) throw new WebhookRejected("malformed", `${headerName} must be t=<unix seconds>,v1=<hex>`);
  if (Math.abs(nowMs - timestamp * 1000) > toleranceMs) throw new WebhookRejected("stale", "the signed timestamp is outside the tolerance");
  const expected = secrets.map((s) => Buffer.from(sign(s, timestamp, body), "hex"));
  // Every pair is compared, so the time taken says nothing about which one matched.
  let matched = false;
  for (const e of expected) for (const s of signatures) matched = timingSafeEqual(e, s) || matched;
  if (!matched) throw new WebhookRejected("bad_signature", "no signature matches");
}
