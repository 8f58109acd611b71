import { randomBytes } from 'node:crypto';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { productionFormActionOrigins } from '../../src/bootstrap/service.js';
import { loadConfig } from '../../src/config/config.js';
import { generateToken } from '../../src/crypto/secret-compare.js';
import { createAbuseLimits } from '../../src/http/abuse-limits.js';
import { UnauthorizedError } from '../../src/http/api-error.js';
import { createApp } from '../../src/http/app.js';
import { createRouteRegistry } from '../../src/http/route-registry.js';
import { createLogger } from '../../src/observability/logger.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { createTestDatabase } from '../helpers/postgres.js';
import { postgresTemplateName } from '../helpers/postgres-template.js';
import { missing } from '../helpers/requirements.js';
import { freePort, startTestService, testEncryptionKeys, type TestService } from '../helpers/test-service.js';

const badKey = (): string => generateToken('mbc_live_');
const get = (url: string, headers: Record<string, string> = {}) => fetch(url, { headers });

describe('abuse limits: failed authentications', () => {
  let svc: TestService;
  beforeAll(async () => {
    svc = await startTestService({ workers: false });
  }, 120_000);
  afterAll(async () => svc?.close());

  it('answers 300 bad API keys from one address with 401 up to the limit (100 / 15 min), then 429 with Retry-After and RateLimit headers in the error format', async () => {
    const statuses: number[] = [];
    let first429: Response | undefined;
    for (let i = 0; i < 300; i++) {
      const res = await get(`${svc.url}/v1/mailboxes`, { authorization: `Bearer ${badKey()}`, 'x-forwarded-for': '203.0.113.7' });
      statuses.push(res.status);
      if (res.status === 429 && !first429) first429 = res;
      else await res.body?.cancel();
    }
    expect(statuses.slice(0, 100).every((s) => s === 401)).toBe(true);
    expect(statuses.slice(100).every((s) => s === 429)).toBe(true);
    const retryAfter = Number(first429!.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThan(800);
    expect(retryAfter).toBeLessThanOrEqual(900);
    expect(first429!.headers.get('ratelimit-policy')).toContain('q=100; w=900');
    const body = (await first429!.json()) as { error: { code: string; message: string; requestId: string; details: { retryAfterSeconds: number } } };
    expect(body.error).toMatchObject({ code: 'rate_limited', requestId: expect.any(String), details: { retryAfterSeconds: retryAfter } });
    // Another address with a valid key is not affected; the limited address is, valid key included.
    const { apiKey } = await svc.createTenant();
    expect((await svc.api(apiKey, 'GET', '/v1/mailboxes', undefined, { 'x-forwarded-for': '198.51.100.9' })).status).toBe(200);
    expect((await svc.api(apiKey, 'GET', '/v1/mailboxes', undefined, { 'x-forwarded-for': '203.0.113.7' })).status).toBe(429);
  }, 120_000);

  it('counts failures per API-key prefix across addresses, and successful requests do not count', async () => {
    const { apiKey } = await svc.createTenant();
    // 150 good requests: none counts, and none writes a counter (a read each).
    for (let i = 0; i < 150; i++) expect((await svc.api(apiKey, 'GET', '/v1/mailboxes', undefined, { 'x-forwarded-for': '192.0.2.200' })).status).toBe(200);
    const prefix = apiKey.slice(0, 'mbc_live_'.length + 6);
    const counters = await svc.core.prisma.rateLimitHit.findMany({ where: { key: { in: ['auth_ip:192.0.2.200', `auth_key:${prefix}`] } } });
    expect(counters).toEqual([]);
    const statuses: number[] = [];
    for (let i = 0; i < 101; i++) {
      // Every attempt from its own address, all with the victim key's public prefix.
      const res = await get(`${svc.url}/v1/mailboxes`, { authorization: `Bearer ${prefix}${randomBytes(20).toString('hex')}`, 'x-forwarded-for': `192.0.2.${i}` });
      statuses.push(res.status);
      await res.body?.cancel();
    }
    expect(statuses.slice(0, 100).every((s) => s === 401)).toBe(true);
    expect(statuses[100]).toBe(429);
  }, 120_000);

  it('checks a request with one statement for both counters, and writes a failure to both in one', async () => {
    // The limits on a bare app over the service's database, every statement counted.
    const statements: string[] = [];
    const sql = { ...svc.core.db.sql, query: ((text: string, values?: unknown[]) => (statements.push(text), svc.core.db.sql.query(text, values))) as typeof svc.core.db.sql.query };
    const limits = createAbuseLimits({ sql, settings: { ...svc.config.abuse.limits, authFailures: { limit: 5, windowMs: 60_000 } } });
    const app = express();
    app.set('trust proxy', 'loopback');
    app.use(...limits.authFailures);
    app.get('/v1/thing', (req, _res, next) => (req.header('authorization') === 'Bearer mbc_live_good00good' ? _res.json({ ok: true }) : next(new UnauthorizedError('bad key'))));
    app.use(limits.authFailureRecorder);
    app.use(((err, _req, res, _next) => res.status((err as { status?: number }).status ?? 500).json({ retryAfter: res.getHeader('retry-after') ?? null })) as express.ErrorRequestHandler);
    const server = app.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    const url = `http://127.0.0.1:${(server.address() as { port: number }).port}/v1/thing`;
    const call = async (key: string, ip: string): Promise<number> => {
      const res = await fetch(url, { headers: { authorization: `Bearer ${key}`, 'x-forwarded-for': ip } });
      await res.body?.cancel();
      return res.status;
    };
    try {
      expect(await call('mbc_live_good00good', '198.18.0.50')).toBe(200);
      expect(statements).toHaveLength(1); // the check: both counters in one read, nothing written
      statements.length = 0;
      expect(await call('mbc_live_bad000xyz', '198.18.0.51')).toBe(401);
      expect(statements).toHaveLength(2); // the check, then the failure on both counters
      const rows = await svc.core.prisma.rateLimitHit.findMany({ where: { key: { in: ['auth_ip:198.18.0.51', 'auth_key:mbc_live_bad000'] } }, orderBy: { key: 'asc' } });
      expect(rows.map((r) => [r.key, r.hits])).toEqual([['auth_ip:198.18.0.51', 1], ['auth_key:mbc_live_bad000', 1]]);
      // Either counter at the limit refuses: the address (other prefixes) …
      for (let i = 0; i < 4; i++) expect(await call(`mbc_live_ip${i}aaaxyz`, '198.18.0.51')).toBe(401);
      expect(await call('mbc_live_good00good', '198.18.0.51')).toBe(429);
      // … and the prefix (other addresses), while the good key from elsewhere is served.
      for (let i = 0; i < 4; i++) expect(await call('mbc_live_bad000xyz', `198.18.0.${60 + i}`)).toBe(401);
      expect(await call('mbc_live_bad000other', '198.18.0.70')).toBe(429);
      expect(await call('mbc_live_good00good', '198.18.0.70')).toBe(200);
    } finally {
      await new Promise((r) => server.close(r));
    }
  });
});

describe('abuse limits: connect sessions, forged OAuth callbacks, forged pushes', () => {
  let svc: TestService;
  beforeAll(async () => {
    svc = await startTestService({ workers: false, env: { RATE_LIMIT_CONNECT_SESSIONS: '5/15m', RATE_LIMIT_OAUTH_CALLBACKS: '20/15m', RATE_LIMIT_PUSH: '10/1m' } });
  }, 120_000);
  afterAll(async () => svc?.close());

  it('limits connect-session creation per API key', async () => {
    const { apiKey } = await svc.createTenant({ allowedReturnOrigins: ['https://helpdesk.example'] });
    const statuses: number[] = [];
    for (let i = 0; i < 7; i++) statuses.push((await svc.api(apiKey, 'POST', '/v1/connect-sessions', { returnUrl: 'https://helpdesk.example/back' }, { 'x-forwarded-for': `198.51.100.${i}` })).status);
    expect(statuses.slice(0, 5).every((s) => s !== 429)).toBe(true);
    expect(statuses.slice(5)).toEqual([429, 429]);
  });

  it('limits forged OAuth callbacks per address: 20 processed, the rest 429', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 100; i++) {
      const res = await get(`${svc.url}/oauth/google/callback?state=forged${i}&code=x${i}`, { 'x-forwarded-for': '203.0.113.50' });
      statuses.push(res.status);
      await res.body?.cancel();
    }
    expect(statuses.slice(0, 20).every((s) => s !== 429)).toBe(true);
    expect(statuses.slice(20).every((s) => s === 429)).toBe(true);
  });

  it('limits the Microsoft admin page and forged admin-consent redirects per address, in the callbacks’ budget', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 24; i++) {
      const url = i % 2 === 0 ? `${svc.url}/organization-install/microsoft?state=forged${i}` : `${svc.url}/oauth/microsoft/admin-consent?state=forged${i}&admin_consent=True&tenant=t${i}`;
      const res = await get(url, { 'x-forwarded-for': '203.0.113.70' });
      statuses.push(res.status);
      await res.body?.cancel();
    }
    expect(statuses.slice(0, 20).every((s) => s !== 429)).toBe(true);
    expect(statuses.slice(20)).toEqual([429, 429, 429, 429]);
  });

  it('limits forged pushes per address', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 12; i++) {
      const res = await fetch(`${svc.url}/push/google`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-forwarded-for': '203.0.113.60' }, body: '{}' });
      statuses.push(res.status);
      await res.body?.cancel();
    }
    expect(statuses.slice(0, 10).every((s) => s !== 429)).toBe(true);
    expect(statuses.slice(10)).toEqual([429, 429]);
  });

  it('believes X-Forwarded-For only from the configured proxies (TRUST_PROXY=false: the socket address)', async () => {
    const strict = await startTestService({ workers: false, env: { RATE_LIMIT_PUSH: '3/1m', TRUST_PROXY: 'false' } });
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 4; i++) {
        // Different forged addresses, one real client: one bucket.
        const res = await fetch(`${strict.url}/push/google`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-forwarded-for': `203.0.113.${i}` }, body: '{}' });
        statuses.push(res.status);
        await res.body?.cancel();
      }
      expect(statuses[3]).toBe(429);
    } finally {
      await strict.close();
    }
  }, 120_000);
});

describe('abuse limits across processes', () => {
  if (missing('Postgres', process.env.DATABASE_URL ? null : 'DATABASE_URL is not set (two processes need a shared Postgres)')) return;
  it('two service processes on one database share the limit', async () => {
    const db = await createTestDatabase({ template: postgresTemplateName() });
    // Two processes of one deployment: the same database and the same keys.
    const encryptionKeys = testEncryptionKeys();
    const env = { RATE_LIMIT_AUTH_FAILURES: '10/15m', AUDIT_HMAC_KEYS: testEncryptionKeys() };
    const a = await startTestService({ workers: false, databaseUrl: db.url, encryptionKeys, env });
    const b = await startTestService({ workers: false, databaseUrl: db.url, encryptionKeys, env });
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 12; i++) {
        const svc = i % 2 === 0 ? a : b;
        const res = await get(`${svc.url}/v1/mailboxes`, { authorization: `Bearer ${badKey()}`, 'x-forwarded-for': '203.0.113.99' });
        statuses.push(res.status);
        await res.body?.cancel();
      }
      // 10 failures in total (5 on each) exhaust the shared limit; both processes then answer 429.
      expect(statuses.slice(0, 10).every((s) => s === 401)).toBe(true);
      expect(statuses.slice(10)).toEqual([429, 429]);
    } finally {
      await a.close();
      await b.close();
      await db.drop();
    }
  }, 180_000);
});

describe('/metrics protection', () => {
  it('METRICS_TOKEN: /metrics answers 401 without the bearer token, 200 with it', async () => {
    const token = randomBytes(24).toString('base64url');
    const svc = await startTestService({ workers: false, env: { METRICS_TOKEN: token } });
    try {
      const none = await get(`${svc.url}/metrics`);
      expect(none.status).toBe(401);
      expect(await none.text()).not.toContain('mbc_http_request_duration_seconds');
      expect((await get(`${svc.url}/metrics`, { authorization: 'Bearer wrong-token-wrong-token-wrong' })).status).toBe(401);
      const ok = await get(`${svc.url}/metrics`, { authorization: `Bearer ${token}` });
      expect(ok.status).toBe(200);
      expect(await ok.text()).toContain('mbc_http_request_duration_seconds');
    } finally {
      await svc.close();
    }
  }, 120_000);

  it('METRICS_PORT: /metrics is served on its own port only', async () => {
    const metricsPort = await freePort();
    const svc = await startTestService({ workers: false, env: { METRICS_PORT: String(metricsPort), HOST: '127.0.0.1' } });
    try {
      expect((await get(`${svc.url}/metrics`)).status).toBe(404);
      const ok = await get(`http://127.0.0.1:${metricsPort}/metrics`);
      expect(ok.status).toBe(200);
      expect(await ok.text()).toContain('mbc_http_request_duration_seconds');
    } finally {
      await svc.close();
    }
  }, 120_000);

  it('refuses a METRICS_TOKEN shorter than 24 characters, naming the variable', () => {
    expect(() => loadConfig({ METRICS_TOKEN: 'short' })).toThrow(/METRICS_TOKEN/);
    expect(() => loadConfig({ RATE_LIMIT_PUSH: '10 per minute' })).toThrow(/RATE_LIMIT_PUSH.*<count>\/<window>/);
    expect(() => loadConfig({ TRUST_PROXY: 'everyone' })).toThrow(/TRUST_PROXY/);
  });
});

describe('CSP form-action', () => {
  const cspOf = async (formActionOrigins: string[] | undefined): Promise<string> => {
    const app = createApp({
      logger: createLogger({ level: 'silent' }),
      metrics: createMetrics({ collectDefaults: false }),
      routes: createRouteRegistry(),
      authenticate: () => Promise.reject(new Error('no auth in this test')),
      readiness: [],
      bodyLimit: '1mb',
      version: 'test',
      publicUrl: 'https://connector.example',
      formActionOrigins,
    });
    const server = app.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    try {
      const { port } = server.address() as { port: number };
      const res = await fetch(`http://127.0.0.1:${port}/healthz`);
      return res.headers.get('content-security-policy') ?? '';
    } finally {
      server.close();
    }
  };

  it('in production allows only the public origin and the providers’ sign-in origins, no loopback', async () => {
    const config = loadConfig({
      NODE_ENV: 'production',
      DATABASE_URL: 'postgresql://root@127.0.0.1:5432/unused',
      PUBLIC_URL: 'https://connector.example',
      ENCRYPTION_KEYS: testEncryptionKeys(),
      AUDIT_HMAC_KEYS: `1:${randomBytes(32).toString('base64')}`,
      MICROSOFT_AUTHORITY_HOST: 'login.microsoftonline.us',
      MICROSOFT_GRAPH_HOST: 'graph.microsoft.us',
    });
    const csp = await cspOf(productionFormActionOrigins(config));
    const formAction = /form-action ([^;]*)/.exec(csp)![1]!.trim().split(/\s+/);
    expect(formAction.sort()).toEqual(["'self'", 'https://accounts.google.com', 'https://connector.example', 'https://login.microsoftonline.us'].sort());
    expect(csp).not.toContain('127.0.0.1');
    expect(csp).not.toContain('localhost');
  });

  it('in development keeps the loopback stand-ins', async () => {
    expect(productionFormActionOrigins(loadConfig({ SANDBOX: '1' }))).toBeUndefined();
    const csp = await cspOf(undefined);
    expect(csp).toContain('http://127.0.0.1:*');
  });
});
