// The tenant's branding on the hosted connect pages, in a real browser: the display name (a
// hostile one, shown as text and never run), the logo loaded from its own origin — allowed by the
// page's CSP, fetched without a referrer, kept small by CSS — and the "Contact support" link, on
// the connect page and on the declined and connected result pages. Each page is checked with
// axe-core (WCAG 2.1 AA). Skipped (saying why) when Chromium is not installed.
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { wcagViolations } from '../helpers/axe.js';
import { CHROMIUM_MISSING, findChromium, launchChromium, type ChromiumHandle } from '../helpers/chromium.js';
import { consentAs } from '../helpers/hosted-pages.js';
import { missing } from '../helpers/requirements.js';
import { startTestService, type TestService } from '../helpers/test-service.js';
import { createSession } from './connect-helpers.js';

const executable = findChromium();
const NAME = `Acme "Support" <script>window.__pwned = 1</script>`;
// A large logo: the page's CSS must keep it small.
const LOGO = '<svg xmlns="http://www.w3.org/2000/svg" width="800" height="400" viewBox="0 0 800 400"><rect width="800" height="400" fill="#0b5"/><text x="40" y="240" font-size="160" fill="#fff">ACME</text></svg>';

describe.skipIf(missing('Chromium', executable ? null : CHROMIUM_MISSING))('branded hosted pages in Chromium', () => {
  let svc: TestService;
  let tenant: { tenantId: string; apiKey: string };
  let browser: ChromiumHandle;
  let logoServer: Server;
  let logoUrl: string;
  const logoRequests: IncomingHttpHeaders[] = [];

  beforeAll(async () => {
    logoServer = createServer((req, res) => {
      logoRequests.push(req.headers);
      res.writeHead(200, { 'content-type': 'image/svg+xml', 'cache-control': 'no-store' }).end(LOGO);
    });
    await new Promise<void>((resolve) => logoServer.listen(0, '127.0.0.1', resolve));
    // Loopback http is allowed outside production (docs/connect.md "Branding"); production takes https only.
    logoUrl = `http://127.0.0.1:${(logoServer.address() as AddressInfo).port}/brand/logo.svg`;
    svc = await startTestService({ env: { SANDBOX: '1' }, workers: false });
    tenant = await svc.createTenant({ name: 'browser-branding' });
    const set = await svc.api(tenant.apiKey, 'PATCH', '/v1/settings', { displayName: NAME, logoUrl, supportUrl: 'mailto:help@acme.example?subject=Connecting%20my%20mailbox' });
    expect(set.status, JSON.stringify(set.body)).toBe(200);
    browser = await launchChromium();
    await browser.context.addInitScript(() => {
      document.addEventListener('securitypolicyviolation', (e) => {
        const w = window as unknown as { __csp?: string[] };
        (w.__csp ??= []).push(`${e.violatedDirective} ${e.blockedURI}`);
      });
    });
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await svc?.close();
    await new Promise((resolve) => logoServer?.close(resolve));
  });

  /** Name shown as text (not run), logo loaded and small, support link present, axe clean, no CSP violation. */
  async function checkBranded(page: Page, label: string): Promise<void> {
    expect(await page.locator('main').innerText(), label).toContain(NAME);
    expect(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned), `${label}: the name ran as script`).toBeUndefined();
    const logo = page.locator('#brand-logo');
    await expect.poll(() => logo.evaluate((img: HTMLImageElement) => img.complete && img.naturalWidth), { timeout: 10_000 }).toBe(800);
    expect(await logo.getAttribute('alt')).toBe(`${NAME} logo`);
    const box = (await logo.boundingBox())!;
    expect(box.height, `${label}: logo height`).toBeLessThanOrEqual(48);
    expect(box.width, `${label}: logo width`).toBeLessThanOrEqual(200);
    const support = page.getByRole('link', { name: 'Contact support' });
    expect(await support.getAttribute('href')).toBe('mailto:help@acme.example?subject=Connecting%20my%20mailbox');
    expect(await wcagViolations(page), `${label}: axe WCAG 2.1 AA violations`).toEqual([]);
    expect(await page.evaluate(() => (window as unknown as { __csp?: string[] }).__csp ?? []), `${label}: CSP violations`).toEqual([]);
  }

  it('connect page: the tenant’s name, logo and support link; the CSP admits that logo and no other origin', async () => {
    const s = await createSession(svc, tenant.apiKey, {});
    const page = await browser.newPage();
    const res = await page.goto(s.url);
    expect(res?.status()).toBe(200);
    await checkBranded(page, 'connect page');
    expect(await page.locator('h1').innerText()).toBe(`Connect your mailbox to ${NAME}`);
    // The logo was fetched without telling its host which page (and session id) asked for it.
    expect(logoRequests.length).toBeGreaterThan(0);
    for (const h of logoRequests) expect(h.referer).toBeUndefined();
    // Any other image origin — even the same host on another port — stays blocked.
    const other = logoUrl.replace(/:(\d+)\//, (_m, p: string) => `:${Number(p) + 1}/`);
    const blocked = await page.evaluate(async (src) => {
      const img = document.createElement('img');
      img.alt = '';
      const seen = new Promise<string>((resolve) => document.addEventListener('securitypolicyviolation', (e) => resolve(e.violatedDirective), { once: true }));
      img.src = src;
      document.body.append(img);
      return Promise.race([seen, new Promise<string>((resolve) => setTimeout(() => resolve('not blocked'), 5000))]);
    }, other);
    expect(blocked).toBe('img-src');
    await page.close();
  });

  it('declined, then "Try again" and connected: the result pages carry the branding too', async () => {
    const s = await createSession(svc, tenant.apiKey, { provider: 'google' });
    const page = await browser.newPage();
    await page.goto(s.url);
    await consentAs(page, 'google', 'branded@acme.test', { deny: true });
    await page.locator('#result[data-status="denied"]').waitFor({ timeout: 20_000 });
    await checkBranded(page, 'declined page');
    expect(await page.locator('main').innerText()).toContain(`nothing was connected to ${NAME}`);

    await page.click('#try-again');
    await consentAs(page, 'google', 'branded@acme.test');
    await page.locator('#result[data-status="connected"]').waitFor({ timeout: 20_000 });
    await checkBranded(page, 'connected page');
    expect(await page.locator('h1').innerText()).toBe(`Mailbox connected to ${NAME}`);
    expect(await page.locator('#address').innerText()).toBe('branded@acme.test');
    await page.close();
  });
});
