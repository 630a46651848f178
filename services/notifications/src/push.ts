// Web Push (VAPID, web-push) to the admin web: browsers save their PushManager subscription
// (PushService, below); a rule with receivers.web_push sends each notification to every saved
// subscription through the web_push channel. A subscription the push service says is gone
// (404/410) is deleted and the attempt counts as done; retries, backoff and dead letters are
// the delivery worker's as for every channel.
import type { ConnectRouter } from "@connectrpc/connect";
import webpush from "web-push";
import { PushService } from "@adminkiosk/proto/adminkiosk/notifications/v1/push_pb";
import { failedPrecondition, invalidArgument, principalOf, type Pool } from "@adminkiosk/runtime";
import type { Channel, Outgoing } from "./channels.js";

export interface Vapid {
  publicKey: string;
  privateKey: string;
  subject: string;
}

/** What the service worker shows (web/public/sw.js): under 4 KB whatever the notification. */
export function pushPayload(n: Outgoing) {
  const b = n.body;
  return {
    title: n.subject.slice(0, 200),
    body: [...b.lines.slice(0, 3), ...(b.count > 3 ? [`… and ${b.count - 3} more`] : [])].join("\n").slice(0, 1000),
    status: b.status,
    severity: b.severity,
    ruleId: b.ruleId,
    ruleName: b.ruleName.slice(0, 200),
    count: b.count,
    alertIds: b.alertIds.slice(0, 20),
    url: "/alerts",
    deliveryId: n.deliveryId,
  };
}

export function webPushChannel(pool: Pool, vapid: Vapid, timeoutMs: number): Channel {
  return {
    name: "web_push",
    async send(n, signal) {
      const { rows } = await pool.query<{ p256dh: string; auth: string }>("SELECT p256dh, auth FROM push_subscriptions WHERE endpoint = $1", [n.target]);
      if (!rows[0]) return "subscription deleted since; not sent";
      // web-push encrypts (RFC 8291, aes128gcm) and signs (VAPID); the request goes out with
      // fetch, like the webhooks (the caller's abort signal, a time limit, no redirects).
      const request = webpush.generateRequestDetails({ endpoint: n.target, keys: { p256dh: rows[0].p256dh, auth: rows[0].auth } }, JSON.stringify(pushPayload(n)), {
        vapidDetails: vapid,
        TTL: 3600,
        urgency: n.body.severity === "critical" ? "high" : "normal",
      });
      const res = await fetch(request.endpoint, {
        method: request.method,
        headers: request.headers as Record<string, string>,
        body: request.body ?? undefined,
        signal: AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)]),
        redirect: "error",
      });
      await res.arrayBuffer().catch(() => undefined);
      if (res.status === 404 || res.status === 410) {
        await pool.query("DELETE FROM push_subscriptions WHERE endpoint = $1", [n.target]);
        return `HTTP ${res.status}: the subscription is gone (deleted)`;
      }
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      return `HTTP ${res.status}`;
    },
  };
}

/** The endpoints of every saved subscription (a rule's receivers.web_push). */
export async function pushEndpoints(q: Pick<Pool, "query">): Promise<string[]> {
  const { rows } = await q.query<{ endpoint: string }>("SELECT endpoint FROM push_subscriptions ORDER BY created_at LIMIT 1000");
  return rows.map((r) => r.endpoint);
}

/** How a delivery's push endpoint is shown in the delivery log (the path is a capability). */
export const shownEndpoint = (endpoint: string) => {
  try {
    return `${new URL(endpoint).origin}/…`;
  } catch {
    return "push endpoint";
  }
};

const loopback = new Set(["localhost", "127.0.0.1", "[::1]"]);
const base64url = (field: string, value: string, bytes: number) => {
  if (!/^[A-Za-z0-9_-]+={0,2}$/.test(value) || Buffer.from(value, "base64url").length !== bytes) throw invalidArgument(field, `must be ${bytes} bytes in base64url`);
  return value.replace(/=+$/, "");
};

/** Subscriptions kept per user (the oldest beyond go). */
const perUser = 20;

export function pushRoutes(deps: { pool: Pool; vapid?: Vapid }) {
  const { pool, vapid } = deps;
  return (router: ConnectRouter) =>
    router.service(PushService, {
      getPushConfig() {
        if (!vapid) throw failedPrecondition("Web Push is not configured (WEB_PUSH_VAPID_PUBLIC_KEY, WEB_PUSH_VAPID_PRIVATE_KEY)");
        return { vapidPublicKey: vapid.publicKey };
      },
      async savePushSubscription(req, ctx) {
        const p = principalOf(ctx);
        let url: URL | undefined;
        try {
          url = new URL(req.endpoint);
        } catch {
          url = undefined;
        }
        // https, as browsers' push services are; plain http only on this machine (a local push service).
        if (!url || req.endpoint.length > 2000 || !(url.protocol === "https:" || (url.protocol === "http:" && loopback.has(url.hostname))))
          throw invalidArgument("endpoint", "must be the https URL of the browser's push service");
        if (!req.keys) throw invalidArgument("keys", "is required");
        const p256dh = base64url("keys.p256dh", req.keys.p256dh, 65);
        const auth = base64url("keys.auth", req.keys.auth, 16);
        if (!vapid) throw failedPrecondition("Web Push is not configured (WEB_PUSH_VAPID_PUBLIC_KEY, WEB_PUSH_VAPID_PRIVATE_KEY)");
        const owner = p.kind === "user" ? p.userId : p.kind === "device" ? `device:${p.kioskId}` : `service:${p.service}`;
        await pool.query(
          `INSERT INTO push_subscriptions (endpoint, user_id, p256dh, auth) VALUES ($1, $2, $3, $4)
           ON CONFLICT (endpoint) DO UPDATE SET user_id = $2, p256dh = $3, auth = $4, created_at = now()`,
          [req.endpoint, owner, p256dh, auth],
        );
        await pool.query(
          `DELETE FROM push_subscriptions WHERE user_id = $1 AND endpoint NOT IN
             (SELECT endpoint FROM push_subscriptions WHERE user_id = $1 ORDER BY created_at DESC LIMIT $2)`,
          [owner, perUser],
        );
        return {};
      },
      async deletePushSubscription(req, ctx) {
        const p = principalOf(ctx);
        if (req.endpoint === "" || req.endpoint.length > 2000) throw invalidArgument("endpoint", "must be the subscription's endpoint");
        const owner = p.kind === "user" ? p.userId : p.kind === "device" ? `device:${p.kioskId}` : `service:${p.service}`;
        await pool.query("DELETE FROM push_subscriptions WHERE endpoint = $1 AND user_id = $2", [req.endpoint, owner]);
        return {};
      },
    });
}
