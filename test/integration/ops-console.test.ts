// The ops console over real HTTP (supertest against the running service, real database): sign-in,
// the session cookie's flags, CSRF and origin checks, each action run through its ops command and
// audited, break-glass unreachable, and no mail content on any page.
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newId } from '../../src/storage/ids.js';
import { startTestService, type TestService } from '../helpers/test-service.js';
import { emit, seedMailbox, seedMessage } from './webhooks-seed.js';

let svc: TestService;
let tenant: { tenantId: string; apiKey: string };
let adminKey: { key: string; id: string };
let mailbox: { id: string; address: string };
let subject: string;
let endpointId: string;
let deadDeliveryId: string;

async function issueAdminKey(): Promise<{ key: string; id: string }> {
  const issued = await svc.core.apiKeys.issue({ admin: true, name: 'console test' });
  return { key: issued.key, id: issued.record.id };
}

/** Signs in and returns the cookie header and the session's CSRF token (read from a page's form). */
async function signIn(key = adminKey.key): Promise<{ cookie: string; csrf: string }> {
  const res = await request(svc.url).post('/admin/login').type('form').send({ apiKey: key });
  expect(res.status).toBe(303);
  const cookie = (res.headers['set-cookie'] as unknown as string[])[0]!.split(';')[0]!;
  const page = await request(svc.url).get('/admin/tenants').set('cookie', cookie);
  expect(page.status).toBe(200);
  const csrf = /name="_csrf" value="([^"]+)"/.exec(page.text)![1]!;
  return { cookie, csrf };
}

async function auditActions(actorId: string): Promise<Array<{ action: string; metadata: unknown; targetId: string | null }>> {
  return svc.core.prisma.auditEntry.findMany({ where: { actorId }, orderBy: { seq: 'asc' }, select: { action: true, metadata: true, targetId: true } });
}

beforeAll(async () => {
  svc = await startTestService({ workers: false });
  tenant = await svc.createTenant({ name: 'Console Tenant' });
  adminKey = await issueAdminKey();
  mailbox = await seedMailbox(svc.core, tenant.tenantId);
  const msg = await seedMessage(svc.core, tenant.tenantId, mailbox.id);
  subject = msg.content.subject!;
  const ep = await svc.api(tenant.apiKey, 'POST', '/v1/webhook-endpoints', { url: 'http://127.0.0.1:9/hook?token=receiver-secret-token' });
  expect(ep.status).toBe(201);
  endpointId = ep.body.id as string;
  const [event] = await emit(svc.core, [{ tenantId: tenant.tenantId, mailboxId: mailbox.id, type: 'message.received', refs: { messageId: msg.id } }]);
  deadDeliveryId = newId('delivery');
  await svc.core.prisma.webhookDelivery.create({ data: { id: deadDeliveryId, tenantId: tenant.tenantId, eventId: event!.id, endpointId, status: 'dead', attempts: 8, lastStatus: 500 } });
  await svc.core.prisma.deliveryAttempt.create({
    data: { id: newId('deliveryAttempt'), deliveryId: deadDeliveryId, attemptNo: 8, statusCode: 500, latencyMs: 12, responseSnippet: `receiver said ${subject}`, error: 'http_status' },
  });
  await svc.core.prisma.outboxEvent.update({ where: { id: event!.id }, data: { dispatchedAt: new Date() } });
}, 120_000);

afterAll(async () => {
  await svc?.close();
});

describe('ops console: sign-in and session', () => {
  it('sends a visitor without a session to the sign-in page', async () => {
    expect((await request(svc.url).get('/admin')).headers.location).toBe('/admin/login');
    const res = await request(svc.url).get('/admin/mailboxes?status=active');
    expect(res.status).toBe(303);
    expect(res.headers.location).toBe(`/admin/login?next=${encodeURIComponent('/admin/mailboxes?status=active')}`);
    const login = await request(svc.url).get('/admin/login');
    expect(login.status).toBe(200);
    expect(login.text).toContain('<label for="apiKey">Admin API key</label>');
  });

  it('refuses tenant keys, unknown keys and malformed input alike, without a cookie', async () => {
    for (const apiKey of [tenant.apiKey, 'mbc_admin_notarealkey', '', 'x'.repeat(5000)]) {
      const res = await request(svc.url).post('/admin/login').type('form').send({ apiKey });
      expect(res.status, apiKey.slice(0, 20)).toBe(401);
      expect(res.headers['set-cookie']).toBeUndefined();
      expect(res.text).toContain('That is not an active admin API key.');
    }
    // The presented keys are never logged.
    expect(svc.logs.join('\n')).not.toContain(tenant.apiKey);
  });

  it('signs in with an admin key: HttpOnly, SameSite=Strict cookie scoped to /admin (not Secure over http), audited', async () => {
    const res = await request(svc.url).post('/admin/login').type('form').send({ apiKey: adminKey.key, next: '/admin/mailboxes' });
    expect(res.status).toBe(303);
    expect(res.headers.location).toBe('/admin/mailboxes');
    const cookie = (res.headers['set-cookie'] as unknown as string[])[0]!;
    expect(cookie).toMatch(/^mbc_console=[A-Za-z0-9_-]{43};/);
    expect(cookie).toMatch(/; HttpOnly/i);
    expect(cookie).toMatch(/; SameSite=Strict/i);
    expect(cookie).toMatch(/; Path=\/admin/);
    expect(cookie).not.toMatch(/; Secure/i);
    // The token is not what the database keeps.
    const token = /^mbc_console=([^;]+)/.exec(cookie)![1]!;
    const rows = await svc.core.prisma.adminSession.findMany({ where: { apiKeyId: adminKey.id } });
    expect(rows.length).toBeGreaterThan(0);
    expect(rows.some((r) => r.tokenHash === token)).toBe(false);
    expect((await auditActions(`console:${adminKey.id}`)).map((a) => a.action)).toContain('console.signed_in');
  });

  it('deletes sessions dead for more than a day at the next sign-in', async () => {
    const old = new Date(Date.now() - 3 * 86_400_000);
    await svc.core.prisma.adminSession.create({ data: { tokenHash: 'd'.repeat(64), apiKeyId: adminKey.id, createdAt: old, seenAt: old, expiresAt: new Date(old.getTime() + 3_600_000) } });
    await signIn();
    expect(await svc.core.prisma.adminSession.findUnique({ where: { tokenHash: 'd'.repeat(64) } })).toBeNull();
  });

  it('ignores a next= that leaves the console', async () => {
    for (const next of ['https://evil.example/', '//evil.example', '/v1/mailboxes', '/admin/../v1']) {
      const res = await request(svc.url).post('/admin/login').type('form').send({ apiKey: adminKey.key, next });
      expect(res.headers.location, next).toBe('/admin/tenants');
    }
  });

  it('serves pages with a CSP without script or inline style, no-store, and a stylesheet from this origin', async () => {
    const { cookie } = await signIn();
    const res = await request(svc.url).get('/admin/tenants').set('cookie', cookie);
    const csp = res.headers['content-security-policy'] as string;
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("style-src 'self'");
    expect(csp).toContain("form-action 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).not.toContain('unsafe-inline');
    expect(csp).not.toContain('script-src');
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.text).not.toMatch(/<script|style=|<style/i);
    const css = await request(svc.url).get('/admin/assets/console.css');
    expect(css.status).toBe(200);
    expect(css.headers['content-type']).toMatch(/^text\/css/);
  });

  it('ends the session on sign-out and when its API key is revoked', async () => {
    const a = await signIn();
    const out = await request(svc.url).post('/admin/logout').set('cookie', a.cookie).type('form').send({ _csrf: a.csrf });
    expect(out.status).toBe(303);
    expect((await request(svc.url).get('/admin/tenants').set('cookie', a.cookie)).status).toBe(303);

    const other = await issueAdminKey();
    const b = await signIn(other.key);
    await svc.core.apiKeys.revoke(other.id, 'any');
    const res = await request(svc.url).get('/admin/tenants').set('cookie', b.cookie);
    expect(res.status).toBe(303);
    expect(res.headers.location).toMatch(/^\/admin\/login/);
    expect((await auditActions(`console:${adminKey.id}`)).map((x) => x.action)).toContain('console.signed_out');
  });
});

describe('ops console: pages', () => {
  it('shows tenants, mailboxes and a mailbox with codes only — no address, subject or receiver text', async () => {
    const { cookie } = await signIn();
    const tenants = await request(svc.url).get('/admin/tenants').set('cookie', cookie);
    expect(tenants.text).toContain('<h1>Tenants</h1>');
    expect(tenants.text).toContain('Console Tenant');
    const tenantPage = await request(svc.url).get(`/admin/tenants/${tenant.tenantId}`).set('cookie', cookie);
    expect(tenantPage.text).toContain(endpointId);
    expect(tenantPage.text).toContain('http://127.0.0.1:9/hook');
    expect(tenantPage.text).not.toContain('receiver-secret-token');

    const list = await request(svc.url).get(`/admin/mailboxes?tenantId=${tenant.tenantId}`).set('cookie', cookie);
    expect(list.status).toBe(200);
    expect(list.text).toContain(mailbox.id);
    const row = list.text.slice(list.text.indexOf(mailbox.id));
    // pending 0, dead 1 for this mailbox's event
    expect(row).toMatch(/<td>0<\/td><td><span class="status-bad">1<\/span><\/td>/);

    const page = await request(svc.url).get(`/admin/mailboxes/${mailbox.id}`).set('cookie', cookie);
    expect(page.status).toBe(200);
    expect(page.text).toContain('<h2>Sync history</h2>');
    expect(page.text).toContain('<h2>Recent errors</h2>');
    expect(page.text).toContain('HTTP 500 (http_status)');
    expect(page.text).toContain('<h2>Purge receipt</h2>');
    for (const html of [tenants.text, tenantPage.text, list.text, page.text]) {
      expect(html).not.toContain(mailbox.address);
      expect(html).not.toContain(subject);
      expect(html).not.toContain('ada@customer.example');
      expect(html).not.toContain('receiver said');
    }
  });

  it('shows the tenant’s hosted-page branding as escaped text (the logo is not loaded)', async () => {
    const { cookie } = await signIn();
    const before = await request(svc.url).get(`/admin/tenants/${tenant.tenantId}`).set('cookie', cookie);
    expect(before.text).toContain('<dt>Hosted pages name</dt><dd><span class="muted">not set</span>');
    await svc.core.tenants.update(tenant.tenantId, { displayName: 'Acme <b>"Support"</b>', logoUrl: 'https://cdn.acme.example/logo.svg', supportUrl: 'mailto:help@acme.example' });
    const page = await request(svc.url).get(`/admin/tenants/${tenant.tenantId}`).set('cookie', cookie);
    expect(page.text).toContain('<dt>Hosted pages name</dt><dd>Acme &lt;b&gt;&quot;Support&quot;&lt;/b&gt;</dd>');
    expect(page.text).toContain('<dd><code>https://cdn.acme.example/logo.svg</code></dd>');
    expect(page.text).toContain('<dd><code>mailto:help@acme.example</code></dd>');
    expect(page.text).not.toContain('<img');
    await svc.core.tenants.update(tenant.tenantId, { displayName: null, logoUrl: null, supportUrl: null });
  });

  it('answers unknown ids and bad filters with an HTML error page', async () => {
    const { cookie } = await signIn();
    const missing = await request(svc.url).get('/admin/mailboxes/mbx_doesnotexist').set('cookie', cookie);
    expect(missing.status).toBe(404);
    expect(missing.text).toContain('mailbox not found');
    const bad = await request(svc.url).get('/admin/mailboxes?status=weird').set('cookie', cookie);
    expect(bad.status).toBe(400);
    expect((await request(svc.url).get('/admin/nothing-here').set('cookie', cookie)).status).toBe(404);
  });
});

describe('ops console: actions', () => {
  it('refuses a POST without the session CSRF token, with a wrong one, or from another origin — nothing runs', async () => {
    const { cookie, csrf } = await signIn();
    const before = await svc.core.prisma.auditEntry.count();
    const attempts = [
      request(svc.url).post(`/admin/mailboxes/${mailbox.id}/resync`).set('cookie', cookie).type('form').send({}),
      request(svc.url).post(`/admin/mailboxes/${mailbox.id}/resync`).set('cookie', cookie).type('form').send({ _csrf: `${csrf.slice(0, -2)}xx` }),
      request(svc.url).post(`/admin/mailboxes/${mailbox.id}/resync`).set('cookie', cookie).set('origin', 'https://evil.example').type('form').send({ _csrf: csrf }),
      request(svc.url).post(`/admin/mailboxes/${mailbox.id}/revoke`).set('cookie', cookie).type('form').send({ reason: 'csrf attempt' }),
    ];
    for (const res of await Promise.all(attempts)) expect(res.status).toBe(403);
    // Without a session cookie at all (a cross-site POST under SameSite=Strict): 401.
    expect((await request(svc.url).post(`/admin/mailboxes/${mailbox.id}/resync`).type('form').send({ _csrf: csrf })).status).toBe(401);
    expect(await svc.core.prisma.auditEntry.count()).toBe(before);
    expect((await svc.core.prisma.mailbox.findUnique({ where: { id: mailbox.id } }))!.status).toBe('active');
  });

  it('resync runs mailboxes.resync and is audited under the console actor', async () => {
    const { cookie, csrf } = await signIn();
    const res = await request(svc.url).post(`/admin/mailboxes/${mailbox.id}/resync`).set('cookie', cookie).set('origin', svc.url).type('form').send({ _csrf: csrf });
    expect(res.status).toBe(303);
    expect(res.headers.location).toBe(`/admin/mailboxes/${mailbox.id}?notice=resync_queued`);
    const page = await request(svc.url).get(res.headers.location as string).set('cookie', cookie);
    expect(page.text).toContain('A sync of this mailbox is queued.');
    // The queued job is in the sync history.
    expect(page.text).toMatch(/<td>resync<\/td>/);
    const audit = await auditActions(`console:${adminKey.id}`);
    expect(audit).toContainEqual(expect.objectContaining({ action: 'mailbox.resync', targetId: mailbox.id }));
    expect(audit).toContainEqual(expect.objectContaining({ action: 'ops.command', metadata: { command: 'mailboxes.resync', outcome: 'ok' } }));
  });

  it('replay dead events turns the dead delivery back to pending, audited', async () => {
    const { cookie, csrf } = await signIn();
    const res = await request(svc.url).post(`/admin/mailboxes/${mailbox.id}/replay-dead`).set('cookie', cookie).type('form').send({ _csrf: csrf });
    expect(res.status).toBe(303);
    expect(res.headers.location).toBe(`/admin/mailboxes/${mailbox.id}?notice=replayed:1`);
    const d = await svc.core.prisma.webhookDelivery.findUnique({ where: { id: deadDeliveryId } });
    expect(d!.status).toBe('pending');
    expect(await auditActions(`console:${adminKey.id}`)).toContainEqual(expect.objectContaining({ action: 'events.dead_replayed', targetId: mailbox.id, metadata: { deliveries: 1, skipped: 0 } }));
  });

  it('rotate secret shows the new secret once, keeps the previous one for 24 h, audited', async () => {
    const { cookie, csrf } = await signIn();
    const res = await request(svc.url).post(`/admin/endpoints/${endpointId}/rotate-secret`).set('cookie', cookie).type('form').send({ _csrf: csrf });
    expect(res.status).toBe(200);
    expect(res.headers['cache-control']).toBe('no-store');
    const secret = /id="secret"[^>]*>(whsec_[^<]+)</.exec(res.text)?.[1];
    expect(secret).toBeDefined();
    const row = await svc.core.prisma.webhookEndpoint.findUnique({ where: { id: endpointId } });
    expect(row!.previousSecretExpiresAt!.getTime()).toBeGreaterThan(Date.now() + 23 * 3_600_000);
    expect(await auditActions(`console:${adminKey.id}`)).toContainEqual(expect.objectContaining({ action: 'webhook_endpoint.secret_rotated', targetId: endpointId }));
    expect(svc.logs.join('\n')).not.toContain(secret!);
    // Not in any audit entry either.
    const all = await svc.core.prisma.auditEntry.findMany();
    expect(JSON.stringify(all, (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v))).not.toContain(secret!);
  });

  it('has no way to break-glass: no console route, and the command is not run from the console', async () => {
    const { cookie, csrf } = await signIn();
    for (const path of ['/admin/break-glass', `/admin/mailboxes/${mailbox.id}/break-glass`, '/admin/ops/breakGlass.open']) {
      expect((await request(svc.url).post(path).set('cookie', cookie).type('form').send({ _csrf: csrf })).status, path).toBe(404);
    }
    const page = await request(svc.url).get(`/admin/mailboxes/${mailbox.id}`).set('cookie', cookie);
    expect(page.text.toLowerCase()).not.toContain('break-glass');
    expect(await svc.core.prisma.breakGlassSession.count()).toBe(0);
  });

  it('revoke needs a reason, then starts the purge through mailboxes.revoke, audited, and shows the receipt', async () => {
    const { cookie, csrf } = await signIn();
    const form = await request(svc.url).get(`/admin/mailboxes/${mailbox.id}/revoke`).set('cookie', cookie);
    expect(form.text).toContain('<label for="reason">');
    const short = await request(svc.url).post(`/admin/mailboxes/${mailbox.id}/revoke`).set('cookie', cookie).type('form').send({ _csrf: csrf, reason: 'x' });
    expect(short.status).toBe(400);
    expect(short.text).toContain('aria-invalid="true"');
    expect((await svc.core.prisma.mailbox.findUnique({ where: { id: mailbox.id } }))!.status).toBe('active');

    const res = await request(svc.url).post(`/admin/mailboxes/${mailbox.id}/revoke`).set('cookie', cookie).type('form').send({ _csrf: csrf, reason: 'ticket OPS-42: customer asked' });
    expect(res.status).toBe(303);
    expect(res.headers.location).toBe(`/admin/mailboxes/${mailbox.id}?notice=revoked`);
    const receipt = await svc.core.prisma.purgeReceipt.findFirst({ where: { mailboxId: mailbox.id } });
    expect(receipt).toMatchObject({ trigger: 'ops', reason: 'ticket OPS-42: customer asked' });
    const audit = await auditActions(`console:${adminKey.id}`);
    expect(audit).toContainEqual(expect.objectContaining({ action: 'ops.command', metadata: { command: 'mailboxes.revoke', outcome: 'ok' } }));
    const page = await request(svc.url).get(res.headers.location as string).set('cookie', cookie);
    expect(page.text).toContain(receipt!.id);
    expect(page.text).toContain('ticket OPS-42: customer asked');
  });
});

describe('ops console behind an https PUBLIC_URL', () => {
  let https: TestService;
  beforeAll(async () => {
    https = await startTestService({ workers: false, env: { PUBLIC_URL: 'https://connector.example.com' } });
  }, 120_000);
  afterAll(async () => {
    await https?.close();
  });

  it('marks the session cookie Secure and refuses a POST from an origin other than PUBLIC_URL', async () => {
    const issued = await https.core.apiKeys.issue({ admin: true });
    const res = await request(https.url).post('/admin/login').set('origin', 'https://connector.example.com').type('form').send({ apiKey: issued.key });
    expect(res.status).toBe(303);
    const cookie = (res.headers['set-cookie'] as unknown as string[])[0]!;
    expect(cookie).toMatch(/; Secure/i);
    expect(cookie).toMatch(/; HttpOnly/i);
    expect(cookie).toMatch(/; SameSite=Strict/i);
    const refused = await request(https.url).post('/admin/login').set('origin', 'https://elsewhere.example').type('form').send({ apiKey: issued.key });
    expect(refused.status).toBe(403);
    expect(refused.headers['set-cookie']).toBeUndefined();
  });

  it('answers 429 after ten failed sign-ins from one address, even to a valid key', async () => {
    // (This service's own limiter: the other tests' sign-ins are counted by theirs.)
    const statuses: number[] = [];
    for (let i = 0; i < 11; i++) statuses.push((await request(https.url).post('/admin/login').type('form').send({ apiKey: `mbc_admin_guess${i}` })).status);
    expect(statuses.slice(0, 9).every((s) => s === 401)).toBe(true);
    expect(statuses[10]).toBe(429);
    const issued = await https.core.apiKeys.issue({ admin: true });
    const blocked = await request(https.url).post('/admin/login').type('form').send({ apiKey: issued.key });
    expect(blocked.status).toBe(429);
    expect(blocked.text).toContain('Too many failed sign-ins');
  });
});

describe('ops console: sync history', () => {
  it('shows how each sync job ended, as the job queue recorded it (outcome, reason, counts, attempt)', async () => {
    const m = await seedMailbox(svc.core, tenant.tenantId);
    // The real queue and its outcome recording, with a stand-in for the sync itself: the first run
    // ends `done` with counts, the second `failed` with its fixed reason.
    let runs = 0;
    svc.core.jobs.register('sync.mailbox', async ({ mailboxId }) => {
      if (mailboxId !== m.id) return { status: 'skipped', reason: 'not this test’s mailbox' };
      runs++;
      return runs === 1 ? { status: 'done', detail: { mode: 'incremental', stored: 2, subject: 'never kept' } } : { status: 'failed', reason: 'authorization revoked' };
    });
    await svc.core.jobs.startWorkers();
    const { cookie, csrf } = await signIn();
    const history = async (): Promise<string> => {
      const page = await request(svc.url).get(`/admin/mailboxes/${m.id}`).set('cookie', cookie);
      const html = page.text;
      return html.slice(html.indexOf('<h2>Sync history</h2>'), html.indexOf('<h2>Recent errors</h2>'));
    };
    await request(svc.url).post(`/admin/mailboxes/${m.id}/resync`).set('cookie', cookie).type('form').send({ _csrf: csrf });
    await expect.poll(history, { timeout: 20_000 }).toMatch(/status-ok">done<\/span>/);
    expect(await history()).toContain('stored 2');
    expect(await history()).not.toContain('never kept');
    await request(svc.url).post(`/admin/mailboxes/${m.id}/resync`).set('cookie', cookie).type('form').send({ _csrf: csrf });
    await expect.poll(history, { timeout: 20_000 }).toContain('authorization revoked');
    const page = await request(svc.url).get(`/admin/mailboxes/${m.id}`).set('cookie', cookie);
    const errors = page.text.slice(page.text.indexOf('<h2>Recent errors</h2>'));
    expect(errors).toContain('authorization revoked');
  }, 60_000);
});
