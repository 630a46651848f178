// The platform the chaos run stands on, all real processes on loopback in a temporary
// directory: PostgreSQL, NATS (JetStream) and Redis that can be restarted in place (same
// port, same data), auth, fleet, catalog, payments and orders (`replicas` of each but
// auth), several link replicas, and payments' provider simulator. Service-to-service
// traffic goes through a FaultProxy per destination (it also spreads connections over the
// replicas): orders → catalog and payments, every service → auth (JWKS, service tokens),
// payments → the provider, the provider's webhooks → payments, and the kiosks' sales →
// orders. Every process can be SIGKILLed and started again on its own port.
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { createWriteStream, mkdirSync, type WriteStream } from "node:fs";
import { dirname, join } from "node:path";
import { freePort, startNats, startPostgres, startRedis, type ManagedProcess, type Postgres } from "../infra.js";
import { seedFirstAdmin, startProgramProcess, startServiceProcess, type ServiceProcess } from "../services.js";
import { repoRoot, testKeyEncryptionKey, waitFor } from "../testing.js";
import { FaultProxy } from "./proxy.js";

export interface PlatformOptions {
  dir: string;
  /** Replicas of each stateless service (fleet, catalog, payments, orders). */
  replicas: number;
  links: number;
  log: (line: string) => void;
}

/** Settings the chaos run gives the services; the invariants' deadlines are derived from them. */
export const chaosSettings = {
  presenceSweepMs: 2_000,
  commandSweepMs: 1_000,
  commandResendMs: 5_000,
  heartbeatSeconds: 5,
  presenceTtlSeconds: 15,
  paymentConfirmTimeoutSeconds: 8,
  providerTimeoutSeconds: 3,
  orderHoldSeconds: 60,
  reservationSweepMs: 500,
  webhookDelayMs: 100,
};

export const admin = { email: "chaos@adminkiosk.local", password: "chaos-password-123" };

/** One running program the chaos run can kill and start again. */
export class Instance {
  proc: ServiceProcess | undefined;
  /** Set while the run itself has killed it (an exit then is not a crash). */
  killing = false;
  crashes = 0;
  starts = 0;
  private readonly out: WriteStream;

  constructor(
    readonly name: string,
    readonly port: number,
    private readonly run: (port: number, onLine: (line: string) => void) => Promise<ServiceProcess>,
    logDir: string,
    private readonly onCrash: (instance: Instance, code: number | null) => void,
  ) {
    this.out = createWriteStream(join(logDir, `${name}.log`), { flags: "a" });
  }

  get url() {
    return `http://127.0.0.1:${this.port}`;
  }

  get running() {
    return !!this.proc && this.proc.child.exitCode === null && this.proc.child.signalCode === null;
  }

  async start(): Promise<void> {
    this.starts++;
    this.out.write(`--- start ${new Date().toISOString()}\n`);
    const proc = await this.run(this.port, (line) => this.out.write(`${line}\n`));
    this.proc = proc;
    this.killing = false;
    void proc.exited.then((code) => {
      this.out.write(`--- exited ${code} ${new Date().toISOString()}\n`);
      if (this.proc === proc && !this.killing) {
        this.crashes++;
        this.onCrash(this, code);
      }
    });
  }

  async kill(): Promise<void> {
    const proc = this.proc;
    if (!proc || !this.running) return;
    this.killing = true;
    proc.child.kill("SIGKILL");
    await proc.exited;
  }

  async stop(): Promise<void> {
    this.killing = true;
    await this.proc?.stop(5_000);
    this.out.end();
  }
}

export class ChaosPlatform {
  pg!: Postgres;
  nats!: ManagedProcess;
  redis!: ManagedProcess;
  databaseUrl = "";
  natsUrl = "";
  redisUrl = "";
  readonly services = new Map<string, Instance[]>();
  readonly proxies = new Map<string, FaultProxy>();
  providerSim!: Instance;
  providerApiKey = randomBytes(24).toString("hex");
  /** Unexpected exits (not ours), restarted after a second. */
  readonly crashes: { at: number; name: string; code: number | null }[] = [];
  private stopping = false;
  private ports: { pg: number; nats: number; redis: number } = { pg: 0, nats: 0, redis: 0 };

  constructor(private readonly options: PlatformOptions) {}

  get logDir() {
    return join(this.options.dir, "logs");
  }

  url(service: string): string {
    const proxy = this.proxies.get(service);
    if (proxy) return proxy.url;
    const first = this.services.get(service)?.[0];
    if (!first) throw new Error(`no ${service}`);
    return first.url;
  }

  get links(): Instance[] {
    return this.services.get("link") ?? [];
  }

  /** Every killable program: service replicas, link replicas. */
  instances(): Instance[] {
    return [...this.services.values()].flat();
  }

  async start(): Promise<void> {
    const { dir, log } = this.options;
    mkdirSync(this.logDir, { recursive: true });
    this.ports = { pg: await freePort(), nats: await freePort(), redis: await freePort() };
    log(`postgres, nats, redis in ${dir}`);
    this.pg = await startPostgres(join(dir, "pg"), this.ports.pg);
    this.databaseUrl = this.pg.url;
    this.nats = await startNats(join(dir, "nats"), this.ports.nats);
    this.natsUrl = this.nats.url;
    this.redis = await startRedis(join(dir, "redis"), this.ports.redis);
    this.redisUrl = this.redis.url;
    seedFirstAdmin(repoRoot, this.databaseUrl, admin.email, admin.password);

    // Ports first, so every proxy knows its replicas before anything starts.
    const replicas = (n: number) => Promise.all(Array.from({ length: n }, () => freePort()));
    const ports = {
      auth: await replicas(1),
      catalog: await replicas(this.options.replicas),
      payments: await replicas(this.options.replicas),
      orders: await replicas(this.options.replicas),
      fleet: await replicas(this.options.replicas),
      link: await replicas(this.options.links),
      provider: await replicas(1),
    };
    for (const [name, upstream] of [
      ["auth", ports.auth],
      ["catalog", ports.catalog],
      ["payments", ports.payments],
      ["orders", ports.orders],
      ["fleet", ports.fleet],
      ["provider", ports.provider],
      // The provider's webhooks to payments: a route of their own, so it can fail alone.
      ["webhooks", ports.payments],
    ] as const) {
      const proxy = new FaultProxy(name, [...upstream]);
      await proxy.listen();
      this.proxies.set(name, proxy);
    }

    const ordersSecret = randomBytes(32).toString("base64url");
    const webhookSecret = randomBytes(32).toString("hex");
    const common = {
      DATABASE_URL: this.databaseUrl,
      NATS_URL: this.natsUrl,
      REDIS_URL: this.redisUrl,
      AUTH_URL: this.url("auth"),
      AUTH_JWKS_URL: `${this.url("auth")}/.well-known/jwks.json`,
      AUTH_KEY_ENCRYPTION_KEY: testKeyEncryptionKey(),
      LOG_LEVEL: "info",
      HEALTH_PROBE_INTERVAL_MS: "1000",
      SHUTDOWN_GRACE_MS: "3000",
    };
    const s = chaosSettings;
    const env: Record<string, Record<string, string>> = {
      auth: { SERVICE_SECRETS: `orders=${ordersSecret}`, LOGIN_RATE_PER_IP: "100000" },
      fleet: {
        PRESENCE_SWEEP_MS: String(s.presenceSweepMs),
        COMMAND_SWEEP_MS: String(s.commandSweepMs),
        COMMAND_RESEND_MS: String(s.commandResendMs),
        JOB_TICK_MS: "500",
      },
      catalog: { RESERVATION_SWEEP_MS: String(s.reservationSweepMs), MAX_HELD_RESERVATIONS_PER_KIOSK: "500" },
      payments: {
        PROVIDER_URL: this.url("provider"),
        PROVIDER_API_KEY: this.providerApiKey,
        PROVIDER_WEBHOOK_SECRET: webhookSecret,
        PAYMENT_CONFIRM_TIMEOUT: `${s.paymentConfirmTimeoutSeconds}s`,
        PROVIDER_TIMEOUT: `${s.providerTimeoutSeconds}s`,
      },
      orders: {
        SERVICE_SECRET: ordersSecret,
        CATALOG_URL: this.url("catalog"),
        PAYMENTS_URL: this.url("payments"),
        ORDERS_TICKET_SIGNING_KEY: JSON.stringify(generateKeyPairSync("ed25519").privateKey.export({ format: "jwk" })),
        ORDER_HOLD_SECONDS: String(s.orderHoldSeconds),
      },
      link: {
        HEARTBEAT_INTERVAL_SECONDS: String(s.heartbeatSeconds),
        PRESENCE_TTL_SECONDS: String(s.presenceTtlSeconds),
        SILENT_TIMEOUT_SECONDS: String(s.presenceTtlSeconds),
        // The run's kiosks reconnect together after every link kill; no cool-down games.
        LINK_RATE_COOLDOWN_SECONDS: "0",
      },
    };
    const onCrash = (instance: Instance, code: number | null) => {
      if (this.stopping) return;
      this.crashes.push({ at: Date.now(), name: instance.name, code });
      log(`${instance.name} exited on its own (code ${code}); starting it again`);
      setTimeout(() => void this.restart(instance), 1_000);
    };
    const service = (name: string, port: number, index: number) => {
      const instanceName = name === "link" ? `link-${index}` : this.options.replicas > 1 && name !== "auth" ? `${name}-${index}` : name;
      const extra: Record<string, string> = name === "link" ? { LINK_REPLICA_ID: `chaos-link-${index}` } : {};
      return new Instance(
        instanceName,
        port,
        (p, onLine) => startServiceProcess(repoRoot, name, p, { ...common, ...env[name], ...extra, [`${name.toUpperCase()}_PORT`]: String(p) }, onLine),
        this.logDir,
        onCrash,
      );
    };
    const simEntry = join(repoRoot, "services/payments/src/provider-sim/main.ts");
    this.providerSim = new Instance(
      "provider-sim",
      ports.provider[0]!,
      (p, onLine) =>
        startProgramProcess(
          "provider-sim",
          simEntry,
          dirname(simEntry),
          p,
          {
            PROVIDER_API_KEY: this.providerApiKey,
            PROVIDER_WEBHOOK_SECRET: webhookSecret,
            PROVIDER_WEBHOOK_URL: `${this.url("webhooks")}/webhooks/provider`,
            WEBHOOK_DELAY: `${s.webhookDelayMs}ms`,
            PROVIDER_SIM_PORT: String(p),
            LOG_LEVEL: "info",
          },
          onLine,
        ),
      this.logDir,
      onCrash,
    );
    // In dependency order, independent ones together; the first replica of each migrates its
    // schema before the others start.
    const startAll = async (name: "auth" | "catalog" | "payments" | "orders" | "fleet" | "link") => {
      const instances = ports[name].map((p, i) => service(name, p, i));
      this.services.set(name, instances);
      await instances[0]!.start();
      await Promise.all(instances.slice(1).map((i) => i.start()));
      log(`${name}: ${instances.map((i) => i.url).join(", ")}`);
    };
    await startAll("auth");
    await Promise.all([startAll("catalog"), startAll("payments").then(() => this.providerSim.start()), startAll("link")]);
    await Promise.all([startAll("orders"), startAll("fleet")]);
    // Listed in a fixed order whatever finished first (the faults are drawn from this list).
    for (const name of ["auth", "catalog", "payments", "orders", "fleet", "link"]) {
      const instances = this.services.get(name)!;
      this.services.delete(name);
      this.services.set(name, instances);
    }
  }

  /** Starts `instance` again on its port (after a kill or a crash), retrying while its dependencies are down. */
  async restart(instance: Instance): Promise<void> {
    if (this.stopping || instance.running) return;
    await waitFor(
      `${instance.name} to start again`,
      async () => {
        if (this.stopping || instance.running) return true;
        await instance.start();
        return true;
      },
      { timeout: 120_000, interval: 1_000, retry: () => !this.stopping },
    );
  }

  async restartPostgres(downMs: number): Promise<void> {
    await this.pg.stop();
    await new Promise((r) => setTimeout(r, downMs));
    await this.pg.start();
  }

  async restartNats(downMs: number): Promise<void> {
    await this.nats.stop();
    await new Promise((r) => setTimeout(r, downMs));
    this.nats = await startNats(join(this.options.dir, "nats"), this.ports.nats);
  }

  async restartRedis(downMs: number): Promise<void> {
    await this.redis.stop();
    await new Promise((r) => setTimeout(r, downMs));
    this.redis = await startRedis(join(this.options.dir, "redis"), this.ports.redis);
  }

  /** POST to the provider simulator's control API. */
  async providerControl(path: string, body: unknown): Promise<void> {
    const res = await fetch(`${this.providerSim.url}${path}`, {
      method: "POST",
      headers: { authorization: `Bearer ${this.providerApiKey}`, "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    if (!res.ok) throw new Error(`provider ${path}: ${res.status} ${await res.text()}`);
  }

  async stop(): Promise<void> {
    this.stopping = true;
    for (const p of this.proxies.values()) p.setMode({ kind: "pass" });
    const order = ["link", "fleet", "orders", "payments", "catalog", "auth"];
    for (const name of order) await Promise.all((this.services.get(name) ?? []).map((i) => i.stop().catch(() => {})));
    await this.providerSim?.stop().catch(() => {});
    for (const p of this.proxies.values()) await p.close();
    await Promise.allSettled([this.nats?.stop(), this.redis?.stop()]);
    await this.pg?.stop().catch(() => {});
  }
}
