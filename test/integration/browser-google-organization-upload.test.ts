// A Google Workspace administrator installs the connector in a real browser: the hosted upload
// page (what is read, the steps, WCAG 2.1 AA, no CSP violation), a refused key shown in plain
// words with the form again, then the key file chosen (read in the browser) and the success page. Skipped (saying why) when
// Chromium is not installed.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GOOGLE_DELEGATED_SCOPES } from '../../src/providers/google/google-delegated-access.js';
import type { ServiceAccountKeyFile } from '../../src/sandbox/google/google-service-accounts.js';
import { wcagViolations } from '../helpers/axe.js';
import { CHROMIUM_ARGS, CHROMIUM_MISSING, findChromium } from '../helpers/chromium.js';
import { missing } from '../helpers/requirements.js';
import { startTestService, type TestService } from '../helpers/test-service.js';

const executable = findChromium();
const DOMAIN = 'browser-upload.test';
const ADMIN = `admin@${DOMAIN}`;

describe.skipIf(missing('Chromium', executable ? null : CHROMIUM_MISSING))('browser: Google Workspace organization install (key upload page)', () => {
  let svc: TestService;
  let tenant: { tenantId: string; apiKey: string };
  let context: BrowserContext;
  let profileDir: string;
  let sa: ServiceAccountKeyFile;
  let undelegated: ServiceAccountKeyFile;

  beforeAll(async () => {
    svc = await startTestService({ env: { SANDBOX: '1' }, workers: false });
    tenant = await svc.createTenant({ name: 'google-upload-browser' });
    const gs = svc.services.access.settings.sandbox.google!;
    gs.createUser(ADMIN);
    sa = await gs.createServiceAccount({ name: 'browser-upload' });
    gs.delegateDomainWide(DOMAIN, sa.client_id, [...GOOGLE_DELEGATED_SCOPES]);
    undelegated = await gs.createServiceAccount({ name: 'browser-undelegated' });
    profileDir = await mkdtemp(path.join(tmpdir(), 'mbc-gws-chromium-'));
    context = await chromium.launchPersistentContext(profileDir, { executablePath: executable!, headless: true, args: [...CHROMIUM_ARGS], timeout: 60_000 });
  }, 120_000);

  afterAll(async () => {
    await context?.close().catch(() => undefined);
    if (profileDir) await rm(profileDir, { recursive: true, force: true });
    await svc?.close();
  });

  it('the page says what is read and how to delegate → a key without delegation is refused in plain words → the delegated key installs; the link is then spent', async () => {
    const created = await svc.api(tenant.apiKey, 'POST', '/v1/organization-installs', { provider: 'google', domain: DOMAIN });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const page = await context.newPage();
    const csp: string[] = [];
    page.on('console', (m) => {
      if (/Content Security Policy/i.test(m.text())) csp.push(m.text());
    });
    expect((await page.goto(created.body.consentUrl))?.status()).toBe(200);
    expect(await page.locator('#what-we-read').innerText()).toContain(`only from the mailboxes your helpdesk adds by address in ${DOMAIN}`);
    expect(await page.locator('#scopes-line').innerText()).toBe('https://www.googleapis.com/auth/gmail.readonly,https://www.googleapis.com/auth/gmail.send');
    expect(await wcagViolations(page)).toEqual([]);

    await page.fill('#serviceAccountKey', JSON.stringify(undelegated, null, 2));
    await page.fill('#verifyAddress', ADMIN);
    await page.click('#install');
    await page.locator('#refusal').waitFor({ timeout: 20_000 });
    expect(await page.locator('#refusal').innerText()).toContain('Domain-wide delegation');
    expect(await page.locator('#serviceAccountKey').inputValue()).toBe('');
    expect(await page.content()).not.toContain('PRIVATE KEY');
    expect(await wcagViolations(page)).toEqual([]);
    expect((await svc.api(tenant.apiKey, 'GET', `/v1/organization-installs/${created.body.install.id}`)).body.status).toBe('pending');

    // The key file chosen with the page's file picker is read in the browser into the key field.
    await page.setInputFiles('#key-file', { name: 'acme-connector-1234abcd.json', mimeType: 'application/json', buffer: Buffer.from(JSON.stringify(sa, null, 2)) });
    await expect.poll(() => page.locator('#serviceAccountKey').inputValue(), { timeout: 10_000 }).toBe(JSON.stringify(sa, null, 2));
    expect(await page.locator('#key-file-note').innerText()).toBe('Key file read: acme-connector-1234abcd.json');
    expect(await wcagViolations(page)).toEqual([]);
    await page.click('#install');
    await page.locator('#result').waitFor({ timeout: 20_000 });
    expect(await page.locator('#result').innerText()).toBe(`Installed for ${DOMAIN}`);
    expect(await wcagViolations(page)).toEqual([]);
    expect(csp).toEqual([]);
    const install = (await svc.api(tenant.apiKey, 'GET', `/v1/organization-installs/${created.body.install.id}`)).body;
    expect(install).toMatchObject({ status: 'active', directoryId: DOMAIN });
    expect((await page.goto(created.body.consentUrl))?.status()).toBe(404);
    await page.close();
  });
});
