// OfflineSaleService's handlers (docs/offline.md): ticket-signing delegations to kiosks,
// the sync of offline sales (device-scoped: a kiosk syncs its own sales, against its own
// leases only), and the operators' conflict queue. Who may call each RPC is declared in
// proto/ (offline.proto) and enforced by the runtime.
import { timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type ConnectRouter } from "@connectrpc/connect";
import { LeaseState } from "@adminkiosk/proto/adminkiosk/catalog/v1/leases_pb";
import { ConflictResolution, ConflictState, OfflineSaleOutcome, OfflineSaleSchema, OfflineSaleService } from "@adminkiosk/proto/adminkiosk/orders/v1/offline_pb";
import {
  callOptions,
  cursorPatterns,
  decodePageToken,
  describePrincipal,
  encodePageToken,
  invalidArgument,
  pageSize,
  principalOf,
  requestHash,
  requireIdempotencyKey,
  requireKioskId,
  requireText,
  requireUuid,
} from "@adminkiosk/runtime";
import { toOrder } from "./messages.js";
import { applyOfflineSale, CannotResolve, offlineStore, rejectOfflineSale, resolutionNames, resolveConflict, ResolvedOtherwise, toConflict, type OfflineDeps } from "./offline.js";
import { orders } from "./store.js";
import { verifyOfflineTicket } from "./tickets.js";

export interface OfflineServerDeps extends OfflineDeps {
  cardFloorLimitMinor: number;
  delegationMaxSeconds: number;
}

const skuRule = { max: 64, pattern: /^[A-Za-z0-9_.-]+$/, patternHint: "may contain only letters, digits, '_', '.' and '-'" };
const idRule = { max: 128, pattern: /^[A-Za-z0-9_.:-]+$/, patternHint: "may contain only letters, digits, '_', '.', ':' and '-'" };
const paymentMethodRule = { max: 255, pattern: /^[A-Za-z0-9_-]+$/, patternHint: "may contain only letters, digits, '_' and '-'" };
const idempotencyKeyRule = /^[\x21-\x7e]{1,255}$/;
const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const publicKeyRule = { max: 43, pattern: /^[A-Za-z0-9_-]{43}$/, patternHint: "must be an Ed25519 public key: 32 bytes, base64url without padding (43 characters)" };

export function offlineRoutes(deps: OfflineServerDeps) {
  const { pool, upstream, signer } = deps;
  const asOrders = callOptions(undefined);

  return (router: ConnectRouter) =>
    router.service(OfflineSaleService, {
      async issueTicketDelegation(req, ctx) {
        const p = principalOf(ctx);
        if (p.kind !== "device") throw new ConnectError("delegations are issued to kiosks", Code.PermissionDenied);
        const leaseId = requireUuid("lease_id", req.leaseId).toLowerCase();
        const x = requireText("public_key", req.publicKey, publicKeyRule);
        if (Buffer.from(x, "base64url").length !== 32 || Buffer.from(x, "base64url").toString("base64url") !== x) throw invalidArgument("public_key", publicKeyRule.patternHint);
        // Read as orders: a kiosk's credential never reaches catalog from here.
        const { lease } = await upstream.leases.getLease({ leaseId }, asOrders).catch((err: unknown) => {
          const e = ConnectError.from(err);
          throw e.code === Code.NotFound ? new ConnectError(`lease_id: lease ${leaseId} not found`, Code.NotFound) : e;
        });
        if (!lease || lease.kioskId !== p.kioskId) throw new ConnectError(`lease_id: lease ${leaseId} belongs to another kiosk`, Code.PermissionDenied);
        if (lease.state !== LeaseState.ACTIVE) throw new ConnectError(`lease_id: lease ${leaseId} is ${LeaseState[lease.state].toLowerCase()}`, Code.FailedPrecondition);
        const now = Math.floor(Date.now() / 1000);
        const leaseEnd = lease.expireTime ? Math.floor(timestampDate(lease.expireTime).getTime() / 1000) : now;
        if (leaseEnd <= now) throw new ConnectError(`lease_id: lease ${leaseId} has expired`, Code.FailedPrecondition);
        const exp = Math.min(leaseEnd, now + deps.delegationMaxSeconds);
        const currency = lease.items[0]?.currency ?? lease.seats[0]?.currency ?? "";
        const delegation = await signer.signDelegation({
          sub: p.kioskId,
          lease: leaseId,
          jwk: { kty: "OKP", crv: "Ed25519", x },
          seats: lease.seats.filter((s) => !s.sold).map((s) => `${s.eventId}/${s.seatId}`),
          iat: now,
          exp,
          floor: deps.cardFloorLimitMinor,
          cur: currency,
        });
        return { delegation, expireTime: timestampFromDate(new Date(exp * 1000)), cardFloorLimitMinor: BigInt(deps.cardFloorLimitMinor), currency, jwksJson: signer.jwksJson };
      },

      async syncOfflineSales(req, ctx) {
        const p = principalOf(ctx);
        if (p.kind !== "device") throw new ConnectError("offline sales are synced by kiosks", Code.PermissionDenied);
        const kioskId = p.kioskId;
        if (req.sales.length === 0) throw invalidArgument("sales", "must hold at least one sale");
        if (req.sales.length > 100) throw invalidArgument("sales", "must hold at most 100 sales a call");
        // reject_invalid: a sale that can never be applied is answered REJECTED (and recorded
        // when it can be) instead of failing the call, so one bad sale does not block the
        // kiosk's queue. Errors that may pass (an upstream unreachable) still fail the call.
        const lenient = req.rejectInvalid;
        const permanent = (err: unknown) => {
          const e = ConnectError.from(err);
          return [Code.InvalidArgument, Code.NotFound, Code.PermissionDenied].includes(e.code) ? e : undefined;
        };
        const keys = new Set<string>();
        type Checked = { sale: (typeof req.sales)[number]; i: number; leaseId: string; soldAt: Date; hash: Buffer; rejected?: ConnectError };
        const checked: Checked[] = await Promise.all(
          req.sales.map(async (sale, i): Promise<Checked> => {
            const hash = requestHash("SyncOfflineSale", OfflineSaleSchema, sale);
            try {
              return { ...(await checkSale(sale, i)), i, hash };
            } catch (err) {
              const rejected = lenient ? permanent(err) : undefined;
              if (!rejected) throw err;
              return { sale, i, leaseId: "", soldAt: new Date(NaN), hash, rejected };
            }
          }),
        );
        async function checkSale(sale: (typeof req.sales)[number], i: number) {
          const f = `sales[${i}]`;
          requireIdempotencyKey(sale.idempotencyKey, `${f}.idempotency_key`);
          if (keys.has(sale.idempotencyKey)) throw invalidArgument(`${f}.idempotency_key`, "is listed twice in this sync");
          keys.add(sale.idempotencyKey);
          const leaseId = requireUuid(`${f}.lease_id`, sale.leaseId).toLowerCase();
          if (!sale.soldTime) throw invalidArgument(`${f}.sold_time`, "is required");
          const soldAt = timestampDate(sale.soldTime);
          if (Number.isNaN(soldAt.getTime()) || soldAt.getTime() > Date.now() + 5 * 60_000) throw invalidArgument(`${f}.sold_time`, "must be a time, not in the future");
          if (sale.items.length + sale.seats.length === 0) throw invalidArgument(`${f}.items`, "a sale needs at least one item or seat");
          if (sale.items.length > 50) throw invalidArgument(`${f}.items`, "at most 50 lines");
          if (sale.seats.length > 20) throw invalidArgument(`${f}.seats`, "at most 20 seats");
          sale.items.forEach((item, j) => {
            requireText(`${f}.items[${j}].sku`, item.sku, skuRule);
            if (item.quantity < 1n || item.quantity > 1000n) throw invalidArgument(`${f}.items[${j}].quantity`, "must be between 1 and 1000");
          });
          sale.seats.forEach((seat, j) => {
            requireUuid(`${f}.seats[${j}].event_id`, seat.eventId);
            requireText(`${f}.seats[${j}].seat_id`, seat.seatId, idRule);
          });
          requireText(`${f}.payment_method`, sale.paymentMethod, paymentMethodRule);
          if (sale.totalMinor < 0n) throw invalidArgument(`${f}.total_minor`, "must not be negative");
          // One provisional ticket per seat, each signed by this kiosk's delegated key for that seat of this lease.
          if (sale.tickets.length !== sale.seats.length) throw invalidArgument(`${f}.tickets`, `must hold one ticket per seat (${sale.seats.length})`);
          await Promise.all(
            sale.tickets.map(async (t, j) => {
              const seat = sale.seats[j]!;
              let claims;
              try {
                claims = await verifyOfflineTicket(t.qrPayload, signer.jwksJson);
              } catch (err) {
                throw invalidArgument(`${f}.tickets[${j}].qr_payload`, `does not verify: ${(err as Error).message}`);
              }
              if (claims.kid !== kioskId || claims.lease !== leaseId || claims.ev !== seat.eventId.toLowerCase() || claims.seat !== seat.seatId || claims.tid !== t.ticketId)
                throw invalidArgument(`${f}.tickets[${j}].qr_payload`, `is not this kiosk's ticket for seats[${j}] of lease ${leaseId}`);
            }),
          );
          return { sale, leaseId, soldAt };
        }
        // A kiosk syncs against its own leases only: another kiosk's lease refuses the whole call
        // (or, lenient, that sale), before anything is applied.
        const leaseIds = [...new Set(checked.filter((c) => !c.rejected).map((c) => c.leaseId))];
        const owners = new Map<string, string>();
        await Promise.all(
          leaseIds.map(async (id) => {
            try {
              owners.set(id, (await upstream.leases.getLease({ leaseId: id }, asOrders)).lease?.kioskId ?? "");
            } catch (err) {
              if (ConnectError.from(err).code !== Code.NotFound) throw err;
            }
          }),
        );
        for (const c of checked) {
          if (c.rejected) continue;
          const owner = owners.get(c.leaseId);
          let refusal: ConnectError | undefined;
          if (owner === undefined) refusal = new ConnectError(`sales[${c.i}].lease_id: lease ${c.leaseId} not found`, Code.NotFound);
          else if (owner !== p.kioskId) refusal = new ConnectError(`sales[${c.i}].lease_id: lease ${c.leaseId} belongs to another kiosk`, Code.PermissionDenied);
          if (refusal && !lenient) throw refusal;
          c.rejected = refusal;
        }
        const call = callOptions(ctx);
        const results = [];
        const reject = async (c: Checked, why: ConnectError) => {
          const { sale } = c;
          const soldAt = sale.soldTime ? timestampDate(sale.soldTime) : undefined;
          const r = await rejectOfflineSale(deps, {
            kioskId: p.kioskId,
            idempotencyKey: idempotencyKeyRule.test(sale.idempotencyKey) ? sale.idempotencyKey : undefined,
            requestHash: c.hash,
            leaseId: uuidPattern.test(sale.leaseId) ? sale.leaseId.toLowerCase() : null,
            soldAt: soldAt && !Number.isNaN(soldAt.getTime()) ? soldAt : undefined,
            paymentMethod: sale.paymentMethod,
            kioskTotalMinor: sale.totalMinor,
            currency: sale.currency,
            tickets: sale.tickets.map((t) => ({ ticket_id: t.ticketId, event_id: t.eventId, seat_id: t.seatId, qr_payload: t.qrPayload })),
            reason: why.rawMessage,
          });
          return { idempotencyKey: sale.idempotencyKey, outcome: OfflineSaleOutcome.REJECTED, order: r?.order, conflictId: r?.conflictId ?? "", rejection: why.rawMessage };
        };
        // In the order sold, one after another: a later sale of the same lease sees the earlier one's effect.
        for (const c of checked) {
          if (c.rejected) {
            results.push(await reject(c, c.rejected));
            continue;
          }
          let r;
          try {
            r = await applyOfflineSale(deps, {
              kioskId: p.kioskId,
              idempotencyKey: c.sale.idempotencyKey,
              keyField: `sales[${c.i}].idempotency_key`,
              requestHash: c.hash,
              leaseId: c.leaseId,
              soldAt: c.soldAt,
              items: c.sale.items.map((x) => ({ sku: x.sku, quantity: x.quantity })),
              seats: c.sale.seats.map((s) => ({ eventId: s.eventId.toLowerCase(), seatId: s.seatId })),
              paymentMethod: c.sale.paymentMethod,
              kioskTotalMinor: c.sale.totalMinor,
              currency: c.sale.currency,
              tickets: c.sale.tickets.map((t) => ({ ticket_id: t.ticketId, event_id: t.eventId, seat_id: t.seatId, qr_payload: t.qrPayload })),
              call,
            });
          } catch (err) {
            // The key already names another sale: never applicable (not recordable under that key either).
            const why = lenient ? permanent(err) : undefined;
            if (!why) throw err;
            results.push(await reject(c, why));
            continue;
          }
          results.push({
            idempotencyKey: c.sale.idempotencyKey,
            outcome: r.conflictId ? OfflineSaleOutcome.CONFLICT : OfflineSaleOutcome.RECORDED,
            order: r.order,
            conflictId: r.conflictId ?? "",
          });
        }
        return { results };
      },

      async listOfflineSales(req) {
        const kioskId = req.kioskId === "" ? undefined : requireKioskId("kiosk_id", req.kioskId);
        const limit = pageSize("page_size", req.pageSize, 50, 200);
        const cursor = decodePageToken("page_token", req.pageToken, { at: cursorPatterns.timestamp, id: cursorPatterns.uuid });
        const rows = await offlineStore.sales(pool, { kioskId }, { limit: limit + 1, before: cursor ? { at: cursor.at, id: cursor.id } : undefined });
        const page = rows.slice(0, limit);
        const ids = page.map((r) => r.order_id);
        const [heads, lines, tickets] = await Promise.all([
          pool.query<Parameters<typeof toOrder>[0]["row"]>("SELECT * FROM orders WHERE id = ANY($1::uuid[])", [ids]),
          orders.linesOf(pool, ids),
          orders.ticketsOf(pool, ids),
        ]);
        const byId = new Map(heads.rows.map((r) => [r.id, r]));
        const last = page.at(-1);
        return {
          sales: page.map((s) => ({
            order: toOrder({ row: byId.get(s.order_id)!, lines: lines.filter((l) => l.order_id === s.order_id), tickets: tickets.filter((t) => t.order_id === s.order_id) }),
            leaseId: s.lease_id ?? "",
            soldTime: timestampFromDate(s.sold_at),
            paymentMethod: s.payment_method,
            syncTime: timestampFromDate(s.synced_at),
          })),
          nextPageToken: rows.length > limit && last ? encodePageToken({ at: last.synced_at.toISOString(), id: last.order_id }) : "",
        };
      },

      async listOfflineConflicts(req) {
        const kioskId = req.kioskId === "" ? undefined : requireKioskId("kiosk_id", req.kioskId);
        let state: "open" | "resolved" | undefined;
        if (req.state === ConflictState.OPEN) state = "open";
        else if (req.state === ConflictState.RESOLVED) state = "resolved";
        else if (req.state !== ConflictState.UNSPECIFIED) throw invalidArgument("state", "is not a conflict state");
        const limit = pageSize("page_size", req.pageSize, 50, 200);
        const cursor = decodePageToken("page_token", req.pageToken, { at: cursorPatterns.timestamp, id: cursorPatterns.uuid });
        const rows = await offlineStore.conflicts(pool, { kioskId, state }, { limit: limit + 1, before: cursor ? { at: cursor.at, id: cursor.id } : undefined });
        const page = rows.slice(0, limit);
        const last = page.at(-1);
        return { conflicts: page.map(toConflict), nextPageToken: rows.length > limit && last ? encodePageToken({ at: last.created_at.toISOString(), id: last.id }) : "" };
      },

      async resolveOfflineConflict(req, ctx) {
        const id = requireUuid("conflict_id", req.conflictId).toLowerCase();
        const resolution = resolutionNames.get(req.resolution);
        if (!resolution || req.resolution === ConflictResolution.UNSPECIFIED) throw invalidArgument("resolution", "must be REFUNDED, WRITTEN_OFF or ACCEPTED");
        const note = requireText("note", req.note, { max: 500 });
        try {
          const c = await resolveConflict(pool, id, resolution, note, describePrincipal(principalOf(ctx)));
          if (!c) throw new ConnectError(`conflict ${id} not found`, Code.NotFound);
          return { conflict: toConflict(c) };
        } catch (err) {
          if (err instanceof ResolvedOtherwise || err instanceof CannotResolve) throw new ConnectError(`resolution: ${err.message}`, Code.FailedPrecondition);
          throw err;
        }
      },
    });
}
