// The customers pages end to end in Debian's chromium (issue 22): real auth and customers
// processes, the production build served by devstack's web server. An operator finds a member
// (Members: points and purchases), a buyer rates a purchase on the public review page a
// receipt's link opens (no sign-in; an altered link is refused), and the operator approves it
// on Reviews, where the product's approved rating then shows.
import { randomBytes, randomUUID } from "node:crypto";
import { type Browser, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConsentPurpose, MemberService, ReviewService, ReviewState } from "@adminkiosk/proto/adminkiosk/customers/v1/customers_pb";
import { ensureWebBuild, eventually, repoRoot, startWebServer, waitFor, webDistDir, type WebServer } from "@adminkiosk/devstack";
import { signReviewToken } from "@adminkiosk/runtime";
import { startCustomers, type CustomersFixture } from "../../services/customers/test/fixture.js";
import { adminEmail, adminPassword } from "../support/auth.js";
import { launchBrowser, signInAs } from "../support/browser.js";

const suffix = randomBytes(3).toString("hex");
const secret = randomBytes(32).toString("hex");
const kioskId = `members-web-${suffix}`;
const [tea, cake] = [`web-tea-${suffix}`, `web-cake-${suffix}`];

let c: CustomersFixture;
let web: WebServer;
let browser: Browser;

beforeAll(async () => {
  const built = ensureWebBuild(repoRoot);
  built.catch(() => {}); // awaited below
  c = await startCustomers({ REVIEW_LINK_SECRETS: secret });
  await built;
  web = await startWebServer({ distDir: webDistDir(repoRoot), upstreams: { auth: c.auth.service.url, customers: c.customers.url }, port: 0 });
  browser = await launchBrowser();
}, 180_000);
afterAll(async () => {
  await browser?.close();
  await web?.close();
  await c?.stop();
});

async function newPage(): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.on("pageerror", (err) => console.error(`page error: ${err.message}`));
  return page;
}

describe("the customers pages", () => {
  it("Members finds a member with points and purchases; a buyer rates on the public review page; Reviews approves it", async () => {
    const device = await c.device(kioskId);
    const email = `web.member.${suffix}@example.com`;
    const { member } = await c.as(MemberService, device).enrollMember({ email, consents: [ConsentPurpose.LOYALTY] });
    const orderId = randomUUID();
    await c.as(MemberService, device).attachMember({ member: { kind: { case: "cardNumber", value: member!.cardNumber } }, orderId });
    await c.publishCompleted({ orderId, kioskId, totalMinor: 1250n, lines: [{ sku: tea, quantity: 1n, totalMinor: 450n }, { sku: cake, quantity: 2n, totalMinor: 800n }] });
    const operator = c.as(ReviewService, c.tokens.operator);
    const token = signReviewToken(secret, { orderId, kioskId, expiresAt: new Date(Date.now() + 86_400_000) });
    await waitFor("customers to record the sale", async () => (await operator.getReviewInvitation({ token }).catch(() => undefined)));

    // The buyer, not signed in, from the receipt's link.
    const buyer = await newPage();
    await buyer.goto(`${web.url}/review/${token}`);
    await buyer
      .getByRole("heading", { name: "Rate your purchase", level: 1 })
      .waitFor()
      .catch(async (err: unknown) => {
        throw new Error(`the review page did not draw; it shows: ${(await buyer.content()).slice(0, 2000)}`, { cause: err });
      });
    const form = buyer.getByRole("form", { name: tea });
    await form.getByLabel("4 stars").check();
    await form.getByLabel("A few words (optional)").fill("Lovely tea");
    await form.getByRole("button", { name: "Send review" }).click();
    await buyer.getByRole("region", { name: tea }).getByText("Your review will appear once it has been checked").waitFor();
    expect(await buyer.getByRole("form", { name: cake }).count()).toBe(1);
    // An altered link is refused on the page.
    await buyer.goto(`${web.url}/review/${token.slice(0, -2)}${token.endsWith("AA") ? "BB" : "AA"}`);
    await buyer.getByText("This review link cannot be used").waitFor();
    await buyer.close();

    // The operator: the member on Members, then the pending review on Reviews.
    const page = await newPage();
    await page.goto(`${web.url}/`);
    await signInAs(page, adminEmail, adminPassword);
    await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Members" }).click();
    await page.getByRole("heading", { name: "Members", level: 1 }).waitFor();
    await page.getByPlaceholder("Card number, email, phone or member id").fill(email);
    await expect.poll(() => page.getByTestId("member-row").count(), eventually).toBe(1);
    await page.getByTestId("member-row").getByRole("button").first().click();
    const detail = page.getByTestId("member-detail");
    await expect.poll(() => detail.textContent(), eventually).toContain(orderId.slice(0, 8));
    // 1250 minor units at one point per 100: 12 points, earned for the order; its lines.
    expect(await detail.textContent()).toMatch(/12 points[\s\S]*Earned1212[\s\S]*1 × web-tea-[\s\S]*2 × web-cake-/);

    await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Reviews" }).click();
    await page.getByRole("heading", { name: "Reviews", level: 1 }).waitFor();
    await page.getByPlaceholder("Product SKU (all products)").fill(tea);
    const review = page.getByTestId("review-row").filter({ hasText: "Lovely tea" });
    await review.waitFor();
    await review.getByRole("button", { name: "Approve" }).click();
    await expect.poll(() => review.count(), eventually).toBe(0);
    await page.getByLabel("State").selectOption({ label: "Approved" });
    await expect.poll(() => page.getByTestId("rating-summary").textContent(), eventually).toContain("4.0 / 5 from 1 approved reviews");
    const { reviews } = await operator.listReviews({ sku: tea });
    expect(reviews.map((r) => [r.rating, r.text, r.state])).toEqual([[4, "Lovely tea", ReviewState.APPROVED]]);
    await page.close();
  }, 120_000);
});
