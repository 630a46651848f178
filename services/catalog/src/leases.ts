// Leases (docs/offline.md): units and seats a kiosk may sell without asking, offline
// included. They are held the way reservations hold them — units in stock.reserved,
// seats 'held' with reservation_id = lease_id as the fencing token — so nothing else can
// sell them; sales synced through orders commit against the lease (CommitLeaseSale, once
// per sale id); the unsold rest goes back when the lease is returned, revoked, or its
// hold_until passes. Writers lock in the reservations' order: lease row, stock rows by
// (kiosk, SKU), seats by (event, seat).
import { createHash } from "node:crypto";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { LeaseSource, LeaseState, type LeaseSchema } from "@adminkiosk/proto/adminkiosk/catalog/v1/leases_pb";
import { DomainError, inTransaction, notFound as notFoundError, requireSameRequest, type DomainErrorKind, type Pool, type PoolClient } from "@adminkiosk/runtime";
import { stock } from "./inventory.js";
import { products } from "./products.js";
import { events } from "./seating.js";

type Db = Pool | PoolClient;
type StateName = "active" | "returned" | "revoked" | "expired";
type SourceName = "kiosk" | "operator" | "forecast";

export interface LeaseRow {
  lease_id: string;
  kiosk_id: string;
  state: StateName;
  source: SourceName;
  request_hash: string;
  expires_at: Date;
  hold_until: Date;
  created_by: string;
  end_reason: string;
  seats_quarantined: boolean;
  created_at: Date;
  updated_at: Date;
}

interface ItemRow {
  sku: string;
  quantity: string;
  sold: string;
  unit_price_minor: string;
  currency: string;
  tax_rate_basis_points: number;
  sizing?: string;
}

interface SeatRow {
  event_id: string;
  seat_id: string;
  tier_id: string;
  price_minor: string;
  currency: string;
  sold: boolean;
}

export interface LoadedLease {
  row: LeaseRow;
  items: ItemRow[];
  seats: SeatRow[];
}

export interface GrantInput {
  leaseId: string;
  kioskId: string;
  items: { sku: string; quantity: bigint; sizing?: string }[];
  seats: { eventId: string; seatId: string }[];
  ttlSeconds: number;
  source: SourceName;
  createdBy: string;
  /** Forecast sizing (forecast_hours) and the items as asked: the request hash covers these, not the sized quantities. */
  asked?: { forecastHours: number; items: { sku: string; quantity: bigint }[] };
}

/** What a kiosk may lease for itself (a stolen credential can take no more); operators are bound only by stock. */
export interface LeasePolicy {
  maxUnitsPerSku: number;
  /** Units across the kiosk's active leases. */
  maxUnits: number;
  /** Seats across the kiosk's active leases. */
  maxSeats: number;
  maxTtlSeconds: number;
  maxActive: number;
  /** How long unsold units and seats stay held after expires_at, for sales made before it to sync. */
  syncGraceSeconds: number;
}

export interface SaleTaken {
  items: { sku: string; quantity: string; unit_price_minor: string; currency: string; tax_rate_basis_points: number }[];
  seats: { event_id: string; seat_id: string; tier_id: string; price_minor: string; currency: string }[];
  total_minor: string;
  currency: string;
  /** "active", or "revoked": committed after the lease was revoked (units off stock, quarantined seats sold). */
  lease_state?: StateName;
  end_reason?: string;
  shortfalls?: { sku: string; quantity: string; on_hand: string; reserved: string }[];
}

const errorDomain = "catalog.adminkiosk";
const states: Record<StateName, LeaseState> = {
  active: LeaseState.ACTIVE,
  returned: LeaseState.RETURNED,
  revoked: LeaseState.REVOKED,
  expired: LeaseState.EXPIRED,
};
const sources: Record<SourceName, LeaseSource> = { kiosk: LeaseSource.KIOSK, operator: LeaseSource.OPERATOR, forecast: LeaseSource.FORECAST };
export const leaseStateNames = new Map<LeaseState, StateName>(Object.entries(states).map(([k, v]) => [v, k as StateName]));

function refusal(message: string, kind: DomainErrorKind, reason: string, metadata: Record<string, string> = {}) {
  return new DomainError(kind, message, { info: { reason, domain: errorDomain, metadata } });
}

export function toLease(l: LoadedLease): MessageInitShape<typeof LeaseSchema> {
  return {
    leaseId: l.row.lease_id,
    kioskId: l.row.kiosk_id,
    state: states[l.row.state],
    source: sources[l.row.source],
    items: l.items.map((i) => ({
      sku: i.sku,
      quantity: BigInt(i.quantity),
      sold: BigInt(i.sold),
      unitPriceMinor: BigInt(i.unit_price_minor),
      currency: i.currency,
      taxRateBasisPoints: i.tax_rate_basis_points,
      sizing: i.sizing ?? "",
    })),
    seats: l.seats.map((s) => ({ eventId: s.event_id, seatId: s.seat_id, tierId: s.tier_id, priceMinor: BigInt(s.price_minor), currency: s.currency, sold: s.sold })),
    expireTime: timestampFromDate(l.row.expires_at),
    holdUntilTime: timestampFromDate(l.row.hold_until),
    createdBy: l.row.created_by,
    endReason: l.row.end_reason,
    createTime: timestampFromDate(l.row.created_at),
    updateTime: timestampFromDate(l.row.updated_at),
    seatsQuarantined: l.row.seats_quarantined,
  };
}

function requestHash(input: GrantInput): string {
  const items = input.asked?.items ?? input.items;
  const canonical = JSON.stringify({
    kiosk: input.kioskId,
    items: [...items].sort((a, b) => a.sku.localeCompare(b.sku)).map((i) => [i.sku, i.quantity.toString()]),
    seats: [...input.seats].map((s) => `${s.eventId}/${s.seatId}`).sort(),
    ...(input.asked ? { forecastHours: input.asked.forecastHours } : {}),
  });
  return createHash("sha256").update("GrantLease\n").update(canonical).digest("hex");
}

const selectLeases = `SELECT l.*,
   (SELECT coalesce(json_agg(json_build_object('sku', i.sku, 'quantity', i.quantity::text, 'sold', i.sold::text, 'unit_price_minor', i.unit_price_minor::text,
             'currency', i.currency, 'tax_rate_basis_points', i.tax_rate_basis_points, 'sizing', i.sizing) ORDER BY i.sku), '[]'::json)
      FROM lease_items i WHERE i.lease_id = l.lease_id) AS items_json,
   (SELECT coalesce(json_agg(json_build_object('event_id', s.event_id::text, 'seat_id', s.seat_id, 'tier_id', s.tier_id,
             'price_minor', s.price_minor::text, 'currency', s.currency, 'sold', s.sold) ORDER BY s.event_id, s.seat_id), '[]'::json)
      FROM lease_seats s WHERE s.lease_id = l.lease_id) AS seats_json
 FROM leases l`;

type JoinedRow = LeaseRow & { items_json: ItemRow[]; seats_json: SeatRow[] };
const unjoin = ({ items_json, seats_json, ...row }: JoinedRow): LoadedLease => ({ row, items: items_json, seats: seats_json });

async function load(db: Db, leaseId: string, options: { forUpdate?: boolean } = {}): Promise<LoadedLease | undefined> {
  const { rows } = await db.query<JoinedRow>(`${selectLeases} WHERE l.lease_id = $1 ${options.forUpdate ? "FOR UPDATE OF l" : ""}`, [leaseId]);
  return rows[0] && unjoin(rows[0]);
}

async function lockSeats(tx: PoolClient, seats: { eventId: string; seatId: string }[]) {
  const { rows } = await tx.query<{ event_id: string; seat_id: string; tier_id: string; state: string; reservation_id: string | null; lapsed: boolean }>(
    `SELECT event_id, seat_id, tier_id, state, reservation_id, coalesce(hold_expires_at <= now(), false) AS lapsed
     FROM seats WHERE (event_id, seat_id) IN (SELECT * FROM unnest($1::uuid[], $2::text[]))
     ORDER BY event_id, seat_id FOR UPDATE`,
    [seats.map((s) => s.eventId), seats.map((s) => s.seatId)],
  );
  return new Map(rows.map((r) => [`${r.event_id}/${r.seat_id}`, r]));
}

/**
 * Gives a locked, active lease's unsold units back and ends it. Its unsold seats go back
 * too — except on revocation: the kiosk may be offline and still selling them (it cannot
 * know), so they stay held for the lease until hold_until, when the kiosk could no longer
 * sync a sale of them (quarantine; see releaseSeats). A seat is never sold to anyone else
 * while the kiosk may still sell it.
 */
async function end(tx: PoolClient, l: LoadedLease, state: Exclude<StateName, "active">, reason: string) {
  const units = l.items.map((i) => ({ kioskId: l.row.kiosk_id, sku: i.sku, quantity: BigInt(i.quantity) - BigInt(i.sold) })).filter((u) => u.quantity > 0n);
  await stock.lockInOrder(tx, units);
  await stock.unreserveAll(tx, units);
  const quarantine = state === "revoked" && l.seats.some((s) => !s.sold) && l.row.hold_until.getTime() > Date.now();
  if (!quarantine) await releaseSeats(tx, l.row.lease_id);
  await tx.query("UPDATE leases SET state = $2, end_reason = $3, seats_quarantined = $4, updated_at = now() WHERE lease_id = $1", [l.row.lease_id, state, reason, quarantine]);
}

/** Frees the seats still held for a lease (unsold); ends its quarantine. The lease row must be locked. */
async function releaseSeats(tx: PoolClient, leaseId: string) {
  await tx.query("SELECT 1 FROM seats WHERE reservation_id = $1 AND state = 'held' ORDER BY event_id, seat_id FOR UPDATE", [leaseId]);
  await tx.query("UPDATE seats SET state = 'available', reservation_id = NULL, hold_expires_at = NULL WHERE reservation_id = $1 AND state = 'held'", [leaseId]);
  await tx.query("UPDATE leases SET seats_quarantined = false WHERE lease_id = $1 AND seats_quarantined", [leaseId]);
}

export interface LeaseBook {
  grant(input: GrantInput, policy: LeasePolicy | undefined): Promise<LoadedLease>;
  get(leaseId: string): Promise<LoadedLease | undefined>;
  /** Units of a SKU free at a kiosk now (on hand, not reserved). */
  available(kioskId: string, sku: string): Promise<bigint>;
  list(filter: { kioskId?: string; state?: StateName }, page: { limit: number; before?: { at: string; id: string } }): Promise<LoadedLease[]>;
  /**
   * Ends an active lease (returned or revoked); `authorize` sees it locked first. Idempotent
   * for an ended one; `releaseQuarantine` (the kiosk returning it after syncing) also frees
   * a revoked lease's quarantined seats.
   */
  end(leaseId: string, state: "returned" | "revoked", reason: string, authorize: (l: LoadedLease) => void, options?: { releaseQuarantine?: boolean }): Promise<LoadedLease>;
  commitSale(input: { leaseId: string; kioskId: string; saleId: string; soldAt: Date; items: { sku: string; quantity: bigint }[]; seats: { eventId: string; seatId: string }[] }): Promise<SaleTaken>;
  /** Ends leases past hold_until and frees revoked leases' quarantined seats past it (up to `limit` each); returns how many. */
  expireDue(limit?: number): Promise<number>;
}

export function createLeaseBook(pool: Pool, syncGraceSeconds: number): LeaseBook {
  const notFound = (id: string) => notFoundError(`lease ${id} not found`);

  const book: LeaseBook = {
    async grant(input, policy) {
      const hash = requestHash(input);
      return inTransaction(pool, async (tx) => {
        const grace = policy?.syncGraceSeconds ?? syncGraceSeconds;
        const { rows: created } = await tx.query<LeaseRow>(
          `INSERT INTO leases (lease_id, kiosk_id, state, source, request_hash, expires_at, hold_until, created_by)
           VALUES ($1, $2, 'active', $3, $4, now() + make_interval(secs => $5), now() + make_interval(secs => $5 + $6), $7)
           ON CONFLICT (lease_id) DO NOTHING RETURNING *`,
          [input.leaseId, input.kioskId, input.source, hash, input.ttlSeconds, grace, input.createdBy],
        );
        if (!created[0]) {
          const existing = (await load(tx, input.leaseId))!;
          requireSameRequest(Buffer.from(existing.row.request_hash, "hex"), Buffer.from(hash, "hex"), "lease_id");
          return existing;
        }
        const lease = created[0];
        if (policy) {
          // One grant per kiosk at a time, so concurrent asks (a stolen credential racing itself) cannot each pass the policy.
          await tx.query("SELECT pg_advisory_xact_lock(hashtext('catalog.lease:' || $1))", [input.kioskId]);
          // The kiosk's active leases, this one included: a kiosk (or a stolen credential) can hold no more than the policy.
          const { rows } = await tx.query<{ leases: string; units: string; seats: string }>(
            `SELECT count(*)::text AS leases,
               coalesce((SELECT sum(i.quantity - i.sold) FROM lease_items i JOIN leases l2 USING (lease_id) WHERE l2.kiosk_id = $1 AND l2.state = 'active'), 0)::text AS units,
               coalesce((SELECT count(*) FROM lease_seats s JOIN leases l3 USING (lease_id) WHERE l3.kiosk_id = $1 AND l3.state = 'active' AND NOT s.sold), 0)::text AS seats
             FROM leases WHERE kiosk_id = $1 AND state = 'active'`,
            [input.kioskId],
          );
          const held = rows[0]!;
          const deny = (field: string, what: string) =>
            new DomainError("permissionDenied", `${field}: ${what} (the offline policy for kiosks; an operator may grant more)`, {
              info: { reason: "LEASE_POLICY", domain: errorDomain, metadata: { kiosk_id: input.kioskId } },
            });
          if (Number(held.leases) > policy.maxActive) throw deny("kiosk_id", `kiosk ${input.kioskId} already holds ${policy.maxActive} active leases`);
          const units = input.items.reduce((n, i) => n + Number(i.quantity), 0);
          if (Number(held.units) + units > policy.maxUnits) throw deny("items", `at most ${policy.maxUnits} units leased at once (${held.units} held)`);
          if (Number(held.seats) + input.seats.length > policy.maxSeats) throw deny("seats", `at most ${policy.maxSeats} seats leased at once (${held.seats} held)`);
        }

        // Units, SKU by SKU in order (the stock rows' lock order).
        const catalog = await products.bySkus(tx, input.items.map((i) => i.sku));
        const indexed = input.items.map((item, index) => ({ ...item, index })).sort((a, b) => (a.sku < b.sku ? -1 : a.sku > b.sku ? 1 : 0));
        const lines: ItemRow[] = [];
        for (const item of indexed) {
          const product = catalog.get(item.sku);
          if (!product) throw notFoundError(`items[${item.index}].sku: product ${item.sku} not found`);
          if (!product.active) throw refusal(`items[${item.index}].sku: product ${item.sku} is not for sale`, "failedPrecondition", "PRODUCT_INACTIVE", { sku: item.sku });
          if (!(await stock.reserve(tx, input.kioskId, item.sku, item.quantity))) {
            const level = await stock.get(tx, input.kioskId, item.sku);
            const available = level ? BigInt(level.on_hand) - BigInt(level.reserved) : 0n;
            throw refusal(`items[${item.index}].quantity: only ${available} of ${item.sku} available at kiosk ${input.kioskId}, ${item.quantity} asked`, "exhausted", "OUT_OF_STOCK", {
              sku: item.sku,
              kiosk_id: input.kioskId,
              available: available.toString(),
            });
          }
          lines.push({
            sku: item.sku,
            quantity: item.quantity.toString(),
            sold: "0",
            unit_price_minor: product.price_minor,
            currency: product.currency,
            tax_rate_basis_points: product.tax_rate_basis_points,
            sizing: item.sizing ?? "",
          });
        }

        // Seats: each must exist, be on sale, and be free (or its hold lapsed).
        const seatRows: SeatRow[] = [];
        if (input.seats.length > 0) {
          const eventIds = [...new Set(input.seats.map((s) => s.eventId))];
          const eventRows = await events.byIds(tx, eventIds);
          input.seats.forEach((s, i) => {
            const event = eventRows.get(s.eventId);
            if (!event) throw notFoundError(`seats[${i}].event_id: event ${s.eventId} not found`);
            if (!event.active) throw refusal(`seats[${i}].event_id: event ${s.eventId} is not on sale`, "failedPrecondition", "EVENT_INACTIVE", { event_id: s.eventId });
            if (event.start_time.getTime() <= Date.now())
              throw refusal(`seats[${i}].event_id: event ${s.eventId} has already started`, "failedPrecondition", "EVENT_STARTED", { event_id: s.eventId });
          });
          const locked = await lockSeats(tx, input.seats);
          // Read after the seats' locks: a seat map edited meanwhile (UpdateEventSeatMap) is read as committed.
          const tiers = new Map((await events.tiers(tx, eventIds)).map((t) => [`${t.event_id}/${t.tier_id}`, t]));
          input.seats.forEach((s, i) => {
            const seat = locked.get(`${s.eventId}/${s.seatId}`);
            if (!seat) throw notFoundError(`seats[${i}].seat_id: seat ${s.seatId} not found in event ${s.eventId}`);
            if (!(seat.state === "available" || (seat.state === "held" && seat.lapsed)))
              throw refusal(`seats[${i}].seat_id: seat ${s.seatId} is ${seat.state === "sold" ? "sold" : "held by another sale or lease"}`, "failedPrecondition", "SEAT_UNAVAILABLE", {
                event_id: s.eventId,
                seat_id: s.seatId,
              });
            const tier = tiers.get(`${s.eventId}/${seat.tier_id}`)!;
            seatRows.push({ event_id: s.eventId, seat_id: s.seatId, tier_id: seat.tier_id, price_minor: tier.price_minor, currency: tier.currency, sold: false });
          });
          await tx.query(
            `UPDATE seats SET state = 'held', reservation_id = $3, hold_expires_at = $4
             WHERE (event_id, seat_id) IN (SELECT * FROM unnest($1::uuid[], $2::text[]))`,
            [seatRows.map((s) => s.event_id), seatRows.map((s) => s.seat_id), input.leaseId, lease.hold_until],
          );
        }
        if (lines.length > 0)
          await tx.query(
            `INSERT INTO lease_items (lease_id, sku, quantity, unit_price_minor, currency, tax_rate_basis_points, sizing)
             SELECT $1::uuid, * FROM unnest($2::text[], $3::bigint[], $4::bigint[], $5::text[], $6::int[], $7::text[])`,
            [
              input.leaseId,
              lines.map((l) => l.sku),
              lines.map((l) => l.quantity),
              lines.map((l) => l.unit_price_minor),
              lines.map((l) => l.currency),
              lines.map((l) => l.tax_rate_basis_points),
              lines.map((l) => l.sizing ?? ""),
            ],
          );
        if (seatRows.length > 0)
          await tx.query(
            `INSERT INTO lease_seats (lease_id, event_id, seat_id, tier_id, price_minor, currency)
             SELECT $1::uuid, * FROM unnest($2::uuid[], $3::text[], $4::text[], $5::bigint[], $6::text[])`,
            [input.leaseId, seatRows.map((s) => s.event_id), seatRows.map((s) => s.seat_id), seatRows.map((s) => s.tier_id), seatRows.map((s) => s.price_minor), seatRows.map((s) => s.currency)],
          );
        return (await load(tx, input.leaseId))!;
      });
    },

    get: (leaseId) => load(pool, leaseId),

    async available(kioskId, sku) {
      const level = await stock.get(pool, kioskId, sku);
      return level ? BigInt(level.on_hand) - BigInt(level.reserved) : 0n;
    },

    async list(filter, page) {
      const where: string[] = [];
      const params: unknown[] = [];
      if (filter.kioskId !== undefined) where.push(`l.kiosk_id = $${params.push(filter.kioskId)}`);
      if (filter.state !== undefined) where.push(`l.state = $${params.push(filter.state)}`);
      if (page.before) where.push(`(l.created_at, l.lease_id) < ($${params.push(page.before.at)}::timestamptz, $${params.push(page.before.id)}::uuid)`);
      const { rows } = await pool.query<JoinedRow>(
        `${selectLeases} ${where.length ? `WHERE ${where.join(" AND ")}` : ""} ORDER BY l.created_at DESC, l.lease_id DESC LIMIT $${params.push(page.limit)}`,
        params,
      );
      return rows.map(unjoin);
    },

    async end(leaseId, state, reason, authorize, options = {}) {
      return inTransaction(pool, async (tx) => {
        const l = await load(tx, leaseId, { forUpdate: true });
        if (!l) throw notFound(leaseId);
        authorize(l);
        if (l.row.state !== "active") {
          if (!(options.releaseQuarantine && l.row.seats_quarantined)) return l;
          await releaseSeats(tx, leaseId);
          return (await load(tx, leaseId))!;
        }
        await end(tx, l, state, reason);
        return (await load(tx, leaseId))!;
      });
    },

    async commitSale(input) {
      return inTransaction(pool, async (tx) => {
        const l = await load(tx, input.leaseId, { forUpdate: true });
        if (!l) throw notFound(input.leaseId);
        if (l.row.kiosk_id !== input.kioskId)
          throw refusal(`lease_id: lease ${input.leaseId} belongs to another kiosk`, "permissionDenied", "LEASE_NOT_YOURS", { lease_id: input.leaseId });
        const { rows: before } = await tx.query<{ taken: SaleTaken }>("SELECT taken FROM lease_sales WHERE sale_id = $1", [input.saleId]);
        if (before[0]) return before[0].taken; // a retry: applied once already
        if (l.row.state === "active" && l.row.hold_until.getTime() <= Date.now()) {
          await end(tx, l, "expired", "its hold ended");
          l.row.state = "expired";
        }
        // Revoked: the kiosk sold before it could know, and the buyer took the goods. What the
        // lease granted is committed anyway — units off stock, seats still quarantined for it.
        const revoked = l.row.state === "revoked";
        if (l.row.state !== "active" && !revoked) {
          const reason = l.row.state === "returned" ? "LEASE_RETURNED" : "LEASE_EXPIRED";
          throw refusal(`lease_id: lease ${input.leaseId} is ${l.row.state}${l.row.end_reason ? ` (${l.row.end_reason})` : ""}; its units and seats went back`, "failedPrecondition", reason, {
            lease_id: input.leaseId,
          });
        }
        // Past its sync window a revoked lease's seats may have gone to someone else: refused, like an expired lease's sale.
        if (revoked && l.row.hold_until.getTime() <= Date.now())
          throw refusal(`lease_id: lease ${input.leaseId} was revoked (${l.row.end_reason}) and its sync window is over; its units and seats went back`, "failedPrecondition", "LEASE_REVOKED", {
            lease_id: input.leaseId,
          });
        if (input.soldAt.getTime() > l.row.expires_at.getTime())
          throw refusal(`sold_time: ${input.soldAt.toISOString()} is after the lease's expiry ${l.row.expires_at.toISOString()}`, "failedPrecondition", "SOLD_AFTER_EXPIRY", {
            lease_id: input.leaseId,
          });
        const items = new Map(l.items.map((i) => [i.sku, i]));
        const taken: SaleTaken = { items: [], seats: [], total_minor: "0", currency: "" };
        input.items.forEach((want, i) => {
          const have = items.get(want.sku);
          const left = have ? BigInt(have.quantity) - BigInt(have.sold) : 0n;
          if (!have || left < want.quantity)
            throw refusal(`items[${i}].quantity: lease ${input.leaseId} has ${left} of ${want.sku} left, ${want.quantity} sold`, "failedPrecondition", "NOT_IN_LEASE", { sku: want.sku });
          taken.items.push({ sku: want.sku, quantity: want.quantity.toString(), unit_price_minor: have.unit_price_minor, currency: have.currency, tax_rate_basis_points: have.tax_rate_basis_points });
        });
        const seats = new Map(l.seats.map((s) => [`${s.event_id}/${s.seat_id}`, s]));
        input.seats.forEach((want, i) => {
          const have = seats.get(`${want.eventId}/${want.seatId}`);
          if (!have || have.sold)
            throw refusal(`seats[${i}].seat_id: lease ${input.leaseId} does not hold seat ${want.seatId}${have?.sold ? " (sold already)" : ""}`, "failedPrecondition", "NOT_IN_LEASE", {
              seat_id: want.seatId,
            });
          taken.seats.push({ event_id: have.event_id, seat_id: have.seat_id, tier_id: have.tier_id, price_minor: have.price_minor, currency: have.currency });
        });
        const currencies = new Set([...taken.items.map((i) => i.currency), ...taken.seats.map((s) => s.currency)]);
        if (currencies.size > 1) throw refusal("items: the sale mixes currencies; one sale is in one currency", "failedPrecondition", "MIXED_CURRENCIES");
        taken.currency = [...currencies][0] ?? "";
        taken.total_minor = (
          taken.items.reduce((n, i) => n + BigInt(i.unit_price_minor) * BigInt(i.quantity), 0n) + taken.seats.reduce((n, s) => n + BigInt(s.price_minor), 0n)
        ).toString();

        const sorted = [...taken.items].sort((a, b) => (a.sku < b.sku ? -1 : 1));
        await stock.lockInOrder(tx, sorted.map((i) => ({ kioskId: input.kioskId, sku: i.sku })));
        const shortfalls: NonNullable<SaleTaken["shortfalls"]> = [];
        for (const i of sorted) {
          const quantity = BigInt(i.quantity);
          if (!revoked) await stock.sell(tx, input.kioskId, i.sku, quantity);
          else {
            // The lease's units went back to stock when it was revoked: take them off again,
            // but never the units other sales hold (reserved): the rest is a shortfall the
            // conflict reports (the shelf holds fewer than the books say).
            const level = await stock.get(tx, input.kioskId, i.sku);
            const free = level ? BigInt(level.on_hand) - BigInt(level.reserved) : 0n;
            const off = quantity < free ? quantity : free > 0n ? free : 0n;
            if (off > 0n && (await stock.reserve(tx, input.kioskId, i.sku, off))) await stock.sell(tx, input.kioskId, i.sku, off);
            if (off < quantity) {
              const after = await stock.get(tx, input.kioskId, i.sku);
              shortfalls.push({ sku: i.sku, quantity: (quantity - off).toString(), on_hand: after?.on_hand.toString() ?? "0", reserved: after?.reserved.toString() ?? "0" });
            }
          }
          await tx.query("UPDATE lease_items SET sold = sold + $3 WHERE lease_id = $1 AND sku = $2", [input.leaseId, i.sku, i.quantity]);
        }
        if (revoked) Object.assign(taken, { lease_state: "revoked", end_reason: l.row.end_reason, shortfalls });
        if (taken.seats.length > 0) {
          await lockSeats(tx, input.seats);
          // Fenced by the lease id: only seats this lease still holds (active, or quarantined after its revocation) become sold.
          const { rowCount } = await tx.query(
            `UPDATE seats SET state = 'sold', hold_expires_at = NULL
             WHERE reservation_id = $1 AND state = 'held' AND (event_id, seat_id) IN (SELECT * FROM unnest($2::uuid[], $3::text[]))`,
            [input.leaseId, taken.seats.map((s) => s.event_id), taken.seats.map((s) => s.seat_id)],
          );
          if (rowCount !== taken.seats.length)
            throw revoked
              ? refusal(`lease_id: lease ${input.leaseId} is revoked (${l.row.end_reason}) and its seats' quarantine is over; they went back`, "failedPrecondition", "LEASE_REVOKED", {
                  lease_id: input.leaseId,
                })
              : refusal(`lease ${input.leaseId} no longer holds all the sale's seats`, "failedPrecondition", "NOT_IN_LEASE");
          await tx.query("UPDATE lease_seats SET sold = true WHERE lease_id = $1 AND (event_id, seat_id) IN (SELECT * FROM unnest($2::uuid[], $3::text[]))", [
            input.leaseId,
            taken.seats.map((s) => s.event_id),
            taken.seats.map((s) => s.seat_id),
          ]);
        }
        await tx.query("UPDATE leases SET updated_at = now() WHERE lease_id = $1", [input.leaseId]);
        await tx.query("INSERT INTO lease_sales (sale_id, lease_id, kiosk_id, sold_at, taken) VALUES ($1, $2, $3, $4, $5)", [
          input.saleId,
          input.leaseId,
          input.kioskId,
          input.soldAt,
          JSON.stringify(taken),
        ]);
        return taken;
      });
    },

    async expireDue(limit = 50) {
      return inTransaction(pool, async (tx) => {
        const { rows } = await tx.query<{ lease_id: string }>(
          "SELECT lease_id FROM leases WHERE state = 'active' AND hold_until <= now() ORDER BY hold_until LIMIT $1 FOR UPDATE SKIP LOCKED",
          [limit],
        );
        for (const { lease_id } of rows) await end(tx, (await load(tx, lease_id))!, "expired", "its hold ended");
        // Revoked leases whose kiosk can no longer sync a sale of their seats: the quarantine ends.
        const { rows: quarantined } = await tx.query<{ lease_id: string }>(
          "SELECT lease_id FROM leases WHERE seats_quarantined AND hold_until <= now() ORDER BY hold_until LIMIT $1 FOR UPDATE SKIP LOCKED",
          [limit],
        );
        for (const { lease_id } of quarantined) await releaseSeats(tx, lease_id);
        return rows.length + quarantined.length;
      });
    },
  };
  return book;
}
