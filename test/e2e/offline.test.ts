// The admin web's Offline selling page (/offline, issue 18) end to end in Debian's chromium:
// real auth, fleet, catalog, payments (with the provider simulator) and orders processes,
// a kiosk on the kiosk SDK, the production build served by devstack's web server. An
// operator sees a kiosk's lease and what of it is not synced, revokes it from the page
// while the kiosk sells offline, and — once the kiosk has synced — sees its sales, the
// conflicts they raised, and accepts one. Screenshot: into docs/screenshots/ with
// UPDATE_SCREENSHOTS=1, otherwise into a temporary folder.
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Browser, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { LeaseService } from "@adminkiosk/proto/adminkiosk/catalog/v1/leases_pb";
import { ConflictResolution, ConflictState, OfflineSaleOutcome, OfflineSaleService } from "@adminkiosk/proto/adminkiosk/orders/v1/offline_pb";
import { OfflineSeller } from "@adminkiosk/kiosk-sdk";
import { createDatabase, ensureWebBuild, repoRoot, startTestService, startWebServer, webDistDir, type StartedService, type WebServer } from "@adminkiosk/devstack";
import { startSale, type SaleFixture } from "../../services/orders/test/fixture.js";
import { adminEmail, adminPassword, clientFor } from "../support/auth.js";
import { launchBrowser, signInAs } from "../support/browser.js";

const screenshotDir = process.env["UPDATE_SCREENSHOTS"] ? join(repoRoot, "docs/screenshots") : mkdtempSync(join(tmpdir(), "adminkiosk-screenshots-"));
const suffix = randomBytes(3).toString("hex");
const kioskId = `offline-web-${suffix}`;
const sku = `web-water-${suffix}`;

let f: SaleFixture;
let fleet: StartedService;
let web: WebServer;
let browser: Browser;

beforeAll(async () => {
  const infra = inject("infra");
  const built = ensureWebBuild(repoRoot);
  built.catch(() => {}); // awaited below
  f = await startSale();
  fleet = await startTestService("fleet", {
    DATABASE_URL: await createDatabase(infra.databaseUrl, "fleet"),
    REDIS_URL: f.auth.redisUrl,
    NATS_URL: infra.natsUrl,
    AUTH_JWKS_URL: `${f.auth.service.url}/.well-known/jwks.json`,
    AUTH_URL: f.auth.service.url,
    LINK_EVENTS_CONSUMER: `fleet-offline-e2e-${process.pid}`,
    LINK_EVENTS_SINCE_START: "true",
  });
  await built;
  web = await startWebServer({
    distDir: webDistDir(repoRoot),
    upstreams: { auth: f.auth.service.url, fleet: fleet.url, catalog: f.catalog.url, payments: f.payments.url, orders: f.orders.url },
    port: 0,
  });
  mkdirSync(screenshotDir, { recursive: true });
  browser = await launchBrowser();
}, 180_000);

afterAll(async () => {
  await browser?.close();
  await web?.close();
  await fleet?.stop();
  await f?.stop();
});

async function signedIn(): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.on("pageerror", (err) => console.error(`page error: ${err.message}`));
  await page.goto(`${web.url}/`);
  await signInAs(page, adminEmail, adminPassword);
  return page;
}

describe("the Offline selling page", () => {
  it("shows a kiosk's lease and what is not synced, revokes it, then lists the kiosk's synced sales and their conflicts, and resolves one", async () => {
    await f.product(sku, 200n, { [kioskId]: 5n });
    const { eventId, seatIds } = await f.event(2);
    const seller = new OfflineSeller({ kioskId, credential: await f.device(kioskId), catalogAddress: f.catalog.url, ordersAddress: f.orders.url });
    await seller.lease({ items: [{ sku, quantity: 3n }], seats: seatIds.map((seatId) => ({ eventId, seatId })) });
    // Offline: one unit for cash, one seat for cash.
    await seller.sell({ idempotencyKey: `${kioskId}-1`, items: [{ sku, quantity: 1n }], paymentMethod: "cash" });
    await seller.sell({ idempotencyKey: `${kioskId}-2`, seats: [{ eventId, seatId: seatIds[0]! }], paymentMethod: "cash" });

    const page = await signedIn();
    await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Offline selling" }).click();
    await page.getByRole("heading", { name: "Offline selling", level: 1 }).waitFor();
    await page.getByPlaceholder("Kiosk id (all kiosks)").fill(kioskId);
    const lease = page.getByTestId("lease-row").filter({ hasText: kioskId });
    await expect.poll(() => lease.textContent()).toContain(`${sku} 0/3`);
    // Nothing synced yet: the whole lease is unsold or pending sync.
    expect(await lease.getByTestId("lease-unsynced").textContent()).toBe("3 units, 2 seats");

    // The operator revokes it from the page; the seats stay held until the kiosk syncs.
    page.once("dialog", (d) => void d.accept("kiosk reported stolen"));
    await lease.getByRole("button", { name: "Revoke" }).click();
    await expect.poll(() => lease.textContent()).toContain("Seats held until the kiosk syncs");

    // The kiosk is back: both sales are recorded as sold, each a conflict.
    const results = await seller.sync();
    expect(results.map((r) => r.outcome)).toEqual([OfflineSaleOutcome.CONFLICT, OfflineSaleOutcome.CONFLICT]);
    await page.reload();
    await page.getByPlaceholder("Kiosk id (all kiosks)").fill(kioskId);
    await expect.poll(() => page.getByTestId("offline-sale-row").filter({ hasText: kioskId }).count()).toBe(2);
    const conflicts = page.getByTestId("conflict-row").filter({ hasText: kioskId });
    await expect.poll(() => conflicts.count()).toBe(2);
    expect(await conflicts.first().textContent()).toContain("Sold under a revoked lease");
    expect(await page.getByTestId("lease-row").filter({ hasText: kioskId }).textContent()).toContain(`${sku} 1/3`);
    await page.screenshot({ path: join(screenshotDir, "offline-selling.png"), fullPage: true });

    // Accept the seat's sale: it leaves the open queue, resolved by the operator.
    const seatOrder = results[1]!.order!.orderId;
    const row = conflicts.filter({ has: page.locator(`a[href="/orders/${seatOrder}"]`) });
    await row.getByLabel("Resolution").selectOption({ label: "Accept: the sale stands" });
    await row.getByLabel("Note").fill("seat sale stands");
    await row.getByRole("button", { name: "Resolve" }).click();
    await expect.poll(() => conflicts.count()).toBe(1);
    const { conflicts: resolved } = await clientFor(OfflineSaleService, f.orders.url, f.tokens.viewer).listOfflineConflicts({ kioskId, state: ConflictState.RESOLVED });
    expect(resolved.map((c) => [c.orderId, c.resolution, c.note])).toEqual([[seatOrder, ConflictResolution.ACCEPTED, "seat sale stands"]]);
    const { leases } = await f.catalogAs(LeaseService, f.tokens.viewer).listLeases({ kioskId });
    expect(leases[0]!.endReason).toContain("kiosk reported stolen");
    await page.close();
  }, 120_000);
});
