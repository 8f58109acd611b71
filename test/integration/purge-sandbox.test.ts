// End to end on the in-process stand-ins (SANDBOX=1) with every room running: connect a Gmail
// and a Microsoft 365 mailbox through the hosted connect flow, let sync set up the Gmail watch
// and the Graph subscription, then disconnect both and look at what the providers saw.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestService, type TestService } from '../helpers/test-service.js';
import { access, connectMailbox, mailboxRows } from './connect-helpers.js';
import { waitFor } from './purge-seed.fixture.js';

let svc: TestService;

beforeAll(async () => {
  svc = await startTestService({ env: { SANDBOX: '1' } });
}, 90_000);
afterAll(async () => svc?.close());

async function connected(apiKey: string, provider: 'google' | 'microsoft', email: string) {
  const { result } = await connectMailbox(svc, apiKey, provider, email);
  expect(result.status, result.html.slice(0, 200)).toBeLessThan(400);
  const [row] = await mailboxRows(svc, { provider });
  expect(row).toBeDefined();
  return row!;
}

describe('disconnect against the provider stand-ins', () => {
  it('stops the Gmail watch and revokes the Google grant; deletes the Graph subscription and reports Microsoft revocation as not supported', async () => {
    const { settings } = await access(svc);
    const google = settings.sandbox.google!;
    const microsoft = settings.sandbox.microsoft!;
    const t = await svc.createTenant();

    const g = await connected(t.apiKey, 'google', 'gina@example.com');
    const m = await connected(t.apiKey, 'microsoft', 'max@contoso.example');
    // Sync sets up push for each mailbox after connect.
    await waitFor(async () => google.watches().some((w) => w.email === 'gina@example.com' && w.active), 45_000, 'gmail watch');
    await waitFor(async () => microsoft.subscriptions().some((s) => s.email === 'max@contoso.example' && !s.deleted), 45_000, 'graph subscription');

    const gp = (await svc.api(t.apiKey, 'DELETE', `/v1/mailboxes/${g.id}`)).body.purgeId as string;
    const mp = (await svc.api(t.apiKey, 'DELETE', `/v1/mailboxes/${m.id}`)).body.purgeId as string;
    const done = async (id: string) =>
      waitFor(async () => {
        const r = (await svc.api(t.apiKey, 'GET', `/v1/purges/${id}`)).body;
        return r?.status === 'completed' ? r : undefined;
      }, 45_000, `purge ${id}`);
    const gr = await done(gp);
    const mr = await done(mp);

    expect(gr).toMatchObject({ revoke: { status: 'revoked' }, counts: { watch: 'stopped' } });
    expect(google.watches().find((w) => w.email === 'gina@example.com')).toMatchObject({ active: false });
    expect(google.revokedTokens().some((r) => r.email === 'gina@example.com' && r.kind === 'refresh')).toBe(true);

    expect(mr).toMatchObject({ revoke: { status: 'not_supported' }, counts: { watch: 'stopped' } });
    const subs = microsoft.subscriptions().filter((s) => s.email === 'max@contoso.example');
    expect(subs.length).toBeGreaterThan(0);
    expect(subs.every((s) => s.deleted && s.removedBy === 'client')).toBe(true);

    expect(await svc.core.prisma.mailbox.count({ where: { id: { in: [g.id, m.id] } } })).toBe(0);
    expect([...(await svc.core.keyStore.ownersWithKeys('mailbox', [g.id, m.id]))]).toEqual([]);
  }, 150_000);
});
