// Selling with the network gone (docs/offline.md). Before going offline (or whenever it
// can), the kiosk holds a lease of units and seats at catalog and a ticket-signing
// delegation from orders for a key pair it made itself. Offline, sell() sells only what
// the lease still holds, under the sale's idempotency key, and answers at once with a
// provisional receipt and tickets the kiosk signs with its delegated key (a scanner
// verifies them with orders' published keys alone). Cash is always taken; a card only up
// to the delegation's floor limit (authorised offline, captured when synced). sync()
// uploads the queued sales oldest first; a sale leaves the queue only once orders has
// answered for it, so a sync cut off half-way is simply sent again (orders applies each
// sale once). Nothing in sell() touches the network.
import { generateKeyPairSync, randomUUID, sign as edSign, createPrivateKey, type KeyObject } from "node:crypto";
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import type { MessageInitShape } from "@bufbuild/protobuf";
import {
  GetLeaseRequestSchema,
  GetLeaseResponseSchema,
  GrantLeaseRequestSchema,
  GrantLeaseResponseSchema,
  ReturnLeaseRequestSchema,
  ReturnLeaseResponseSchema,
  type Lease,
} from "@adminkiosk/proto/adminkiosk/catalog/v1/leases_pb";
import {
  IssueTicketDelegationRequestSchema,
  IssueTicketDelegationResponseSchema,
  OfflineSaleOutcome,
  SyncOfflineSalesRequestSchema,
  SyncOfflineSalesResponseSchema,
  type OfflineSaleResult,
  type OfflineSaleSchema,
} from "@adminkiosk/proto/adminkiosk/orders/v1/offline_pb";
import { unary } from "./grpc.js";

export type OfflineSaleInit = MessageInitShape<typeof OfflineSaleSchema>;

/** Everything the kiosk must keep across a restart to go on selling and syncing. */
export interface OfflineState {
  kioskId: string;
  lease: { leaseId: string; expiresAt: number; items: { sku: string; quantity: string; unitPriceMinor: string; taxRateBasisPoints: number }[]; seats: { eventId: string; seatId: string; priceMinor: string }[]; currency: string };
  /** PKCS#8 PEM of the kiosk's Ed25519 key (never leaves the kiosk). */
  privateKeyPem: string;
  delegation: string;
  delegationExpiresAt: number;
  floorLimitMinor: string;
  /** Units and seats sold from the lease so far (synced or not). */
  soldUnits: Record<string, string>;
  soldSeats: string[];
  /** Sales not yet answered by orders, oldest first (bigints as strings). */
  queue: StoredSale[];
}

interface StoredSale {
  idempotencyKey: string;
  leaseId: string;
  soldAtMs: number;
  items: { sku: string; quantity: string }[];
  seats: { eventId: string; seatId: string }[];
  paymentMethod: string;
  totalMinor: string;
  currency: string;
  tickets: { ticketId: string; eventId: string; seatId: string; qrPayload: string }[];
}

/** Where the state lives: a file by default (fileStore), so a restart loses no sale. */
export interface OfflineStore {
  load(): Promise<OfflineState | undefined>;
  save(state: OfflineState): Promise<void>;
}

/** The state as JSON in one file, replaced atomically (write, then rename). */
export function fileStore(path: string): OfflineStore {
  return {
    async load() {
      try {
        return JSON.parse(await readFile(path, "utf8")) as OfflineState;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
        throw err;
      }
    },
    async save(state) {
      await mkdir(dirname(path), { recursive: true });
      const tmp = `${path}.${process.pid}.tmp`;
      await writeFile(tmp, JSON.stringify(state), { mode: 0o600 });
      await rename(tmp, path);
    },
  };
}

export function memoryStore(): OfflineStore {
  let saved: string | undefined;
  return {
    load: async () => (saved === undefined ? undefined : (JSON.parse(saved) as OfflineState)),
    save: async (s) => void (saved = JSON.stringify(s)),
  };
}

export interface OfflineSellerOptions {
  kioskId: string;
  /** The kiosk's device credential. */
  credential: string;
  catalogAddress: string;
  ordersAddress: string;
  store?: OfflineStore;
  /** Per call (default 10 s). */
  timeoutMs?: number;
}

export interface ProvisionalSale {
  idempotencyKey: string;
  totalMinor: bigint;
  currency: string;
  /** The provisional receipt, 40 columns, as printed. */
  receiptText: string;
  tickets: { ticketId: string; eventId: string; seatId: string; qrPayload: string }[];
}

export class OfflineRefusal extends Error {
  constructor(
    readonly reason: "NO_LEASE" | "LEASE_EXPIRED" | "NOT_IN_LEASE" | "ABOVE_FLOOR_LIMIT" | "DUPLICATE_KEY",
    message: string,
  ) {
    super(message);
    this.name = "OfflineRefusal";
  }
}

const b64 = (value: string | Buffer) => Buffer.from(value).toString("base64url");
const cash = "cash";

export class OfflineSeller {
  private state: OfflineState | undefined;
  private key: KeyObject | undefined;
  private syncing: Promise<OfflineSaleResult[]> | undefined;

  constructor(private readonly options: OfflineSellerOptions) {}

  private get store() {
    return (this.options.store ??= memoryStore());
  }

  /** Picks up a saved state (after a restart). */
  async load(): Promise<boolean> {
    this.state = await this.store.load();
    this.key = this.state ? createPrivateKey(this.state.privateKeyPem) : undefined;
    return this.state !== undefined;
  }

  /** Asks catalog for a lease (within the kiosk policy) and orders for a delegation to a new key. Online only. */
  async lease(request: { leaseId?: string; items?: { sku: string; quantity: bigint }[]; seats?: { eventId: string; seatId: string }[]; ttlSeconds?: number }): Promise<Lease> {
    const { lease } = await unary(
      this.options.catalogAddress,
      "/adminkiosk.catalog.v1.LeaseService/GrantLease",
      GrantLeaseRequestSchema,
      GrantLeaseResponseSchema,
      { leaseId: request.leaseId ?? randomUUID(), items: request.items ?? [], seats: request.seats ?? [], ttlSeconds: request.ttlSeconds ?? 0 },
      { credential: this.options.credential, timeoutMs: this.options.timeoutMs },
    );
    if (!lease) throw new Error("catalog answered no lease");
    await this.adopt(lease);
    return lease;
  }

  /** Takes on a lease (granted by an operator, or read again) with a fresh key and delegation. Online only. */
  async adopt(leaseOrId: Lease | string): Promise<void> {
    const lease =
      typeof leaseOrId === "string"
        ? (await unary(this.options.catalogAddress, "/adminkiosk.catalog.v1.LeaseService/GetLease", GetLeaseRequestSchema, GetLeaseResponseSchema, { leaseId: leaseOrId }, {
            credential: this.options.credential,
            timeoutMs: this.options.timeoutMs,
          })).lease
        : leaseOrId;
    if (!lease) throw new Error("catalog answered no lease");
    const { privateKey, publicKey } = generateKeyPairSync("ed25519");
    const x = publicKey.export({ format: "jwk" }).x!;
    const d = await unary(this.options.ordersAddress, "/adminkiosk.orders.v1.OfflineSaleService/IssueTicketDelegation", IssueTicketDelegationRequestSchema, IssueTicketDelegationResponseSchema, {
      leaseId: lease.leaseId,
      publicKey: x,
    }, { credential: this.options.credential, timeoutMs: this.options.timeoutMs });
    const queue = this.state?.queue ?? [];
    this.key = privateKey;
    this.state = {
      kioskId: this.options.kioskId,
      lease: {
        leaseId: lease.leaseId,
        expiresAt: Number(lease.expireTime?.seconds ?? 0n) * 1000,
        items: lease.items.map((i) => ({ sku: i.sku, quantity: (i.quantity - i.sold).toString(), unitPriceMinor: i.unitPriceMinor.toString(), taxRateBasisPoints: i.taxRateBasisPoints })),
        seats: lease.seats.filter((s) => !s.sold).map((s) => ({ eventId: s.eventId, seatId: s.seatId, priceMinor: s.priceMinor.toString() })),
        currency: lease.items[0]?.currency ?? lease.seats[0]?.currency ?? d.currency,
      },
      privateKeyPem: privateKey.export({ format: "pem", type: "pkcs8" }).toString(),
      delegation: d.delegation,
      delegationExpiresAt: Number(d.expireTime?.seconds ?? 0n) * 1000,
      floorLimitMinor: d.cardFloorLimitMinor.toString(),
      soldUnits: {},
      soldSeats: [],
      queue,
    };
    await this.store.save(this.state);
  }

  /** What the lease still holds for sale here (units per SKU, seats). */
  remaining(): { units: Map<string, bigint>; seats: { eventId: string; seatId: string }[] } {
    const s = this.state;
    if (!s) return { units: new Map(), seats: [] };
    return {
      units: new Map(s.lease.items.map((i) => [i.sku, BigInt(i.quantity) - BigInt(s.soldUnits[i.sku] ?? "0")])),
      seats: s.lease.seats.filter((x) => !s.soldSeats.includes(`${x.eventId}/${x.seatId}`)).map((x) => ({ eventId: x.eventId, seatId: x.seatId })),
    };
  }

  /** Sales waiting for sync, oldest first, as SyncOfflineSales takes them. */
  pending(): OfflineSaleInit[] {
    return (this.state?.queue ?? []).map(toWire);
  }

  /**
   * Sells from the lease, offline: refuses (OfflineRefusal) what the lease does not hold,
   * a lease or delegation past its expiry, and a card above the floor limit. Answers a
   * provisional receipt and signed tickets; the sale waits in the queue for sync().
   */
  async sell(sale: { idempotencyKey: string; items?: { sku: string; quantity: bigint }[]; seats?: { eventId: string; seatId: string }[]; paymentMethod: string; now?: Date }): Promise<ProvisionalSale> {
    const s = this.state;
    const key = this.key;
    if (!s || !key) throw new OfflineRefusal("NO_LEASE", "no lease: lease() or adopt() while online first");
    const now = sale.now ?? new Date();
    if (now.getTime() >= Math.min(s.lease.expiresAt, s.delegationExpiresAt)) throw new OfflineRefusal("LEASE_EXPIRED", `the lease ${s.lease.leaseId} (or its delegation) has expired`);
    if (s.queue.some((q) => q.idempotencyKey === sale.idempotencyKey)) throw new OfflineRefusal("DUPLICATE_KEY", `idempotencyKey ${sale.idempotencyKey} is already used by a queued sale`);
    const items = sale.items ?? [];
    const seats = sale.seats ?? [];
    if (items.length + seats.length === 0) throw new OfflineRefusal("NOT_IN_LEASE", "a sale needs at least one item or seat");
    const left = this.remaining();
    let total = 0n;
    const lines: string[] = [];
    for (const item of items) {
      const line = s.lease.items.find((i) => i.sku === item.sku);
      const have = left.units.get(item.sku) ?? 0n;
      if (!line || item.quantity < 1n || have < item.quantity) throw new OfflineRefusal("NOT_IN_LEASE", `the lease holds ${have} of ${item.sku}, ${item.quantity} asked`);
      const amount = BigInt(line.unitPriceMinor) * item.quantity;
      total += amount;
      lines.push(row(`${item.quantity} x ${item.sku}`, money(amount)));
    }
    for (const seat of seats) {
      const leased = s.lease.seats.find((x) => x.eventId === seat.eventId && x.seatId === seat.seatId);
      if (!leased || !left.seats.some((x) => x.eventId === seat.eventId && x.seatId === seat.seatId))
        throw new OfflineRefusal("NOT_IN_LEASE", `seat ${seat.seatId} of event ${seat.eventId} is not (or no longer) in the lease`);
      if (seats.filter((x) => x.eventId === seat.eventId && x.seatId === seat.seatId).length > 1) throw new OfflineRefusal("NOT_IN_LEASE", `seat ${seat.seatId} is listed twice`);
      total += BigInt(leased.priceMinor);
      lines.push(row(`Seat ${seat.seatId}`, money(BigInt(leased.priceMinor))));
    }
    if (sale.paymentMethod !== cash && total > BigInt(s.floorLimitMinor))
      throw new OfflineRefusal("ABOVE_FLOOR_LIMIT", `a card is taken offline up to ${money(BigInt(s.floorLimitMinor))} ${s.lease.currency}; this sale is ${money(total)}: take cash`);

    const iat = Math.floor(now.getTime() / 1000);
    const tickets = seats.map((seat) => {
      const ticketId = randomUUID();
      const claims = { tid: ticketId, sale: sale.idempotencyKey, kid: s.kioskId, ev: seat.eventId, seat: seat.seatId, iat };
      const input = `${b64(JSON.stringify({ alg: "EdDSA", typ: "ticket-offline+jws" }))}.${b64(JSON.stringify(claims))}`;
      const signature = edSign(null, Buffer.from(input), key).toString("base64url");
      return { ticketId, eventId: seat.eventId, seatId: seat.seatId, qrPayload: `${s.delegation}.${input}.${signature}` };
    });
    const stored: StoredSale = {
      idempotencyKey: sale.idempotencyKey,
      leaseId: s.lease.leaseId,
      soldAtMs: now.getTime(),
      items: items.map((i) => ({ sku: i.sku, quantity: i.quantity.toString() })),
      seats,
      paymentMethod: sale.paymentMethod,
      totalMinor: total.toString(),
      currency: s.lease.currency,
      tickets,
    };
    for (const item of items) s.soldUnits[item.sku] = (BigInt(s.soldUnits[item.sku] ?? "0") + item.quantity).toString();
    for (const seat of seats) s.soldSeats.push(`${seat.eventId}/${seat.seatId}`);
    s.queue.push(stored);
    await this.store.save(s);
    const receiptText = [
      "PROVISIONAL RECEIPT (sold offline)",
      `Kiosk ${s.kioskId}`,
      `Sale ${sale.idempotencyKey}`.slice(0, 40),
      now.toISOString(),
      ...lines,
      row(`TOTAL ${s.lease.currency}`, money(total)),
      sale.paymentMethod === cash ? "Paid cash" : "Card authorised offline",
      "Final receipt on sync.",
    ].join("\n");
    return { idempotencyKey: sale.idempotencyKey, totalMinor: total, currency: s.lease.currency, receiptText, tickets };
  }

  /**
   * Uploads the queued sales, oldest first, `batchSize` a call; each leaves the queue once
   * orders has answered for it (recorded, a conflict, or rejected: a sale orders can never
   * apply goes to the operator queue and the next one follows). Throws what the call threw
   * (e.g. UNAVAILABLE while still offline): the unanswered sales stay queued, in order, for
   * the next sync.
   */
  sync(options: { batchSize?: number; ordersAddress?: string } = {}): Promise<OfflineSaleResult[]> {
    this.syncing ??= this.doSync(options).finally(() => (this.syncing = undefined));
    return this.syncing;
  }

  /**
   * Gives the lease back once every sale made from it is synced (online only): its unsold
   * units and seats go back — and if an operator revoked it meanwhile, this is what ends its
   * seats' quarantine (the kiosk says it has nothing more to sync). Refuses while sales wait.
   */
  async returnLease(): Promise<Lease> {
    const s = this.state;
    if (!s) throw new OfflineRefusal("NO_LEASE", "no lease to return");
    if (s.queue.some((q) => q.leaseId === s.lease.leaseId)) throw new Error(`sync first: ${s.queue.length} sales of lease ${s.lease.leaseId} wait for sync`);
    const { lease } = await unary(this.options.catalogAddress, "/adminkiosk.catalog.v1.LeaseService/ReturnLease", ReturnLeaseRequestSchema, ReturnLeaseResponseSchema, { leaseId: s.lease.leaseId }, {
      credential: this.options.credential,
      timeoutMs: this.options.timeoutMs,
    });
    if (!lease) throw new Error("catalog answered no lease");
    // Nothing more may be sold from it.
    s.lease.expiresAt = 0;
    await this.store.save(s);
    return lease;
  }

  private async doSync(options: { batchSize?: number; ordersAddress?: string }): Promise<OfflineSaleResult[]> {
    const s = this.state;
    if (!s) return [];
    const results: OfflineSaleResult[] = [];
    const batchSize = Math.min(Math.max(options.batchSize ?? 50, 1), 100);
    while (s.queue.length > 0) {
      const batch = s.queue.slice(0, batchSize);
      const res = await unary(
        options.ordersAddress ?? this.options.ordersAddress,
        "/adminkiosk.orders.v1.OfflineSaleService/SyncOfflineSales",
        SyncOfflineSalesRequestSchema,
        SyncOfflineSalesResponseSchema,
        // A sale orders can never apply comes back REJECTED (in the operator queue) rather than failing the batch, so it never blocks the queue.
        { sales: batch.map(toWire), rejectInvalid: true },
        { credential: this.options.credential, timeoutMs: this.options.timeoutMs ?? 60_000 },
      );
      const answered = new Set(res.results.map((r) => r.idempotencyKey));
      s.queue = s.queue.filter((q) => !answered.has(q.idempotencyKey));
      await this.store.save(s);
      results.push(...res.results);
    }
    return results;
  }
}

function toWire(q: StoredSale): OfflineSaleInit {
  return {
    idempotencyKey: q.idempotencyKey,
    leaseId: q.leaseId,
    soldTime: { seconds: BigInt(Math.floor(q.soldAtMs / 1000)), nanos: (q.soldAtMs % 1000) * 1_000_000 },
    items: q.items.map((i) => ({ sku: i.sku, quantity: BigInt(i.quantity) })),
    seats: q.seats,
    paymentMethod: q.paymentMethod,
    totalMinor: BigInt(q.totalMinor),
    currency: q.currency,
    tickets: q.tickets,
  };
}

const money = (minor: bigint) => `${minor / 100n}.${(minor % 100n).toString().padStart(2, "0")}`;
const row = (left: string, right: string) => `${left.slice(0, 38 - right.length)}${" ".repeat(Math.max(1, 40 - Math.min(left.length, 38 - right.length) - right.length))}${right}`;

export { OfflineSaleOutcome };
