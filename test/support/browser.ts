// The browser the e2e tests drive: Debian's chromium through playwright-core, and the admin
// web's sign-in as a person does it.
import { chromium, type Browser, type Page } from "playwright-core";

export const chromiumPath = process.env["CHROMIUM_PATH"] ?? "/usr/bin/chromium";

export function launchBrowser(): Promise<Browser> {
  return chromium.launch({ executablePath: chromiumPath, args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"] });
}

/** On the sign-in page the app sent `page` to: signs in and waits for the fleet overview. */
export async function signInAs(page: Page, email: string, password: string): Promise<void> {
  await page.waitForURL(/\/signin/);
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("heading", { name: "Fleet", level: 1 }).waitFor();
}
