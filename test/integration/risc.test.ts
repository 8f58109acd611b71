// Google Cross-Account Protection: a verified security event token moves the matching Google
// mailboxes to reauth_required at once; anything not signed by the issuer's key is rejected.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lifecycleModule } from '../../src/bootstrap/lifecycle.module.js';
import { tenancyModule } from '../../src/bootstrap/tenancy.module.js';
import { createSigningKey, signJwt, type SigningKey } from '../../src/sandbox/google/google-signing-key.js';
import { startTestService, type TestService } from '../helpers/test-service.js';
import { seedMailbox } from './purge-seed.fixture.js';

const CLIENT_ID = 'risc-test.apps.googleusercontent.com';
const TOKENS_REVOKED = 'https://schemas.openid.net/secevent/oauth/event-type/tokens-revoked';
const ACCOUNT_DISABLED = 'https://schemas.openid.net/secevent/risc/event-type/account-disabled';
const VERIFICATION = 'https://schemas.openid.net/secevent/risc/event-type/verification';

let svc: TestService;
let jwks: Server;
let key: SigningKey;
let jti = 0;

beforeAll(async () => {
  key = await createSigningKey();
  // Google's published keys, as the issuer serves them (JWKS).
  jwks = createServer((_req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ keys: [key.jwk] }));
  });
  await new Promise<void>((resolve) => jwks.listen(0, '127.0.0.1', () => resolve()));
  const port = (jwks.address() as AddressInfo).port;
  svc = await startTestService({
    env: { GOOGLE_RISC_ENABLED: '1', GOOGLE_RISC_JWKS_URL: `http://127.0.0.1:${port}/jwks`, GOOGLE_CLIENT_ID: CLIENT_ID, GOOGLE_CLIENT_SECRET: 's' },
    modules: async (core, services) => [tenancyModule(core), lifecycleModule(core, services)],
  });
}, 60_000);
afterAll(async () => {
  await svc?.close();
  await new Promise<void>((resolve) => jwks?.close(() => resolve()));
});

function set(events: Record<string, unknown>, opts: { aud?: string; signer?: SigningKey; iss?: string } = {}): string {
  return signJwt(opts.signer ?? key, { iss: opts.iss ?? 'https://accounts.google.com/', aud: opts.aud ?? CLIENT_ID, iat: Math.floor(Date.now() / 1000), jti: `jti-${++jti}`, events }, 'secevent+jwt');
}

async function post(jwt: string) {
  const res = await fetch(`${svc.url}/risc/google`, { method: 'POST', headers: { 'content-type': 'application/secevent+jwt' }, body: jwt });
  return { status: res.status, body: res.status === 202 ? undefined : ((await res.json()) as { err: string }) };
}

const status = async (id: string) => (await svc.core.prisma.mailbox.findUniqueOrThrow({ where: { id } })).status;

describe('RISC receiver', () => {
  it('a signed tokens-revoked event moves every matching Google mailbox to reauth_required and notifies the tenants', async () => {
    const t1 = await svc.createTenant();
    const t2 = await svc.createTenant();
    const g1 = await seedMailbox(svc.core, { tenantId: t1.tenantId, address: 'Pat@Example.com' });
    const g2 = await seedMailbox(svc.core, { tenantId: t2.tenantId, address: 'pat@example.com' });
    const ms = await seedMailbox(svc.core, { tenantId: t1.tenantId, provider: 'microsoft', address: 'pat@example.com' });
    const bystander = await seedMailbox(svc.core, { tenantId: t1.tenantId, address: 'sam@example.com' });

    expect((await post(set({ [TOKENS_REVOKED]: { subject: { subject_type: 'email', email: 'pat@example.com' } } }))).status).toBe(202);
    expect(await status(g1.mailboxId)).toBe('reauth_required');
    expect(await status(g2.mailboxId)).toBe('reauth_required');
    expect(await status(ms.mailboxId)).toBe('active');
    expect(await status(bystander.mailboxId)).toBe('active');
    const row = await svc.core.prisma.mailbox.findUniqueOrThrow({ where: { id: g1.mailboxId } });
    expect(row.statusReason).toBe('risc:tokens-revoked');
    expect(row.reauthRequiredAt).not.toBeNull();
    for (const m of [g1, g2]) {
      expect(await svc.core.prisma.outboxEvent.count({ where: { mailboxId: m.mailboxId, type: 'mailbox.reauth_required' } })).toBe(1);
      expect(await svc.core.prisma.auditEntry.count({ where: { targetId: m.mailboxId, action: 'mailbox.reauth_required', actorId: 'risc' } })).toBe(1);
    }
    // A repeat (Google retries) changes nothing more.
    expect((await post(set({ [ACCOUNT_DISABLED]: { subject: { subject_type: 'email', email: 'pat@example.com' }, reason: 'hijacking' } }))).status).toBe(202);
    expect(await svc.core.prisma.outboxEvent.count({ where: { mailboxId: g1.mailboxId, type: 'mailbox.reauth_required' } })).toBe(1);
  });

  it('rejects tokens not signed by the issuer, for another audience or issuer; acknowledges events it cannot match', async () => {
    const t = await svc.createTenant();
    const m = await seedMailbox(svc.core, { tenantId: t.tenantId, address: 'lee@example.com' });
    const event = { [TOKENS_REVOKED]: { subject: { subject_type: 'email', email: 'lee@example.com' } } };

    const forged = await post(set(event, { signer: await createSigningKey() }));
    expect(forged.status).toBe(400);
    const tampered = set(event).split('.');
    const otherPayload = Buffer.from(JSON.stringify({ iss: 'https://accounts.google.com/', aud: CLIENT_ID, iat: Math.floor(Date.now() / 1000), jti: 'x', events: event })).toString('base64url');
    expect((await post(`${tampered[0]}.${otherPayload}.${tampered[2]}`)).body).toEqual({ err: 'authentication_failed', description: expect.any(String) });
    expect((await post(set(event, { aud: 'someone-else.apps.googleusercontent.com' }))).body?.err).toBe('invalid_audience');
    expect((await post(set(event, { iss: 'https://evil.example/' }))).body?.err).toBe('invalid_issuer');
    expect((await post('not-a-jwt')).status).toBe(400);
    expect(await status(m.mailboxId)).toBe('active');

    // iss-sub subjects cannot be matched (no Google sub is stored) and verification pings carry none.
    expect((await post(set({ [TOKENS_REVOKED]: { subject: { subject_type: 'iss-sub', iss: 'https://accounts.google.com/', sub: '1234567890' } } }))).status).toBe(202);
    expect((await post(set({ [VERIFICATION]: { state: 'abc' } }))).status).toBe(202);
    expect(await status(m.mailboxId)).toBe('active');
  });
});
