// The channels a notification goes out on, behind one interface: email over SMTP
// (nodemailer), signed webhooks with a Slack-compatible payload, SMS through the SMS
// provider (sms.ts) and Web Push (push.ts). The in-app channel
// is WatchAlerts (server.ts), fed by the alert events. Retries, backoff and dead
// letters are the delivery worker's (deliveries.ts), the same for every channel.
import nodemailer from "nodemailer";
import { signatureFor } from "@adminkiosk/runtime";

/** What a channel sends: one grouped notification to one target. */
export interface Outgoing {
  deliveryId: string;
  target: string;
  secretName: string;
  subject: string;
  body: NotificationBody;
}

export interface NotificationBody {
  /** "receipt": a buyer's receipt (receipts.ts); "back_in_stock": a buyer's back-in-stock message (customers-events.ts); their whole text in `text`. */
  status: "firing" | "resolved" | "receipt" | "back_in_stock";
  ruleId: string;
  ruleName: string;
  severity: string;
  groupId: string;
  count: number;
  /** One line per alert (at most 50; `count` says how many there are). */
  lines: string[];
  alertIds: string[];
  /** A prepared text (a buyer's receipt) sent instead of the alert lines. */
  text?: string;
}

export interface Channel {
  readonly name: "email" | "webhook" | "sms" | "web_push";
  /** Sends once; resolves with the receiver's answer, throws when it failed. */
  send(n: Outgoing, signal: AbortSignal): Promise<string>;
  close?(): void;
}

export function renderText(b: NotificationBody): string {
  if (b.text !== undefined) return b.text;
  const more = b.count > b.lines.length ? `\n… and ${b.count - b.lines.length} more` : "";
  return `${b.status === "firing" ? "FIRING" : "RESOLVED"}: ${b.ruleName} (${b.severity}) — ${b.count} alert${b.count === 1 ? "" : "s"}${b.groupId ? ` in group ${b.groupId}` : ""}\n\n${b.lines.join("\n")}${more}\n`;
}

export function emailChannel(smtpUrl: string, from: string, timeoutMs: number): Channel {
  const transport = nodemailer.createTransport({ url: smtpUrl, connectionTimeout: timeoutMs, greetingTimeout: timeoutMs, socketTimeout: timeoutMs });
  return {
    name: "email",
    async send(n) {
      const info = await transport.sendMail({
        from,
        to: n.target,
        subject: n.subject,
        text: renderText(n.body),
        headers: { "X-AdminKiosk-Delivery": n.deliveryId, ...(n.body.ruleId ? { "X-AdminKiosk-Rule": n.body.ruleId } : {}) },
      });
      return (info.response ?? "sent").slice(0, 200);
    },
    close: () => transport.close(),
  };
}

/** The header notifications signs its webhooks with (the runtime's scheme: t=<unix seconds>,v1=<hex>). */
export const webhookSignatureHeader = "x-adminkiosk-signature";

/** The webhook body: Slack's incoming-webhook shape (text + attachments) plus the alert details. */
export function webhookPayload(n: Outgoing) {
  const b = n.body;
  return {
    text: n.subject,
    attachments: [{ color: b.status === "resolved" ? "good" : b.severity === "critical" ? "danger" : "warning", title: n.subject, text: renderText(b), fallback: n.subject }],
    delivery_id: n.deliveryId,
    status: b.status,
    rule_id: b.ruleId,
    rule_name: b.ruleName,
    severity: b.severity,
    group_id: b.groupId,
    count: b.count,
    alert_ids: b.alertIds,
  };
}

export function webhookChannel(secrets: ReadonlyMap<string, string>, timeoutMs: number): Channel {
  return {
    name: "webhook",
    async send(n, signal) {
      const secret = secrets.get(n.secretName);
      if (!secret) throw new Error(`no webhook secret named ${n.secretName}`);
      const body = JSON.stringify(webhookPayload(n));
      const res = await fetch(n.target, {
        method: "POST",
        headers: { "content-type": "application/json", [webhookSignatureHeader]: signatureFor([secret], body), "x-adminkiosk-delivery": n.deliveryId },
        body,
        signal: AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)]),
        redirect: "error",
      });
      await res.arrayBuffer().catch(() => undefined);
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      return `HTTP ${res.status}`;
    },
  };
}
