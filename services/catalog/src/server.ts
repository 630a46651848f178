// catalog's RPC handlers: validate, scope to the caller's kiosk, call the domain
// modules, map to the contract. Who may call each RPC is declared in proto/ and
// enforced by the runtime; which kiosk a device may touch is decided here.
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type ConnectRouter, type HandlerContext } from "@connectrpc/connect";
import { EventService, InventoryService, ProductService, ReservationService } from "@adminkiosk/proto/adminkiosk/catalog/v1/catalog_pb";
import {
  cursorPatterns,
  decodePageToken,
  describePrincipal,
  encodePageToken,
  inTransaction,
  invalidArgument,
  pageSize,
  principalOf,
  kioskScope,
  requireText,
  requireUuid,
  requestInfo,
  type Pool,
  requireCurrency,
} from "@adminkiosk/runtime";
import { stock, toRestockRecord, toStockLevel } from "./inventory.js";
import { products, toProduct, type ProductFields, type ProductFilter } from "./products.js";
import { toReservation, type LoadedReservation, type ReservationBook } from "./reservations.js";
import { optionalText, requireCount, requireImageUrls, requirePrice, requireSku, requireTaxRate } from "./rules.js";
import { events, requireNewEvent, requireSeatMap, requireStartTime, requireVenueLocation, toEvent, type EventRow, type VenueLocation } from "./seating.js";

export const catalogServices = [ProductService, InventoryService, EventService, ReservationService];

export interface CatalogDeps {
  pool: Pool;
  reservations: ReservationBook;
  /** Hold length when Reserve does not name one (seconds). */
  defaultTtlSeconds: number;
}

const limits = { itemLines: 50, seats: 20, quantity: 1000, ttlSeconds: 3600 };

function requireOwnReservation(ctx: HandlerContext, r: LoadedReservation) {
  const p = principalOf(ctx);
  if (p.kind === "device" && p.kioskId !== r.row.kiosk_id)
    throw new ConnectError(`reservation_id: reservation ${r.row.reservation_id} belongs to another kiosk`, Code.PermissionDenied);
}

const requireReservationId = (field: string, value: string) => requireUuid(field, value).toLowerCase();

function requireProductFields(field: string, p: { name: string; description: string; category: string; priceMinor: bigint; currency: string; taxRateBasisPoints: number; imageUrls: string[]; active: boolean }): ProductFields {
  return {
    name: requireText(`${field}name`, p.name, { max: 200 }),
    description: optionalText(`${field}description`, p.description, 2000),
    category: requireText(`${field}category`, p.category, { max: 100 }),
    priceMinor: requirePrice(`${field}price_minor`, p.priceMinor),
    currency: requireCurrency(`${field}currency`, p.currency),
    taxRateBasisPoints: requireTaxRate(`${field}tax_rate_basis_points`, p.taxRateBasisPoints),
    imageUrls: requireImageUrls(`${field}image_urls`, p.imageUrls),
    active: p.active,
  };
}

const locationOf = (row: EventRow): VenueLocation =>
  row.venue_latitude === null || row.venue_longitude === null ? null : { latitude: row.venue_latitude, longitude: row.venue_longitude };

/** UpdateEvent's venue place: both fields set it, neither keeps it, clear_venue_location removes it. */
function updatedVenueLocation(req: { venueLatitude?: number; venueLongitude?: number; clearVenueLocation: boolean }, current: EventRow): VenueLocation {
  if (req.clearVenueLocation) {
    if (req.venueLatitude !== undefined || req.venueLongitude !== undefined) throw invalidArgument("clear_venue_location", "cannot be set with venue_latitude or venue_longitude");
    return null;
  }
  return requireVenueLocation("", req.venueLatitude, req.venueLongitude) ?? locationOf(current);
}

export function catalogRoutes(deps: CatalogDeps) {
  const { pool, reservations } = deps;
  const productNotFound = (sku: string) => new ConnectError(`product ${sku} not found`, Code.NotFound);
  const eventNotFound = (id: string) => new ConnectError(`event ${id} not found`, Code.NotFound);

  const loadEvent = async (eventId: string, withSeatMap: boolean) => {
    const row = await events.byId(pool, eventId);
    if (!row) throw eventNotFound(eventId);
    return toEvent(row, await events.tiers(pool, [eventId]), withSeatMap);
  };

  return (router: ConnectRouter) => {
    router.service(ProductService, {
      async createProduct(req) {
        if (!req.product) throw invalidArgument("product", "is required");
        const sku = requireSku("product.sku", req.product.sku);
        const row = await products.insert(pool, sku, requireProductFields("product.", req.product));
        if (!row) throw new ConnectError(`product ${sku} already exists`, Code.AlreadyExists);
        return { product: toProduct(row) };
      },

      async getProduct(req, ctx) {
        const sku = requireSku("sku", req.sku);
        const row = await products.bySku(pool, sku);
        // Kiosks see only what is for sale.
        if (!row || (!row.active && principalOf(ctx).kind === "device")) throw productNotFound(sku);
        return { product: toProduct(row) };
      },

      async listProducts(req, ctx) {
        const limit = pageSize("page_size", req.pageSize, 50, 500);
        const query = req.query.trim() === "" ? undefined : requireText("query", req.query.trim(), { max: 200 });
        const filter: ProductFilter = {
          query,
          category: req.category === "" ? undefined : requireText("category", req.category, { max: 100 }),
          includeInactive: req.includeInactive && principalOf(ctx).kind === "user",
          minPriceMinor: req.minPriceMinor === 0n ? undefined : requirePrice("min_price_minor", req.minPriceMinor),
          maxPriceMinor: req.maxPriceMinor === 0n ? undefined : requirePrice("max_price_minor", req.maxPriceMinor),
        };
        if (filter.minPriceMinor !== undefined && filter.maxPriceMinor !== undefined && filter.minPriceMinor > filter.maxPriceMinor)
          throw invalidArgument("max_price_minor", "must not be below min_price_minor");
        if (query === undefined) {
          const after = decodePageToken("page_token", req.pageToken, { after: cursorPatterns.any })?.after;
          const [rows, total] = await Promise.all([products.browse(pool, filter, { limit: limit + 1, afterSku: after }), products.count(pool, filter)]);
          const page = rows.slice(0, limit);
          const last = page.at(-1);
          return { products: page.map(toProduct), nextPageToken: rows.length > limit && last ? encodePageToken({ after: last.sku }) : "", totalSize: total };
        }
        // Ranked results page by offset (relevance has no stable key to resume after).
        const offset = Number(decodePageToken("page_token", req.pageToken, { offset: cursorPatterns.integer })?.offset ?? 0);
        const [rows, total] = await Promise.all([products.search(pool, { ...filter, query }, { limit: limit + 1, offset }), products.count(pool, filter)]);
        const page = rows.slice(0, limit);
        return { products: page.map(toProduct), nextPageToken: rows.length > limit ? encodePageToken({ offset: String(offset + limit) }) : "", totalSize: total };
      },

      async updateProduct(req) {
        const sku = requireSku("sku", req.sku);
        const row = await inTransaction(pool, async (tx) => {
          const current = await products.bySku(tx, sku, { forUpdate: true });
          if (!current) throw productNotFound(sku);
          const fields = requireProductFields("", {
            name: req.name ?? current.name,
            description: req.description ?? current.description,
            category: req.category ?? current.category,
            priceMinor: req.priceMinor ?? BigInt(current.price_minor),
            currency: req.currency ?? current.currency,
            taxRateBasisPoints: req.taxRateBasisPoints ?? current.tax_rate_basis_points,
            imageUrls: req.updateImageUrls ? req.imageUrls : current.image_urls,
            active: req.active ?? current.active,
          });
          return products.update(tx, sku, fields);
        });
        return { product: toProduct(row!) };
      },

      async deleteProduct(req) {
        const sku = requireSku("sku", req.sku);
        const row = await inTransaction(pool, async (tx) => {
          const current = await products.bySku(tx, sku, { forUpdate: true });
          if (!current) throw productNotFound(sku);
          return products.update(tx, sku, {
            name: current.name,
            description: current.description,
            category: current.category,
            priceMinor: BigInt(current.price_minor),
            currency: current.currency,
            taxRateBasisPoints: current.tax_rate_basis_points,
            imageUrls: current.image_urls,
            active: false,
          });
        });
        return { product: toProduct(row!) };
      },
    });

    router.service(InventoryService, {
      async getStock(req, ctx) {
        const kioskId = kioskScope(ctx, "kiosk_id", req.kioskId)!;
        const sku = requireSku("sku", req.sku);
        const row = await stock.get(pool, kioskId, sku);
        if (!row) throw new ConnectError(`kiosk ${kioskId} does not stock ${sku}`, Code.NotFound);
        return { stock: toStockLevel(row) };
      },

      async listStock(req, ctx) {
        const kioskId = kioskScope(ctx, "kiosk_id", req.kioskId, true);
        const limit = pageSize("page_size", req.pageSize, 100, 1000);
        const cursor = decodePageToken("page_token", req.pageToken, { kiosk: cursorPatterns.any, sku: cursorPatterns.any });
        const filter = { kioskId, sku: req.sku === "" ? undefined : requireSku("sku", req.sku), lowOnly: req.lowOnly };
        const [rows, total] = await Promise.all([
          stock.list(pool, filter, { limit: limit + 1, after: cursor ? { kioskId: cursor.kiosk, sku: cursor.sku } : undefined }),
          stock.count(pool, filter),
        ]);
        const page = rows.slice(0, limit);
        const last = page.at(-1);
        return {
          stock: page.map(toStockLevel),
          nextPageToken: rows.length > limit && last ? encodePageToken({ kiosk: last.kiosk_id, sku: last.sku }) : "",
          totalSize: total,
        };
      },

      async restock(req, ctx) {
        const kioskId = kioskScope(ctx, "kiosk_id", req.kioskId)!;
        const sku = requireSku("sku", req.sku);
        const quantity = requireCount("quantity", req.quantity, 1, 100_000);
        const reason = requireText("reason", req.reason, { max: 500 });
        const result = await inTransaction(pool, async (tx) => {
          if (!(await products.bySku(tx, sku))) throw productNotFound(sku);
          return stock.restock(tx, { kioskId, sku, quantity, reason, by: describePrincipal(principalOf(ctx)) });
        });
        return { stock: toStockLevel(result.stock), restock: toRestockRecord(result.restock) };
      },

      async listRestocks(req, ctx) {
        const kioskId = kioskScope(ctx, "kiosk_id", req.kioskId)!;
        const limit = pageSize("page_size", req.pageSize, 50, 500);
        const before = decodePageToken("page_token", req.pageToken, { seq: cursorPatterns.integer })?.seq;
        const rows = await stock.restocks(pool, kioskId, req.sku === "" ? undefined : requireSku("sku", req.sku), { limit: limit + 1, beforeSeq: before });
        const page = rows.slice(0, limit);
        const last = page.at(-1);
        return { restocks: page.map(toRestockRecord), nextPageToken: rows.length > limit && last ? encodePageToken({ seq: last.seq }) : "" };
      },

      async setLowStockThreshold(req, ctx) {
        const kioskId = kioskScope(ctx, "kiosk_id", req.kioskId)!;
        const sku = requireSku("sku", req.sku);
        const threshold = requireCount("low_stock_threshold", req.lowStockThreshold, 0, 1_000_000);
        const row = await inTransaction(pool, async (tx) => {
          if (!(await products.bySku(tx, sku))) throw productNotFound(sku);
          return stock.setThreshold(tx, kioskId, sku, threshold);
        });
        return { stock: toStockLevel(row) };
      },
    });

    router.service(EventService, {
      async createEvent(req) {
        const input = requireNewEvent("event", req.event);
        const eventId = await inTransaction(pool, async (tx) => (await events.insert(tx, input)).event_id);
        return { event: await loadEvent(eventId, true) };
      },

      async getEvent(req, ctx) {
        const eventId = requireUuid("event_id", req.eventId).toLowerCase();
        const event = await loadEvent(eventId, true);
        if (!event.active && principalOf(ctx).kind === "device") throw eventNotFound(eventId);
        return { event };
      },

      async listEvents(req, ctx) {
        // Which kiosks lease an event's seats is for users and services (fleet's rollouts), not other kiosks.
        if (req.includeLeaseKiosks && principalOf(ctx).kind === "device") throw new ConnectError("include_lease_kiosks: not for devices", Code.PermissionDenied);
        const limit = pageSize("page_size", req.pageSize, 50, 200);
        const cursor = decodePageToken("page_token", req.pageToken, { t: cursorPatterns.timestamp, id: cursorPatterns.uuid });
        const startAfter = req.startAfter ? timestampDate(req.startAfter) : new Date();
        const rows = await events.list(
          pool,
          { startAfter, includeInactive: req.includeInactive && principalOf(ctx).kind === "user" },
          { limit: limit + 1, after: cursor ? { startTime: cursor.t, eventId: cursor.id } : undefined },
        );
        const page = rows.slice(0, limit);
        const ids = page.map((r) => r.event_id);
        const [tiers, leaseKiosks] = await Promise.all([events.tiers(pool, ids), req.includeLeaseKiosks ? events.leaseKiosks(pool, ids) : new Map<string, string[]>()]);
        const last = page.at(-1);
        return {
          events: page.map((r) => toEvent(r, tiers.filter((t) => t.event_id === r.event_id), false, leaseKiosks.get(r.event_id))),
          nextPageToken: rows.length > limit && last ? encodePageToken({ t: last.start_time.toISOString(), id: last.event_id }) : "",
        };
      },

      async updateEvent(req) {
        const eventId = requireUuid("event_id", req.eventId).toLowerCase();
        await inTransaction(pool, async (tx) => {
          const current = await events.byId(tx, eventId, { forUpdate: true });
          if (!current) throw eventNotFound(eventId);
          await events.update(tx, eventId, {
            name: req.name === undefined ? current.name : requireText("name", req.name, { max: 200 }),
            venue: req.venue === undefined ? current.venue : requireText("venue", req.venue, { max: 200 }),
            venueLocation: updatedVenueLocation(req, current),
            description: req.description === undefined ? current.description : optionalText("description", req.description, 2000),
            startTime: req.startTime ? requireStartTime("start_time", req.startTime) : current.start_time,
            active: req.active ?? current.active,
          });
        });
        return { event: await loadEvent(eventId, true) };
      },

      async updateEventSeatMap(req, ctx) {
        const eventId = requireUuid("event_id", req.eventId).toLowerCase();
        const map = requireSeatMap("", req);
        await inTransaction(pool, async (tx) => {
          if (!(await events.byId(tx, eventId, { forUpdate: true }))) throw eventNotFound(eventId);
          const taken = await events.lockAndFindTaken(tx, eventId);
          if (taken) {
            const why =
              taken.state === "sold"
                ? "is sold"
                : taken.lease_kiosk
                  ? `is leased to kiosk ${taken.lease_kiosk}`
                  : `is held by a reservation (until ${taken.hold_expires_at?.toISOString()})`;
            throw new ConnectError(`event ${eventId}: seat ${taken.seat_id} ${why}; the seat map can change only while no seat is sold, held or leased`, Code.FailedPrecondition);
          }
          await events.replaceSeatMap(tx, eventId, map);
        });
        requestInfo(ctx).log.info({ eventId, seats: map.seats.length, by: describePrincipal(principalOf(ctx)) }, "event seat map replaced");
        return { event: await loadEvent(eventId, true) };
      },

      async deleteEvent(req) {
        const eventId = requireUuid("event_id", req.eventId).toLowerCase();
        await inTransaction(pool, async (tx) => {
          const current = await events.byId(tx, eventId, { forUpdate: true });
          if (!current) throw eventNotFound(eventId);
          await events.update(tx, eventId, { name: current.name, venue: current.venue, venueLocation: locationOf(current), description: current.description, startTime: current.start_time, active: false });
        });
        return { event: await loadEvent(eventId, true) };
      },

      async getSeatAvailability(req, ctx) {
        const eventId = requireUuid("event_id", req.eventId).toLowerCase();
        const row = await events.byId(pool, eventId);
        if (!row || (!row.active && principalOf(ctx).kind === "device")) throw eventNotFound(eventId);
        const sectionId = req.sectionId === "" ? undefined : requireText("section_id", req.sectionId, { max: 16 });
        return { eventId, ...(await events.availability(pool, eventId, sectionId)) };
      },
    });

    router.service(ReservationService, {
      async reserve(req, ctx) {
        const reservationId = requireReservationId("reservation_id", req.reservationId);
        const kioskId = kioskScope(ctx, "kiosk_id", req.kioskId)!;
        if (req.items.length === 0 && req.seats.length === 0) throw invalidArgument("items", "a reservation needs at least one item or seat");
        if (req.items.length > limits.itemLines) throw invalidArgument("items", `must hold at most ${limits.itemLines} lines`);
        if (req.seats.length > limits.seats) throw invalidArgument("seats", `must hold at most ${limits.seats} seats`);
        const skus = new Set<string>();
        const items = req.items.map((item, i) => {
          const sku = requireSku(`items[${i}].sku`, item.sku);
          if (skus.has(sku)) throw invalidArgument(`items[${i}].sku`, `${sku} is listed twice; put the whole quantity on one line`);
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
        if (req.ttlSeconds !== 0 && (req.ttlSeconds < 1 || req.ttlSeconds > limits.ttlSeconds)) throw invalidArgument("ttl_seconds", `must be between 1 and ${limits.ttlSeconds}`);
        const reservation = await reservations.reserve({
          reservationId,
          kioskId,
          items,
          seats,
          ttlSeconds: req.ttlSeconds || deps.defaultTtlSeconds,
          createdBy: describePrincipal(principalOf(ctx)),
        });
        return { reservation };
      },

      async getReservation(req, ctx) {
        const reservationId = requireReservationId("reservation_id", req.reservationId);
        const r = await reservations.get(reservationId);
        if (!r) throw new ConnectError(`reservation ${reservationId} not found`, Code.NotFound);
        requireOwnReservation(ctx, r);
        return { reservation: toReservation(r) };
      },

      async commitReservation(req, ctx) {
        const reservationId = requireReservationId("reservation_id", req.reservationId);
        return { reservation: await reservations.commit(reservationId, (r) => requireOwnReservation(ctx, r)) };
      },

      async releaseReservation(req, ctx) {
        const reservationId = requireReservationId("reservation_id", req.reservationId);
        const reason = req.reason === "" ? "" : requireText("reason", req.reason, { max: 200 });
        const reservation = await reservations.release(reservationId, (r) => requireOwnReservation(ctx, r));
        requestInfo(ctx).log.info({ reservationId, reason }, "reservation released");
        return { reservation };
      },
    });
  };
}
