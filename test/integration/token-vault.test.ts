// The token vault against the real stand-ins: credentials at rest, one refresh per mailbox,
// transient failures, revoked grants → reauth_required (one event), and reconnect.
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GoogleDelegatedCredential } from '../../src/providers/google/google-grant.js';
import type { MicrosoftDelegatedCredential } from '../../src/providers/microsoft/microsoft-grant.js';
import { isProviderError } from '../../src/providers/provider-error.js';
import { startGoogleSandbox, type GoogleSandbox } from '../../src/sandbox/google/google-sandbox.server.js';
import { startTestService, type TestService } from '../helpers/test-service.js';
import { access, connectMailbox, eventsOf } from './connect-helpers.js';

const RETURN_ORIGIN = 'https://helpdesk.example.com';

/** A reverse proxy in front of the Google stand-in that counts (and can fail) token refreshes. */
interface TokenProxy {
  url: string;
  refreshCalls: number;
  failNextRefreshes: number;
  close(): Promise<void>;
}

async function startTokenProxy(target: string): Promise<TokenProxy> {
  const t = new URL(target);
  const state = { refreshCalls: 0, failNextRefreshes: 0 };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      if (req.method === 'POST' && req.url?.startsWith('/token') && new URLSearchParams(body.toString()).get('grant_type') === 'refresh_token') {
        state.refreshCalls++;
        if (state.failNextRefreshes > 0) {
          state.failNextRefreshes--;
          res.writeHead(503, { 'content-type': 'application/json' }).end('{"error":"backend_error"}');
          return;
        }
      }
      const headers = { ...req.headers, host: t.host, 'content-length': String(body.length) };
      const up = request({ host: t.hostname, port: t.port, method: req.method, path: req.url, headers }, (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers);
        r.pipe(res);
      });
      up.on('error', () => res.writeHead(502).end());
      up.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    get refreshCalls() {
      return state.refreshCalls;
    },
    set refreshCalls(v: number) {
      state.refreshCalls = v;
    },
    get failNextRefreshes() {
      return state.failNextRefreshes;
    },
    set failNextRefreshes(v: number) {
      state.failNextRefreshes = v;
    },
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

let google: GoogleSandbox;
let proxy: TokenProxy;
let svc: TestService;
let tenant: { tenantId: string; apiKey: string };

async function connect(provider: 'google' | 'microsoft', email: string): Promise<string> {
  const { result } = await connectMailbox(svc, tenant.apiKey, provider, email, { returnUrl: `${RETURN_ORIGIN}/done` });
  const back = new URL(result.location!);
  expect(back.searchParams.get('status')).toBe('connected');
  return back.searchParams.get('mailbox_id')!;
}

/** Every column of the row as raw text (bytea as hex and as latin1), to search for a secret. */
async function rowDump(mailboxId: string): Promise<string> {
  const { rows } = await svc.core.db.sql.query('SELECT * FROM mailboxes WHERE id = $1', [mailboxId]);
  return JSON.stringify(rows[0], (_k, v: unknown) => (v instanceof Uint8Array ? `${Buffer.from(v).toString('hex')}|${Buffer.from(v).toString('latin1')}|${Buffer.from(v).toString('base64')}` : v));
}

beforeAll(async () => {
  google = await startGoogleSandbox({ port: 0 });
  proxy = await startTokenProxy(google.url);
  svc = await startTestService({ env: { SANDBOX: '1', SANDBOX_GOOGLE_URL: proxy.url }, workers: false });
  tenant = await svc.createTenant({ name: 'vault', allowedReturnOrigins: [RETURN_ORIGIN] });
});
afterAll(async () => {
  await svc?.close();
  await proxy?.close();
  await google?.close();
});

describe('credentials at rest', () => {
  it('the Google refresh token is not readable in the database without the key', async () => {
    const id = await connect('google', 'rest@acme.test');
    const cred = await (await access(svc)).vault.credential(id);
    expect(cred?.credential).toMatchObject({ provider: 'google', kind: 'delegated' });
    const token = (cred!.credential as GoogleDelegatedCredential).refreshToken;
    expect(token.length).toBeGreaterThan(10);
    const dump = await rowDump(id);
    expect(dump).not.toContain(token);
    expect(dump).not.toContain(Buffer.from(token).toString('hex'));
    expect(dump).not.toContain(Buffer.from(token).toString('base64'));
    // Decrypting with another mailbox's context fails closed (the AAD names the row).
    const other = await connect('google', 'rest2@acme.test');
    const row = await svc.core.prisma.mailbox.findUniqueOrThrow({ where: { id } });
    await expect(svc.core.dataKeys.decryptFor({ type: 'mailbox', id: other }, row.credentialEnc!, { table: 'mailboxes', column: 'credentialEnc', rowId: other })).rejects.toThrow();
  });

  it('the MSAL cache (refresh token, account) is not readable in the database without the key', async () => {
    const id = await connect('microsoft', 'rest@contoso.test');
    const cred = await (await access(svc)).vault.credential(id);
    expect(cred?.credential).toMatchObject({ provider: 'microsoft', kind: 'delegated' });
    const cache = JSON.parse((cred!.credential as MicrosoftDelegatedCredential).msalCache) as { RefreshToken: Record<string, { secret: string }> };
    const refreshTokens = Object.values(cache.RefreshToken).map((r) => r.secret);
    expect(refreshTokens.length).toBe(1);
    const dump = await rowDump(id);
    for (const rt of refreshTokens) expect(dump).not.toContain(rt);
    expect(dump).not.toContain('rest@contoso.test');
    expect(cred!.accountId).toBeTruthy();
    expect(dump).not.toContain(cred!.accountId);
  });
});

describe('access tokens', () => {
  it('concurrent requests for one mailbox cause exactly one refresh at the token endpoint', async () => {
    const id = await connect('google', 'burst@acme.test');
    const a = await access(svc);
    a.vault.invalidate(id);
    proxy.refreshCalls = 0;
    const tokens = await Promise.all(Array.from({ length: 12 }, () => a.vault.accessToken(id)));
    expect(new Set(tokens).size).toBe(1);
    expect(proxy.refreshCalls).toBe(1);
    // Kept in memory afterwards.
    await a.vault.accessToken(id);
    expect(proxy.refreshCalls).toBe(1);
    // And it works on the Gmail API.
    expect(await a.providers.forMailbox({ id, provider: 'google' }).getAddress()).toBe('burst@acme.test');
  });

  it('a transient token-endpoint failure is retried with backoff and never flips the status', async () => {
    const id = await connect('google', 'flaky@acme.test');
    const a = await access(svc);
    a.vault.invalidate(id);
    proxy.refreshCalls = 0;
    proxy.failNextRefreshes = 2;
    await expect(a.vault.accessToken(id)).resolves.toMatch(/.+/);
    expect(proxy.refreshCalls).toBe(3);
    expect((await svc.core.prisma.mailbox.findUniqueOrThrow({ where: { id } })).status).toBe('active');

    a.vault.invalidate(id);
    proxy.refreshCalls = 0;
    proxy.failNextRefreshes = 100;
    const started = Date.now();
    const err = await a.vault.accessToken(id).catch((e: unknown) => e);
    proxy.failNextRefreshes = 0;
    expect(isProviderError(err, 'transient')).toBe(true);
    // The vault's attempt budget (4), with backoff between attempts; the library does not retry on its own.
    expect(proxy.refreshCalls, `took ${Date.now() - started} ms`).toBe(4);
    expect((await svc.core.prisma.mailbox.findUniqueOrThrow({ where: { id } })).status).toBe('active');
    expect(await eventsOf(svc, id, 'mailbox.reauth_required')).toHaveLength(0);
  }, 30_000);
});

describe('revoked grants and reconnect', () => {
  it('Google: a revoked grant turns the mailbox reauth_required with exactly one event; reconnect restores active with data kept', async () => {
    const id = await connect('google', 'revoked@acme.test');
    await svc.core.prisma.mailbox.update({ where: { id }, data: { syncCursor: { v: 1, provider: 'google', historyId: '7' } } });
    const a = await access(svc);
    google.revokeUserGrants('revoked@acme.test');
    a.vault.invalidate(id);
    const results = await Promise.allSettled(Array.from({ length: 5 }, () => a.vault.accessToken(id)));
    for (const r of results) {
      expect(r.status).toBe('rejected');
      expect(isProviderError((r as PromiseRejectedResult).reason, 'auth_revoked')).toBe(true);
    }
    // Later callers fail fast without another event.
    proxy.refreshCalls = 0;
    await expect(a.vault.accessToken(id)).rejects.toMatchObject({ kind: 'auth_revoked' });
    expect(proxy.refreshCalls).toBe(0);
    const row = await svc.core.prisma.mailbox.findUniqueOrThrow({ where: { id } });
    expect(row.status).toBe('reauth_required');
    expect(row.reauthRequiredAt).not.toBeNull();
    expect(row.statusReason).toMatch(/invalid_grant/);
    expect(await eventsOf(svc, id, 'mailbox.reauth_required')).toHaveLength(1);
    const api = await svc.api(tenant.apiKey, 'GET', `/v1/mailboxes/${id}`);
    expect(api.body.status).toBe('reauth_required');

    // The API offers a reconnect session; consenting again restores the same record.
    const re = await svc.api(tenant.apiKey, 'POST', `/v1/mailboxes/${id}/reconnect`, { returnUrl: `${RETURN_ORIGIN}/done` });
    expect(re.status).toBe(201);
    const { result } = await connectMailbox(svc, tenant.apiKey, 'google', 'revoked@acme.test', { mailboxId: id, returnUrl: `${RETURN_ORIGIN}/done` });
    expect(new URL(result.location!).searchParams.get('mailbox_id')).toBe(id);
    const after = await svc.core.prisma.mailbox.findUniqueOrThrow({ where: { id } });
    expect(after).toMatchObject({ status: 'active', statusReason: null, reauthRequiredAt: null, syncCursor: { v: 1, provider: 'google', historyId: '7' } });
    a.vault.invalidate(id);
    await expect(a.vault.accessToken(id)).resolves.toMatch(/.+/);
  });

  it('Microsoft: a revoked grant found after a 401 turns the mailbox reauth_required (one event); reconnect restores it', async () => {
    const id = await connect('microsoft', 'revoked@contoso.test');
    const a = await access(svc);
    const ms = a.settings.sandbox.microsoft!;
    expect(await a.vault.confirmAuthFailure(id)).toBe('grant_valid');
    ms.revokeGrants('revoked@contoso.test', { invalidateAccessTokens: true });
    const [first, second] = await Promise.all([a.vault.confirmAuthFailure(id), a.vault.confirmAuthFailure(id)]);
    expect([first, second]).toEqual(['reauth_required', 'reauth_required']);
    expect((await svc.core.prisma.mailbox.findUniqueOrThrow({ where: { id } })).status).toBe('reauth_required');
    expect(await eventsOf(svc, id, 'mailbox.reauth_required')).toHaveLength(1);

    const { result } = await connectMailbox(svc, tenant.apiKey, 'microsoft', 'revoked@contoso.test', { mailboxId: id, returnUrl: `${RETURN_ORIGIN}/done` });
    expect(new URL(result.location!).searchParams.get('status')).toBe('connected');
    expect((await svc.core.prisma.mailbox.findUniqueOrThrow({ where: { id } })).status).toBe('active');
    expect(await a.vault.confirmAuthFailure(id)).toBe('grant_valid');
    expect(await a.providers.forMailbox({ id, provider: 'microsoft' }).getAddress()).toBe('revoked@contoso.test');
  });

  it('a provider call rejected with a revoked token flags the mailbox through the factory (no caller bookkeeping)', async () => {
    const a = await access(svc);
    const gId = await connect('google', 'api401@acme.test');
    const mId = await connect('microsoft', 'api401@contoso.test');
    google.revokeUserGrants('api401@acme.test');
    a.settings.sandbox.microsoft!.revokeGrants('api401@contoso.test', { invalidateAccessTokens: true });
    for (const [id, provider] of [[gId, 'google'], [mId, 'microsoft']] as const) {
      // The vault still holds an access token from the connect; the provider refuses it.
      const err = await a.providers.forMailbox({ id, provider }).getAddress().catch((e: unknown) => e);
      expect(isProviderError(err, 'auth_revoked'), provider).toBe(true);
      expect((await svc.core.prisma.mailbox.findUniqueOrThrow({ where: { id } })).status, provider).toBe('reauth_required');
      expect(await eventsOf(svc, id, 'mailbox.reauth_required'), provider).toHaveLength(1);
    }
  });

  it('Microsoft: interaction_required on refresh is treated as a dead grant too', async () => {
    const id = await connect('microsoft', 'mfa@contoso.test');
    const a = await access(svc);
    a.settings.sandbox.microsoft!.setRefreshFailure('mfa@contoso.test', 'interaction_required');
    expect(await a.vault.confirmAuthFailure(id)).toBe('reauth_required');
    const row = await svc.core.prisma.mailbox.findUniqueOrThrow({ where: { id } });
    expect(row.statusReason).toMatch(/interaction_required/);
  });

  it('forget() erases the stored credential and the cached token', async () => {
    const id = await connect('google', 'forget@acme.test');
    const a = await access(svc);
    await a.vault.forget(id);
    expect(await a.vault.credential(id)).toBeNull();
    await expect(a.vault.accessToken(id)).rejects.toMatchObject({ kind: 'auth_revoked' });
  });
});
