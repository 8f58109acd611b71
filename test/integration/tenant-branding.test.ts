// Tenant branding of the hosted connect pages (issue 16 item 4): set with the tenant's own API
// key (PATCH /v1/settings) or by an operator (CLI), validated with a 400 naming the field, and
// shown — escaped — on the hosted pages, whose CSP admits exactly the logo's origin.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestService, testEncryptionKeys, type TestService } from '../helpers/test-service.js';
import { connectMailbox, createSession } from './connect-helpers.js';

let svc: TestService;
let a: { tenantId: string; apiKey: string; apiKeyId: string };
let b: { tenantId: string; apiKey: string; apiKeyId: string };

const HOSTILE_NAME = `Acme "Support" <script>alert('x')</script>`;
const ESCAPED_NAME = 'Acme &quot;Support&quot; &lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;';

beforeAll(async () => {
  svc = await startTestService({ env: { SANDBOX: '1' }, workers: false });
  a = await svc.createTenant({ name: 'branding-a' });
  b = await svc.createTenant({ name: 'branding-b' });
}, 90_000);
afterAll(async () => {
  await svc?.close();
});

function cspOf(res: Response): Map<string, string> {
  const directives = (res.headers.get('content-security-policy') ?? '').split(';').map((d) => d.trim().split(/\s+/));
  return new Map(directives.map(([name, ...values]) => [name!, values.join(' ')]));
}

describe('tenant branding settings', () => {
  it('refuses each bad value with details.field naming it, and changes nothing', async () => {
    const bad: Array<[string, unknown, RegExp]> = [
      ['displayName', '', /1–80 characters/],
      ['displayName', 'x'.repeat(81), /1–80 characters/],
      ['displayName', 'Acme\nSupport', /printable/],
      ['displayName', 'Acme\u202Etroppus', /printable/],
      ['logoUrl', 'javascript:alert(1)', /javascript: is not allowed/],
      ['logoUrl', 'data:image/svg+xml,<svg/onload=alert(1)>', /data: is not allowed/],
      ['logoUrl', 'http://cdn.acme.example/logo.png', /https/],
      ['logoUrl', 'https://user:secret@cdn.acme.example/logo.png', /user name or password/],
      ['logoUrl', 'https://cdn.acme.example/logo.png\u0007', /control characters/],
      ['logoUrl', "https://a;img-src'unsafe-inline'.example/logo.png", /host/],
      ['logoUrl', `https://cdn.acme.example/${'a'.repeat(2100)}`, /2048/],
      ['supportUrl', 'javascript:alert(document.cookie)', /javascript: is not allowed/],
      ['supportUrl', 'mailto:help@acme.example,boss@acme.example', /one email address/],
      ['supportUrl', 'https://help.acme.example:pw@evil.example/', /user name or password/],
    ];
    for (const [field, value, message] of bad) {
      const res = await svc.api(a.apiKey, 'PATCH', '/v1/settings', { [field]: value });
      expect(res.status, `${field}=${JSON.stringify(value).slice(0, 60)}`).toBe(400);
      expect(res.body.error.code).toBe('validation_error');
      expect(res.body.error.details.field).toBe(field);
      expect(res.body.error.message).toMatch(message);
    }
    // One bad field fails the whole patch: the good one beside it is not applied either.
    const mixed = await svc.api(a.apiKey, 'PATCH', '/v1/settings', { displayName: 'Fine', logoUrl: 'javascript:x' });
    expect(mixed.status).toBe(400);
    expect((await svc.api(a.apiKey, 'GET', '/v1/settings')).body).toMatchObject({ displayName: null, logoUrl: null, supportUrl: null });
  });

  it('stores the values normalized, audits the change, and null removes one', async () => {
    const set = await svc.api(a.apiKey, 'PATCH', '/v1/settings', { displayName: '  Acme Support  ', logoUrl: 'https://CDN.Acme.Example/logo.png', supportUrl: 'mailto:help@acme.example' });
    expect(set.status).toBe(200);
    expect(set.body).toEqual({ object: 'settings', blockRemoteImages: false, displayName: 'Acme Support', logoUrl: 'https://cdn.acme.example/logo.png', supportUrl: 'mailto:help@acme.example' });
    expect((await svc.api(a.apiKey, 'GET', '/v1/settings')).body).toEqual(set.body);
    const audit = await svc.api(a.apiKey, 'GET', '/v1/audit?limit=100');
    expect(audit.body.data.find((e: { action: string }) => e.action === 'tenant.settings_updated')).toMatchObject({ actorId: a.apiKeyId, metadata: { fields: ['displayName', 'logoUrl', 'supportUrl'] } });

    const cleared = await svc.api(a.apiKey, 'PATCH', '/v1/settings', { supportUrl: null });
    expect(cleared.body).toMatchObject({ displayName: 'Acme Support', logoUrl: 'https://cdn.acme.example/logo.png', supportUrl: null });
    // The other tenant is untouched.
    expect((await svc.api(b.apiKey, 'GET', '/v1/settings')).body).toMatchObject({ displayName: null, logoUrl: null, supportUrl: null });
  });
});

describe('branded hosted pages', () => {
  it('name the tenant, show its logo and support link escaped, and the CSP admits exactly the logo origin', async () => {
    const set = await svc.api(a.apiKey, 'PATCH', '/v1/settings', { displayName: HOSTILE_NAME, logoUrl: 'https://cdn.acme.example:8443/brand/logo.svg?v="2"&x=1', supportUrl: 'https://help.acme.example/connect?from=hosted' });
    expect(set.status).toBe(200);
    const session = await createSession(svc, a.apiKey, {});
    const res = await fetch(session.url);
    expect(res.status).toBe(200);
    const html = await res.text();
    expect(html).toContain(`<h1 id="connect-heading">Connect your mailbox to ${ESCAPED_NAME}</h1>`);
    expect(html).not.toContain("<script>alert('x')");
    expect(html).not.toMatch(/your helpdesk/i);
    expect(html).toContain(`<img class="brand-logo" id="brand-logo" src="https://cdn.acme.example:8443/brand/logo.svg?v=%222%22&amp;x=1" alt="${ESCAPED_NAME} logo" referrerpolicy="no-referrer"`);
    expect(html).toContain('<a id="support-link" href="https://help.acme.example/connect?from=hosted" target="_blank" rel="noopener noreferrer">Contact support</a>');

    const csp = cspOf(res);
    expect(csp.get('img-src')).toBe("'self' data: https://cdn.acme.example:8443");
    // Nothing else was widened.
    expect(csp.get('script-src')).toBe("'self'");
    expect(csp.get('default-src')).toBe("'self'");

    // Another tenant's page: generic wording, no logo, the CSP as it always was.
    const other = await fetch((await createSession(svc, b.apiKey, {})).url);
    const otherHtml = await other.text();
    expect(otherHtml).toContain('Your helpdesk asks to connect a mailbox');
    expect(otherHtml).not.toContain('<img class="brand-logo"');
    expect(cspOf(other).get('img-src')).toBe("'self' data:");
  });

  it('the result pages after consent (declined, connected) carry the same branding', async () => {
    await svc.api(a.apiKey, 'PATCH', '/v1/settings', { displayName: 'Acme & Sons', logoUrl: 'https://cdn.acme.example/logo.png', supportUrl: 'mailto:help@acme.example' });
    const denied = await connectMailbox(svc, a.apiKey, 'google', 'brand-denied@acme.test', {}, { deny: true });
    expect(denied.result.status).toBe(400);
    expect(denied.result.html).toContain('nothing was connected to Acme &amp; Sons');
    expect(denied.result.html).toContain('src="https://cdn.acme.example/logo.png"');
    expect(denied.result.html).toContain('<a id="support-link" href="mailto:help@acme.example">Contact support</a>');

    const connected = await connectMailbox(svc, a.apiKey, 'microsoft', 'brand-ok@contoso.test');
    expect(connected.result.status).toBe(200);
    expect(connected.result.html).toContain('<h1 id="result" data-status="connected">Mailbox connected to Acme &amp; Sons</h1>');
    expect(connected.result.html).toContain('New email will appear in Acme &amp; Sons within a few minutes.');
    expect(connected.result.html).toContain('<strong id="address">brand-ok@contoso.test</strong>');

    // Opening the used link again: the closed page is branded too (the session is known).
    const used = await fetch(connected.session.url);
    expect(used.status).toBe(410);
    expect(await used.text()).toContain('Go back to Acme &amp; Sons to see the result');
    expect(cspOf(used).get('img-src')).toBe("'self' data: https://cdn.acme.example");
  });
});

describe('tenants create|update on the command line', () => {
  const BIN = path.resolve('bin/mailbox-connector.js');
  const work = mkdtempSync(path.join(tmpdir(), 'mbc-branding-cli-'));
  const env: NodeJS.ProcessEnv = { ...process.env, NODE_ENV: 'development', LOG_LEVEL: 'warn', DATA_DIR: path.join(work, 'data'), ENCRYPTION_KEYS: testEncryptionKeys() };
  delete env.DATABASE_URL;
  const cli = (...args: string[]) => spawnSync(process.execPath, [BIN, ...args], { env, cwd: work, encoding: 'utf8', timeout: 120_000 });
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it('sets, shows and removes the branding; a bad value is one line naming the option', () => {
    const created = cli('--json', 'tenants', 'create', '--name', 'cli-brand', '--display-name', 'Acme Support', '--logo-url', 'https://cdn.acme.example/l.png', '--support-url', 'mailto:help@acme.example');
    expect(created.status, created.stderr).toBe(0);
    const { tenantId } = JSON.parse(created.stdout) as { tenantId: string };
    const updated = cli('--json', 'tenants', 'update', tenantId, '--no-logo-url', '--support-url', 'https://help.acme.example/');
    expect(updated.status, updated.stderr).toBe(0);
    expect(JSON.parse(updated.stdout)).toMatchObject({ tenantId, displayName: 'Acme Support', logoUrl: null, supportUrl: 'https://help.acme.example/' });

    const bad = cli('tenants', 'update', tenantId, '--logo-url', 'javascript:alert(1)');
    expect(bad.status).not.toBe(0);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
    expect(bad.stderr).toMatch(/--logo-url must be an https:\/\/ URL \(javascript: is not allowed/);
  }, 240_000);
});
