// The SMS channel: a provider adapter over an HTTP API (npm start runs our simulator of it,
// sms-sim/): POST <SMS_PROVIDER_URL>/v1/messages with notifications' API key as a bearer
// token and the delivery id as Idempotency-Key, so a retried attempt (a lost answer) is one
// message at the provider. Retries, backoff and dead letters are the delivery worker's.
import type { Channel, Outgoing } from "./channels.js";

/** An SMS's text: the subject and the first alert lines, at most 480 characters (3 segments). */
export function smsText(n: Outgoing): string {
  const text = n.body.text ?? [n.subject, ...n.body.lines.slice(0, 3), ...(n.body.count > 3 ? [`… and ${n.body.count - 3} more`] : [])].join("\n");
  return text.length > 480 ? `${text.slice(0, 479)}…` : text;
}

export function smsChannel(o: { url: string; apiKey: string; from: string; timeoutMs: number }): Channel {
  const endpoint = new URL("/v1/messages", o.url).toString();
  return {
    name: "sms",
    async send(n, signal) {
      const res = await fetch(endpoint, {
        method: "POST",
        headers: { authorization: `Bearer ${o.apiKey}`, "content-type": "application/json", "idempotency-key": n.deliveryId },
        body: JSON.stringify({ to: n.target, from: o.from, text: smsText(n), reference: n.deliveryId }),
        signal: AbortSignal.any([signal, AbortSignal.timeout(o.timeoutMs)]),
        redirect: "error",
      });
      const answer = await res.text().catch(() => "");
      let parsed: { id?: unknown; error?: { code?: unknown } } = {};
      try {
        parsed = JSON.parse(answer) as typeof parsed;
      } catch {
        parsed = {};
      }
      if (!res.ok) throw new Error(`HTTP ${res.status}${typeof parsed.error?.code === "string" ? ` ${parsed.error.code}` : ""}`);
      return `HTTP ${res.status}${typeof parsed.id === "string" ? ` ${parsed.id}` : ""}`;
    },
  };
}
