// The fleet query page and the approval queue end to end in Debian's chromium: real auth
// and fleet processes, the production build served by devstack's web server. An admin
// types a query with the bar's completion, reads the totals as a table and a chart, sees
// a mistake pointed at, tags the match through a dry run, and plans a reboot that a second
// admin approves from the queue. Takes screenshots: into docs/screenshots/ with
// UPDATE_SCREENSHOTS=1 (`npm run screenshots` for this file too), otherwise into a temporary folder.
import { mkdirSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Browser, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { KioskService } from "@adminkiosk/proto/adminkiosk/fleet/v1/fleet_pb";
import { FleetQueryService } from "@adminkiosk/proto/adminkiosk/fleet/v1/query_pb";
import { createDatabase, ensureWebBuild, repoRoot, startTestService, startWebServer, webDistDir, type StartedService, type WebServer } from "@adminkiosk/devstack";
import { adminEmail, adminPassword, clientFor, Role, startAuth, type AuthFixture } from "../support/auth.js";
import { launchBrowser, signInAs } from "../support/browser.js";

const screenshotDir = process.env["UPDATE_SCREENSHOTS"] ? join(repoRoot, "docs/screenshots") : mkdtempSync(join(tmpdir(), "adminkiosk-screenshots-"));
const shoot = (page: Page, name: string) => page.screenshot({ path: join(screenshotDir, `${name}.png`), fullPage: true });

let auth: AuthFixture;
let fleet: StartedService;
let web: WebServer;
let browser: Browser;
let second: { email: string; password: string };

beforeAll(async () => {
  const infra = inject("infra");
  const built = ensureWebBuild(repoRoot);
  built.catch(() => {}); // awaited below
  auth = await startAuth();
  fleet = await startTestService("fleet", {
    DATABASE_URL: await createDatabase(infra.databaseUrl, "fleet"),
    REDIS_URL: auth.redisUrl,
    NATS_URL: infra.natsUrl,
    AUTH_JWKS_URL: `${auth.service.url}/.well-known/jwks.json`,
    AUTH_URL: auth.service.url,
    LINK_EVENTS_CONSUMER: `fleet-query-e2e-${process.pid}`,
    LINK_EVENTS_SINCE_START: "true",
  });
  const kiosks = clientFor(KioskService, fleet.url, await auth.adminToken());
  for (let i = 0; i < 6; i++) {
    await kiosks.createKiosk({ kiosk: { kioskId: `qe2e-${i}`, name: `Query kiosk ${i}`, groupId: i < 4 ? "qe2e-north" : "qe2e-south", tags: i % 2 ? ["outdoor"] : [] } });
  }
  const user = await auth.userWithRole(Role.ADMIN);
  second = { email: user.email, password: "a-long-enough-password" };
  await built;
  web = await startWebServer({ distDir: webDistDir(repoRoot), upstreams: { auth: auth.service.url, fleet: fleet.url }, port: 0 });
  mkdirSync(screenshotDir, { recursive: true });
  browser = await launchBrowser();
});

afterAll(async () => {
  await browser?.close();
  await web?.close();
  await fleet?.stop();
  await auth?.stop();
});

async function signedIn(email: string, password: string): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.on("pageerror", (err) => console.error(`page error: ${err.message}`));
  await page.goto(`${web.url}/`);
  await signInAs(page, email, password);
  return page;
}

describe("fleet query page", () => {
  it("completes, runs, totals as a table and a chart, and keeps the query in a shareable link", async () => {
    const page = await signedIn(adminEmail, adminPassword);
    await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Query", exact: true }).click();
    await page.getByRole("heading", { name: "Fleet query" }).waitFor();
    const input = page.getByTestId("query-input");
    await input.click();
    await input.pressSequentially("gro");
    await expect.poll(() => page.getByTestId("query-suggestions").textContent()).toContain("group");
    await input.press("Tab");
    expect(await input.inputValue()).toBe("group ");
    await input.pressSequentially("~ qe2e | stats count() by group");
    await input.press("Escape");
    await input.press("Enter");
    await page.waitForURL(/\/fleet\/query\?q=/);
    await expect.poll(() => page.getByTestId("query-total").textContent()).toBe("6 kiosks");
    await expect.poll(() => page.getByTestId("query-row").count()).toBe(6);
    const stats = page.getByTestId("stats-table");
    await expect.poll(() => stats.locator("tbody tr").allTextContents()).toEqual(["qe2e-north4", "qe2e-south2"]);
    expect(await page.getByTestId("stats-chart").textContent()).toContain("qe2e-north");
    await shoot(page, "fleet-query");

    // The address is the query (a shareable link).
    expect(decodeURIComponent(new URL(page.url()).searchParams.get("q") ?? "")).toBe("group ~ qe2e | stats count() by group");
    await page.close();
  });

  it("points at a mistake in the query", async () => {
    const page = await signedIn(adminEmail, adminPassword);
    await page.goto(`${web.url}/fleet/query?q=${encodeURIComponent("paper <")}`);
    const error = page.getByTestId("query-error");
    await error.waitFor();
    expect(await error.textContent()).toContain("line 1, column 8 (offset 7): expected a value for paper");
    await page.close();
  });

  it("tags the match through a dry run; a reboot waits for a second admin, who approves it from the queue", async () => {
    const page = await signedIn(adminEmail, adminPassword);
    await page.goto(`${web.url}/fleet/query?q=${encodeURIComponent("group = qe2e-north")}`);
    await expect.poll(() => page.getByTestId("query-total").textContent()).toBe("4 kiosks");
    await page.getByTestId("bulk-open").click();
    await page.getByTestId("bulk-add-tags").fill("checked");
    await page.getByTestId("bulk-dry-run").click();
    await expect.poll(() => page.getByTestId("bulk-count").textContent()).toBe("4 kiosks");
    await page.getByTestId("bulk-run").click();
    await expect.poll(() => page.getByTestId("bulk-done").textContent()).toContain("4 kiosks touched");
    const admin = clientFor(FleetQueryService, fleet.url, await auth.adminToken());
    expect((await admin.queryKiosks({ query: "tag = checked" })).totalSize).toBe(4);

    // A reboot of the same kiosks: dangerous, it goes to the approval queue.
    await page.getByRole("button", { name: "Close" }).click();
    await page.getByTestId("bulk-open").click();
    await page.getByText("Send a command").click();
    await page.getByLabel("Command", { exact: true }).selectOption({ label: "Reboot" });
    await page.getByTestId("bulk-dry-run").click();
    await page.getByText("Needs a second admin").waitFor();
    await shoot(page, "bulk-action-dry-run");
    expect(await page.getByTestId("bulk-run").count()).toBe(0);
    await page.goto(`${web.url}/fleet/approvals`);
    await expect.poll(() => page.getByTestId("approval-item").count()).toBe(1);
    expect(await page.getByTestId("approve").isDisabled()).toBe(true); // not by its planner
    await page.close();

    const approver = await signedIn(second.email, second.password);
    await approver.goto(`${web.url}/fleet/approvals`);
    await approver.getByTestId("approval-item").waitFor();
    await shoot(approver, "bulk-approvals");
    await approver.getByTestId("approve").click();
    await expect.poll(() => approver.getByTestId("approval-item").count()).toBe(0);
    // The reboot in the latest actions: run on the dry run's 4 kiosks, approved by the second admin.
    await expect.poll(() => approver.getByRole("row").filter({ hasText: "approved by you" }).textContent()).toContain("4 touched");
    await approver.close();
  });
});
