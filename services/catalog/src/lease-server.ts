// LeaseService's handlers (docs/offline.md): validate, scope a device to its own kiosk
// and to the offline policy, call the lease book. Who may call each RPC is declared in
// proto/ (leases.proto) and enforced by the runtime.
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type ConnectRouter, type HandlerContext } from "@connectrpc/connect";
import { LeaseService, LeaseState } from "@adminkiosk/proto/adminkiosk/catalog/v1/leases_pb";
import {
  cursorPatterns,
  decodePageToken,
  describePrincipal,
  encodePageToken,
  invalidArgument,
  kioskScope,
  pageSize,
  principalOf,
  requestInfo,
  requireKioskId,
  requireText,
  requireUuid,
} from "@adminkiosk/runtime";
import type { LeaseForecaster } from "./lease-forecast.js";
import { leaseStateNames, toLease, type LeaseBook, type LeasePolicy, type LoadedLease } from "./leases.js";
import { requireCount, requireSku } from "./rules.js";

export interface LeaseDeps {
  leases: LeaseBook;
  policy: LeasePolicy;
  defaultTtlSeconds: number;
  /** Sizes items from ai's forecast (forecast_hours); absent: every such item gets the fallback. */
  forecaster?: LeaseForecaster;
  forecastFallbackUnits?: number;
}

/** Hard limits for anyone (operators included). */
const limits = { itemLines: 50, quantity: 1000, seats: 100, ttlSeconds: 86_400, forecastHours: 48 };

export function leaseRoutes(deps: LeaseDeps) {
  const { leases, policy } = deps;
  const requireLeaseId = (field: string, value: string) => requireUuid(field, value).toLowerCase();
  /** A device sees only its own kiosk's leases: another's does not exist for it. */
  const visible = (ctx: HandlerContext, l: LoadedLease | undefined, leaseId: string): LoadedLease => {
    const p = principalOf(ctx);
    if (!l || (p.kind === "device" && p.kioskId !== l.row.kiosk_id)) throw new ConnectError(`lease ${leaseId} not found`, Code.NotFound);
    return l;
  };

  return (router: ConnectRouter) => {
    router.service(LeaseService, {
      async grantLease(req, ctx) {
        const p = principalOf(ctx);
        const device = p.kind === "device";
        // The kiosk first: a device asking for another kiosk is refused whatever else it sent.
        const kioskId = kioskScope(ctx, "kiosk_id", req.kioskId)!;
        const leaseId = requireLeaseId("lease_id", req.leaseId);
        if (req.items.length === 0 && req.seats.length === 0) throw invalidArgument("items", "a lease needs at least one item or seat");
        if (req.items.length > limits.itemLines) throw invalidArgument("items", `must hold at most ${limits.itemLines} lines`);
        if (req.seats.length > limits.seats) throw invalidArgument("seats", `must hold at most ${limits.seats} seats`);
        const forecastHours = req.forecastHours;
        if (forecastHours !== 0 && (forecastHours < 1 || forecastHours > limits.forecastHours)) throw invalidArgument("forecast_hours", `must be 0 or between 1 and ${limits.forecastHours}`);
        if (forecastHours !== 0 && req.items.length === 0) throw invalidArgument("items", "forecast_hours sizes items: name at least one SKU");
        const skus = new Set<string>();
        const items = req.items.map((item, i) => {
          const sku = requireSku(`items[${i}].sku`, item.sku);
          if (skus.has(sku)) throw invalidArgument(`items[${i}].sku`, `${sku} is listed twice; put the whole quantity on one line`);
          skus.add(sku);
          // Sized from the forecast: the quantity is a cap (0: the kiosk policy's per-SKU limit).
          if (forecastHours !== 0 && item.quantity === 0n) return { sku, quantity: BigInt(policy.maxUnitsPerSku) };
          const quantity = BigInt(requireCount(`items[${i}].quantity`, item.quantity, 1, limits.quantity));
          if (device && quantity > BigInt(policy.maxUnitsPerSku))
            throw new ConnectError(`items[${i}].quantity: a kiosk may lease at most ${policy.maxUnitsPerSku} units of a SKU (an operator may grant more)`, Code.PermissionDenied);
          return { sku, quantity };
        });
        const seatKeys = new Set<string>();
        const seats = req.seats.map((seat, i) => {
          const eventId = requireUuid(`seats[${i}].event_id`, seat.eventId).toLowerCase();
          const seatId = requireText(`seats[${i}].seat_id`, seat.seatId, { max: 50 });
          if (seatKeys.has(`${eventId}/${seatId}`)) throw invalidArgument(`seats[${i}].seat_id`, `${seatId} is listed twice`);
          seatKeys.add(`${eventId}/${seatId}`);
          return { eventId, seatId };
        });
        if (req.ttlSeconds !== 0 && (req.ttlSeconds < 60 || req.ttlSeconds > limits.ttlSeconds)) throw invalidArgument("ttl_seconds", `must be between 60 and ${limits.ttlSeconds}`);
        const ttlSeconds = req.ttlSeconds || deps.defaultTtlSeconds;
        if (device && ttlSeconds > policy.maxTtlSeconds)
          throw new ConnectError(`ttl_seconds: a kiosk may lease for at most ${policy.maxTtlSeconds} s (an operator may grant longer)`, Code.PermissionDenied);
        let granted: { sku: string; quantity: bigint; sizing?: string }[] = items;
        if (forecastHours !== 0) {
          // Each SKU's demand over the next forecast_hours at this kiosk, capped by the item and
          // by what is free now (a forecast never makes a grant fail for stock); 0 leaves it out.
          const existing = await leases.get(leaseId);
          if (existing) granted = existing.items.map((i) => ({ sku: i.sku, quantity: BigInt(i.quantity), sizing: i.sizing }));
          else {
            const fallback = BigInt(deps.forecastFallbackUnits ?? 0);
            const sized = await Promise.all(
              items.map(async (item) => {
                const f = deps.forecaster ? await deps.forecaster.size(kioskId, item.sku, forecastHours) : { units: undefined, sizing: "fallback: no ai connection" };
                const want = f.units === undefined ? fallback : BigInt(f.units);
                const free = await leases.available(kioskId, item.sku);
                const quantity = [want, item.quantity, free].reduce((a, b) => (b < a ? b : a));
                return { sku: item.sku, quantity: quantity > 0n ? quantity : 0n, sizing: f.sizing };
              }),
            );
            granted = sized.filter((i) => i.quantity > 0n);
            if (granted.length === 0 && seats.length === 0)
              throw new ConnectError(`items: the forecast for kiosk ${kioskId} over ${forecastHours} h (or the stock free there) leaves nothing to lease (${sized.map((i) => `${i.sku}: ${i.sizing}`).join("; ")})`, Code.FailedPrecondition);
          }
        }
        const lease = await leases.grant(
          {
            leaseId,
            kioskId,
            items: granted,
            seats,
            ttlSeconds,
            source: forecastHours !== 0 ? "forecast" : device ? "kiosk" : "operator",
            createdBy: describePrincipal(p),
            asked: forecastHours !== 0 ? { forecastHours, items } : undefined,
          },
          device ? policy : undefined,
        );
        if (lease.row.kiosk_id !== kioskId) throw new ConnectError(`lease_id: lease ${leaseId} belongs to another kiosk`, Code.PermissionDenied);
        return { lease: toLease(lease) };
      },

      async getLease(req, ctx) {
        const leaseId = requireLeaseId("lease_id", req.leaseId);
        return { lease: toLease(visible(ctx, await leases.get(leaseId), leaseId)) };
      },

      async listLeases(req, ctx) {
        const kioskId = kioskScope(ctx, "kiosk_id", req.kioskId, true);
        let state;
        if (req.state !== LeaseState.UNSPECIFIED) {
          state = leaseStateNames.get(req.state);
          if (!state) throw invalidArgument("state", "is not a lease state");
        }
        const limit = pageSize("page_size", req.pageSize, 50, 200);
        const cursor = decodePageToken("page_token", req.pageToken, { at: cursorPatterns.timestamp, id: cursorPatterns.uuid });
        const rows = await leases.list({ kioskId, state }, { limit: limit + 1, before: cursor ? { at: cursor.at, id: cursor.id } : undefined });
        const page = rows.slice(0, limit);
        const last = page.at(-1);
        return {
          leases: page.map(toLease),
          nextPageToken: rows.length > limit && last ? encodePageToken({ at: last.row.created_at.toISOString(), id: last.row.lease_id }) : "",
        };
      },

      async revokeLease(req, ctx) {
        const leaseId = requireLeaseId("lease_id", req.leaseId);
        const reason = requireText("reason", req.reason, { max: 200 });
        const lease = await leases.end(leaseId, "revoked", `revoked by ${describePrincipal(principalOf(ctx))}: ${reason}`, () => {});
        requestInfo(ctx).log.info({ leaseId, reason }, "lease revoked");
        return { lease: toLease(lease) };
      },

      async returnLease(req, ctx) {
        const leaseId = requireLeaseId("lease_id", req.leaseId);
        const p = principalOf(ctx);
        // The kiosk returning its lease (or its revoked lease) says it has synced what it sold: what is
        // unsold goes back, a revoked lease's seat quarantine ends. An operator cannot know that the kiosk
        // is not selling offline: their return of an active lease is a revocation (seats quarantined).
        const lease =
          p.kind === "device"
            ? await leases.end(leaseId, "returned", `returned by ${describePrincipal(p)}`, (l) => visible(ctx, l, leaseId), { releaseQuarantine: true })
            : await leases.end(leaseId, "revoked", `returned by ${describePrincipal(p)} (a revocation: the kiosk may still be selling offline)`, () => {});
        return { lease: toLease(lease) };
      },

      async commitLeaseSale(req) {
        const leaseId = requireLeaseId("lease_id", req.leaseId);
        const kioskId = requireKioskId("kiosk_id", req.kioskId);
        const saleId = requireUuid("sale_id", req.saleId).toLowerCase();
        if (!req.soldTime) throw invalidArgument("sold_time", "is required");
        const soldAt = timestampDate(req.soldTime);
        if (Number.isNaN(soldAt.getTime())) throw invalidArgument("sold_time", "is not a valid time");
        if (req.items.length === 0 && req.seats.length === 0) throw invalidArgument("items", "a sale needs at least one item or seat");
        if (req.items.length > limits.itemLines) throw invalidArgument("items", `must hold at most ${limits.itemLines} lines`);
        if (req.seats.length > limits.seats) throw invalidArgument("seats", `must hold at most ${limits.seats} seats`);
        const skus = new Set<string>();
        const items = req.items.map((item, i) => {
          const sku = requireSku(`items[${i}].sku`, item.sku);
          if (skus.has(sku)) throw invalidArgument(`items[${i}].sku`, `${sku} is listed twice`);
          skus.add(sku);
          return { sku, quantity: BigInt(requireCount(`items[${i}].quantity`, item.quantity, 1, limits.quantity)) };
        });
        const seatKeys = new Set<string>();
        const seats = req.seats.map((seat, i) => {
          const eventId = requireUuid(`seats[${i}].event_id`, seat.eventId).toLowerCase();
          const seatId = requireText(`seats[${i}].seat_id`, seat.seatId, { max: 50 });
          if (seatKeys.has(`${eventId}/${seatId}`)) throw invalidArgument(`seats[${i}].seat_id`, `${seatId} is listed twice`);
          seatKeys.add(`${eventId}/${seatId}`);
          return { eventId, seatId };
        });
        const taken = await leases.commitSale({ leaseId, kioskId, saleId, soldAt, items, seats });
        return {
          items: taken.items.map((i) => ({ sku: i.sku, quantity: BigInt(i.quantity), sold: BigInt(i.quantity), unitPriceMinor: BigInt(i.unit_price_minor), currency: i.currency, taxRateBasisPoints: i.tax_rate_basis_points })),
          seats: taken.seats.map((s) => ({ eventId: s.event_id, seatId: s.seat_id, tierId: s.tier_id, priceMinor: BigInt(s.price_minor), currency: s.currency, sold: true })),
          totalMinor: BigInt(taken.total_minor),
          currency: taken.currency,
          leaseState: taken.lease_state === "revoked" ? LeaseState.REVOKED : LeaseState.ACTIVE,
          leaseEndReason: taken.end_reason ?? "",
          shortfalls: (taken.shortfalls ?? []).map((x) => ({ sku: x.sku, quantity: BigInt(x.quantity), onHand: BigInt(x.on_hand), reserved: BigInt(x.reserved) })),
        };
      },
    });
  };
}

export const leaseTtlLimit = limits.ttlSeconds;
