// Issue 20's admin pages end to end in Debian's chromium, on one shared stack: auth, fleet and
// link with three simulated kiosks (they apply configuration and answer commands), catalog,
// payments with its provider simulator and orders, and the production build behind devstack's
// web server. An admin edits a group's configuration and watches it roll out, creates and edits
// a product and an event with its seat map (then changes the seat map), reads the daily sales chart (one GetSalesSummary
// call), and follows a job's progress on its WatchJob stream. It also records the JavaScript
// the sign-in page and the signed-in overview load (docs/web.md, "First load"). Screenshots:
// docs/screenshots/ with UPDATE_SCREENSHOTS=1 (`npm run screenshots`), else a temporary folder.
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { type Browser, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { ConfigService } from "@adminkiosk/proto/adminkiosk/fleet/v1/config_pb";
import { KioskService } from "@adminkiosk/proto/adminkiosk/fleet/v1/fleet_pb";
import { JobService } from "@adminkiosk/proto/adminkiosk/fleet/v1/jobs_pb";
import { InventoryService, ProductService } from "@adminkiosk/proto/adminkiosk/catalog/v1/catalog_pb";
import { OrderState } from "@adminkiosk/proto/adminkiosk/orders/v1/orders_pb";
import { createDatabase, ensureWebBuild, freePort, repoRoot, startTestProgram, startTestService, startWebServer, webDistDir, type StartedService, type WebServer } from "@adminkiosk/devstack";
import { sell } from "@adminkiosk/kiosk-sdk";
import { provision, startSimulator, type SimKiosk, type Simulator } from "@adminkiosk/kiosk-sdk/simulator";
import { generateTicketSigningKey } from "../../services/orders/src/tickets.js";
import { adminEmail, adminPassword, bearer, startAuth, type AuthFixture } from "../support/auth.js";
import { launchBrowser, signInAs } from "../support/browser.js";

const screenshotDir = process.env["UPDATE_SCREENSHOTS"] ? join(repoRoot, "docs/screenshots") : mkdtempSync(join(tmpdir(), "adminkiosk-screenshots-"));
const shoot = (page: Page, name: string) => page.screenshot({ path: join(screenshotDir, `${name}.png`), fullPage: true });
const sku = "pages-cola";
const slow = { timeout: 30_000 };

let auth: AuthFixture;
let fleet: StartedService;
let link: StartedService;
let simulator: Simulator;
let kiosks: SimKiosk[];
const commerce: StartedService[] = [];
let catalogUrl: string;
let ordersUrl: string;
let web: WebServer;
let browser: Browser;

beforeAll(async () => {
  const infra = inject("infra");
  const built = ensureWebBuild(repoRoot);
  built.catch(() => {}); // awaited below
  auth = await startAuth();
  const shared = { REDIS_URL: auth.redisUrl, NATS_URL: infra.natsUrl, AUTH_JWKS_URL: `${auth.service.url}/.well-known/jwks.json` };
  [fleet, link] = await Promise.all([
    createDatabase(infra.databaseUrl, "fleet").then((db) =>
      startTestService("fleet", { ...shared, DATABASE_URL: db, AUTH_URL: auth.service.url, LINK_EVENTS_CONSUMER: `fleet-pages-e2e-${process.pid}`, LINK_EVENTS_SINCE_START: "true", JOB_TICK_MS: "200" }),
    ),
    startTestService("link", { ...shared, LINK_REPLICA_ID: "link-pages-e2e" }),
  ]);
  const starting = startCommerce(shared);
  starting.catch(() => {}); // awaited below
  kiosks = await provision({ idPrefix: "pages", authUrl: auth.service.url, fleetUrl: fleet.url, count: 3, stateFile: join(infra.tmpDir, `pages-e2e-sim-${process.pid}.json`), admin: { email: adminEmail, password: adminPassword } });
  simulator = startSimulator({ linkUrl: link.url, kiosks, telemetryIntervalMs: 2_000, flappingShare: 0 });
  await starting;
  const transport = createConnectTransport({ baseUrl: catalogUrl, httpVersion: "1.1", interceptors: [bearer(() => auth.adminToken())] });
  await createClient(ProductService, transport).createProduct({ product: { sku, name: "Cola 0.33 l", category: "drinks", priceMinor: 200n, currency: "EUR", taxRateBasisPoints: 2100, active: true } });
  await createClient(InventoryService, transport).restock({ kioskId: kiosks[0]!.kioskId, sku, quantity: 10n, reason: "first fill" });
  await built;
  web = await startWebServer({ distDir: webDistDir(repoRoot), upstreams: { auth: auth.service.url, fleet: fleet.url, catalog: catalogUrl, orders: ordersUrl, payments: commerce[1]!.url }, port: 0 });
  browser = await launchBrowser();
  mkdirSync(screenshotDir, { recursive: true });
});

afterAll(async () => {
  await browser?.close();
  await web?.close();
  await simulator?.stop();
  await Promise.all([fleet?.stop(), link?.stop(), ...commerce.map((c) => c.stop())]);
  await auth?.stop();
});

/** catalog, payments with its provider simulator, and orders, wired as npm start wires them. */
async function startCommerce(shared: Record<string, string>) {
  const infra = inject("infra");
  const apiKey = randomBytes(24).toString("hex");
  const webhookSecret = randomBytes(32).toString("hex");
  const simPort = await freePort();
  const [catalog, payments] = await Promise.all([
    createDatabase(infra.databaseUrl, "catalog").then((db) => startTestService("catalog", { ...shared, DATABASE_URL: db })),
    createDatabase(infra.databaseUrl, "payments").then((db) =>
      startTestService("payments", { ...shared, DATABASE_URL: db, PROVIDER_URL: `http://127.0.0.1:${simPort}`, PROVIDER_API_KEY: apiKey, PROVIDER_WEBHOOK_SECRET: webhookSecret }),
    ),
  ]);
  commerce.push(catalog, payments);
  catalogUrl = catalog.url;
  commerce.push(
    await startTestProgram(
      "provider-sim",
      "services/payments/src/provider-sim/main.ts",
      "PROVIDER_SIM_PORT",
      { PROVIDER_API_KEY: apiKey, PROVIDER_WEBHOOK_SECRET: webhookSecret, PROVIDER_WEBHOOK_URL: `${payments.url}/webhooks/provider`, WEBHOOK_DELAY: "50ms" },
      simPort,
    ),
  );
  const suffix = randomBytes(4).toString("hex");
  const orders = await startTestService("orders", {
    ...shared,
    DATABASE_URL: await createDatabase(infra.databaseUrl, "orders"),
    ...auth.serviceEnv("orders"),
    CATALOG_URL: catalog.url,
    PAYMENTS_URL: payments.url,
    ORDERS_TICKET_SIGNING_KEY: await generateTicketSigningKey(),
    PAYMENTS_EVENTS_CONSUMER: `orders-payments-${suffix}`,
    CATALOG_EVENTS_CONSUMER: `orders-catalog-${suffix}`,
  });
  commerce.push(orders);
  ordersUrl = orders.url;
}

async function newPage(): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.on("pageerror", (err) => console.error(`page error: ${err.message}`));
  return page;
}

async function signIn(page: Page) {
  await page.goto(`${web.url}/`);
  await signInAs(page, adminEmail, adminPassword);
}

/** The JavaScript files a page fetched, each with its gzip size as the build has it. */
function recordScripts(page: Page): { files: Set<string>; gzipKb(): number } {
  const files = new Set<string>();
  page.on("response", (res) => {
    const path = new URL(res.url()).pathname;
    if (path.startsWith("/assets/") && path.endsWith(".js")) files.add(path);
  });
  return {
    files,
    gzipKb: () => [...files].reduce((n, f) => n + gzipSync(readFileSync(join(webDistDir(repoRoot), f))).length, 0) / 1000,
  };
}

let page: Page;

describe("an admin", { timeout: 90_000 }, () => {
  it("loads the sign-in page and the signed-in overview; the JavaScript each fetched is recorded", async () => {
    const signin = await newPage();
    const before = recordScripts(signin);
    let asked = false;
    signin.on("request", (req) => (asked ||= req.url().endsWith(".AuthService/ListSsoProviders")));
    await signin.goto(`${web.url}/signin`);
    await signin.getByRole("button", { name: "Sign in" }).waitFor();
    await expect.poll(() => asked, slow).toBe(true); // the page's one call is made: its code has loaded
    const entry = [...before.files].filter((f) => /\/index-[^/]+\.js$/.test(f));
    expect(entry).toHaveLength(1);
    console.log(`sign-in page: ${before.files.size} scripts, ${before.gzipKb().toFixed(1)} kB gzip`);
    await signin.close();

    page = await newPage();
    await signIn(page);
    // A reload of the overview with the session kept: everything it needs to show the fleet.
    const overview = recordScripts(page);
    await page.reload();
    await page.getByRole("heading", { name: "Fleet", level: 1 }).waitFor();
    // The table's rows and the navigation's alerts badge are the last things the overview draws.
    await page.locator('[data-testid="kiosk-row"]').first().waitFor(slow);
    console.log(`signed-in overview: ${overview.files.size} scripts, ${overview.gzipKb().toFixed(1)} kB gzip`);
    expect(overview.files.size).toBeGreaterThan(1);
  });

  it("edits a group's configuration and watches the group's kiosks apply it", async () => {
    const fleetApi = createClient(KioskService, createConnectTransport({ baseUrl: fleet.url, httpVersion: "1.1", interceptors: [bearer(() => auth.adminToken())] }));
    const groupId = (await fleetApi.getKiosk({ kioskId: kiosks[0]!.kioskId })).kiosk!.groupId;
    const members = (await Promise.all(kiosks.map((k) => fleetApi.getKiosk({ kioskId: k.kioskId })))).filter((r) => r.kiosk?.groupId === groupId).length;
    const configApi = createClient(ConfigService, createConnectTransport({ baseUrl: fleet.url, httpVersion: "1.1", interceptors: [bearer(() => auth.adminToken())] }));
    const first = await configApi.setGroupConfig({ groupId, config: { brightness: 50 } });
    await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Groups", exact: true }).click();
    await page.getByRole("heading", { name: "Configuration groups" }).waitFor();
    await page.getByRole("link", { name: groupId, exact: true }).click();
    await page.waitForURL(new RegExp(`/fleet/groups/${groupId}$`));
    await expect.poll(() => page.getByTestId("group-rollout-count").textContent(), slow).toContain(`of ${members}`);

    // Mistakes are said as they are typed, and the save waits for a valid document.
    await page.getByRole("button", { name: "Edit group configuration" }).click();
    const editor = page.getByTestId("group-config-editor");
    await editor.fill('{"volume": 7,');
    await expect.poll(() => page.getByTestId("group-config-hint").textContent()).toContain("Not valid JSON");
    expect(await page.getByRole("button", { name: "Save and roll out" }).isDisabled()).toBe(true);
    await editor.fill("[1, 2]");
    await expect.poll(() => page.getByTestId("group-config-hint").textContent()).toContain("must be a JSON object");

    // Someone else saves meanwhile: this save is refused, and said so with the versions.
    expect(await page.getByTestId("group-config-version").textContent()).toBe(`v${first.config!.version}`);
    const other = await configApi.setGroupConfig({ groupId, config: { brightness: 60 } });
    await editor.fill('{"volume": 7, "language": "cs"}');
    await page.getByRole("button", { name: "Save and roll out" }).click();
    await expect.poll(() => page.getByTestId("group-config-conflict").textContent()).toContain(`now v${other.config!.version}`);
    await page.getByRole("button", { name: /Keep my text/ }).click();
    await page.getByRole("button", { name: "Save and roll out" }).click();
    await expect.poll(() => page.getByTestId("group-saved").textContent()).toMatch(new RegExp(`: ${members} kiosks? got it`));
    await expect.poll(async () => JSON.parse((await page.getByTestId("group-config-json").textContent()) ?? "")).toEqual({ volume: 7, language: "cs" });
    // The simulated kiosks apply it; the rollout counts them as they report.
    await expect.poll(() => page.getByTestId("group-rollout-count").textContent(), slow).toContain(`${members} of ${members}`);
    await shoot(page, "group-config");
    expect((await configApi.getGroupConfig({ groupId })).config?.config).toEqual({ volume: 7, language: "cs" });

    // A group id fleet refuses is said in words, naming the field.
    await page.goto(`${web.url}/fleet/groups/${encodeURIComponent("no spaces allowed")}`);
    await expect.poll(() => page.getByRole("alert").first().textContent()).toContain("group_id");
  });

  it("creates a product and edits its price; catalog's refusal is shown at its field", async () => {
    await page.goto(`${web.url}/catalog`);
    await page.getByRole("heading", { name: "Catalog and inventory" }).waitFor();
    await page.getByRole("button", { name: "New product" }).click();
    const form = page.getByTestId("product-editor");
    await form.getByLabel("Name").fill("Lemonade 0.5 l");
    await form.getByLabel("SKU").fill("pages-lemonade");
    await form.getByLabel("Category").fill("drinks");
    await form.getByLabel("Price (tax included)").fill("2.5");
    await form.getByLabel("Tax rate (%)").fill("21");
    await form.getByLabel("Image URLs").fill("ftp://images.example/lemonade.png");
    await form.getByRole("button", { name: "Create product" }).click();
    await expect.poll(() => form.locator(".field-invalid").filter({ hasText: "Image URLs" }).textContent()).toContain("must be an http(s) URL");
    await shoot(page, "product-editor");
    await form.getByLabel("Image URLs").fill("https://images.example/lemonade.png");
    await form.getByRole("button", { name: "Create product" }).click();
    const row = page.getByTestId("product-row").filter({ hasText: "pages-lemonade" });
    await expect.poll(() => row.textContent()).toContain("2.50");

    await row.getByRole("button", { name: "Edit Lemonade 0.5 l" }).click();
    expect(await page.getByTestId("product-editor").getByLabel("SKU").isDisabled()).toBe(true);
    await page.getByTestId("product-editor").getByLabel("Price (tax included)").fill("2.75");
    await page.getByTestId("product-editor").getByRole("button", { name: "Save product" }).click();
    await expect.poll(() => row.textContent()).toContain("2.75");
    const catalog = createClient(ProductService, createConnectTransport({ baseUrl: catalogUrl, httpVersion: "1.1", interceptors: [bearer(() => auth.adminToken())] }));
    expect((await catalog.getProduct({ sku: "pages-lemonade" })).product).toMatchObject({ priceMinor: 275n, taxRateBasisPoints: 2100, imageUrls: ["https://images.example/lemonade.png"] });
  });

  it("creates an event with its seat map, sees every seat available, and renames it", async () => {
    await page.getByRole("button", { name: "New event" }).click();
    const form = page.getByTestId("event-editor");
    await form.getByLabel("Event").fill("Pages quartet");
    await form.getByLabel("Venue").fill("Small hall");
    await form.getByLabel("Seat price").fill("18");
    await form.getByLabel("Section name").fill("Stalls");
    await form.getByLabel("Rows").fill("3");
    await form.getByLabel("Seats per row").fill("8");
    await expect.poll(() => page.getByTestId("seat-count").textContent()).toBe("24 seats");
    expect(await page.getByTestId("seat-map-preview").locator(".seat").count()).toBe(24);
    // A tier id catalog does not take: refused, and said under that field.
    await form.getByLabel("Tier id").fill("vip seats");
    await form.getByRole("button", { name: "Create event" }).click();
    await expect.poll(() => form.locator(".field-invalid").filter({ hasText: "Tier id" }).textContent()).toContain("may contain only letters, digits and '_'");
    await shoot(page, "event-editor");
    await form.getByLabel("Tier id").fill("stalls");
    await form.getByRole("button", { name: "Create event" }).click();
    await expect.poll(() => page.getByTestId("event-summary").textContent(), slow).toContain("24 seats: 24 available, 0 held, 0 sold");
    expect(await page.getByTestId("seat-map").locator('[data-state="available"]').count()).toBe(24);

    await page.getByRole("button", { name: "Edit event" }).click();
    await page.getByTestId("event-editor").getByLabel("Event").fill("Pages quartet (late show)");
    await page.getByTestId("event-editor").getByRole("button", { name: "Save event" }).click();
    await expect.poll(() => page.getByRole("combobox", { name: "Event" }).locator("option:checked").textContent()).toContain("Pages quartet (late show)");
    await shoot(page, "catalog-events");
  });

  it("changes that event's seat map while no seat is sold or held, and sees the new seats", async () => {
    await page.getByRole("button", { name: "Edit event" }).click();
    const form = page.getByTestId("event-editor");
    await form.getByLabel("Change the price tiers and seat map").check();
    // The builder starts from the event's map: one section of 3 rows × 8 seats.
    await expect.poll(() => form.getByTestId("seat-count").textContent()).toBe("24 seats");
    await form.getByLabel("Rows").fill("2");
    await form.getByLabel("Seats per row").fill("5");
    await form.getByLabel("Seat price").fill("20");
    expect(await form.getByTestId("seat-map-preview").locator(".seat").count()).toBe(10);
    await form.getByRole("button", { name: "Save event and seat map" }).click();
    await expect.poll(() => page.getByTestId("event-summary").textContent(), slow).toContain("10 seats: 10 available, 0 held, 0 sold");
    expect(await page.getByTestId("seat-map").locator('[data-state="available"]').count()).toBe(10);
    expect(await page.getByTestId("seat-map").locator('[title^="Stalls row B seat 5"]').count()).toBe(1);
    await expect.poll(() => page.getByTestId("event-summary").textContent()).toContain("20.00");
    await shoot(page, "event-seat-map-edit");
  });

  it("draws the daily sales chart from one GetSalesSummary call", async () => {
    const order = await sell({ idempotencyKey: crypto.randomUUID(), items: [{ sku, quantity: 3n }], paymentMethod: "pm_card_visa" }, { ordersAddress: ordersUrl, credential: kiosks[0]!.deviceCredential });
    expect(order.state).toBe(OrderState.COMPLETED);
    const calls: string[] = [];
    page.on("request", (req) => {
      if (req.url().endsWith("/adminkiosk.orders.v1.OrderService/GetSalesSummary")) calls.push(req.postData() ?? "");
    });
    await page.goto(`${web.url}/orders`);
    await page.getByTestId("sales-chart").waitFor(slow);
    await expect.poll(() => page.getByText("net over 14 days").textContent()).toContain("6.00");
    expect(calls).toHaveLength(1);
    expect(JSON.parse(calls[0]!)).toMatchObject({ bucket: "SALES_BUCKET_DAY" });
    await shoot(page, "sales-chart");
  });

  it("follows a job's progress on its WatchJob stream, without reading the job or its commands on a timer", async () => {
    const jobs = createClient(JobService, createConnectTransport({ baseUrl: fleet.url, httpVersion: "1.1", interceptors: [bearer(() => auth.adminToken())] }));
    const ids = kiosks.slice(0, 2).map((k) => k.kioskId);
    const calls = { getJob: 0, listCommands: 0, watchJob: 0 };
    page.on("request", (req) => {
      const method = req.url().split("/").pop() ?? "";
      if (method === "GetJob") calls.getJob++;
      if (method === "ListCommands") calls.listCommands++;
      if (method === "WatchJob") calls.watchJob++;
    });
    // 3 a minute: the second kiosk's command goes about 20 s after the first, so a page that
    // read the commands every 2 s would make ten calls or more meanwhile.
    const { job } = await jobs.createJob({ description: "Pages: refresh the catalog", action: { kind: { case: "refreshCatalog", value: {} } }, target: { kioskIds: ids }, ratePerMinute: 3, idempotencyKey: crypto.randomUUID() });
    await page.goto(`${web.url}/jobs/${job!.jobId}`);
    await page.getByRole("heading", { name: "Pages: refresh the catalog" }).waitFor();
    await expect.poll(() => page.getByTestId("job-succeeded").textContent(), { timeout: 60_000 }).toBe(String(ids.length));
    await expect.poll(() => page.locator('[data-testid="job-progress"]').textContent()).toContain(`${ids.length} dispatched`);
    await shoot(page, "job-progress");
    expect(calls.watchJob).toBeGreaterThanOrEqual(1);
    expect(calls.getJob).toBe(1);
    // The commands are read once, then once per change the stream brought (each command
    // dispatched, in flight, finished; the job completed), not every 2 s.
    expect(calls.listCommands).toBeLessThanOrEqual(1 + 3 * ids.length + 1);
  });
});
