// The customer's first minute, in a real browser: the hosted connect page, the stand-in's
// consent screen, the OAuth callback and the result page — for Google and for Microsoft, plus
// the deny and unticked-scope paths. Skipped (saying why) when Chromium is not installed.
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHROMIUM_MISSING, findChromium, launchChromium, type ChromiumHandle } from '../helpers/chromium.js';
import { connectResult as resultOf, consentAs, openHostedPage as openPage } from '../helpers/hosted-pages.js';
import { missing } from '../helpers/requirements.js';
import { startTestService, type TestService } from '../helpers/test-service.js';
import { access, createSession, mailboxRows } from './connect-helpers.js';

const executable = findChromium();

describe.skipIf(missing('Chromium', executable ? null : CHROMIUM_MISSING))('browser connect', () => {
  let svc: TestService;
  let tenant: { tenantId: string; apiKey: string };
  let browser: ChromiumHandle;

  beforeAll(async () => {
    svc = await startTestService({ env: { SANDBOX: '1' }, workers: false });
    tenant = await svc.createTenant({ name: 'browser' });
    // Trust exactly the Microsoft stand-in's self-signed key (not "ignore all certificate errors").
    browser = await launchChromium({ trustCertificatePem: (await access(svc)).settings.sandbox.microsoft!.caCertPem });
  }, 90_000);

  afterAll(async () => {
    await browser?.close();
    await svc?.close();
  });

  async function openHostedPage(provider?: 'google' | 'microsoft'): Promise<Page> {
    const s = await createSession(svc, tenant.apiKey, provider ? { provider } : {});
    return openPage(browser, s.url);
  }

  it('Google: hosted page → consent → callback → success page', async () => {
    const page = await openHostedPage();
    // No provider was given: the picker offers both, each explaining its scopes in plain words.
    expect(await page.locator('[data-provider="google"] li').count()).toBe(4);
    expect(await page.locator('[data-provider="microsoft"]').count()).toBe(1);
    await consentAs(page, 'google', 'browser@acme.test');
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
    await consentAs(page, 'microsoft', 'browser@contoso.test');
    const r = await resultOf(page);
    expect(r.status).toBe('connected');
    const rows = await mailboxRows(svc, { provider: 'microsoft', addressIndex: svc.core.blindIndex.emailIndex('browser@contoso.test') });
    expect(rows).toHaveLength(1);
    await page.close();
  });

  it('the customer denies consent: a clear page and nothing stored', async () => {
    const before = await mailboxRows(svc);
    const page = await openHostedPage('google');
    await consentAs(page, 'google', 'nope@acme.test', { deny: true });
    const r = await resultOf(page);
    expect(r.status).toBe('denied');
    expect(r.text).toContain('declined');
    expect(await mailboxRows(svc)).toEqual(before);
    await page.close();
  });

  it('an unticked scope: the page names the missing permission, nothing stored', async () => {
    const before = await mailboxRows(svc);
    const page = await openHostedPage('google');
    await consentAs(page, 'google', 'partial-browser@acme.test', { untick: ['https://www.googleapis.com/auth/gmail.send'] });
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
    const page = await openPage(browser, s.url);
    await consentAs(page, 'microsoft', 'partial@contoso.test', { untick: ['https://graph.microsoft.com/Mail.Read'] });
    const r = await resultOf(page);
    expect(r.status).toBe('missing_scopes');
    expect(r.text).toContain('Read your email');
    // "Try again" starts the same session again; this time every permission is granted.
    await page.click('#try-again');
    await consentAs(page, 'microsoft', 'partial@contoso.test');
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
