// A member connects a Microsoft 365 shared mailbox in a real browser (issue 15 items 1 and 5): the
// hosted page names exactly the shared mailbox that will be read (and says the member's own is
// not), the stand-in's consent screen asks for the .Shared permissions, and the result page names
// the shared address; an outsider gets the "no access" page with "Try again". Skipped (saying why)
// when Chromium is not installed.
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { wcagViolations } from '../helpers/axe.js';
import { CHROMIUM_MISSING, findChromium, launchChromium, type ChromiumHandle } from '../helpers/chromium.js';
import { connectResult as resultOf, consentAs, openHostedPage } from '../helpers/hosted-pages.js';
import { missing } from '../helpers/requirements.js';
import { startTestService, type TestService } from '../helpers/test-service.js';
import { access, createSession, mailboxRows } from './connect-helpers.js';

const executable = findChromium();
const SUPPORT = 'helpdesk@contoso.test';

describe.skipIf(missing('Chromium', executable ? null : CHROMIUM_MISSING))('browser: a member connects a Microsoft 365 shared mailbox', () => {
  let svc: TestService;
  let tenant: { tenantId: string; apiKey: string };
  let browser: ChromiumHandle;

  beforeAll(async () => {
    svc = await startTestService({ env: { SANDBOX: '1' }, workers: false });
    tenant = await svc.createTenant({ name: 'browser-shared' });
    const ms = (await access(svc)).settings.sandbox.microsoft!;
    ms.createSharedMailbox(SUPPORT, 'Contoso Helpdesk');
    ms.setSharedMember(SUPPORT, 'member@contoso.test', true);
    // Trust exactly the Microsoft stand-in's self-signed key (not "ignore all certificate errors").
    browser = await launchChromium({ trustCertificatePem: ms.caCertPem });
  }, 90_000);

  afterAll(async () => {
    await browser?.close();
    await svc?.close();
  });

  async function hostedPage(): Promise<Page> {
    const s = await createSession(svc, tenant.apiKey, { provider: 'microsoft', mailbox: SUPPORT });
    return openHostedPage(browser, s.url);
  }

  it('the page names the shared mailbox; the member signs in and the shared mailbox is connected', async () => {
    const page = await hostedPage();
    expect(await page.locator('#connect-heading').innerText()).toContain(SUPPORT);
    expect(await page.locator('#shared-mailbox').first().innerText()).toBe(SUPPORT);
    const limited = await page.locator('#limited-use').innerText();
    expect(limited).toContain(`only the Inbox of ${SUPPORT}`);
    expect(limited).toContain('Your own mailbox is not read');
    // The permissions listed include the two shared-mailbox ones, in plain words.
    const scopes = await page.locator('[data-provider="microsoft"] li').allInnerTexts();
    expect(scopes.some((s) => s.startsWith('Read the shared mailbox'))).toBe(true);
    expect(scopes.some((s) => s.startsWith('Send email as the shared mailbox'))).toBe(true);
    expect(await wcagViolations(page)).toEqual([]);

    await page.click('#start-microsoft');
    await page.waitForSelector('#consent');
    // The stand-in's consent screen asks for the .Shared permissions too.
    expect(await page.locator('input[name="scope"][value="https://graph.microsoft.com/Mail.Read.Shared"]').count()).toBe(1);
    await page.fill('#email', 'member@contoso.test');
    await page.click('#approve');
    const r = await resultOf(page);
    expect(r.status).toBe('connected');
    expect(r.text).toContain(SUPPORT);
    const rows = await mailboxRows(svc, { addressIndex: svc.core.blindIndex.emailIndex(SUPPORT) });
    expect(rows).toHaveLength(1);
    expect(rows[0]!.access).toBe('shared_member');
    expect(await mailboxRows(svc, { addressIndex: svc.core.blindIndex.emailIndex('member@contoso.test') })).toHaveLength(0);
    await page.close();
  });

  it('someone who is not a member: a clear page, nothing stored, and "Try again"', async () => {
    const before = await mailboxRows(svc);
    const page = await hostedPage();
    await consentAs(page, 'microsoft', 'outsider@contoso.test');
    const r = await resultOf(page);
    expect(r.status).toBe('mailbox_access_denied');
    expect(r.text).toContain(`not a member of the shared mailbox ${SUPPORT}`);
    expect(await page.locator('#try-again').count()).toBe(1);
    expect(await mailboxRows(svc)).toEqual(before);
    await page.close();
  });
});
