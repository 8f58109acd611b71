// The hosted connect pages in Chromium (test/helpers/chromium.ts): open a session's page, go
// through the stand-in's consent screen, read the result page.
//
//   const page = await openHostedPage(browser, session.url);
//   await consentAs(page, 'google', 'ada@acme.test');
//   expect((await connectResult(page)).status).toBe('connected');
import type { Page } from 'playwright-core';
import type { ChromiumHandle } from './chromium.js';

/** A new tab on a hosted page; fails unless it answers 200. */
export async function openHostedPage(browser: Pick<ChromiumHandle, 'newPage'>, url: string): Promise<Page> {
  const page = await browser.newPage();
  const status = (await page.goto(url))?.status();
  if (status !== 200) throw new Error(`the hosted page answered ${status}`);
  return page;
}

/**
 * From the hosted connect page: pick `provider`, then at the stand-in's consent screen sign in as
 * `email`, untick the scopes named, and approve (or deny).
 */
export async function consentAs(page: Page, provider: 'google' | 'microsoft', email: string, opts: { untick?: string[]; deny?: boolean } = {}): Promise<void> {
  await page.click(`#start-${provider}`);
  await page.waitForSelector('#consent');
  await page.fill('#email', email);
  for (const scope of opts.untick ?? []) await page.uncheck(`input[name="scope"][value="${scope}"]`);
  await page.click(opts.deny ? '#deny' : '#approve');
}

/** The result page the connect flow ends on: its `data-status` (connected, denied, missing_scopes, …) and its text. */
export async function connectResult(page: Page): Promise<{ status: string | null; text: string }> {
  const h1 = page.locator('#result');
  await h1.waitFor({ timeout: 20_000 });
  return { status: await h1.getAttribute('data-status'), text: await page.locator('body').innerText() };
}
