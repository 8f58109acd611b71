// Connect flow over HTTP against the in-process stand-ins (SANDBOX=1): sessions, hosted pages,
// the consent helpers of the Google and Microsoft stand-ins, and every bad input of issue 4.
import { get as httpsGet } from 'node:https';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sandboxCaFor } from '../../src/sandbox/microsoft/sandbox-ca.registry.js';
import { MAILBOX_ADDRESS_AAD } from '../../src/mailboxes/message-content.js';
import { startTestService, type TestService } from '../helpers/test-service.js';
import { access, connectMailbox, consent, createSession, deliverCallback, eventsOf, mailboxRows, startConsent } from './connect-helpers.js';

const RETURN_ORIGIN = 'https://helpdesk.example.com';

/** GET a stand-in page; the Microsoft stand-in is https with its own certificate (trusted exactly). */
function getText(url: string): Promise<string> {
  const u = new URL(url);
  if (u.protocol === 'http:') return fetch(u).then((r) => r.text());
  return new Promise((resolve, reject) => {
    httpsGet(u, { ca: sandboxCaFor(u.origin) }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
      res.on('error', reject);
    }).on('error', reject);
  });
}
let svc: TestService;
let tenant: { tenantId: string; apiKey: string };

beforeAll(async () => {
  svc = await startTestService({ env: { SANDBOX: '1' }, workers: false });
  tenant = await svc.createTenant({ name: 'acme', allowedReturnOrigins: [RETURN_ORIGIN] });
});
afterAll(async () => {
  await svc?.close();
});

describe('POST /v1/connect-sessions', () => {
  it('returns the hosted page URL and expiry, and the page explains each scope', async () => {
    const s = await createSession(svc, tenant.apiKey, { returnUrl: `${RETURN_ORIGIN}/settings/mail?x=1` });
    expect(s.url).toBe(`${svc.url}/connect/${s.id}`);
    expect(new Date(s.expiresAt).getTime()).toBeGreaterThan(Date.now() + 29 * 60_000);
    expect(s.provider).toBeNull();
    const page = await fetch(s.url);
    expect(page.status).toBe(200);
    const html = await page.text();
    // A provider picker (both configured in the sandbox) and one line per scope.
    expect(html).toContain('id="start-google"');
    expect(html).toContain('id="start-microsoft"');
    expect(html).toContain('Read your email');
    expect(html).toContain('Send email on your behalf');
    expect(html).toContain('Stay connected');
  });

  it('the stand-ins’ consent pages name each permission in plain words and say that any address works', async () => {
    for (const provider of ['google', 'microsoft'] as const) {
      const session = await createSession(svc, tenant.apiKey, { provider });
      const { authorizeUrl } = await startConsent(session.url, provider);
      const html = await getText(authorizeUrl);
      expect(html).toContain('id="sandbox-hint"');
      expect(html).toContain('Type any email address');
      if (provider === 'google') {
        expect(html).toContain('View your email messages and settings <small><code>https://www.googleapis.com/auth/gmail.readonly</code></small>');
        expect(html).toContain('Send email on your behalf');
      } else {
        expect(html).toContain('Read your mail <small><code>https://graph.microsoft.com/Mail.Read</code></small>');
        expect(html).toContain('Send mail as you');
      }
    }
  });

  it('refuses a returnUrl outside the tenant’s allowed origins and creates no session', async () => {
    const before = await svc.core.prisma.connectSession.count();
    for (const returnUrl of ['https://evil.example.com/cb', 'https://helpdesk.example.com.evil.com/', 'http://helpdesk.example.com/', 'https://helpdesk.example.com:8443/', 'javascript:alert(1)', 'not a url']) {
      const res = await svc.api(tenant.apiKey, 'POST', '/v1/connect-sessions', { provider: 'google', returnUrl });
      expect(res.status, returnUrl).toBe(400);
      expect(res.body.error.code).toBe('return_url_not_allowed');
    }
    expect(await svc.core.prisma.connectSession.count()).toBe(before);
  });

  it('requires an API key and validates the provider', async () => {
    const anon = await fetch(`${svc.url}/v1/connect-sessions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(anon.status).toBe(401);
    const bad = await svc.api(tenant.apiKey, 'POST', '/v1/connect-sessions', { provider: 'yahoo' });
    expect(bad.status).toBe(400);
  });
});

describe('Google connect', () => {
  it('connects: redirect to returnUrl with mailbox_id and status, encrypted address, event, audit', async () => {
    const { result } = await connectMailbox(svc, tenant.apiKey, 'google', 'ana@acme.test', { returnUrl: `${RETURN_ORIGIN}/done?keep=1` });
    expect(result.status).toBe(302);
    const back = new URL(result.location!);
    expect(back.origin).toBe(RETURN_ORIGIN);
    expect(back.searchParams.get('keep')).toBe('1');
    expect(back.searchParams.get('status')).toBe('connected');
    const mailboxId = back.searchParams.get('mailbox_id')!;
    const row = await svc.core.prisma.mailbox.findUniqueOrThrow({ where: { id: mailboxId } });
    expect(row).toMatchObject({ tenantId: tenant.tenantId, provider: 'google', status: 'active' });
    expect(row.grantedScopes).toEqual(expect.arrayContaining(['https://www.googleapis.com/auth/gmail.readonly', 'https://www.googleapis.com/auth/gmail.send']));
    expect(row.addressIndex).toBe(svc.core.blindIndex.emailIndex('ana@acme.test'));
    const address = await svc.core.dataKeys.decryptFor({ type: 'mailbox', id: mailboxId }, row.addressEnc, MAILBOX_ADDRESS_AAD(mailboxId));
    expect(address.toString()).toBe('ana@acme.test');
    expect(Buffer.from(row.addressEnc).toString('latin1')).not.toContain('ana@acme.test');
    expect((await eventsOf(svc, mailboxId, 'mailbox.connected')).length).toBe(1);
    const audit = await svc.core.prisma.auditEntry.findMany({ where: { targetId: mailboxId } });
    expect(audit.map((a) => a.action)).toContain('mailbox.connected');
    // The first sync is queued (workers are off in this test, so it stays queued).
    const { rows: jobs } = await svc.core.db.sql.query("SELECT data FROM pgboss.job WHERE name = 'sync.mailbox'");
    expect(jobs.map((j) => (j as { data: unknown }).data)).toContainEqual({ mailboxId, reason: 'connect' });
    // The mailbox is usable right away through the provider factory and the vault.
    const a = await access(svc);
    expect(await a.providers.forMailbox({ id: mailboxId, provider: 'google' }).getAddress()).toBe('ana@acme.test');
    // The mailbox API shows it.
    const api = await svc.api(tenant.apiKey, 'GET', `/v1/mailboxes/${mailboxId}`);
    expect(api.body).toMatchObject({ id: mailboxId, address: 'ana@acme.test', status: 'active', provider: 'google' });
    // Nothing secret in the logs.
    const cs = await svc.core.prisma.connectSession.findFirstOrThrow({ where: { resultMailboxId: mailboxId } });
    expect(cs).toMatchObject({ status: 'completed', result: 'connected', pkceVerifierEnc: null });
    // The ticket service can also poll the session; another tenant cannot see it.
    const polled = await svc.api(tenant.apiKey, 'GET', `/v1/connect-sessions/${cs.id}`);
    expect(polled.body).toMatchObject({ id: cs.id, status: 'completed', result: 'connected', resultMailboxId: mailboxId, provider: 'google' });
    expect(JSON.stringify(polled.body)).not.toMatch(/state|verifier/i);
    const stranger = await svc.createTenant({ name: 'stranger' });
    expect((await svc.api(stranger.apiKey, 'GET', `/v1/connect-sessions/${cs.id}`)).status).toBe(404);
    expect(svc.logs.join('\n')).not.toMatch(/ana@acme\.test|code=|refresh_token/);
  });

  it('shows a hosted result page when there is no returnUrl', async () => {
    const { result } = await connectMailbox(svc, tenant.apiKey, 'google', 'page@acme.test');
    expect(result.status).toBe(200);
    expect(result.html).toContain('data-status="connected"');
    // Issue 16: the page names the connected address and drops ?code=&state= from the address bar
    // with a served script (CSP script-src 'self', no inline script).
    expect(result.html).toContain('<strong id="address">page@acme.test</strong>');
    expect(result.html).toContain('<script src="/connect/assets/clean-url.js" defer></script>');
    const js = await fetch(`${svc.url}/connect/assets/clean-url.js`);
    expect(js.status).toBe(200);
    expect(js.headers.get('content-type')).toMatch(/^text\/javascript/);
    expect(await js.text()).toContain('history.replaceState(null, \'\', window.location.pathname)');
    expect(js.headers.get('content-security-policy')).toContain("script-src 'self'");
  });

  it('shows each provider with its logo, served as an SVG file of ours', async () => {
    const session = await createSession(svc, tenant.apiKey, {});
    const html = await (await fetch(session.url)).text();
    for (const provider of ['google', 'microsoft']) {
      expect(html).toContain(`<img class="logo" src="/connect/assets/${provider}.svg" alt="" width="120" height="32">`);
      const svg = await fetch(`${svc.url}/connect/assets/${provider}.svg`);
      expect(svg.status).toBe(200);
      expect(svg.headers.get('content-type')).toMatch(/^image\/svg\+xml/);
      const body = await svg.text();
      expect(body).toMatch(/^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
      expect(body).not.toMatch(/<script|on[a-z]+=|href=/i);
    }
    expect((await fetch(`${svc.url}/connect/assets/other.svg`)).status).toBe(400);
    expect((await fetch(`${svc.url}/connect/assets/clean-url.js`)).status).toBe(200);
  });

  it('the customer denying consent: status=denied, nothing created', async () => {
    const before = await mailboxRows(svc);
    const { result } = await connectMailbox(svc, tenant.apiKey, 'google', 'deny@acme.test', { returnUrl: `${RETURN_ORIGIN}/done` }, { deny: true });
    const back = new URL(result.location!);
    expect(back.searchParams.get('status')).toBe('denied');
    expect(back.searchParams.get('mailbox_id')).toBeNull();
    expect(await mailboxRows(svc)).toEqual(before);
  });

  it('"try again" after declining: the same session starts again and connects; the first callback cannot complete', async () => {
    for (const provider of ['google', 'microsoft'] as const) {
      const email = `retry-${provider}@acme.test`;
      const first = await connectMailbox(svc, tenant.apiKey, provider, email, {}, provider === 'google' ? { deny: true } : { uncheck: ['https://graph.microsoft.com/Mail.Send'] });
      expect(first.result.status).toBe(400);
      expect(first.result.html).toContain(`<a class="button" id="try-again" href="/connect/${first.session.id}">Try again</a>`);
      // The session page works again (not "already used"), and a new attempt connects.
      expect((await fetch(first.session.url)).status).toBe(200);
      const again = await startConsent(first.session.url, provider);
      const back = await consent(provider, again.authorizeUrl, { email });
      const done = await deliverCallback(back, again.cookie);
      expect(done.status).toBe(200);
      expect(done.html).toContain('data-status="connected"');
      expect(done.html).toContain(email);
      // The declined attempt's callback is dead (its state was replaced), and the finished session is closed.
      expect((await deliverCallback(first.back, first.started.cookie)).status).toBe(400);
      expect((await fetch(first.session.url)).status).toBe(410);
      const status = await svc.api(tenant.apiKey, 'GET', `/v1/connect-sessions/${first.session.id}`);
      expect(status.body).toMatchObject({ status: 'completed', result: 'connected', missingScopes: [] });
    }
  });

  it('an expired declined session offers no new attempt', async () => {
    const first = await connectMailbox(svc, tenant.apiKey, 'google', 'retry-late@acme.test', {}, { deny: true });
    await svc.core.prisma.connectSession.update({ where: { id: first.session.id }, data: { expiresAt: new Date(Date.now() - 1000) } });
    expect((await fetch(first.session.url)).status).toBe(410);
    expect((await fetch(`${first.session.url}/start?provider=google`, { redirect: 'manual' })).status).toBe(410);
  });

  it('an unticked scope: missing_scopes page naming it, the grant revoked, nothing kept', async () => {
    const g = (await access(svc)).settings.sandbox.google!;
    const revokedBefore = g.revokedTokens().length;
    const before = await mailboxRows(svc);
    const { result } = await connectMailbox(svc, tenant.apiKey, 'google', 'partial@acme.test', {}, { uncheck: ['https://www.googleapis.com/auth/gmail.send'] });
    expect(result.status).toBe(400);
    expect(result.html).toContain('data-status="missing_scopes"');
    expect(result.html).toContain('data-scope="https://www.googleapis.com/auth/gmail.send"');
    expect(result.html).not.toContain('data-scope="https://www.googleapis.com/auth/gmail.readonly"');
    expect(g.revokedTokens().length).toBeGreaterThan(revokedBefore);
    expect(g.revokedTokens().at(-1)).toMatchObject({ email: 'partial@acme.test' });
    expect(await mailboxRows(svc)).toEqual(before);
  });
});

describe('Microsoft connect', () => {
  it('connects: MSAL cache stored encrypted, account id encrypted, address from /me', async () => {
    const { result } = await connectMailbox(svc, tenant.apiKey, 'microsoft', 'mia@contoso.test', { returnUrl: `${RETURN_ORIGIN}/done` });
    const back = new URL(result.location!);
    expect(back.searchParams.get('status')).toBe('connected');
    const mailboxId = back.searchParams.get('mailbox_id')!;
    const row = await svc.core.prisma.mailbox.findUniqueOrThrow({ where: { id: mailboxId } });
    expect(row).toMatchObject({ provider: 'microsoft', status: 'active' });
    expect(row.accountIdEnc).not.toBeNull();
    // offline_access once, both stored and served (issue 16: it was listed twice).
    expect(row.grantedScopes.filter((s) => s === 'offline_access')).toEqual(['offline_access']);
    expect(new Set(row.grantedScopes).size).toBe(row.grantedScopes.length);
    const served = await svc.api(tenant.apiKey, 'GET', `/v1/mailboxes/${mailboxId}`);
    expect(served.body.grantedScopes.filter((s: string) => s === 'offline_access')).toEqual(['offline_access']);
    const ms = (await access(svc)).settings.sandbox.microsoft!;
    const user = ms.createUser('mia@contoso.test');
    expect(Buffer.from(row.accountIdEnc!).toString('latin1')).not.toContain(user.id);
    const cred = await (await access(svc)).vault.credential(mailboxId);
    expect(cred).toMatchObject({ credential: { provider: 'microsoft', kind: 'delegated' }, accountId: user.homeAccountId });
    const a = await access(svc);
    expect(await a.providers.forMailbox({ id: mailboxId, provider: 'microsoft' }).getAddress()).toBe('mia@contoso.test');
  });

  it('an unticked Mail.Send: missing_scopes, nothing kept', async () => {
    const before = await mailboxRows(svc);
    const { result } = await connectMailbox(svc, tenant.apiKey, 'microsoft', 'mpartial@contoso.test', { returnUrl: `${RETURN_ORIGIN}/done` }, { uncheck: ['https://graph.microsoft.com/Mail.Send'] });
    expect(new URL(result.location!).searchParams.get('status')).toBe('missing_scopes');
    expect(await mailboxRows(svc)).toEqual(before);
  });

  it('denied: status=denied', async () => {
    const { result } = await connectMailbox(svc, tenant.apiKey, 'microsoft', 'mdeny@contoso.test', { returnUrl: `${RETURN_ORIGIN}/done` }, { deny: true });
    expect(new URL(result.location!).searchParams.get('status')).toBe('denied');
  });
});

describe('bad input: a page or an error, nothing created, existing mailboxes untouched', () => {
  it('a forged state', async () => {
    const before = await mailboxRows(svc);
    for (const state of ['', 'x', 'A'.repeat(43), '<script>alert(1)</script>']) {
      const r = await deliverCallback(`${svc.url}/oauth/google/callback?state=${encodeURIComponent(state)}&code=abc`, undefined);
      expect(r.status).toBe(400);
      expect(r.html).toContain('data-reason="invalid_state"');
      expect(r.html).not.toContain('<script>alert');
    }
    expect(await mailboxRows(svc)).toEqual(before);
    const metrics = await (await fetch(`${svc.url}/metrics`)).text();
    expect(metrics).toMatch(/mbc_connect_rejected_total\{reason="invalid_state"\} [4-9]/);
  });

  it('a replayed callback (state used twice)', async () => {
    const { back, started, result } = await connectMailbox(svc, tenant.apiKey, 'google', 'replay@acme.test', { returnUrl: `${RETURN_ORIGIN}/done` });
    expect(new URL(result.location!).searchParams.get('status')).toBe('connected');
    const after = await mailboxRows(svc);
    const again = await deliverCallback(back, started.cookie);
    expect(again.status).toBe(400);
    expect(again.html).toContain('data-reason="already_used"');
    expect(await mailboxRows(svc)).toEqual(after);
  });

  it('an authorization code used twice (another session’s state, the first session’s code)', async () => {
    const first = await connectMailbox(svc, tenant.apiKey, 'google', 'code2x@acme.test');
    const firstMailbox = (await mailboxRows(svc, { addressIndex: svc.core.blindIndex.emailIndex('code2x@acme.test') }))[0]!;
    const second = await createSession(svc, tenant.apiKey, { provider: 'google', returnUrl: `${RETURN_ORIGIN}/done` });
    const started = await startConsent(second.url, 'google');
    const state = new URL(started.authorizeUrl).searchParams.get('state')!;
    const forged = new URL(first.back);
    forged.searchParams.set('state', state);
    const before = await mailboxRows(svc);
    const r = await deliverCallback(forged, started.cookie);
    expect(new URL(r.location!).searchParams.get('status')).toBe('error');
    expect(await mailboxRows(svc)).toEqual(before);
    expect((await svc.core.prisma.mailbox.findUniqueOrThrow({ where: { id: firstMailbox.id } })).status).toBe('active');
  });

  it('an expired session: the page says so and the callback reports expired', async () => {
    const s = await createSession(svc, tenant.apiKey, { provider: 'google', returnUrl: `${RETURN_ORIGIN}/done` });
    const started = await startConsent(s.url, 'google');
    const back = await consent('google', started.authorizeUrl, { email: 'late@acme.test' });
    await svc.core.prisma.connectSession.update({ where: { id: s.id }, data: { expiresAt: new Date(Date.now() - 1000) } });
    const before = await mailboxRows(svc);
    const r = await deliverCallback(back, started.cookie);
    expect(new URL(r.location!).searchParams.get('status')).toBe('expired');
    expect(await mailboxRows(svc)).toEqual(before);
    const page = await fetch(s.url);
    expect(page.status).toBe(410);
    expect(await page.text()).toContain('data-reason="expired"');

    const fresh = await createSession(svc, tenant.apiKey, { provider: 'google' });
    await svc.core.prisma.connectSession.update({ where: { id: fresh.id }, data: { expiresAt: new Date(Date.now() - 1000) } });
    const expiredPage = await fetch(fresh.url);
    expect(expiredPage.status).toBe(410);
    expect(await expiredPage.text()).toContain('data-reason="expired"');
    const expiredStart = await fetch(`${fresh.url}/start?provider=google`, { redirect: 'manual' });
    expect(expiredStart.status).toBe(410);
  });

  it('a callback for another tenant’s session (started in another browser) is refused without consuming it', async () => {
    const other = await svc.createTenant({ name: 'other', allowedReturnOrigins: [RETURN_ORIGIN] });
    const victim = await createSession(svc, tenant.apiKey, { provider: 'google', returnUrl: `${RETURN_ORIGIN}/done` });
    const victimStart = await startConsent(victim.url, 'google');
    const attacker = await createSession(svc, other.apiKey, { provider: 'google', returnUrl: `${RETURN_ORIGIN}/done` });
    const attackerStart = await startConsent(attacker.url, 'google');
    const back = await consent('google', victimStart.authorizeUrl, { email: 'crosstenant@acme.test' });
    const before = await mailboxRows(svc);
    const r = await deliverCallback(back, attackerStart.cookie);
    expect(r.status).toBe(400);
    expect(r.html).toContain('data-reason="other_browser"');
    expect(await mailboxRows(svc)).toEqual(before);
    // The rightful browser can still finish.
    const ok = await deliverCallback(back, victimStart.cookie);
    expect(new URL(ok.location!).searchParams.get('status')).toBe('connected');
    // A callback on the wrong provider's redirect URI is refused too.
    const wrong = await deliverCallback(`${svc.url}/oauth/microsoft/callback?${new URL(back).searchParams.toString()}`, victimStart.cookie);
    expect(wrong.status).toBe(400);
  });

  it('unknown and malformed session ids', async () => {
    expect((await fetch(`${svc.url}/connect/cs_DOESNOTEXIST`)).status).toBe(404);
    expect((await fetch(`${svc.url}/connect/%3Cscript%3E`)).status).toBe(400);
  });
});

describe('re-consent and tenants', () => {
  it('the same tenant connecting the same address again reuses the record, with a new credential and data kept', async () => {
    const first = await connectMailbox(svc, tenant.apiKey, 'google', 'again@acme.test', { returnUrl: `${RETURN_ORIGIN}/done` });
    const id = new URL(first.result.location!).searchParams.get('mailbox_id')!;
    await svc.core.prisma.mailbox.update({ where: { id }, data: { syncCursor: { v: 1, provider: 'google', historyId: '42' }, backfillCompletedAt: new Date() } });
    const credBefore = await (await access(svc)).vault.credential(id);
    const second = await connectMailbox(svc, tenant.apiKey, 'google', 'again@acme.test', { returnUrl: `${RETURN_ORIGIN}/done` });
    expect(new URL(second.result.location!).searchParams.get('mailbox_id')).toBe(id);
    const row = await svc.core.prisma.mailbox.findUniqueOrThrow({ where: { id } });
    expect(row.syncCursor).toEqual({ v: 1, provider: 'google', historyId: '42' });
    expect(row.backfillCompletedAt).not.toBeNull();
    const credAfter = await (await access(svc)).vault.credential(id);
    expect(credAfter).not.toEqual(credBefore);
    expect((await eventsOf(svc, id, 'mailbox.connected')).length).toBe(2);
  });

  it('a different tenant connecting the same address gets its own record and key', async () => {
    const other = await svc.createTenant({ name: 'second', allowedReturnOrigins: [RETURN_ORIGIN] });
    const a = await connectMailbox(svc, tenant.apiKey, 'google', 'shared@acme.test', { returnUrl: `${RETURN_ORIGIN}/done` });
    const b = await connectMailbox(svc, other.apiKey, 'google', 'shared@acme.test', { returnUrl: `${RETURN_ORIGIN}/done` });
    const idA = new URL(a.result.location!).searchParams.get('mailbox_id')!;
    const idB = new URL(b.result.location!).searchParams.get('mailbox_id')!;
    expect(idA).not.toBe(idB);
    const keys = await Promise.all([idA, idB].map((id) => svc.core.keyStore.find({ type: 'mailbox', id })));
    expect(keys.every(Boolean)).toBe(true);
    expect(Buffer.from(keys[0]!.wrappedKey).equals(Buffer.from(keys[1]!.wrappedKey))).toBe(false);
    // Each tenant sees only its own.
    expect((await svc.api(other.apiKey, 'GET', `/v1/mailboxes/${idA}`)).status).toBe(404);
    expect((await svc.api(tenant.apiKey, 'GET', `/v1/mailboxes/${idB}`)).status).toBe(404);
  });

  it('reconnect sessions are bound to the mailbox: another account is refused, another tenant’s mailbox is 404', async () => {
    const first = await connectMailbox(svc, tenant.apiKey, 'google', 'bound@acme.test', { returnUrl: `${RETURN_ORIGIN}/done` });
    const id = new URL(first.result.location!).searchParams.get('mailbox_id')!;
    const other = await svc.createTenant({ name: 'third' });
    expect((await svc.api(other.apiKey, 'POST', `/v1/mailboxes/${id}/reconnect`, {})).status).toBe(404);
    const re = await svc.api(tenant.apiKey, 'POST', `/v1/mailboxes/${id}/reconnect`, { returnUrl: `${RETURN_ORIGIN}/done` });
    expect(re.status).toBe(201);
    expect(re.body).toMatchObject({ provider: 'google', mailboxId: id });
    const started = await startConsent(re.body.url, 'google');
    const back = await consent('google', started.authorizeUrl, { email: 'someone-else@acme.test' });
    const before = await mailboxRows(svc);
    const r = await deliverCallback(back, started.cookie);
    expect(new URL(r.location!).searchParams.get('status')).toBe('error');
    expect(await mailboxRows(svc)).toEqual(before);
  });
});
