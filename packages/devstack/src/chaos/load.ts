// The chaos run's live load, on the real SDK and APIs: kiosks holding their stream to the
// link replicas, sending telemetry and executing commands (and counting what they
// executed), kiosks selling products and seats through orders, an admin sending commands
// and one bulk job, and an admin watching WatchFleet. Everything it did is kept for the
// invariants (which samples were acknowledged, which commands ran how often).
import type { DescService } from "@bufbuild/protobuf";
import { durationFromMs, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient, type Client } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { AuthService, DeviceService } from "@adminkiosk/proto/adminkiosk/auth/v1/auth_pb";
import { EventService, InventoryService, ProductService } from "@adminkiosk/proto/adminkiosk/catalog/v1/catalog_pb";
import { CommandService } from "@adminkiosk/proto/adminkiosk/fleet/v1/commands_pb";
import { KioskService, type FleetSummary } from "@adminkiosk/proto/adminkiosk/fleet/v1/fleet_pb";
import { JobService } from "@adminkiosk/proto/adminkiosk/fleet/v1/jobs_pb";
import { DeviceStatus } from "@adminkiosk/proto/adminkiosk/link/v1/link_pb";
import { OrderState } from "@adminkiosk/proto/adminkiosk/orders/v1/orders_pb";
import { KioskClient, sell } from "@adminkiosk/kiosk-sdk";
import { admin, type ChaosPlatform } from "./platform.js";
import type { Rng } from "./prng.js";

export interface LoadOptions {
  kiosks: number;
  /** Concurrent selling loops. */
  sellers: number;
  telemetryMs: number;
  commandEveryMs: number;
  seats: number;
  stockPerKiosk: number;
  log: (line: string) => void;
}

export const chaosTag = "chaos";
export const skus = ["chaos-water", "chaos-crisps", "chaos-chocolate"] as const;
const prices: Record<(typeof skus)[number], bigint> = { "chaos-water": 150n, "chaos-crisps": 220n, "chaos-chocolate": 310n };

/** Retries `call` while it fails for reasons a fault explains (the platform is what is under test), up to `timeoutMs`. */
export async function retrying<T>(what: string, call: () => Promise<T>, timeoutMs = 120_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (let attempt = 0; ; attempt++) {
    try {
      return await call();
    } catch (err) {
      const code = ConnectError.from(err).code;
      const transient = [Code.Unavailable, Code.DeadlineExceeded, Code.Aborted, Code.Internal, Code.Unknown, Code.ResourceExhausted, Code.Unauthenticated].includes(code);
      if (!transient || Date.now() > deadline) throw new Error(`${what}: ${ConnectError.from(err).message}`, { cause: err });
      await new Promise((r) => setTimeout(r, Math.min(2_000, 200 * 2 ** attempt)));
    }
  }
}

export class Load {
  readonly kioskIds: string[];
  readonly clients = new Map<string, KioskClient>();
  /** kiosk → command id → times its handler ran. */
  readonly executions = new Map<string, Map<string, number>>();
  readonly recorded = new Map<string, number>();
  readonly commandIds: string[] = [];
  jobId = "";
  eventId = "";
  readonly sales = { attempted: 0, completed: 0, failed: 0, refused: 0, gaveUp: 0, seatsSold: 0, unitsSold: 0 };
  readonly commandsSent = { ok: 0, gaveUp: 0 };
  readonly watch = { messages: 0, reconnects: 0, last: undefined as FleetSummary | undefined };
  private seatIds: string[] = [];
  private readonly credentials = new Map<string, string>();
  private running = false;
  private readonly loops: Promise<void>[] = [];
  private token = "";
  private tokenAt = 0;
  private readonly watchAbort = new AbortController();

  constructor(
    private readonly platform: ChaosPlatform,
    private readonly options: LoadOptions,
    private readonly random: Rng,
  ) {
    this.kioskIds = Array.from({ length: options.kiosks }, (_, i) => `chaos-${String(i + 1).padStart(4, "0")}`);
  }

  private async adminToken(): Promise<string> {
    if (!this.token || Date.now() - this.tokenAt > 4 * 60_000) {
      const auth = createClient(AuthService, createGrpcTransport({ baseUrl: this.platform.url("auth") }));
      const res = await retrying("admin login", () => auth.login(admin));
      this.token = res.tokens?.accessToken ?? "";
      this.tokenAt = Date.now();
    }
    return this.token;
  }

  client<S extends DescService>(service: S, base: string): Client<S> {
    return createClient(
      service,
      createGrpcTransport({
        baseUrl: this.platform.url(base),
        interceptors: [
          (next) => async (req) => {
            req.header.set("authorization", `Bearer ${await this.adminToken()}`);
            return next(req);
          },
        ],
      }),
    );
  }

  /** Products, stock, an event with seats, the kiosks registered and enrolled, their streams open. */
  async setup(): Promise<void> {
    const { log } = this.options;
    const products = this.client(ProductService, "catalog");
    for (const sku of skus) {
      await retrying(`create ${sku}`, () =>
        products.createProduct({ product: { sku, name: sku, category: "chaos", priceMinor: prices[sku], currency: "EUR", taxRateBasisPoints: 2100, active: true } }),
      );
    }
    const { event } = await retrying("create the event", () =>
      this.client(EventService, "catalog").createEvent({
        event: {
          name: "Chaos night",
          venue: "Hall C",
          startTime: timestampFromDate(new Date(Date.now() + 86_400_000)),
          active: true,
          priceTiers: [{ tierId: "std", name: "Standard", priceMinor: 3000n, currency: "EUR" }],
          sections: [{ sectionId: "A", name: "Stalls", rows: [{ rowId: "1", seats: Array.from({ length: this.options.seats }, (_, s) => ({ number: String(s + 1), tierId: "std" })) }] }],
        },
      }),
    );
    this.eventId = event!.eventId;
    const { seats } = await retrying("seat map", () => this.client(EventService, "catalog").getSeatAvailability({ eventId: this.eventId }));
    this.seatIds = seats.map((s) => s.seatId);

    const kiosks = this.client(KioskService, "fleet");
    const devices = this.client(DeviceService, "auth");
    const inventory = this.client(InventoryService, "catalog");
    const publicAuth = createClient(DeviceService, createGrpcTransport({ baseUrl: this.platform.url("auth") }));
    const credentials = this.credentials;
    const queue = [...this.kioskIds];
    const worker = async () => {
      for (let id = queue.shift(); id; id = queue.shift()) {
        const kioskId = id;
        await retrying(`register ${kioskId}`, async () => {
          try {
            await kiosks.createKiosk({ kiosk: { kioskId, name: `Chaos ${kioskId}`, tags: [chaosTag] } });
          } catch (err) {
            if (ConnectError.from(err).code !== Code.AlreadyExists) throw err;
          }
        });
        const { code } = await retrying(`enrollment code for ${kioskId}`, () => devices.createEnrollmentCode({ kioskId }));
        const { deviceCredential } = await retrying(`enroll ${kioskId}`, () => publicAuth.enrollDevice({ code }));
        credentials.set(kioskId, deviceCredential);
        for (const sku of skus)
          await retrying(`stock ${sku} at ${kioskId}`, () => inventory.restock({ kioskId, sku, quantity: BigInt(this.options.stockPerKiosk), reason: "chaos run stock" }));
      }
    };
    await Promise.all(Array.from({ length: 4 }, worker));
    log(`${this.kioskIds.length} kiosks enrolled, ${skus.length} products stocked ${this.options.stockPerKiosk} each, an event with ${this.seatIds.length} seats`);

    const links = this.platform.links.map((l) => l.url);
    for (const [i, kioskId] of this.kioskIds.entries()) {
      const executed = new Map<string, number>();
      this.executions.set(kioskId, executed);
      this.recorded.set(kioskId, 0);
      const count = (commandId: string) => void executed.set(commandId, (executed.get(commandId) ?? 0) + 1);
      const client = new KioskClient({
        // Each kiosk starts at another replica, and moves on to the next when one fails.
        linkAddress: links.map((_, j) => links[(i + j) % links.length]!),
        credential: credentials.get(kioskId)!,
        firmwareVersion: "chaos-1.0.0",
        appVersion: "chaos-1.0.0",
        backoff: { initialMs: 200, maxMs: 2_000 },
        random: this.random.fork().next,
      })
        .onCommand("displayMessage", (_m, d) => count(d.commandId))
        .onCommand("refreshCatalog", (_m, d) => count(d.commandId));
      this.clients.set(kioskId, client);
      client.start();
    }
  }

  /** True when every kiosk holds a stream. */
  get allConnected(): boolean {
    return [...this.clients.values()].every((c) => c.isConnected);
  }

  start(): void {
    this.running = true;
    for (const [kioskId, client] of this.clients) this.loops.push(this.telemetry(kioskId, client));
    for (let i = 0; i < this.options.sellers; i++) this.loops.push(this.selling(this.random.fork()));
    this.loops.push(this.commanding(this.random.fork()));
    void this.watching();
    void this.createJob();
  }

  private async sleep(ms: number) {
    await new Promise((r) => setTimeout(r, ms));
  }

  private async telemetry(kioskId: string, client: KioskClient) {
    const r = this.random.fork();
    await this.sleep(r.next() * this.options.telemetryMs);
    while (this.running) {
      client.recordTelemetry({
        cpuPercent: 10 + Math.round(r.next() * 300) / 10,
        temperatureCelsius: 40,
        paperLevelPercent: 80,
        cashLevelMinor: BigInt(r.int(0, 100_000)),
        printer: DeviceStatus.OK,
        scanner: DeviceStatus.OK,
        errors: [],
      });
      this.recorded.set(kioskId, (this.recorded.get(kioskId) ?? 0) + 1);
      await this.sleep(this.options.telemetryMs * (0.8 + r.next() * 0.4));
    }
  }

  private async selling(r: Rng) {
    let n = 0;
    while (this.running) {
      const kioskId = r.pick(this.kioskIds);
      const seatSale = r.next() < 0.3;
      const request = seatSale
        ? { seats: r.shuffle(this.seatIds).slice(0, r.int(1, 2)).map((seatId) => ({ eventId: this.eventId, seatId })) }
        : { items: r.shuffle(skus).slice(0, r.int(1, 2)).map((sku) => ({ sku, quantity: BigInt(r.int(1, 3)) })) };
      this.sales.attempted++;
      try {
        const order = await sell(
          { idempotencyKey: `chaos-${process.pid}-${r.int(0, 1e9)}-${n++}`, ...request, paymentMethod: "pm_card_visa" },
          { ordersAddress: this.platform.url("orders"), credential: this.credentialOf(kioskId), timeoutMs: 60_000, pollMs: 500 },
        );
        if (order.state === OrderState.COMPLETED) {
          this.sales.completed++;
          for (const line of order.lines) {
            if (line.seatId) this.sales.seatsSold++;
            else this.sales.unitsSold += Number(line.quantity);
          }
        } else this.sales.failed++;
      } catch (err) {
        const code = (err as { code?: number }).code;
        // Refusals (sold out, seat taken: FAILED_PRECONDITION, RESOURCE_EXHAUSTED, ALREADY_EXISTS) are answers; the rest gave up.
        if (code === 9 || code === 8 || code === 6 || code === 5) this.sales.refused++;
        else this.sales.gaveUp++;
      }
      await this.sleep(100 + r.next() * 400);
    }
  }

  /** The kiosk sells with its own device credential. */
  private credentialOf(kioskId: string): string {
    return this.credentials.get(kioskId) ?? "";
  }

  private async commanding(r: Rng) {
    const commands = this.client(CommandService, "fleet");
    let n = 0;
    while (this.running) {
      await this.sleep(this.options.commandEveryMs * (0.5 + r.next()));
      if (!this.running) break;
      const kioskId = r.pick(this.kioskIds);
      const key = `chaos-cmd-${process.pid}-${n++}`;
      try {
        const { command } = await retrying(
          "send a command",
          () => commands.sendCommand({ kioskId, action: { kind: { case: "displayMessage", value: { text: `chaos ${n}` } } }, ttl: durationFromMs(3_600_000), idempotencyKey: key }),
          60_000,
        );
        this.commandIds.push(command!.commandId);
        this.commandsSent.ok++;
      } catch {
        this.commandsSent.gaveUp++;
      }
    }
  }

  private async createJob() {
    try {
      const { job } = await retrying("create the job", () =>
        this.client(JobService, "fleet").createJob({
          description: "chaos: refresh every kiosk's catalog",
          action: { kind: { case: "refreshCatalog", value: {} } },
          target: { tag: chaosTag },
          ratePerMinute: 60,
          commandTtl: durationFromMs(3_600_000),
          idempotencyKey: `chaos-job-${process.pid}`,
        }),
      );
      this.jobId = job!.jobId;
    } catch (err) {
      this.options.log(`the job could not be created: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  private async watching() {
    const kiosks = this.client(KioskService, "fleet");
    while (!this.watchAbort.signal.aborted) {
      try {
        for await (const msg of kiosks.watchFleet({}, { signal: this.watchAbort.signal })) {
          this.watch.messages++;
          if (msg.summary) this.watch.last = msg.summary;
        }
      } catch {
        // a fault ended the stream: watch again, as the admin web does
      }
      if (this.watchAbort.signal.aborted) break;
      this.watch.reconnects++;
      await this.sleep(1_000);
    }
  }

  /** Stops selling, telemetry and commands; the kiosks keep their streams and the admin keeps watching. */
  async stopTraffic(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
  }

  /** Samples the kiosks hold that link has not acknowledged, and those dropped from a full outbox. */
  telemetryCounts(): { recorded: number; unacked: number; dropped: number; acked: number } {
    let recorded = 0;
    let unacked = 0;
    let dropped = 0;
    for (const [kioskId, c] of this.clients) {
      recorded += this.recorded.get(kioskId) ?? 0;
      unacked += c.outboxSize;
      dropped += c.droppedSamples;
    }
    return { recorded, unacked, dropped, acked: recorded - unacked - dropped };
  }

  async stop(): Promise<void> {
    this.running = false;
    this.watchAbort.abort();
    await Promise.all([...this.clients.values()].map((c) => c.stop()));
  }
}
