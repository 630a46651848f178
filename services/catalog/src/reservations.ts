// Reservations: stock and seats held together for one sale, all or nothing, until
// committed (sold), released, or expired. Every writer locks in one order —
// reservation row, then stock rows by (kiosk, SKU), then seats by (event, seat) — so
// reservations spanning several SKUs and seats never deadlock one another.
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { ReservationState, ReserveRequestSchema, type ReservationSchema } from "@adminkiosk/proto/adminkiosk/catalog/v1/catalog_pb";
import {
  DomainError,
  inTransaction,
  notFound as notFoundError,
  requestHash as idempotentRequestHash,
  requireSameRequest,
  type DomainErrorKind,
  type Pool,
  type PoolClient,
} from "@adminkiosk/runtime";
import { publishReservationsExpired, publishStockCrossing, publishStockLevels } from "./events.js";
import { stock, toStockLevel } from "./inventory.js";
import type { CatalogMetrics } from "./metrics.js";
import { products } from "./products.js";
import { events } from "./seating.js";

type Db = Pool | PoolClient;

export interface ReserveInput {
  reservationId: string;
  kioskId: string;
  /** Each SKU once. */
  items: { sku: string; quantity: bigint }[];
  /** Each seat once; event ids lower-case. */
  seats: { eventId: string; seatId: string }[];
  ttlSeconds: number;
  /** Who asked (principal description), kept for the record. */
  createdBy: string;
}

interface ReservationRow {
  reservation_id: string;
  kiosk_id: string;
  state: "held" | "committed" | "released" | "expired";
  request_hash: string;
  total_minor: string;
  currency: string;
  expires_at: Date;
  created_at: Date;
  updated_at: Date;
}

interface ItemRow {
  sku: string;
  quantity: string;
  unit_price_minor: string;
  currency: string;
  tax_rate_basis_points: number;
}

interface SeatRow {
  event_id: string;
  seat_id: string;
  tier_id: string;
  price_minor: string;
  currency: string;
}

export interface LoadedReservation {
  row: ReservationRow;
  items: ItemRow[];
  seats: SeatRow[];
}

const errorDomain = "catalog.adminkiosk";
const states: Record<ReservationRow["state"], ReservationState> = {
  held: ReservationState.HELD,
  committed: ReservationState.COMMITTED,
  released: ReservationState.RELEASED,
  expired: ReservationState.EXPIRED,
};

/** A hold past its expiry reads as expired, whether or not the sweeper got to it yet. */
const isOverdue = (row: ReservationRow, now = new Date()) => row.state === "held" && row.expires_at.getTime() <= now.getTime();

export function toReservation(r: LoadedReservation, now = new Date()): MessageInitShape<typeof ReservationSchema> {
  return {
    reservationId: r.row.reservation_id,
    kioskId: r.row.kiosk_id,
    state: isOverdue(r.row, now) ? ReservationState.EXPIRED : states[r.row.state],
    items: r.items.map((i) => ({
      sku: i.sku,
      quantity: BigInt(i.quantity),
      unitPriceMinor: BigInt(i.unit_price_minor),
      currency: i.currency,
      taxRateBasisPoints: i.tax_rate_basis_points,
    })),
    seats: r.seats.map((s) => ({ eventId: s.event_id, seatId: s.seat_id, tierId: s.tier_id, priceMinor: BigInt(s.price_minor), currency: s.currency })),
    totalMinor: BigInt(r.row.total_minor),
    currency: r.row.currency,
    expireTime: timestampFromDate(r.row.expires_at),
    createTime: timestampFromDate(r.row.created_at),
    updateTime: timestampFromDate(r.row.updated_at),
  };
}

function refusal(message: string, kind: DomainErrorKind, reason: string, metadata: Record<string, string>) {
  return new DomainError(kind, message, { info: { reason, domain: errorDomain, metadata } });
}

/**
 * What a retry must repeat exactly to count as the same reservation: the runtime's
 * request hash (idempotency.ts) of Reserve without its key (reservation_id) and its ttl,
 * lines and seats in a canonical order. Stored as hex in reservations.request_hash.
 */
function requestHash(input: ReserveInput): string {
  const canonical = create(ReserveRequestSchema, {
    kioskId: input.kioskId,
    items: [...input.items].sort((a, b) => a.sku.localeCompare(b.sku)).map((i) => ({ sku: i.sku, quantity: i.quantity })),
    seats: [...input.seats].sort((a, b) => `${a.eventId}/${a.seatId}`.localeCompare(`${b.eventId}/${b.seatId}`)).map((s) => ({ eventId: s.eventId, seatId: s.seatId })),
  });
  return idempotentRequestHash("Reserve", ReserveRequestSchema, canonical, "reservationId").toString("hex");
}

/** Reservations with their items and seats, one statement (the rows locked with forUpdate; items and seats are not). */
async function loadMany(db: Db, reservationIds: string[], options: { forUpdate?: boolean } = {}): Promise<LoadedReservation[]> {
  const { rows } = await db.query<ReservationRow & { items_json: ItemRow[]; seats_json: SeatRow[] }>(
    `SELECT r.*,
       (SELECT coalesce(json_agg(json_build_object('sku', i.sku, 'quantity', i.quantity::text, 'unit_price_minor', i.unit_price_minor::text,
                 'currency', i.currency, 'tax_rate_basis_points', i.tax_rate_basis_points) ORDER BY i.sku), '[]'::json)
          FROM reservation_items i WHERE i.reservation_id = r.reservation_id) AS items_json,
       (SELECT coalesce(json_agg(json_build_object('event_id', s.event_id::text, 'seat_id', s.seat_id, 'tier_id', s.tier_id,
                 'price_minor', s.price_minor::text, 'currency', s.currency) ORDER BY s.event_id, s.seat_id), '[]'::json)
          FROM reservation_seats s WHERE s.reservation_id = r.reservation_id) AS seats_json
     FROM reservations r WHERE r.reservation_id = ANY($1::uuid[]) ${options.forUpdate ? "FOR UPDATE OF r" : ""}`,
    [reservationIds],
  );
  return rows.map(({ items_json, seats_json, ...row }) => ({ row, items: items_json, seats: seats_json }));
}

async function load(db: Db, reservationId: string, options: { forUpdate?: boolean } = {}): Promise<LoadedReservation | undefined> {
  return (await loadMany(db, [reservationId], options))[0];
}

/** The reservation's row after `sql` (an UPDATE … RETURNING *), with the items and seats it already had. */
async function updated(tx: PoolClient, r: LoadedReservation, sql: string): Promise<LoadedReservation> {
  const { rows } = await tx.query<ReservationRow>(sql, [r.row.reservation_id]);
  return { row: rows[0]!, items: r.items, seats: r.seats };
}

/** Locks the seats in (event, seat) order and returns them. */
async function lockSeats(tx: PoolClient, seats: { eventId: string; seatId: string }[]) {
  const { rows } = await tx.query<{ event_id: string; seat_id: string; tier_id: string; state: string; reservation_id: string | null; lapsed: boolean }>(
    `SELECT event_id, seat_id, tier_id, state, reservation_id, coalesce(hold_expires_at <= now(), false) AS lapsed
     FROM seats WHERE (event_id, seat_id) IN (SELECT * FROM unnest($1::uuid[], $2::text[]))
     ORDER BY event_id, seat_id FOR UPDATE`,
    [seats.map((s) => s.eventId), seats.map((s) => s.seatId)],
  );
  return new Map(rows.map((r) => [`${r.event_id}/${r.seat_id}`, r]));
}

/** Returns a held reservation's units and seats (the seats only where it still holds them). */
async function giveBack(tx: PoolClient, reservationIds: string[]) {
  const { rows: units } = await tx.query<{ kiosk_id: string; sku: string; quantity: string }>(
    `SELECT r.kiosk_id, i.sku, sum(i.quantity)::text AS quantity
     FROM reservation_items i JOIN reservations r USING (reservation_id)
     WHERE i.reservation_id = ANY($1::uuid[]) GROUP BY r.kiosk_id, i.sku ORDER BY r.kiosk_id, i.sku`,
    [reservationIds],
  );
  await stock.lockInOrder(tx, units.map((u) => ({ kioskId: u.kiosk_id, sku: u.sku })));
  await stock.unreserveAll(tx, units.map((u) => ({ kioskId: u.kiosk_id, sku: u.sku, quantity: BigInt(u.quantity) })));
  await tx.query("SELECT 1 FROM seats WHERE reservation_id = ANY($1::uuid[]) AND state = 'held' ORDER BY event_id, seat_id FOR UPDATE", [reservationIds]);
  await tx.query(
    "UPDATE seats SET state = 'available', reservation_id = NULL, hold_expires_at = NULL WHERE reservation_id = ANY($1::uuid[]) AND state = 'held'",
    [reservationIds],
  );
}

export interface ReservationBook {
  reserve(input: ReserveInput): Promise<MessageInitShape<typeof ReservationSchema>>;
  get(reservationId: string): Promise<LoadedReservation | undefined>;
  /** `authorize` sees the reservation (locked) before anything changes and throws to refuse. */
  commit(reservationId: string, authorize: (r: LoadedReservation) => void): Promise<MessageInitShape<typeof ReservationSchema>>;
  release(reservationId: string, authorize: (r: LoadedReservation) => void): Promise<MessageInitShape<typeof ReservationSchema>>;
  /** Expires up to `limit` overdue reservations (of one kiosk, if given); returns how many. */
  expireDue(options?: { kioskId?: string; limit?: number }): Promise<number>;
}

export function createReservationBook(pool: Pool, metrics: CatalogMetrics, limits: { maxHeldPerKiosk: number }): ReservationBook {
  const notFound = (id: string) => notFoundError(`reservation ${id} not found`);

  const attempt = (input: ReserveInput, hash: string) =>
    inTransaction(pool, async (tx) => {
      // The kiosk's other live holds are counted in the same statement (its snapshot does not
      // see this insert).
      const { rows: created } = await tx.query<{ expires_at: Date; held_before: string }>(
        `WITH created AS (
           INSERT INTO reservations (reservation_id, kiosk_id, state, request_hash, total_minor, currency, expires_at, created_by)
           VALUES ($1, $2, 'held', $3, 0, '', now() + make_interval(secs => $4), $5)
           ON CONFLICT (reservation_id) DO NOTHING RETURNING expires_at
         )
         SELECT expires_at, (SELECT count(*) FROM reservations WHERE kiosk_id = $2 AND state = 'held' AND expires_at > now()) AS held_before FROM created`,
        [input.reservationId, input.kioskId, hash, input.ttlSeconds, input.createdBy],
      );
      // A retry (or a concurrent twin, which waited for this id's first insert to commit).
      if (!created[0]) {
        const existing = (await load(tx, input.reservationId))!;
        // The reservation is its id's record: another request under the id is the key's misuse.
        requireSameRequest(Buffer.from(existing.row.request_hash, "hex"), Buffer.from(hash, "hex"), "reservation_id");
        return { reservation: existing, replayed: true };
      }
      const expiresAt = created[0].expires_at;

      if (Number(created[0].held_before) + 1 > limits.maxHeldPerKiosk)
        throw refusal(`kiosk_id: kiosk ${input.kioskId} already holds ${limits.maxHeldPerKiosk} reservations; commit or release some first`, "exhausted", "TOO_MANY_HOLDS", {
          kiosk_id: input.kioskId,
        });

      const lines = await reserveUnits(tx, input);
      const seats = await holdSeats(tx, input, expiresAt);

      const currencies = new Set([...lines.map((l) => l.currency), ...seats.map((s) => s.currency)]);
      if (currencies.size > 1)
        throw refusal(`items: the reservation mixes currencies (${[...currencies].sort().join(", ")}); one sale is in one currency`, "failedPrecondition", "MIXED_CURRENCIES", {});
      const total = lines.reduce((sum, l) => sum + l.unitPriceMinor * l.quantity, 0n) + seats.reduce((sum, s) => sum + s.priceMinor, 0n);
      // Its items, seats and total in one statement (an empty list inserts nothing).
      const { rows: done } = await tx.query<ReservationRow>(
        `WITH items AS (
           INSERT INTO reservation_items (reservation_id, sku, quantity, unit_price_minor, currency, tax_rate_basis_points)
           SELECT $1::uuid, * FROM unnest($4::text[], $5::bigint[], $6::bigint[], $7::text[], $8::int[])
         ), seats AS (
           INSERT INTO reservation_seats (reservation_id, event_id, seat_id, tier_id, price_minor, currency)
           SELECT $1::uuid, * FROM unnest($9::uuid[], $10::text[], $11::text[], $12::bigint[], $13::text[])
         )
         UPDATE reservations SET total_minor = $2, currency = $3 WHERE reservation_id = $1 RETURNING *`,
        [
          input.reservationId,
          total.toString(),
          [...currencies][0] ?? "",
          lines.map((l) => l.sku),
          lines.map((l) => l.quantity.toString()),
          lines.map((l) => l.unitPriceMinor.toString()),
          lines.map((l) => l.currency),
          lines.map((l) => l.taxRateBasisPoints),
          seats.map((s) => s.eventId),
          seats.map((s) => s.seatId),
          seats.map((s) => s.tierId),
          seats.map((s) => s.priceMinor.toString()),
          seats.map((s) => s.currency),
        ],
      );
      // What it holds is what this transaction wrote (in load's order): not read back.
      const reservation: LoadedReservation = {
        row: done[0]!,
        items: lines.map((l) => ({ sku: l.sku, quantity: l.quantity.toString(), unit_price_minor: l.unitPriceMinor.toString(), currency: l.currency, tax_rate_basis_points: l.taxRateBasisPoints })),
        seats: seats
          .map((h) => ({ event_id: h.eventId, seat_id: h.seatId, tier_id: h.tierId, price_minor: h.priceMinor.toString(), currency: h.currency }))
          .sort((a, b) => (a.event_id !== b.event_id ? (a.event_id < b.event_id ? -1 : 1) : a.seat_id < b.seat_id ? -1 : a.seat_id > b.seat_id ? 1 : 0)),
      };
      return { reservation, replayed: false };
    });

  /**
   * Takes the units, SKU by SKU in order, each priced in the statement that takes it; the first
   * SKU that is not for sale or short of stock refuses the lot (and only then is asked why).
   */
  async function reserveUnits(tx: PoolClient, input: ReserveInput) {
    const indexed = input.items.map((item, index) => ({ ...item, index })).sort((a, b) => (a.sku < b.sku ? -1 : a.sku > b.sku ? 1 : 0));
    const lines = [];
    for (const item of indexed) {
      const product = await stock.reserveForSale(tx, input.kioskId, item.sku, item.quantity);
      if (!product) {
        const known = (await products.bySkus(tx, [item.sku])).get(item.sku);
        if (!known) throw notFoundError(`items[${item.index}].sku: product ${item.sku} not found`);
        if (!known.active) throw refusal(`items[${item.index}].sku: product ${item.sku} is not for sale`, "failedPrecondition", "PRODUCT_INACTIVE", { sku: item.sku });
        const level = await stock.get(tx, input.kioskId, item.sku);
        const available = level ? BigInt(level.on_hand) - BigInt(level.reserved) : 0n;
        throw refusal(
          `items[${item.index}].quantity: only ${available} of ${item.sku} available at kiosk ${input.kioskId}, ${item.quantity} asked`,
          "exhausted",
          "OUT_OF_STOCK",
          { sku: item.sku, kiosk_id: input.kioskId, available: available.toString() },
        );
      }
      lines.push({
        sku: item.sku,
        quantity: item.quantity,
        unitPriceMinor: BigInt(product.price_minor),
        currency: product.currency,
        taxRateBasisPoints: product.tax_rate_basis_points,
      });
    }
    return lines;
  }

  /** Holds every seat or none: each must exist, be on sale, and be free (or its hold lapsed). */
  async function holdSeats(tx: PoolClient, input: ReserveInput, expiresAt: Date) {
    if (input.seats.length === 0) return [];
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
    const held = input.seats.map((s, i) => {
      const seat = locked.get(`${s.eventId}/${s.seatId}`);
      if (!seat) throw notFoundError(`seats[${i}].seat_id: seat ${s.seatId} not found in event ${s.eventId}`);
      const free = seat.state === "available" || (seat.state === "held" && seat.lapsed);
      if (!free)
        throw refusal(`seats[${i}].seat_id: seat ${s.seatId} is ${seat.state === "sold" ? "sold" : "held by another sale"}`, "failedPrecondition", "SEAT_UNAVAILABLE", {
          event_id: s.eventId,
          seat_id: s.seatId,
        });
      const tier = tiers.get(`${s.eventId}/${seat.tier_id}`)!;
      return { eventId: s.eventId, seatId: s.seatId, tierId: seat.tier_id, priceMinor: BigInt(tier.price_minor), currency: tier.currency };
    });
    await tx.query(
      `UPDATE seats SET state = 'held', reservation_id = $3, hold_expires_at = $4
       WHERE (event_id, seat_id) IN (SELECT * FROM unnest($1::uuid[], $2::text[]))`,
      [held.map((s) => s.eventId), held.map((s) => s.seatId), input.reservationId, expiresAt],
    );
    return held;
  }

  /**
   * The common sale — one SKU, no seats, a new id — in one statement with no transaction
   * around it (it is atomic alone): the units taken only if the product is for sale, that
   * many are available and the kiosk may hold another reservation, then the reservation and
   * its line written from what was taken. Answers undefined when it changed nothing (or its
   * insert met the id already taken, which rolls the statement back): the transaction below
   * then finds out why, or replays the id's reservation.
   */
  async function reserveOneItem(input: ReserveInput, hash: string): Promise<LoadedReservation | undefined> {
    const item = input.items[0]!;
    try {
      const { rows } = await pool.query<ReservationRow & { unit_price_minor: string; tax_rate_basis_points: number }>(
        `WITH taken AS (
           UPDATE stock SET reserved = reserved + $6, updated_at = now()
           FROM products p
           WHERE stock.kiosk_id = $2 AND stock.sku = $5 AND p.sku = stock.sku AND p.active AND stock.on_hand - stock.reserved >= $6
             AND NOT EXISTS (SELECT 1 FROM reservations WHERE reservation_id = $1)
             AND (SELECT count(*) FROM reservations WHERE kiosk_id = $2 AND state = 'held' AND expires_at > now()) < $7
           RETURNING p.price_minor, p.currency, p.tax_rate_basis_points
         ), created AS (
           INSERT INTO reservations (reservation_id, kiosk_id, state, request_hash, total_minor, currency, expires_at, created_by)
           SELECT $1, $2, 'held', $3, price_minor * $6, currency, now() + make_interval(secs => $4), $8 FROM taken
           RETURNING *
         ), line AS (
           INSERT INTO reservation_items (reservation_id, sku, quantity, unit_price_minor, currency, tax_rate_basis_points)
           SELECT $1, $5, $6, price_minor, currency, tax_rate_basis_points FROM taken
         )
         SELECT created.*, taken.price_minor::text AS unit_price_minor, taken.tax_rate_basis_points FROM created, taken`,
        [input.reservationId, input.kioskId, hash, input.ttlSeconds, item.sku, item.quantity.toString(), limits.maxHeldPerKiosk, input.createdBy],
      );
      const found = rows[0];
      if (!found) return undefined;
      const { unit_price_minor, tax_rate_basis_points, ...row } = found;
      return {
        row,
        items: [{ sku: item.sku, quantity: item.quantity.toString(), unit_price_minor, currency: row.currency, tax_rate_basis_points }],
        seats: [],
      };
    } catch (err) {
      // A twin under the same id inserted first (or, in a transaction, holds the id and waits for
      // these units: PostgreSQL picks one of the two to abort): the statement rolled back whole.
      const code = (err as { code?: unknown }).code;
      if (code === "23505" || code === "40P01") return undefined;
      throw err;
    }
  }

  const outcomeOf = (err: unknown) => {
    const reason = err instanceof DomainError ? err.info?.reason : undefined;
    return reason === "OUT_OF_STOCK" ? "out_of_stock" : reason === "SEAT_UNAVAILABLE" ? "seats_unavailable" : "refused";
  };

  const book: ReservationBook = {
    async reserve(input) {
      const hash = requestHash(input);
      try {
        if (input.items.length === 1 && input.seats.length === 0) {
          const reserved = await reserveOneItem(input, hash);
          if (reserved) {
            metrics.reservation("reserved");
            return toReservation(reserved);
          }
        }
        let result;
        try {
          result = await attempt(input, hash);
        } catch (err) {
          // Units may still sit in this kiosk's overdue reservations the sweeper has not
          // reached yet: expire those now and try once more.
          if (outcomeOf(err) !== "out_of_stock" || (await book.expireDue({ kioskId: input.kioskId })) === 0) throw err;
          result = await attempt(input, hash);
        }
        metrics.reservation(result.replayed ? "replayed" : "reserved");
        return toReservation(result.reservation);
      } catch (err) {
        metrics.reservation(outcomeOf(err));
        throw err;
      }
    },

    get: (reservationId) => load(pool, reservationId),

    async commit(reservationId, authorize) {
      const result = await inTransaction(pool, async (tx) => {
        const sold = await commitOneItem(tx, reservationId);
        if (sold) {
          // Refused here, the transaction rolls the sale back.
          authorize(sold);
          return { r: sold, changed: true };
        }
        const r = await load(tx, reservationId, { forUpdate: true });
        if (!r) throw notFound(reservationId);
        authorize(r);
        if (r.row.state === "committed") return { r, changed: false };
        if (r.row.state !== "held") return { r, changed: false };
        if (isOverdue(r.row)) {
          // Paid too late: the hold is over. Expire it now (the event tells orders) and refuse.
          await expire(tx, [reservationId]);
          return { r: (await load(tx, reservationId))!, changed: true };
        }
        // One row needs no ordering: its UPDATE locks it.
        if (r.items.length > 1) await stock.lockInOrder(tx, r.items.map((i) => ({ kioskId: r.row.kiosk_id, sku: i.sku })));
        // The reservation becomes committed with its last item's sale (one statement); a
        // reservation of seats only, below.
        const at = new Date();
        for (const [n, i] of r.items.entries())
          await stock.sell(tx, r.row.kiosk_id, i.sku, BigInt(i.quantity), n === r.items.length - 1 ? { reservationId, at } : undefined);
        if (r.seats.length > 0) {
          await lockSeats(tx, r.seats.map((s) => ({ eventId: s.event_id, seatId: s.seat_id })));
          // Fenced by reservation_id: only seats this reservation still holds become sold.
          const { rowCount } = await tx.query(
            "UPDATE seats SET state = 'sold', hold_expires_at = NULL WHERE reservation_id = $1 AND state = 'held'",
            [reservationId],
          );
          if (rowCount !== r.seats.length)
            throw refusal(`reservation ${reservationId} no longer holds all its seats`, "failedPrecondition", "HOLD_LOST", { reservation_id: reservationId });
        }
        if (r.items.length > 0) return { r: { row: { ...r.row, state: "committed" as const, updated_at: at }, items: r.items, seats: r.seats }, changed: true };
        return { r: await updated(tx, r, "UPDATE reservations SET state = 'committed', updated_at = now() WHERE reservation_id = $1 RETURNING *"), changed: true };
      });
      const { row } = result.r;
      if (row.state === "committed") {
        if (result.changed) metrics.reservation("committed");
        return toReservation(result.r);
      }
      if (result.changed) metrics.reservation("expired");
      throw refusal(
        `reservation ${reservationId} is ${row.state}${row.state === "expired" ? ` (its hold ended ${row.expires_at.toISOString()})` : ""}; it cannot be committed`,
        "failedPrecondition",
        row.state === "expired" ? "RESERVATION_EXPIRED" : "RESERVATION_RELEASED",
        { reservation_id: reservationId, state: row.state },
      );
    },

    async release(reservationId, authorize) {
      const result = await inTransaction(pool, async (tx) => {
        const r = await load(tx, reservationId, { forUpdate: true });
        if (!r) throw notFound(reservationId);
        authorize(r);
        if (r.row.state === "committed")
          throw refusal(`reservation ${reservationId} is committed (sold); it cannot be released`, "failedPrecondition", "RESERVATION_COMMITTED", {
            reservation_id: reservationId,
          });
        if (r.row.state !== "held") return { r, changed: false };
        await giveBack(tx, [reservationId]);
        return { r: await updated(tx, r, "UPDATE reservations SET state = 'released', updated_at = now() WHERE reservation_id = $1 RETURNING *"), changed: true };
      });
      if (result.changed) metrics.reservation("released");
      return toReservation(result.r);
    },

    async expireDue(options = {}) {
      const limit = options.limit ?? 100;
      const expired = await inTransaction(pool, async (tx) => {
        const params: unknown[] = [limit];
        const byKiosk = options.kioskId === undefined ? "" : ` AND kiosk_id = $${params.push(options.kioskId)}`;
        // SKIP LOCKED: replicas sweeping at once take different reservations, and a
        // reservation being committed right now is left to its commit.
        const { rows } = await tx.query<{ reservation_id: string }>(
          `SELECT reservation_id FROM reservations WHERE state = 'held' AND expires_at <= now()${byKiosk}
           ORDER BY expires_at LIMIT $1 FOR UPDATE SKIP LOCKED`,
          params,
        );
        if (rows.length > 0) await expire(tx, rows.map((r) => r.reservation_id));
        return rows.length;
      });
      if (expired > 0) metrics.reservation("expired", expired);
      return expired;
    },
  };

  /**
   * The common commit — a live hold of one SKU and no seats — in one statement: the
   * reservation locked and marked committed (only while held and not overdue), then its units
   * sold; the stock's new level is published as sell() does. Answers undefined when it changed
   * nothing: the caller then loads the reservation and takes the general path (it refuses, or
   * expires, or answers an earlier commit, or sells several lines in lock order).
   */
  async function commitOneItem(tx: PoolClient, reservationId: string): Promise<LoadedReservation | undefined> {
    const { rows } = await tx.query<
      ReservationRow & { line: ItemRow; stock_on_hand: string; stock_reserved: string; stock_threshold: string; stock_updated_at: Date }
    >(
      `WITH committed AS (
         UPDATE reservations SET state = 'committed', updated_at = now()
         WHERE reservation_id = $1 AND state = 'held' AND expires_at > now()
           AND NOT EXISTS (SELECT 1 FROM reservation_seats WHERE reservation_id = $1)
           AND (SELECT count(*) FROM reservation_items WHERE reservation_id = $1) = 1
         RETURNING *
       ), line AS (
         SELECT i.* FROM reservation_items i WHERE i.reservation_id = $1 AND EXISTS (SELECT 1 FROM committed)
       ), sold AS (
         UPDATE stock SET on_hand = on_hand - line.quantity, reserved = reserved - line.quantity, updated_at = now()
         FROM committed, line WHERE stock.kiosk_id = committed.kiosk_id AND stock.sku = line.sku
         RETURNING stock.on_hand, stock.reserved, stock.low_stock_threshold, stock.updated_at
       )
       SELECT committed.*,
         json_build_object('sku', line.sku, 'quantity', line.quantity::text, 'unit_price_minor', line.unit_price_minor::text,
           'currency', line.currency, 'tax_rate_basis_points', line.tax_rate_basis_points) AS line,
         sold.on_hand::text AS stock_on_hand, sold.reserved::text AS stock_reserved, sold.low_stock_threshold::text AS stock_threshold,
         sold.updated_at AS stock_updated_at
       FROM committed, line, sold`,
      [reservationId],
    );
    const found = rows[0];
    if (!found) return undefined;
    const { line, stock_on_hand, stock_reserved, stock_threshold, stock_updated_at, ...row } = found;
    const quantity = BigInt(line.quantity);
    const after = { kiosk_id: row.kiosk_id, sku: line.sku, on_hand: stock_on_hand, reserved: stock_reserved, low_stock_threshold: stock_threshold, updated_at: stock_updated_at };
    await publishStockLevels(tx, [toStockLevel(after)]);
    await publishStockCrossing(tx, {
      kioskId: row.kiosk_id,
      sku: line.sku,
      onHandBefore: BigInt(stock_on_hand) + quantity,
      thresholdBefore: BigInt(stock_threshold),
      onHand: BigInt(stock_on_hand),
      threshold: BigInt(stock_threshold),
    });
    return { row, items: [line], seats: [] };
  }

  /** Expires locked, held reservations: units and seats back, an event for each. */
  async function expire(tx: PoolClient, reservationIds: string[]) {
    await giveBack(tx, reservationIds);
    await tx.query("UPDATE reservations SET state = 'expired', updated_at = now() WHERE reservation_id = ANY($1::uuid[])", [reservationIds]);
    // Read back once for all of them, their events queued in one statement.
    await publishReservationsExpired(tx, (await loadMany(tx, reservationIds)).map((r) => toReservation(r)));
  }

  return book;
}
