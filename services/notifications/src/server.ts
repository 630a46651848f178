// notifications' RPC handlers: validate, call the domain modules, map to the contract.
// Who may call each RPC is declared in proto/ and enforced by the runtime.
import type { ConnectRouter } from "@connectrpc/connect";
import { AlertService, AlertState, DeliveryService, RuleService, type WatchAlertsResponse } from "@adminkiosk/proto/adminkiosk/notifications/v1/notifications_pb";
import { create } from "@bufbuild/protobuf";
import { WatchAlertsResponseSchema } from "@adminkiosk/proto/adminkiosk/notifications/v1/notifications_pb";
import {
  cursorPatterns,
  decodePageToken,
  describePrincipal,
  encodePageToken,
  inTransaction,
  invalidArgument,
  pageSize,
  principalOf,
  requireUuid,
  type Pool,
} from "@adminkiosk/runtime";
import { alerts, stateNames, toAlert } from "./alerts.js";
import { channelNames, deliveries, deliveryStateNames } from "./deliveries.js";
import { listDevMail } from "./dev-mail.js";
import { dryRun } from "./dry-run.js";
import type { NotificationsMetrics } from "./metrics.js";
import { markSilenced, silences } from "./policy.js";
import { rules, validateRule, type AvailableChannels } from "./rules.js";
import type { AlertFeed } from "./watch.js";

export const notificationsServices = [RuleService, AlertService, DeliveryService];

export interface NotificationsDeps {
  pool: Pool;
  secretNames: ReadonlySet<string>;
  feed: AlertFeed;
  metrics: NotificationsMetrics;
  /** The optional channels this deployment has (SMS, Web Push). */
  available?: AvailableChannels;
  /** The development mailbox's HTTP API (npm start), which ListDevMail relays; unset in production. */
  devMailboxUrl?: string;
}

const id = (field: string, value: string) => requireUuid(field, value).toLowerCase();
const timeCursor = { time: cursorPatterns.timestamp, id: cursorPatterns.uuid };

function enumList<E extends number, N extends string>(field: string, values: E[], names: Partial<Record<E, N>>): N[] {
  return values.map((v, i) => {
    const name = names[v];
    if (!name) throw invalidArgument(`${field}[${i}]`, "is not a value this filter accepts");
    return name;
  });
}

export function notificationsRoutes(deps: NotificationsDeps) {
  const { pool, secretNames, feed, metrics } = deps;
  return (router: ConnectRouter) => {
    router.service(RuleService, {
      async createRule(req) {
        return { rule: await rules.insert(pool, validateRule(req.definition, secretNames, deps.available)) };
      },
      async getRule(req) {
        return { rule: await rules.get(pool, id("rule_id", req.ruleId)) };
      },
      async listRules(req) {
        const limit = pageSize("page_size", req.pageSize);
        const after = decodePageToken("page_token", req.pageToken, { time: cursorPatterns.timestamp, id: cursorPatterns.uuid });
        const page = await rules.list(pool, limit + 1, after ? { createdAt: after.time, ruleId: after.id } : undefined);
        const more = page.length > limit;
        const shown = page.slice(0, limit);
        const last = shown.at(-1);
        const nextPageToken =
          more && last ? encodePageToken({ time: last.cursorTime, id: last.rule.ruleId }) : "";
        return { rules: shown.map((r) => r.rule), nextPageToken };
      },
      async updateRule(req) {
        const ruleId = id("rule_id", req.ruleId);
        const valid = validateRule(req.definition, secretNames, deps.available);
        return { rule: await inTransaction(pool, (tx) => rules.update(tx, ruleId, valid, req.expectedVersion)) };
      },
      async dryRunRule(req) {
        return dryRun(pool, validateRule(req.definition, secretNames, deps.available));
      },
      async deleteRule(req) {
        const ruleId = id("rule_id", req.ruleId);
        await inTransaction(pool, async (tx) => {
          if (!(await rules.softDelete(tx, ruleId))) await rules.get(tx, ruleId);
          await alerts.closeForRule(tx, ruleId);
        });
        return {};
      },
    });

    router.service(AlertService, {
      async listAlerts(req) {
        const limit = pageSize("page_size", req.pageSize);
        const states = enumList("states", req.states, stateNames);
        const ruleId = req.ruleId ? id("rule_id", req.ruleId) : undefined;
        const after = decodePageToken("page_token", req.pageToken, timeCursor);
        const rows = await alerts.list(pool, { states, ruleId }, limit + 1, after ? { time: after.time, alertId: after.id } : undefined);
        const shown = rows.slice(0, limit);
        const last = shown.at(-1);
        const active = await silences.active(pool);
        return {
          alerts: shown.map((r) => markSilenced(toAlert(r), active)),
          nextPageToken: rows.length > limit && last ? encodePageToken({ time: last.sort_time, id: last.alert_id }) : "",
        };
      },
      async getAlert(req) {
        return { alert: markSilenced(toAlert(await alerts.get(pool, id("alert_id", req.alertId))), await silences.active(pool)) };
      },
      async acknowledgeAlert(req, ctx) {
        const alertId = id("alert_id", req.alertId);
        const by = describePrincipal(principalOf(ctx));
        const row = await inTransaction(pool, (tx) => alerts.acknowledge(tx, alertId, by));
        metrics.alerts.inc({ kind: "acknowledged" });
        return { alert: markSilenced(toAlert(row), await silences.active(pool)) };
      },
      async resolveAlert(req, ctx) {
        const alertId = id("alert_id", req.alertId);
        const by = describePrincipal(principalOf(ctx));
        const row = await inTransaction(pool, (tx) => alerts.resolve(tx, alertId, `resolved by ${by}`));
        metrics.alerts.inc({ kind: "resolved" });
        return { alert: markSilenced(toAlert(row), await silences.active(pool)) };
      },
      async *watchAlerts(_req, ctx): AsyncGenerator<WatchAlertsResponse> {
        // Follow first, then read the snapshot: a change between the two is not missed
        // (it may arrive twice; the alert's state says which is current).
        const changes = feed.follow(ctx.signal)[Symbol.asyncIterator]();
        const open = await alerts.open(pool);
        // Each alert marked with the silences matching it (read at most once a second per watch).
        let active = await silences.active(pool);
        let readAt = Date.now();
        yield create(WatchAlertsResponseSchema, { body: { case: "snapshot", value: { alerts: open.map((a) => markSilenced(toAlert(a), active)) } } });
        for (let r = await changes.next(); !r.done && !ctx.signal.aborted; r = await changes.next()) {
          if (r.value.state === AlertState.UNSPECIFIED) continue;
          if (Date.now() - readAt > 1000) [active, readAt] = [await silences.active(pool), Date.now()];
          yield create(WatchAlertsResponseSchema, { body: { case: "alert", value: markSilenced(r.value, active) } });
        }
      },
    });

    router.service(DeliveryService, {
      async listDevMail(req) {
        return listDevMail(deps.devMailboxUrl, pageSize("page_size", req.pageSize), req.to);
      },
      async listDeliveries(req) {
        const limit = pageSize("page_size", req.pageSize);
        const states = enumList("states", req.states, deliveryStateNames);
        const channel = req.channel ? channelNames[req.channel] : undefined;
        if (req.channel && !channel) throw invalidArgument("channel", "is not a channel");
        const ruleId = req.ruleId ? id("rule_id", req.ruleId) : undefined;
        const after = decodePageToken("page_token", req.pageToken, timeCursor);
        const rows = await deliveries.list(pool, { states, channel, ruleId }, limit + 1, after);
        const shown = rows.slice(0, limit);
        const last = shown.at(-1);
        return {
          deliveries: shown.map(deliveries.toDelivery),
          nextPageToken: rows.length > limit && last ? encodePageToken({ time: last.cursor_time, id: last.delivery_id }) : "",
        };
      },
    });
  };
}
