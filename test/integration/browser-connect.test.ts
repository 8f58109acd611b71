// The customer's first minute, in a real browser: the hosted connect page, the stand-in's
// consent screen, the OAuth callback and the result page — for Google and for Microsoft, plus
// the deny and unticked-scope paths. Skipped (saying why) when Chromium is not installed.
import { createHash, X509Certificate } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHROMIUM_ARGS, CHROMIUM_MISSING, findChromium } from '../helpers/chromium.js';
import { missing } from '../helpers/requirements.js';
import { startTestService, type TestService } from '../helpers/test-service.js';
import { access, createSession, mailboxRows } from './connect-helpers.js';

const executable = findChromium();

describe.skipIf(missing('Chromium', executable ? null : CHROMIUM_MISSING))('browser connect', () => {
  let svc: TestService;
  let tenant: { tenantId: string; apiKey: string };
  let context: BrowserContext;
  let profileDir: string;

  beforeAll(async () => {
    svc = await startTestService({ env: { SANDBOX: '1' }, workers: false });
    tenant = await svc.createTenant({ name: 'browser' });
    const ms = (await access(svc)).settings.sandbox.microsoft!;
    // Trust exactly the Microsoft stand-in's self-signed key (not "ignore all certificate errors").
    const spki = createHash('sha256').update(new X509Certificate(ms.caCertPem).publicKey.export({ type: 'spki', format: 'der' })).digest('base64');
    profileDir = await mkdtemp(path.join(tmpdir(), 'mbc-connect-chromium-'));
    context = await chromium.launchPersistentContext(profileDir, {
      executablePath: executable!,
      headless: true,
      args: [...CHROMIUM_ARGS, `--ignore-certificate-errors-spki-list=${spki}`],
      timeout: 60_000,
    });
  }, 90_000);

  afterAll(async () => {
    await context?.close().catch(() => undefined);
    if (profileDir) await rm(profileDir, { recursive: true, force: true });
    await svc?.close();
  });

  async function openHostedPage(provider?: 'google' | 'microsoft'): Promise<Page> {
    const s = await createSession(svc, tenant.apiKey, provider ? { provider } : {});
    const page = await context.newPage();
    const res = await page.goto(s.url);
    expect(res?.status()).toBe(200);
    return page;
  }

  async function resultOf(page: Page): Promise<{ status: string | null; text: string }> {
    const h1 = page.locator('#result');
    await h1.waitFor({ timeout: 20_000 });
    return { status: await h1.getAttribute('data-status'), text: await page.locator('body').innerText() };
  }

  it('Google: hosted page → consent → callback → success page', async () => {
    const page = await openHostedPage();
    // No provider was given: the picker offers both, each explaining its scopes in plain words.
    expect(await page.locator('[data-provider="google"] li').count()).toBe(4);
    expect(await page.locator('[data-provider="microsoft"]').count()).toBe(1);
    await page.click('#start-google');
    await page.waitForSelector('#consent');
    await page.fill('#email', 'browser@acme.test');
    await page.click('#approve');
    const r = await resultOf(page);
    expect(r.status).toBe('connected');
    expect(r.text).toContain('Mailbox connected');
    const rows = await mailboxRows(svc, { addressIndex: svc.core.blindIndex.emailIndex('browser@acme.test') });
    expect(rows).toHaveLength(1);
    expect(rows[0]!.status).toBe('active');
    await page.close();
  });

  it('Microsoft: hosted page → consent → callback → success page', async () => {
    const page = await openHostedPage('microsoft');
    await page.click('#start-microsoft');
    await page.waitForSelector('#consent');
    await page.fill('#email', 'browser@contoso.test');
    await page.click('#approve');
    const r = await resultOf(page);
    expect(r.status).toBe('connected');
    const rows = await mailboxRows(svc, { provider: 'microsoft', addressIndex: svc.core.blindIndex.emailIndex('browser@contoso.test') });
    expect(rows).toHaveLength(1);
    await page.close();
  });

  it('the customer denies consent: a clear page and nothing stored', async () => {
    const before = await mailboxRows(svc);
    const page = await openHostedPage('google');
    await page.click('#start-google');
    await page.waitForSelector('#consent');
    await page.fill('#email', 'nope@acme.test');
    await page.click('#deny');
    const r = await resultOf(page);
    expect(r.status).toBe('denied');
    expect(r.text).toContain('declined');
    expect(await mailboxRows(svc)).toEqual(before);
    await page.close();
  });

  it('an unticked scope: the page names the missing permission, nothing stored', async () => {
    const before = await mailboxRows(svc);
    const page = await openHostedPage('google');
    await page.click('#start-google');
    await page.waitForSelector('#consent');
    await page.fill('#email', 'partial-browser@acme.test');
    await page.uncheck('input[name="scope"][value="https://www.googleapis.com/auth/gmail.send"]');
    await page.click('#approve');
    const r = await resultOf(page);
    expect(r.status).toBe('missing_scopes');
    expect(await page.locator('#missing li').count()).toBe(1);
    expect(await page.locator('#missing li').first().getAttribute('data-scope')).toBe('https://www.googleapis.com/auth/gmail.send');
    expect(r.text).toContain('Send email on your behalf');
    expect(await mailboxRows(svc)).toEqual(before);
    await page.close();
  });

  it('Microsoft with an unticked scope, "Try again" in the same session, and a reused hosted link', async () => {
    const s = await createSession(svc, tenant.apiKey, { provider: 'microsoft' });
    const page = await context.newPage();
    await page.goto(s.url);
    await page.click('#start-microsoft');
    await page.waitForSelector('#consent');
    await page.fill('#email', 'partial@contoso.test');
    await page.uncheck('input[name="scope"][value="https://graph.microsoft.com/Mail.Read"]');
    await page.click('#approve');
    const r = await resultOf(page);
    expect(r.status).toBe('missing_scopes');
    expect(r.text).toContain('Read your email');
    // "Try again" starts the same session again; this time every permission is granted.
    await page.click('#try-again');
    await page.click('#start-microsoft');
    await page.waitForSelector('#consent');
    await page.fill('#email', 'partial@contoso.test');
    await page.click('#approve');
    const done = await resultOf(page);
    expect(done.status).toBe('connected');
    expect(done.text).toContain('partial@contoso.test');
    // The served script took ?code=&state= out of the address bar.
    await page.waitForFunction(() => window.location.search === '');
    expect(page.url()).toMatch(/\/oauth\/microsoft\/callback$/);
    // Once connected the link is used up: opening it again says so.
    const again = await page.goto(s.url);
    expect(again?.status()).toBe(410);
    expect(await page.locator('#closed').getAttribute('data-reason')).toBe('used');
    await page.close();
  });
});
