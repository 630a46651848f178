// Ticketed events and their seat maps (schema "catalog"): sections of rows of seats,
// each seat in a price tier, and which seats are available, held or sold. A hold
// past its expiry counts as available here, before the sweeper frees it.
import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { SeatState, type Event, type EventSchema, type SeatStatusSchema, type TierAvailabilitySchema } from "@adminkiosk/proto/adminkiosk/catalog/v1/catalog_pb";
import { invalid, requireCurrency, requireText, type Pool, type PoolClient } from "@adminkiosk/runtime";
import { optionalText, requirePrice, requireSeatPart } from "./rules.js";

type Db = Pool | PoolClient;

export const seatLimits = { tiers: 20, sections: 50, rowsPerSection: 200, seatsPerRow: 500, seats: 20_000 };

export interface SeatMapJson {
  sections: { sectionId: string; name: string; rows: { rowId: string; seats: { number: string; tierId: string }[] }[] }[];
}

/** A venue's place (WGS84 degrees), or null: an event need not have one. */
export type VenueLocation = { latitude: number; longitude: number } | null;

export interface NewEvent {
  name: string;
  venue: string;
  venueLocation: VenueLocation;
  description: string;
  startTime: Date;
  active: boolean;
  tiers: { tierId: string; name: string; priceMinor: bigint; currency: string }[];
  seatMap: SeatMapJson;
  seats: { seatId: string; sectionId: string; rowId: string; number: string; tierId: string }[];
}

export interface EventRow {
  event_id: string;
  name: string;
  venue: string;
  venue_latitude: number | null;
  venue_longitude: number | null;
  description: string;
  start_time: Date;
  active: boolean;
  seat_map: SeatMapJson;
  seat_count: number;
  created_at: Date;
  updated_at: Date;
}

export interface TierRow {
  event_id: string;
  tier_id: string;
  name: string;
  price_minor: string;
  currency: string;
}

export const seatIdOf = (sectionId: string, rowId: string, number: string) => `${sectionId}-${rowId}-${number}`;

/** Millisecond precision, so a start time round-trips through page tokens exactly. */
export function requireStartTime(field: string, value: Event["startTime"]): Date {
  if (!value) throw invalid(field, "is required");
  const date = new Date(Math.floor(timestampDate(value).getTime()));
  if (Number.isNaN(date.getTime()) || date.getFullYear() < 2000 || date.getFullYear() > 2200) throw invalid(field, "must be a time between the years 2000 and 2200");
  return date;
}

/**
 * A venue's place from optional latitude and longitude: both or neither (null), in range.
 * Fields are named `${prefix}venue_latitude` and `${prefix}venue_longitude`.
 */
export function requireVenueLocation(prefix: string, latitude: number | undefined, longitude: number | undefined): VenueLocation {
  if (latitude === undefined && longitude === undefined) return null;
  if (latitude === undefined) throw invalid(`${prefix}venue_latitude`, "is required with venue_longitude (both or neither)");
  if (longitude === undefined) throw invalid(`${prefix}venue_longitude`, "is required with venue_latitude (both or neither)");
  if (!(Number.isFinite(latitude) && latitude >= -90 && latitude <= 90)) throw invalid(`${prefix}venue_latitude`, "must be between -90 and 90");
  if (!(Number.isFinite(longitude) && longitude >= -180 && longitude <= 180)) throw invalid(`${prefix}venue_longitude`, "must be between -180 and 180");
  return { latitude, longitude };
}

/** Validates a whole event with its seat map, as CreateEvent receives it. */
export function requireNewEvent(field: string, e: Event | undefined): NewEvent {
  if (!e) throw invalid(field, "is required");
  const name = requireText(`${field}.name`, e.name, { max: 200 });
  const venue = requireText(`${field}.venue`, e.venue, { max: 200 });
  const venueLocation = requireVenueLocation(`${field}.`, e.venueLatitude, e.venueLongitude);
  const description = optionalText(`${field}.description`, e.description, 2000);
  const startTime = requireStartTime(`${field}.start_time`, e.startTime);

  const { tiers, seatMap, seats } = requireSeatMap(`${field}.`, e);
  return { name, venue, venueLocation, description, startTime, active: e.active, tiers, seatMap, seats };
}

export type SeatMapInput = Pick<Event, "priceTiers" | "sections">;

/** Validates price tiers and a seat map (fields named `${prefix}price_tiers…`, `${prefix}sections…`). */
export function requireSeatMap(prefix: string, e: SeatMapInput): Pick<NewEvent, "tiers" | "seatMap" | "seats"> {
  if (e.priceTiers.length < 1 || e.priceTiers.length > seatLimits.tiers) throw invalid(`${prefix}price_tiers`, `must hold 1 to ${seatLimits.tiers} tiers`);
  const tiers = e.priceTiers.map((t, i) => ({
    tierId: requireSeatPart(`${prefix}price_tiers[${i}].tier_id`, t.tierId, 32),
    name: requireText(`${prefix}price_tiers[${i}].name`, t.name, { max: 100 }),
    priceMinor: requirePrice(`${prefix}price_tiers[${i}].price_minor`, t.priceMinor),
    currency: requireCurrency(`${prefix}price_tiers[${i}].currency`, t.currency),
  }));
  const tierIds = new Set<string>();
  tiers.forEach((t, i) => {
    if (tierIds.has(t.tierId)) throw invalid(`${prefix}price_tiers[${i}].tier_id`, `${t.tierId} is listed twice`);
    if (t.currency !== tiers[0]!.currency) throw invalid(`${prefix}price_tiers[${i}].currency`, `must be ${tiers[0]!.currency}, as the first tier's: an event sells in one currency`);
    tierIds.add(t.tierId);
  });

  if (e.sections.length < 1 || e.sections.length > seatLimits.sections) throw invalid(`${prefix}sections`, `must hold 1 to ${seatLimits.sections} sections`);
  const seats: NewEvent["seats"] = [];
  const sectionIds = new Set<string>();
  const seatMap: SeatMapJson = { sections: [] };
  e.sections.forEach((s, si) => {
    const sf = `${prefix}sections[${si}]`;
    const sectionId = requireSeatPart(`${sf}.section_id`, s.sectionId);
    if (sectionIds.has(sectionId)) throw invalid(`${sf}.section_id`, `${sectionId} is listed twice`);
    sectionIds.add(sectionId);
    const section: SeatMapJson["sections"][number] = { sectionId, name: requireText(`${sf}.name`, s.name, { max: 100 }), rows: [] };
    if (s.rows.length < 1 || s.rows.length > seatLimits.rowsPerSection) throw invalid(`${sf}.rows`, `must hold 1 to ${seatLimits.rowsPerSection} rows`);
    const rowIds = new Set<string>();
    s.rows.forEach((r, ri) => {
      const rf = `${sf}.rows[${ri}]`;
      const rowId = requireSeatPart(`${rf}.row_id`, r.rowId);
      if (rowIds.has(rowId)) throw invalid(`${rf}.row_id`, `${rowId} is listed twice`);
      rowIds.add(rowId);
      if (r.seats.length < 1 || r.seats.length > seatLimits.seatsPerRow) throw invalid(`${rf}.seats`, `must hold 1 to ${seatLimits.seatsPerRow} seats`);
      const numbers = new Set<string>();
      const row: SeatMapJson["sections"][number]["rows"][number] = { rowId, seats: [] };
      r.seats.forEach((p, pi) => {
        const pf = `${rf}.seats[${pi}]`;
        const number = requireSeatPart(`${pf}.number`, p.number);
        if (numbers.has(number)) throw invalid(`${pf}.number`, `${number} is listed twice`);
        numbers.add(number);
        if (!tierIds.has(p.tierId)) throw invalid(`${pf}.tier_id`, "must name one of the event's price_tiers");
        row.seats.push({ number, tierId: p.tierId });
        seats.push({ seatId: seatIdOf(sectionId, rowId, number), sectionId, rowId, number, tierId: p.tierId });
      });
      section.rows.push(row);
    });
    seatMap.sections.push(section);
  });
  if (seats.length > seatLimits.seats) throw invalid(`${prefix}sections`, `must hold at most ${seatLimits.seats} seats in all`);
  return { tiers, seatMap, seats };
}

export function toEvent(row: EventRow, tiers: TierRow[], withSeatMap: boolean, leaseKioskIds: string[] = []): MessageInitShape<typeof EventSchema> {
  return {
    eventId: row.event_id,
    name: row.name,
    venue: row.venue,
    ...(row.venue_latitude === null || row.venue_longitude === null ? {} : { venueLatitude: row.venue_latitude, venueLongitude: row.venue_longitude }),
    leaseKioskIds,
    description: row.description,
    startTime: timestampFromDate(row.start_time),
    active: row.active,
    priceTiers: tiers.map((t) => ({ tierId: t.tier_id, name: t.name, priceMinor: BigInt(t.price_minor), currency: t.currency })),
    sections: withSeatMap
      ? row.seat_map.sections.map((s) => ({
          sectionId: s.sectionId,
          name: s.name,
          rows: s.rows.map((r) => ({ rowId: r.rowId, seats: r.seats.map((p) => ({ ...p, seatId: seatIdOf(s.sectionId, r.rowId, p.number) })) })),
        }))
      : [],
    seatCount: row.seat_count,
    createTime: timestampFromDate(row.created_at),
    updateTime: timestampFromDate(row.updated_at),
  };
}

const seatStates: Record<string, SeatState> = { available: SeatState.AVAILABLE, held: SeatState.HELD, sold: SeatState.SOLD };

export const events = {
  async insert(tx: PoolClient, e: NewEvent) {
    const { rows } = await tx.query<EventRow>(
      `INSERT INTO events (name, venue, venue_latitude, venue_longitude, description, start_time, active, seat_map, seat_count)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING *`,
      [e.name, e.venue, e.venueLocation?.latitude ?? null, e.venueLocation?.longitude ?? null, e.description, e.startTime, e.active, JSON.stringify(e.seatMap), e.seats.length],
    );
    const event = rows[0]!;
    await tx.query(
      `INSERT INTO price_tiers (event_id, tier_id, name, price_minor, currency)
       SELECT $1::uuid, * FROM unnest($2::text[], $3::text[], $4::bigint[], $5::text[])`,
      [event.event_id, e.tiers.map((t) => t.tierId), e.tiers.map((t) => t.name), e.tiers.map((t) => t.priceMinor.toString()), e.tiers.map((t) => t.currency)],
    );
    await tx.query(
      `INSERT INTO seats (event_id, seat_id, section_id, row_id, number, tier_id, position)
       SELECT $1::uuid, a, b, c, d, e, n FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[]) WITH ORDINALITY AS s(a, b, c, d, e, n)`,
      [event.event_id, ...(["seatId", "sectionId", "rowId", "number", "tierId"] as const).map((k) => e.seats.map((s) => s[k]))],
    );
    return event;
  },
  async byId(db: Db, eventId: string, options: { forUpdate?: boolean } = {}) {
    const { rows } = await db.query<EventRow>(`SELECT * FROM events WHERE event_id = $1 ${options.forUpdate ? "FOR UPDATE" : ""}`, [eventId]);
    return rows[0];
  },
  async byIds(db: Db, eventIds: string[]) {
    const { rows } = await db.query<EventRow>(`SELECT * FROM events WHERE event_id = ANY($1::uuid[])`, [eventIds]);
    return new Map(rows.map((r) => [r.event_id, r]));
  },
  /** Per event, the kiosks holding an active lease of any of its seats (they sell its tickets). */
  async leaseKiosks(db: Db, eventIds: string[]): Promise<Map<string, string[]>> {
    const { rows } = await db.query<{ event_id: string; kiosks: string[] }>(
      `SELECT s.event_id, array_agg(DISTINCT l.kiosk_id ORDER BY l.kiosk_id) AS kiosks
       FROM lease_seats s JOIN leases l ON l.lease_id = s.lease_id AND l.state = 'active'
       WHERE s.event_id = ANY($1::uuid[]) GROUP BY s.event_id`,
      [eventIds],
    );
    return new Map(rows.map((r) => [r.event_id, r.kiosks]));
  },
  async tiers(db: Db, eventIds: string[]) {
    const { rows } = await db.query<TierRow>(`SELECT * FROM price_tiers WHERE event_id = ANY($1::uuid[]) ORDER BY event_id, tier_id`, [eventIds]);
    return rows;
  },
  async list(db: Db, filter: { startAfter: Date; includeInactive: boolean }, page: { limit: number; after?: { startTime: string; eventId: string } }) {
    const params: unknown[] = [filter.startAfter];
    const active = filter.includeInactive ? "" : " AND active";
    const after = page.after ? ` AND (start_time, event_id) > ($${params.push(page.after.startTime)}::timestamptz, $${params.push(page.after.eventId)}::uuid)` : "";
    const { rows } = await db.query<EventRow>(
      `SELECT * FROM events WHERE start_time >= $1${active}${after} ORDER BY start_time, event_id LIMIT $${params.push(page.limit)}`,
      params,
    );
    return rows;
  },
  async update(tx: PoolClient, eventId: string, e: { name: string; venue: string; venueLocation: VenueLocation; description: string; startTime: Date; active: boolean }) {
    const { rows } = await tx.query<EventRow>(
      `UPDATE events SET name = $2, venue = $3, venue_latitude = $7, venue_longitude = $8, description = $4, start_time = $5, active = $6, updated_at = now()
       WHERE event_id = $1 RETURNING *`,
      [eventId, e.name, e.venue, e.description, e.startTime, e.active, e.venueLocation?.latitude ?? null, e.venueLocation?.longitude ?? null],
    );
    return rows[0]!;
  },
  /**
   * Locks every seat of the event (in seat order, as reservations and leases lock them)
   * and returns the first one that is sold or held (a reservation's hold, lapsed or
   * not, or a lease's), with the lease's kiosk when a lease holds it.
   */
  async lockAndFindTaken(tx: PoolClient, eventId: string) {
    const { rows } = await tx.query<{ seat_id: string; state: string; hold_expires_at: Date | null; lease_kiosk: string | null }>(
      `WITH locked AS (SELECT seat_id, state, reservation_id, hold_expires_at FROM seats WHERE event_id = $1 ORDER BY event_id, seat_id FOR UPDATE)
       SELECT k.seat_id, k.state, k.hold_expires_at, l.kiosk_id AS lease_kiosk
       FROM locked k LEFT JOIN leases l ON l.lease_id = k.reservation_id
       WHERE k.state <> 'available' ORDER BY k.seat_id LIMIT 1`,
      [eventId],
    );
    return rows[0];
  },
  /** Replaces the tiers and seat map of an event whose seats are all locked and available. */
  async replaceSeatMap(tx: PoolClient, eventId: string, m: Pick<NewEvent, "tiers" | "seatMap" | "seats">) {
    await tx.query(
      `INSERT INTO price_tiers (event_id, tier_id, name, price_minor, currency)
       SELECT $1::uuid, * FROM unnest($2::text[], $3::text[], $4::bigint[], $5::text[])
       ON CONFLICT (event_id, tier_id) DO UPDATE SET name = excluded.name, price_minor = excluded.price_minor, currency = excluded.currency`,
      [eventId, m.tiers.map((t) => t.tierId), m.tiers.map((t) => t.name), m.tiers.map((t) => t.priceMinor.toString()), m.tiers.map((t) => t.currency)],
    );
    await tx.query(`DELETE FROM seats WHERE event_id = $1 AND seat_id <> ALL($2::text[])`, [eventId, m.seats.map((s) => s.seatId)]);
    // A seat keeping its id keeps its row (updated in place), so a Reserve waiting on its lock reads the new tier.
    await tx.query(
      `INSERT INTO seats (event_id, seat_id, section_id, row_id, number, tier_id, position)
       SELECT $1::uuid, a, b, c, d, e, n FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[]) WITH ORDINALITY AS s(a, b, c, d, e, n)
       ON CONFLICT (event_id, seat_id) DO UPDATE SET section_id = excluded.section_id, row_id = excluded.row_id, number = excluded.number, tier_id = excluded.tier_id, position = excluded.position`,
      [eventId, ...(["seatId", "sectionId", "rowId", "number", "tierId"] as const).map((k) => m.seats.map((s) => s[k]))],
    );
    await tx.query(`DELETE FROM price_tiers WHERE event_id = $1 AND tier_id <> ALL($2::text[])`, [eventId, m.tiers.map((t) => t.tierId)]);
    await tx.query(`UPDATE events SET seat_map = $2, seat_count = $3, updated_at = now() WHERE event_id = $1`, [eventId, JSON.stringify(m.seatMap), m.seats.length]);
  },
  async availability(db: Db, eventId: string, sectionId: string | undefined) {
    const params: unknown[] = [eventId];
    const section = sectionId === undefined ? "" : ` AND section_id = $${params.push(sectionId)}`;
    const { rows } = await db.query<{ seat_id: string; section_id: string; row_id: string; number: string; tier_id: string; state: string }>(
      `SELECT seat_id, section_id, row_id, number, tier_id,
         CASE WHEN state = 'held' AND hold_expires_at <= now() THEN 'available' ELSE state END AS state
       FROM seats WHERE event_id = $1${section} ORDER BY position`,
      params,
    );
    const seats: MessageInitShape<typeof SeatStatusSchema>[] = rows.map((r) => ({
      seatId: r.seat_id,
      sectionId: r.section_id,
      rowId: r.row_id,
      number: r.number,
      tierId: r.tier_id,
      state: seatStates[r.state] ?? SeatState.UNSPECIFIED,
    }));
    const tiers = new Map<string, Required<Pick<MessageInitShape<typeof TierAvailabilitySchema>, "tierId" | "available" | "held" | "sold">>>();
    for (const r of rows) {
      const t = tiers.get(r.tier_id) ?? { tierId: r.tier_id, available: 0, held: 0, sold: 0 };
      if (r.state === "available" || r.state === "held" || r.state === "sold") t[r.state]++;
      tiers.set(r.tier_id, t);
    }
    return { seats, tiers: [...tiers.values()].sort((a, b) => a.tierId.localeCompare(b.tierId)) };
  },
};
