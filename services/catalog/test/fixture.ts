// A real auth and a real catalog process on their own database and Redis DB, with
// callers of every kind: admin, operator, viewer, enrolled kiosk devices and the
// platform's services (orders, which alone reserves, commits and releases, as itself).
import type { DescService } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, type Client } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { AckPolicy, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { inject } from "vitest";
import { DeviceService } from "@adminkiosk/proto/adminkiosk/auth/v1/auth_pb";
import { EventService, ProductService } from "@adminkiosk/proto/adminkiosk/catalog/v1/catalog_pb";
import { createDatabase, eventually, startTestService, waitFor, type StartedService } from "@adminkiosk/devstack";
import { bearer, clientFor, freshToken, Role, startAuth, type AuthFixture, type PlatformServiceName } from "../../../test/support/auth.js";

export interface CatalogFixture {
  auth: AuthFixture;
  catalog: StartedService;
  databaseUrl: string;
  tokens: { admin: string; operator: string; operatorUserId: string; viewer: string };
  as<S extends DescService>(service: S, token: string): Client<S>;
  /** A client calling as the orders service (its own service token, renewed before it expires). */
  asOrders<S extends DescService>(service: S): Client<S>;
  /** A client calling as another platform service, with that service's own token. */
  asService<S extends DescService>(name: PlatformServiceName, service: S): Client<S>;
  /** A device credential for `kioskId` (enrolled once, then cached). */
  device(kioskId: string): Promise<string>;
  /** Waits for the next message on an exact subject of stream CATALOG (from the start of the stream). */
  nextEvent(subject: string, timeoutMs?: number): Promise<Uint8Array>;
  stop(): Promise<void>;
}

/** `sharing`: another fixture whose auth (and users) this one uses too, on a database of its own. */
export async function startCatalog(settings: Record<string, string> = {}, sharing?: CatalogFixture): Promise<CatalogFixture> {
  const infra = inject("infra");
  const auth = sharing?.auth ?? (await startAuth());
  const databaseUrl = await createDatabase(infra.databaseUrl, "catalog");
  const catalog = await startTestService("catalog", {
    DATABASE_URL: databaseUrl,
    REDIS_URL: auth.redisUrl,
    NATS_URL: infra.natsUrl,
    AUTH_JWKS_URL: `${auth.service.url}/.well-known/jwks.json`,
    RESERVATION_SWEEP_MS: "200",
    HEALTH_PROBE_INTERVAL_MS: "300",
    SHUTDOWN_GRACE_MS: "3000",
    ...settings,
  });
  const tokens = sharing?.tokens ?? (await usersOfEveryRole(auth));
  await untilTokensVerify(clientFor(ProductService, catalog.url, tokens.admin));
  const devices = new Map<string, Promise<string>>();
  const serviceTokens = new Map<PlatformServiceName, () => Promise<string>>();
  const asService = <S extends DescService>(name: PlatformServiceName, service: S): Client<S> => {
    let token = serviceTokens.get(name);
    if (!token) serviceTokens.set(name, (token = freshToken(() => auth.serviceToken(name))));
    return createClient(service, createGrpcTransport({ baseUrl: catalog.url, interceptors: [bearer(token)] }));
  };
  let nc: NatsConnection | undefined;
  return {
    auth,
    catalog,
    databaseUrl,
    tokens,
    as: (service, token) => clientFor(service, catalog.url, token),
    asOrders: (service) => asService("orders", service),
    asService,
    device(kioskId) {
      let credential = devices.get(kioskId);
      if (!credential) {
        credential = (async () => {
          const { code } = await auth.client(DeviceService, tokens.admin).createEnrollmentCode({ kioskId });
          return (await auth.client(DeviceService).enrollDevice({ code })).deviceCredential;
        })();
        devices.set(kioskId, credential);
      }
      return credential;
    },
    async nextEvent(subject, timeoutMs = eventually.timeout) {
      nc ??= await connect({ servers: infra.natsUrl });
      const info = await (await jetstreamManager(nc)).consumers.add("CATALOG", {
        filter_subject: subject,
        ack_policy: AckPolicy.None,
        deliver_policy: "all",
        inactive_threshold: 30_000_000_000,
      });
      const msg = await (await jetstream(nc).consumers.get("CATALOG", info.name)).next({ expires: timeoutMs });
      if (!msg) throw new Error(`no event on ${subject} within ${timeoutMs} ms`);
      return msg.data;
    },
    async stop() {
      await nc?.close();
      await catalog.stop();
      if (!sharing) await auth.stop();
    },
  };
}

/**
 * A fresh process fetches auth's JWKS on its first authenticated call, with a 3 s timeout;
 * on a busy test machine that first fetch can miss it (Unavailable). Tests start once it works.
 */
async function untilTokensVerify(products: Client<typeof ProductService>) {
  await waitFor("catalog to verify tokens", async () => (await products.listProducts({ pageSize: 1 }), true), {
    timeout: 60_000,
    interval: 500,
    retry: (err) => ConnectError.from(err).code === Code.Unavailable,
  });
}

async function usersOfEveryRole(auth: AuthFixture): Promise<CatalogFixture["tokens"]> {
  const operator = await auth.userWithRole(Role.OPERATOR);
  return {
    admin: await auth.adminToken(),
    operator: operator.accessToken,
    operatorUserId: operator.userId,
    viewer: (await auth.userWithRole(Role.VIEWER)).accessToken,
  };
}

/** A product as an admin creates it; override what the test cares about. */
export async function createProduct(f: CatalogFixture, sku: string, extra: Partial<{ name: string; description: string; category: string; priceMinor: bigint; currency: string; active: boolean }> = {}) {
  const { product } = await f.as(ProductService, f.tokens.admin).createProduct({
    product: {
      sku,
      name: extra.name ?? `Product ${sku}`,
      description: extra.description ?? "",
      category: extra.category ?? "snacks",
      priceMinor: extra.priceMinor ?? 250n,
      currency: extra.currency ?? "EUR",
      taxRateBasisPoints: 2100,
      imageUrls: [],
      active: extra.active ?? true,
    },
  });
  return product!;
}

/** An event tomorrow with one section of `rows` rows × `perRow` seats, in tiers "std" (row 1) and "vip". */
export async function createEvent(f: CatalogFixture, rows = 2, perRow = 10, currency = "EUR") {
  const { event } = await f.as(EventService, f.tokens.admin).createEvent({
    event: {
      name: "Evening concert",
      venue: "Hall A",
      startTime: { seconds: BigInt(Math.floor(Date.now() / 1000) + 86_400), nanos: 0 },
      active: true,
      priceTiers: [
        { tierId: "std", name: "Standard", priceMinor: 3000n, currency },
        { tierId: "vip", name: "VIP", priceMinor: 9000n, currency },
      ],
      sections: [
        {
          sectionId: "A",
          name: "Stalls",
          rows: Array.from({ length: rows }, (_, r) => ({
            rowId: String(r + 1),
            seats: Array.from({ length: perRow }, (_, s) => ({ number: String(s + 1), tierId: r === 0 ? "std" : "vip" })),
          })),
        },
      ],
    },
  });
  return event!;
}
