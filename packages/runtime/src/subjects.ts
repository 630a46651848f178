// The NATS subjects services speak on, in one place: each stream's name and subjects,
// the builders producers publish with, the filters consumers subscribe with, and the
// parsers consumers read a subject back with. A subject is a contract between two
// services like a proto message, so both sides use the same definition here instead of
// building a string on one side and splitting it by position on the other.

/** A token of a subject: an id as services use them (no '.', '*', '>' or white space). */
const token = (what: string, value: string): string => {
  if (!/^[^.*>\s]+$/.test(value)) throw new Error(`${what} ${JSON.stringify(value)} cannot be a subject token`);
  return value;
};

/** Splits `subject` after `prefix` (which ends with '.'), or undefined when it does not start so. */
function after(subject: string, prefix: string): string[] | undefined {
  return subject.startsWith(prefix) ? subject.slice(prefix.length).split(".") : undefined;
}

// ---- auth (stream AUTH, through auth's outbox) ----
export const authSubjects = {
  stream: { name: "AUTH", subjects: ["auth.>"] },
  deviceRevoked: (kioskId: string) => `auth.device.${token("kiosk id", kioskId)}.revoked`,
  /** Every kiosk's device revocations (link follows them). */
  allDeviceRevocations: "auth.device.*.revoked",
  parseDeviceRevoked(subject: string): { kioskId: string } | undefined {
    const rest = after(subject, "auth.device.");
    return rest?.length === 2 && rest[1] === "revoked" ? { kioskId: rest[0]! } : undefined;
  },
};

// ---- link (stream LINK, published by link; fleet consumes link.kiosk.>) ----
export type LinkEventKind = "connected" | "disconnected" | "telemetry" | "command.ack" | "command.result" | "config.applied" | "update.status";
const linkEventKinds = new Set<string>(["connected", "disconnected", "telemetry", "command.ack", "command.result", "config.applied", "update.status"]);
export const linkSubjects = {
  stream: { name: "LINK", subjects: ["link.>"] },
  /** Every kiosk's events (fleet's durable consumer). */
  allKioskEvents: "link.kiosk.>",
  event: (kioskId: string, kind: LinkEventKind) => `link.kiosk.${token("kiosk id", kioskId)}.${kind}`,
  connected: (kioskId: string) => linkSubjects.event(kioskId, "connected"),
  disconnected: (kioskId: string) => linkSubjects.event(kioskId, "disconnected"),
  telemetry: (kioskId: string) => linkSubjects.event(kioskId, "telemetry"),
  command: (kioskId: string, kind: "ack" | "result") => linkSubjects.event(kioskId, `command.${kind}`),
  configApplied: (kioskId: string) => linkSubjects.event(kioskId, "config.applied"),
  /** Where the kiosk is with installing a release (UpdateStatus; fleet's kiosk_updates). */
  updateStatus: (kioskId: string) => linkSubjects.event(kioskId, "update.status"),
  /**
   * Many kiosks' command acks and results in one message (KioskCommandEvents, a link replica's
   * tick): under link.kiosk.> for fleet's consumer, and three tokens, so never a kiosk's subject.
   */
  commandBatch: "link.kiosk.commands",
  /** Every kiosk's telemetry (notifications' alerting_status and telemetry_errors rules). */
  allTelemetry: "link.kiosk.*.telemetry",
  /** The kiosk and the kind of a link event; undefined for a subject of another shape or a kind this version does not know. */
  parse(subject: string): { kioskId: string; kind: LinkEventKind } | undefined {
    const rest = after(subject, "link.kiosk.");
    if (!rest || rest.length < 2) return undefined;
    const kind = rest.slice(1).join(".");
    return linkEventKinds.has(kind) ? { kioskId: rest[0]!, kind: kind as LinkEventKind } : undefined;
  },
  /**
   * Core NATS request/reply, outside stream LINK: fleet hands every link replica a batch of
   * deliveries (DeliverBatch); each answers for the streams it holds (DeliverBatchReply).
   */
  deliveries: "kiosks.deliver",
  /**
   * Core NATS, outside stream LINK: a replica that took a kiosk's presence over from another
   * replica tells that one (and only that one) to end its older stream (KioskConnectedEvent of
   * the new stream). Any character of a replica id that cannot be in a token becomes '_'.
   */
  replaced: (replica: string) => `linkreplica.${replica.replace(/[^A-Za-z0-9_-]/g, "_")}.replaced`,
};

// ---- fleet: the kiosk registry's events (stream FLEET, subjects fleet.kiosk.>, through
// fleet's outbox; notifications keeps kiosks' labels from them), and core NATS between fleet
// replicas (fleet.changed.>, what changed, for live views; not in the stream) ----
export type FleetChangeKind = "kiosk" | "command" | "config";
const fleetChangeKinds = new Set<string>(["kiosk", "command", "config"]);
export type KioskRegistryEventKind = "created" | "updated" | "deleted";
const kioskRegistryEventKinds = new Set<string>(["created", "updated", "deleted"]);
export const fleetSubjects = {
  stream: { name: "FLEET", subjects: ["fleet.kiosk.>", "fleet.rollout.>"] },
  /** A rollout's events (RolloutEvent): created, wave_started, gate_passed, gate_failed, paused, resumed, canceled, rolled_back, completed. */
  allRollouts: "fleet.rollout.>",
  kiosk: (kioskId: string, kind: KioskRegistryEventKind) => `fleet.kiosk.${token("kiosk id", kioskId)}.${kind}`,
  /** Every kiosk's registry events (notifications' durable consumer). */
  allKiosks: "fleet.kiosk.>",
  parseKiosk(subject: string): { kioskId: string; kind: KioskRegistryEventKind } | undefined {
    const rest = after(subject, "fleet.kiosk.");
    return rest?.length === 2 && kioskRegistryEventKinds.has(rest[1]!) ? { kioskId: rest[0]!, kind: rest[1] as KioskRegistryEventKind } : undefined;
  },
  changed: (kioskId: string, kind: FleetChangeKind) => `fleet.changed.${token("kiosk id", kioskId)}.${kind}`,
  allChanges: "fleet.changed.>",
  parseChanged(subject: string): { kioskId: string; kind: FleetChangeKind } | undefined {
    const rest = after(subject, "fleet.changed.");
    return rest?.length === 2 && fleetChangeKinds.has(rest[1]!) ? { kioskId: rest[0]!, kind: rest[1] as FleetChangeKind } : undefined;
  },
};

// ---- catalog (stream CATALOG, through catalog's outbox) ----
export const catalogSubjects = {
  stream: { name: "CATALOG", subjects: ["catalog.>"] },
  stockLow: (kioskId: string) => `catalog.stock.${token("kiosk id", kioskId)}.low`,
  stockReplenished: (kioskId: string) => `catalog.stock.${token("kiosk id", kioskId)}.replenished`,
  /** Units were added to a SKU at the kiosk (every restock; customers' back-in-stock requests wait for it). */
  stockRestocked: (kioskId: string) => `catalog.stock.${token("kiosk id", kioskId)}.restocked`,
  /** Every kiosk's restocks (customers' durable consumer). */
  allRestocks: "catalog.stock.*.restocked",
  /** A SKU's whole stock level at the kiosk after any change of its on-hand units or threshold. */
  stockLevel: (kioskId: string) => `catalog.stock.${token("kiosk id", kioskId)}.level`,
  /** Every kiosk's stock levels (fleet's durable consumer, for the query language's stock()). */
  allStockLevels: "catalog.stock.*.level",
  /** Every kiosk's low-stock and replenished events (notifications' durable consumer). */
  allStock: "catalog.stock.>",
  parseStock(subject: string): { kioskId: string; kind: "low" | "replenished" } | undefined {
    const rest = after(subject, "catalog.stock.");
    return rest?.length === 2 && (rest[1] === "low" || rest[1] === "replenished") ? { kioskId: rest[0]!, kind: rest[1] } : undefined;
  },
  reservationExpired: (reservationId: string) => `catalog.reservation.${token("reservation id", reservationId)}.expired`,
  allReservations: "catalog.reservation.>",
  parseReservation(subject: string): { reservationId: string; kind: string } | undefined {
    const rest = after(subject, "catalog.reservation.");
    return rest?.length === 2 ? { reservationId: rest[0]!, kind: rest[1]! } : undefined;
  },
};

// ---- payments (stream PAYMENTS, through payments' outbox) ----
export type PaymentEventKind = "succeeded" | "failed" | "canceled" | "refunded";
const paymentEventKinds = new Set<string>(["succeeded", "failed", "canceled", "refunded"]);
export const paymentsSubjects = {
  stream: { name: "PAYMENTS", subjects: ["payments.>"] },
  intent: (intentId: string, kind: PaymentEventKind) => `payments.intent.${token("payment intent id", intentId)}.${kind}`,
  allIntents: "payments.intent.>",
  parseIntent(subject: string): { intentId: string; kind: PaymentEventKind } | undefined {
    const rest = after(subject, "payments.intent.");
    return rest?.length === 2 && paymentEventKinds.has(rest[1]!) ? { intentId: rest[0]!, kind: rest[1] as PaymentEventKind } : undefined;
  },
};

// ---- orders (stream ORDERS, through orders' outbox) ----
export type OrderEventKind = "created" | "completed" | "failed" | "refunded";
const orderEventKinds = new Set<string>(["created", "completed", "failed", "refunded"]);
export const ordersSubjects = {
  stream: { name: "ORDERS", subjects: ["orders.>"] },
  order: (orderId: string, kind: OrderEventKind) => `orders.order.${token("order id", orderId)}.${kind}`,
  allOrders: "orders.order.>",
  /** The order and kind of an order event; undefined for another shape or a kind this version does not know. */
  parseOrder(subject: string): { orderId: string; kind: OrderEventKind } | undefined {
    const rest = after(subject, "orders.order.");
    return rest?.length === 2 && orderEventKinds.has(rest[1]!) ? { orderId: rest[0]!, kind: rest[1] as OrderEventKind } : undefined;
  },
};

// ---- notifications (stream NOTIFICATIONS, through notifications' outbox) ----
export type AlertEventKind = "fired" | "acknowledged" | "resolved";
const alertEventKinds = new Set<string>(["fired", "acknowledged", "resolved"]);
export type DeliveryEventKind = "delivered" | "dead_lettered";
export type SilenceEventKind = "created" | "expired";
export const notificationsSubjects = {
  stream: { name: "NOTIFICATIONS", subjects: ["notifications.>"] },
  alert: (alertId: string, kind: AlertEventKind) => `notifications.alert.${token("alert id", alertId)}.${kind}`,
  /** Every alert change (each replica's WatchAlerts follows them on core NATS). */
  allAlerts: "notifications.alert.>",
  delivery: (deliveryId: string, kind: DeliveryEventKind) => `notifications.delivery.${token("delivery id", deliveryId)}.${kind}`,
  allDeliveries: "notifications.delivery.>",
  silence: (silenceId: string, kind: SilenceEventKind) => `notifications.silence.${token("silence id", silenceId)}.${kind}`,
  parseAlert(subject: string): { alertId: string; kind: AlertEventKind } | undefined {
    const rest = after(subject, "notifications.alert.");
    return rest?.length === 2 && alertEventKinds.has(rest[1]!) ? { alertId: rest[0]!, kind: rest[1] as AlertEventKind } : undefined;
  },
};

// ---- ai (stream AI, through ai's outbox; notifications consumes ai.stockout.>; ai.maintenance.>
// and ai.silent_failure.> are for alerting too) ----
export type StockoutEventKind = "predicted" | "cleared";
const stockoutEventKinds = new Set<string>(["predicted", "cleared"]);
export const aiSubjects = {
  stream: { name: "AI", subjects: ["ai.>"] },
  /** A kiosk × product's stock-out probability before the next visit crossed the alert threshold. */
  stockoutPredicted: (kioskId: string) => `ai.stockout.${token("kiosk id", kioskId)}.predicted`,
  /** …and fell back below it. */
  stockoutCleared: (kioskId: string) => `ai.stockout.${token("kiosk id", kioskId)}.cleared`,
  /** Every kiosk's stock-out predictions and clearances (notifications' durable consumer). */
  allStockouts: "ai.stockout.>",
  /** The kiosk and kind of a stock-out event; undefined for another shape or a kind this version does not know. */
  parseStockout(subject: string): { kioskId: string; kind: StockoutEventKind } | undefined {
    const rest = after(subject, "ai.stockout.");
    return rest?.length === 2 && stockoutEventKinds.has(rest[1]!) ? { kioskId: rest[0]!, kind: rest[1] as StockoutEventKind } : undefined;
  },
  /** A maintenance item (paper, printer, scanner, temperature) of a kiosk became due (MaintenanceDueEvent). */
  maintenanceDue: (kioskId: string) => `ai.maintenance.${token("kiosk id", kioskId)}.due`,
  /** …and is no longer due. */
  maintenanceCleared: (kioskId: string) => `ai.maintenance.${token("kiosk id", kioskId)}.cleared`,
  allMaintenance: "ai.maintenance.>",
  parseMaintenance(subject: string): { kioskId: string; kind: MaintenanceEventKind } | undefined {
    const rest = after(subject, "ai.maintenance.");
    return rest?.length === 2 && (rest[1] === "due" || rest[1] === "cleared") ? { kioskId: rest[0]!, kind: rest[1] } : undefined;
  },
  /** A kiosk online and healthy sells far less than its forecast (SilentFailureEvent). */
  silentFailureDetected: (kioskId: string) => `ai.silent_failure.${token("kiosk id", kioskId)}.detected`,
  /** …sells as expected again, or is no longer online and healthy. */
  silentFailureCleared: (kioskId: string) => `ai.silent_failure.${token("kiosk id", kioskId)}.cleared`,
  allSilentFailures: "ai.silent_failure.>",
  parseSilentFailure(subject: string): { kioskId: string; kind: SilentFailureEventKind } | undefined {
    const rest = after(subject, "ai.silent_failure.");
    return rest?.length === 2 && (rest[1] === "detected" || rest[1] === "cleared") ? { kioskId: rest[0]!, kind: rest[1] } : undefined;
  },
};
export type MaintenanceEventKind = "due" | "cleared";
export type SilentFailureEventKind = "detected" | "cleared";

// ---- ops: every service process's serving status (stream OPS, published by the runtime's
// health announcements, health.ts; notifications' service_not_serving rules consume it) ----
export const opsSubjects = {
  /** Heartbeats are worth little after an hour: the stream keeps one. */
  stream: { name: "OPS", subjects: ["ops.>"], maxAgeMs: 3_600_000 },
  /** A process of `service` announces its status (ServiceHealthEvent): at each change and as a heartbeat. */
  health: (service: string) => `ops.health.${token("service", service)}`,
  allHealth: "ops.health.>",
  parseHealth(subject: string): { service: string } | undefined {
    const rest = after(subject, "ops.health.");
    return rest?.length === 1 && rest[0] ? { service: rest[0] } : undefined;
  },
};

// ---- customers (stream CUSTOMERS, through customers' outbox; notifications consumes both kinds) ----
export const customersSubjects = {
  stream: { name: "CUSTOMERS", subjects: ["customers.>"] },
  /** A back-in-stock request's product is back at its kiosk (BackInStockReadyEvent, carrying the contact). */
  backInStockReady: (requestId: string) => `customers.back_in_stock.${token("request id", requestId)}.ready`,
  allBackInStock: "customers.back_in_stock.>",
  /** A buyer or technician at the kiosk called for staff (HelpRequestedEvent). */
  helpRequested: (kioskId: string) => `customers.help.${token("kiosk id", kioskId)}.requested`,
  allHelp: "customers.help.>",
  /** An operator approved or rejected a review (ReviewModeratedEvent; ai's recommendations). */
  reviewModerated: (reviewId: string) => `customers.review.${token("review id", reviewId)}.moderated`,
  allReviews: "customers.review.*.moderated",
  /** Every kind (notifications consumes back-in-stock and help; ai reviews). */
  all: "customers.>",
  parse(subject: string): { kind: "back_in_stock"; requestId: string } | { kind: "help"; kioskId: string } | { kind: "review"; reviewId: string } | undefined {
    const stock = after(subject, "customers.back_in_stock.");
    if (stock?.length === 2 && stock[1] === "ready") return { kind: "back_in_stock", requestId: stock[0]! };
    const help = after(subject, "customers.help.");
    if (help?.length === 2 && help[1] === "requested") return { kind: "help", kioskId: help[0]! };
    const review = after(subject, "customers.review.");
    if (review?.length === 2 && review[1] === "moderated") return { kind: "review", reviewId: review[0]! };
    return undefined;
  },
};
