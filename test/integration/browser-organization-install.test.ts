// An organization's administrator installs the connector in a real browser: the hosted page
// (what is read, WCAG 2.1 AA), the stand-in's admin consent page, the admin-consent redirect and
// the result page. Skipped (saying why) when Chromium is not installed.
import { createHash, X509Certificate } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { wcagViolations } from '../helpers/axe.js';
import { CHROMIUM_ARGS, CHROMIUM_MISSING, findChromium } from '../helpers/chromium.js';
import { missing } from '../helpers/requirements.js';
import { startTestService, type TestService } from '../helpers/test-service.js';
import { SANDBOX_DIRECTORY_ROLES } from '../../src/sandbox/microsoft/sandbox-identity.handler.js';

const executable = findChromium();

const ms = () => svcRef!.services.access.settings.sandbox.microsoft!;
let svcRef: TestService | undefined;

describe.skipIf(missing('Chromium', executable ? null : CHROMIUM_MISSING))('browser: organization install (admin consent)', () => {
  let svc: TestService;
  let tenant: { tenantId: string; apiKey: string };
  let context: BrowserContext;
  let profileDir: string;

  beforeAll(async () => {
    svc = await startTestService({ env: { SANDBOX: '1' }, workers: false });
    svcRef = svc;
    tenant = await svc.createTenant({ name: 'org-browser' });
    const ms = svc.services.access.settings.sandbox.microsoft!;
    ms.createUser('admin@contoso.test');
    ms.setDirectoryRoles('admin@contoso.test', [SANDBOX_DIRECTORY_ROLES.globalAdministrator]);
    // Trust exactly the Microsoft stand-in's self-signed key (not "ignore all certificate errors").
    const spki = createHash('sha256').update(new X509Certificate(ms.caCertPem).publicKey.export({ type: 'spki', format: 'der' })).digest('base64');
    profileDir = await mkdtemp(path.join(tmpdir(), 'mbc-org-chromium-'));
    context = await chromium.launchPersistentContext(profileDir, { executablePath: executable!, headless: true, args: [...CHROMIUM_ARGS, `--ignore-certificate-errors-spki-list=${spki}`], timeout: 60_000 });
  }, 120_000);

  afterAll(async () => {
    await context?.close().catch(() => undefined);
    if (profileDir) await rm(profileDir, { recursive: true, force: true });
    await svc?.close();
  });

  it('hosted page says what is read → administrator signs in to Microsoft → admin consent for that directory → installed; a second visit of the link is refused', async () => {
    const created = await svc.api(tenant.apiKey, 'POST', '/v1/organization-installs', { provider: 'microsoft' });
    expect(created.status).toBe(201);
    const page = await context.newPage();
    expect((await page.goto(created.body.consentUrl))?.status()).toBe(200);
    expect(await page.locator('#what-we-read').innerText()).toContain('only from the mailboxes your helpdesk adds by address');
    expect(await wcagViolations(page)).toEqual([]);

    await page.click('#continue');
    // The stand-in's sign-in (authorization code + PKCE, openid profile).
    await page.waitForURL(/\/organizations\/oauth2\/v2\.0\/authorize/, { timeout: 20_000 });
    await page.fill('#email', 'admin@contoso.test');
    await page.click('#approve');
    // Verified: on to the admin consent of the signed-in directory.
    await page.waitForURL(new RegExp(`/${ms().tenantId}/v2\\.0/adminconsent`), { timeout: 20_000 });
    expect(await page.locator('body').innerText()).toContain('Mail.Read');
    await page.fill('#email', 'admin@contoso.test');
    await page.click('#approve');
    await page.locator('#result').waitFor({ timeout: 20_000 });
    expect(await page.locator('#result').innerText()).toBe('Installed for your organization');
    expect(new URL(page.url()).pathname).toBe('/oauth/microsoft/admin-consent');

    const install = (await svc.api(tenant.apiKey, 'GET', `/v1/organization-installs/${created.body.install.id}`)).body;
    expect(install).toMatchObject({ status: 'active', directoryId: svc.services.access.settings.sandbox.microsoft!.tenantId });
    expect((await page.goto(created.body.consentUrl))?.status()).toBe(404);
    await page.close();
  });

  it('the admin page carries the tenant’s branding like the connect pages (name, logo, support link) and still says exactly which mailboxes are read', async () => {
    const NAME = 'Acme Support';
    const logoServer: Server = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'image/svg+xml', 'cache-control': 'no-store' }).end('<svg xmlns="http://www.w3.org/2000/svg" width="400" height="200"><rect width="400" height="200" fill="#0b5"/></svg>');
    });
    await new Promise<void>((resolve) => logoServer.listen(0, '127.0.0.1', resolve));
    try {
      const branded = await svc.createTenant({ name: 'org-branded' });
      const logoUrl = `http://127.0.0.1:${(logoServer.address() as AddressInfo).port}/logo.svg`;
      const set = await svc.api(branded.apiKey, 'PATCH', '/v1/settings', { displayName: NAME, logoUrl, supportUrl: 'mailto:help@acme.example' });
      expect(set.status, JSON.stringify(set.body)).toBe(200);
      const created = await svc.api(branded.apiKey, 'POST', '/v1/organization-installs', { provider: 'microsoft' });
      const page = await context.newPage();
      const csp: string[] = [];
      page.on('console', (m) => {
        if (/Content Security Policy/i.test(m.text())) csp.push(m.text());
      });
      expect((await page.goto(created.body.consentUrl))?.status()).toBe(200);
      expect(await page.locator('h1').innerText()).toBe(`Connect your organization’s mailboxes to ${NAME}`);
      expect(await page.title()).toBe(`Connect your organization’s mailboxes to ${NAME}`);
      // The Limited Use statement, naming the tenant.
      expect(await page.locator('#what-we-read').innerText()).toContain(`The connector reads and sends only from the mailboxes ${NAME} adds by address`);
      const logo = page.locator('#brand-logo');
      await expect.poll(() => logo.evaluate((img: HTMLImageElement) => img.complete && img.naturalWidth), { timeout: 10_000 }).toBeGreaterThan(0);
      expect(await logo.getAttribute('alt')).toBe(`${NAME} logo`);
      expect(await page.locator('#support-link').getAttribute('href')).toBe('mailto:help@acme.example');
      expect(csp).toEqual([]);
      expect(await wcagViolations(page)).toEqual([]);
      // The result page is branded too.
      await page.click('#continue');
      await page.waitForURL(/\/organizations\/oauth2\/v2\.0\/authorize/, { timeout: 20_000 });
      await page.fill('#email', 'admin@contoso.test');
      await page.click('#approve');
      await page.waitForURL(/adminconsent/, { timeout: 20_000 });
      await page.click('#deny');
      await page.locator('#result').waitFor({ timeout: 20_000 });
      expect(await page.locator('#brand-logo').getAttribute('alt')).toBe(`${NAME} logo`);
      expect(await page.locator('#support-link').getAttribute('href')).toBe('mailto:help@acme.example');
      await page.close();
    } finally {
      await new Promise((resolve) => logoServer.close(resolve));
    }
  });

  it('a declined consent ends on a page that says nothing was installed', async () => {
    const created = await svc.api(tenant.apiKey, 'POST', '/v1/organization-installs', { provider: 'microsoft' });
    const page = await context.newPage();
    await page.goto(created.body.consentUrl);
    await page.click('#continue');
    await page.fill('#email', 'admin@contoso.test');
    await page.click('#approve');
    await page.waitForURL(/adminconsent/, { timeout: 20_000 });
    await page.click('#deny');
    await page.locator('#result').waitFor({ timeout: 20_000 });
    expect(await page.locator('body').innerText()).toContain('nothing was installed');
    const install = (await svc.api(tenant.apiKey, 'GET', `/v1/organization-installs/${created.body.install.id}`)).body;
    expect(install).toMatchObject({ status: 'failed', statusReason: 'consent_declined' });
    await page.close();
  });
});
