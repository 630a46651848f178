// The alert policy's RPC handlers (policy.proto): silences, inhibit rules, people's
// subscriptions and the on-call tiers. Who may call each is declared in the proto.
import type { ConnectRouter } from "@connectrpc/connect";
import { InhibitRuleService, SilenceService, SubscriptionService } from "@adminkiosk/proto/adminkiosk/notifications/v1/policy_pb";
import { cursorPatterns, decodePageToken, describePrincipal, encodePageToken, inTransaction, invalid, pageSize, principalOf, requireUuid, type Pool } from "@adminkiosk/runtime";
import { dateOf, inhibitRules, maxTierLevel, silences, silenceTimes, subscriptions, tiers, toInhibitRule, toSilence, validateInhibitRule, validateMatchers, validateSubscription, validateTier, type PersonalAvailability } from "./policy.js";

export const policyServices = [SilenceService, InhibitRuleService, SubscriptionService];

export interface PolicyDeps {
  pool: Pool;
  secretNames: ReadonlySet<string>;
  /** The optional channels this deployment has (a route to a missing one is refused). */
  available?: PersonalAvailability;
}

const id = (field: string, value: string) => requireUuid(field, value).toLowerCase();

/** The signed-in person calling (these RPCs admit people only). */
function personOf(ctx: Parameters<typeof principalOf>[0]): string {
  const p = principalOf(ctx);
  if (p.kind !== "user") throw invalid("principal", "must be a signed-in person");
  return p.userId;
}

export function policyRoutes({ pool, secretNames, available }: PolicyDeps) {
  return (router: ConnectRouter) => {
    router.service(SilenceService, {
      async createSilence(req, ctx) {
        const matchers = validateMatchers("matchers", req.matchers);
        const { start, end } = silenceTimes(dateOf(req.startTime), dateOf(req.endTime));
        const comment = req.comment.trim();
        if (comment.length === 0 || comment.length > 500 || /[\u0000-\u001f\u007f]/.test(comment)) throw invalid("comment", "must be 1-500 characters without control characters");
        const by = describePrincipal(principalOf(ctx));
        return { silence: await inTransaction(pool, (tx) => silences.create(tx, { matchers, start, end, comment, by })) };
      },
      async listSilences(req) {
        const limit = pageSize("page_size", req.pageSize);
        const after = decodePageToken("page_token", req.pageToken, { time: cursorPatterns.timestamp, id: cursorPatterns.uuid });
        const rows = await silences.list(pool, req.includeExpired, limit + 1, after);
        const shown = rows.slice(0, limit);
        const last = shown.at(-1);
        return { silences: shown.map(toSilence), nextPageToken: rows.length > limit && last ? encodePageToken({ time: last.ends_key, id: last.silence_id }) : "" };
      },
      async expireSilence(req, ctx) {
        const silenceId = id("silence_id", req.silenceId);
        const by = describePrincipal(principalOf(ctx));
        return { silence: await inTransaction(pool, (tx) => silences.expire(tx, silenceId, by)) };
      },
    });

    router.service(InhibitRuleService, {
      async createInhibitRule(req, ctx) {
        const valid = validateInhibitRule(req.inhibitRule);
        return { inhibitRule: await inhibitRules.create(pool, valid, describePrincipal(principalOf(ctx))) };
      },
      async listInhibitRules() {
        return { inhibitRules: (await inhibitRules.list(pool)).map(toInhibitRule) };
      },
      async deleteInhibitRule(req) {
        await inhibitRules.delete(pool, id("inhibit_rule_id", req.inhibitRuleId));
        return {};
      },
    });

    router.service(SubscriptionService, {
      async getMySubscription(_req, ctx) {
        return { subscription: await subscriptions.get(pool, personOf(ctx)) };
      },
      async setMySubscription(req, ctx) {
        const userId = personOf(ctx);
        return { subscription: await subscriptions.set(pool, validateSubscription(req.subscription, userId, secretNames, available)) };
      },
      async listOnCallTiers() {
        return { tiers: await tiers.list(pool) };
      },
      async setOnCallTier(req) {
        return { tier: await tiers.set(pool, validateTier(req.tier, secretNames, available)) };
      },
      async deleteOnCallTier(req) {
        if (!Number.isInteger(req.level) || req.level < 1 || req.level > maxTierLevel) throw invalid("level", `must be 1 … ${maxTierLevel}`);
        await tiers.delete(pool, req.level);
        return {};
      },
    });
  };
}
