// Deliveries: one row per notification and target, the audit log of every attempt
// (channel, target, result, attempts) and the dead-letter list (state dead_lettered).
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { create } from "@bufbuild/protobuf";
import { Channel, DeliverySchema, DeliveryState, type Delivery } from "@adminkiosk/proto/adminkiosk/notifications/v1/notifications_pb";
import type { Pool, PoolClient } from "@adminkiosk/runtime";
import type { NotificationBody } from "./channels.js";
import { shownEndpoint } from "./push.js";

export interface DeliveryRow {
  delivery_id: string;
  notification_id: string;
  /** null for a buyer's receipt. */
  rule_id: string | null;
  group_id: string;
  channel: "email" | "webhook" | "sms" | "web_push";
  target: string;
  secret_name: string;
  status: "firing" | "resolved" | "receipt" | "back_in_stock";
  /** A buyer's receipt: its order. */
  order_id: string | null;
  alert_count: number;
  subject: string;
  body: NotificationBody;
  state: "pending" | "delivered" | "dead_lettered" | "suppressed";
  /** 'rule', 'user:<id>', 'tier:<n>'. */
  recipient: string;
  attempts: number;
  last_result: string;
  created_at: Date;
  delivered_at: Date | null;
  cursor_time: string;
}

const channelOf = { email: Channel.EMAIL, webhook: Channel.WEBHOOK, sms: Channel.SMS, web_push: Channel.WEB_PUSH };
const stateOf = { pending: DeliveryState.PENDING, delivered: DeliveryState.DELIVERED, dead_lettered: DeliveryState.DEAD_LETTERED, suppressed: DeliveryState.SUPPRESSED };
export const channelNames: Partial<Record<Channel, DeliveryRow["channel"]>> = {
  [Channel.EMAIL]: "email",
  [Channel.WEBHOOK]: "webhook",
  [Channel.SMS]: "sms",
  [Channel.WEB_PUSH]: "web_push",
};
export const deliveryStateNames: Partial<Record<DeliveryState, DeliveryRow["state"]>> = {
  [DeliveryState.PENDING]: "pending",
  [DeliveryState.DELIVERED]: "delivered",
  [DeliveryState.DEAD_LETTERED]: "dead_lettered",
  [DeliveryState.SUPPRESSED]: "suppressed",
};

const columns = `to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS cursor_time, delivery_id, notification_id, rule_id, group_id, channel, target, secret_name, status, order_id, alert_count, subject, body, state, recipient, attempts, last_result, created_at, delivered_at`;

export const deliveries = {
  toDelivery(row: DeliveryRow): Delivery {
    return create(DeliverySchema, {
      deliveryId: row.delivery_id,
      ruleId: row.rule_id ?? "",
      orderId: row.order_id ?? "",
      groupId: row.group_id,
      channel: channelOf[row.channel],
      // A push endpoint's path is a capability: shown by its origin only.
      target: row.channel === "web_push" ? shownEndpoint(row.target) : row.target,
      status: row.status,
      alertCount: row.alert_count,
      subject: row.subject,
      state: stateOf[row.state],
      attempts: row.attempts,
      lastResult: row.last_result,
      createTime: timestampFromDate(row.created_at),
      deliverTime: row.delivered_at ? timestampFromDate(row.delivered_at) : undefined,
      recipient: row.recipient,
    });
  },
  async insert(
    tx: PoolClient,
    d: {
      notificationId: string;
      ruleId: string;
      groupId: string;
      channel: DeliveryRow["channel"];
      target: string;
      secretName: string;
      status: string;
      count: number;
      subject: string;
      body: NotificationBody;
      /** Whom it is for: 'rule' (default), 'user:<id>', 'tier:<n>'. */
      recipient?: string;
      /** Not to be sent (a person's quiet hours): recorded as suppressed, with this as its result. */
      suppressed?: string;
    },
  ) {
    await tx.query(
      `INSERT INTO deliveries (notification_id, rule_id, group_id, channel, target, secret_name, status, alert_count, subject, body, state, recipient, last_result)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
      [d.notificationId, d.ruleId, d.groupId, d.channel, d.target, d.secretName, d.status, d.count, d.subject, JSON.stringify(d.body), d.suppressed ? "suppressed" : "pending", d.recipient ?? "rule", d.suppressed ?? ""],
    );
  },
  /** Claims due deliveries for one attempt each: attempts + 1 and a lease, committed before sending. */
  async claimDue(pool: Pool, limit: number, leaseMs: number): Promise<DeliveryRow[]> {
    const { rows } = await pool.query<DeliveryRow>(
      `UPDATE deliveries SET attempts = attempts + 1, next_attempt_at = now() + make_interval(secs => $2::double precision / 1000)
       WHERE delivery_id IN (SELECT delivery_id FROM deliveries WHERE state = 'pending' AND next_attempt_at <= now()
                             ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED)
       RETURNING ${columns}`,
      [limit, leaseMs],
    );
    return rows;
  },
  async finish(tx: PoolClient, deliveryId: string, outcome: "delivered" | "dead_lettered" | "retry", result: string, retryInMs: number): Promise<DeliveryRow | undefined> {
    const { rows } = await tx.query<DeliveryRow>(
      outcome === "retry"
        ? `UPDATE deliveries SET last_result = $2, next_attempt_at = now() + make_interval(secs => $3::double precision / 1000) WHERE delivery_id = $1 AND state = 'pending' RETURNING ${columns}`
        : `UPDATE deliveries SET last_result = $2, state = $3, delivered_at = CASE WHEN $3 = 'delivered' THEN now() END WHERE delivery_id = $1 AND state = 'pending' RETURNING ${columns}`,
      [deliveryId, result, outcome === "retry" ? retryInMs : outcome],
    );
    return rows[0];
  },
  async list(pool: Pool, filter: { states: string[]; channel?: string; ruleId?: string }, limit: number, after?: { time: string; id: string }): Promise<DeliveryRow[]> {
    const { rows } = await pool.query<DeliveryRow>(
      `SELECT ${columns} FROM deliveries
       WHERE (cardinality($1::text[]) = 0 OR state = ANY($1)) AND ($2::text IS NULL OR channel = $2) AND ($3::uuid IS NULL OR rule_id = $3)
         AND ($4::timestamptz IS NULL OR (created_at, delivery_id) < ($4, $5::uuid))
       ORDER BY created_at DESC, delivery_id DESC LIMIT $6`,
      [filter.states, filter.channel ?? null, filter.ruleId ?? null, after?.time ?? null, after?.id ?? null, limit],
    );
    return rows;
  },
};
