/// <reference lib="dom" />
// The ops console in a real browser (Chromium via playwright-core): sign in, open every page —
// each screenshotted (checked not blank, saved to a temp dir) and checked with axe-core for WCAG
// 2.1 AA (0 violations) and for CSP violations — and revoke a mailbox with the keyboard only.
// Also the API reference at /docs renders under its CSP. Skipped (saying why) without Chromium.
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newId } from '../../src/storage/ids.js';
import { findChromium, launchChromium, CHROMIUM_MISSING, type ChromiumHandle } from '../helpers/chromium.js';
import { missing } from '../helpers/requirements.js';
import { startTestService, type TestService } from '../helpers/test-service.js';
import { emit, seedMailbox, seedMessage } from './webhooks-seed.js';

const executable = findChromium();
const WCAG_TAGS = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'];

describe.skipIf(missing('Chromium', executable ? null : CHROMIUM_MISSING))('ops console in Chromium', () => {
  let svc: TestService;
  let browser: ChromiumHandle;
  let page: Page;
  let axeSource: string;
  let shots: string;
  let tenantId: string;
  let mailboxId: string;
  let endpointId: string;
  let secretWords: string[];
  /** CSP violations the current page reported so far. */
  const cspViolations = async (): Promise<string[]> => page.evaluate(() => (window as unknown as { __csp?: string[] }).__csp ?? []);

  beforeAll(async () => {
    svc = await startTestService({ workers: false });
    const tenant = await svc.createTenant({ name: 'Browser Tenant' });
    tenantId = tenant.tenantId;
    const mailbox = await seedMailbox(svc.core, tenantId);
    mailboxId = mailbox.id;
    const msg = await seedMessage(svc.core, tenantId, mailboxId);
    secretWords = [mailbox.address, msg.content.subject!, 'ada@customer.example'];
    const ep = await svc.api(tenant.apiKey, 'POST', '/v1/webhook-endpoints', { url: 'http://127.0.0.1:9/hook' });
    endpointId = ep.body.id as string;
    const [event] = await emit(svc.core, [{ tenantId, mailboxId, type: 'message.received', refs: { messageId: msg.id } }]);
    await svc.core.prisma.outboxEvent.update({ where: { id: event!.id }, data: { dispatchedAt: new Date() } });
    const deliveryId = newId('delivery');
    await svc.core.prisma.webhookDelivery.create({ data: { id: deliveryId, tenantId, eventId: event!.id, endpointId, status: 'dead', attempts: 8, lastStatus: 502 } });
    await svc.core.prisma.deliveryAttempt.create({ data: { id: newId('deliveryAttempt'), deliveryId, attemptNo: 8, statusCode: 502, latencyMs: 9, error: 'http_status' } });
    await svc.core.jobs.enqueue('sync.mailbox', { mailboxId, reason: 'connect' }, { singletonKey: mailboxId });
    axeSource = await readFile(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
    // Kept after the run for a look (CONSOLE_SCREENSHOTS_DIR chooses where; the path is printed).
    shots = process.env.CONSOLE_SCREENSHOTS_DIR ?? (await mkdtemp(path.join(tmpdir(), 'mbc-console-shots-')));
    await mkdir(shots, { recursive: true });
    process.stdout.write(`ops console screenshots: ${shots}\n`);
    browser = await launchChromium();
    // Every CSP violation of every page, reported by the page itself (init scripts run outside its CSP).
    await browser.context.addInitScript(() => {
      document.addEventListener('securitypolicyviolation', (e) => {
        const w = window as unknown as { __csp?: string[] };
        (w.__csp ??= []).push(`${e.violatedDirective} ${e.blockedURI}`);
      });
    });
    page = await browser.newPage();
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await svc?.close();
  });

  /** Screenshot (saved), not blank, the expected heading, axe WCAG 2.1 AA clean, no content shown. */
  async function checkPage(name: string, heading: RegExp): Promise<void> {
    await expect.poll(async () => page.locator('h1').first().innerText()).toMatch(heading);
    const png = await page.screenshot({ fullPage: true });
    const file = path.join(shots, `${name}.png`);
    await writeFile(file, png);
    expect(await inkRatio(png), `${name} screenshot (${file}) is not blank`).toBeGreaterThan(0.005);
    // axe is evaluated through the DevTools protocol, which the page's CSP does not govern.
    await page.evaluate(axeSource);
    const result = await page.evaluate(async (tags) => {
      const axe = (globalThis as unknown as { axe: { run(ctx: unknown, opts: unknown): Promise<{ violations: Array<{ id: string; nodes: Array<{ target: unknown }> }> }> } }).axe;
      const r = await axe.run(document, { runOnly: { type: 'tag', values: tags } });
      return r.violations.map((v) => `${v.id}: ${JSON.stringify(v.nodes.map((n) => n.target))}`);
    }, WCAG_TAGS);
    expect(result, `${name}: axe WCAG 2.1 AA violations`).toEqual([]);
    const text = await page.content();
    for (const w of secretWords) expect(text, name).not.toContain(w);
    expect(await cspViolations(), `${name}: CSP violations`).toEqual([]);
  }

  /** Share of pixels that are not (near) white, computed by drawing the PNG on a canvas in a blank tab. */
  async function inkRatio(png: Buffer): Promise<number> {
    const scratch = await browser.newPage();
    try {
      return await scratch.evaluate(async (b64) => {
        const img = new Image();
        img.src = `data:image/png;base64,${b64}`;
        await img.decode();
        const canvas = document.createElement('canvas');
        canvas.width = img.width;
        canvas.height = img.height;
        const ctx = canvas.getContext('2d')!;
        ctx.drawImage(img, 0, 0);
        const data = ctx.getImageData(0, 0, img.width, img.height).data;
        let ink = 0;
        for (let i = 0; i < data.length; i += 4) if (data[i]! < 235 || data[i + 1]! < 235 || data[i + 2]! < 235) ink++;
        return ink / (data.length / 4);
      }, png.toString('base64'));
    } finally {
      await scratch.close();
    }
  }

  async function tabTo(selector: string, max = 60): Promise<void> {
    for (let i = 0; i < max; i++) {
      await page.keyboard.press('Tab');
      if (await page.evaluate((s) => document.activeElement?.matches(s) ?? false, selector)) return;
    }
    throw new Error(`${selector} not reachable with Tab`);
  }

  it('sign-in page, then every page renders, is not blank and has no WCAG 2.1 AA violation', async () => {
    await page.goto(`${svc.url}/admin`);
    await checkPage('login', /Sign in to the ops console/);
    const admin = await svc.core.apiKeys.issue({ admin: true, name: 'browser' });
    // A wrong key first: the error is announced and the field marked invalid.
    await page.fill('#apiKey', 'mbc_admin_wrong');
    await page.click('button[type=submit]');
    await checkPage('login-error', /Sign in/);
    expect(await page.getAttribute('#apiKey', 'aria-invalid')).toBe('true');
    await page.fill('#apiKey', admin.key);
    await page.click('button[type=submit]');
    await page.waitForURL(/\/admin\/tenants$/);
    await checkPage('tenants', /^Tenants$/);
    // The violation detector works: an inline style is refused by the console's CSP and reported.
    await page.evaluate(() => {
      const style = document.createElement('style');
      style.textContent = 'body{color:red}';
      document.head.append(style);
    });
    await expect.poll(cspViolations).toEqual([expect.stringMatching(/^style-src/)]);
    await page.reload();
    expect(await page.locator('table').innerText()).toContain('Browser Tenant');

    await page.click(`a[href="/admin/tenants/${tenantId}"]`);
    await checkPage('tenant', /Tenant Browser Tenant/);

    await page.goto(`${svc.url}/admin/mailboxes`);
    await checkPage('mailboxes', /^Mailboxes$/);
    await page.selectOption('#f-status', 'active');
    await page.click('.filters button[type=submit]');
    await page.waitForURL(/status=active/);
    await checkPage('mailboxes-filtered', /^Mailboxes$/);

    await page.click(`a[href="/admin/mailboxes/${mailboxId}"]`);
    await checkPage('mailbox', /Mailbox/);
    const body = await page.locator('main').innerText();
    expect(body).toContain('Sync history');
    expect(body).toContain('connect'); // the queued sync job's trigger
    expect(body).toContain('HTTP 502 (http_status)');

    await page.click('button:has-text("Replay 1 dead delivery")');
    await page.waitForURL(/notice=replayed:1/);
    await checkPage('mailbox-replayed', /Mailbox/);

    await page.goto(`${svc.url}/admin/tenants/${tenantId}`);
    await page.click('button:has-text("Rotate secret")');
    await checkPage('secret', /New signing secret/);
    expect(await page.locator('#secret').innerText()).toMatch(/^whsec_/);

    await page.goto(`${svc.url}/admin/mailboxes/mbx_nope`);
    await checkPage('not-found', /Not found/);
    expect(await cspViolations()).toEqual([]);
  }, 120_000);

  it('revokes a mailbox with the keyboard only (Tab and Enter, typing the reason)', async () => {
    await page.goto(`${svc.url}/admin/mailboxes/${mailboxId}`);
    await tabTo('#revoke');
    await page.keyboard.press('Enter');
    await page.waitForURL(/\/revoke$/);
    await checkPage('revoke', /Revoke mailbox/);
    await tabTo('#reason');
    await page.keyboard.type('ticket OPS-7: keyboard revoke');
    await tabTo('#confirm-revoke');
    await page.keyboard.press('Enter');
    await page.waitForURL(/notice=revoked/);
    await checkPage('mailbox-revoked', /Mailbox/);
    expect(await page.locator('.notice').innerText()).toContain('Revocation started');
    const receipt = await svc.core.prisma.purgeReceipt.findFirst({ where: { mailboxId } });
    expect(receipt).toMatchObject({ trigger: 'ops', reason: 'ticket OPS-7: keyboard revoke' });
    expect(await page.locator('main').innerText()).toContain(receipt!.id);
    expect(await cspViolations()).toEqual([]);
  }, 60_000);

  it('the API reference at /docs renders the OpenAPI document under its CSP', async () => {
    await page.goto(`${svc.url}/`);
    await page.waitForURL(/\/docs$/);
    await page.locator('.information-container .title').first().waitFor({ timeout: 30_000 });
    expect(await page.locator('.information-container .title').first().innerText()).toContain('Mailbox connector API');
    await page.locator('.opblock').first().waitFor();
    expect(await page.locator('.opblock').count()).toBeGreaterThan(30);
    const png = await page.screenshot();
    await writeFile(path.join(shots, 'docs.png'), png);
    expect(await inkRatio(png)).toBeGreaterThan(0.005);
    expect(await cspViolations()).toEqual([]);
  }, 60_000);
});
