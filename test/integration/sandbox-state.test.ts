// Stand-ins keep their users in memory while the database persists. Restarting `SANDBOX=1`, or
// switching to a run without it on the same data, must say once which mailboxes cannot work any
// more — `reauth_required` with reason `sandbox_reset` for grants a vanished stand-in issued, one
// clear line per mailbox whose provider is not configured — never a stack trace per job.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GoogleDelegatedCredential } from '../../src/providers/google/google-grant.js';
import { createTestDatabase, type TestDatabase } from '../helpers/postgres.js';
import { jobsSettled } from '../helpers/settled.js';
import { startTestService, testEncryptionKeys, type TestService, type TestServiceOptions } from '../helpers/test-service.js';
import { connectMailbox, eventsOf } from './connect-helpers.js';

const RETURN = 'https://helpdesk.example.com';
const keys = testEncryptionKeys();
let db: TestDatabase | undefined;
let dataDir: string | undefined;
let svc: TestService | undefined;
let apiKey: string;
const ids: Record<string, string> = {};

function start(opts: TestServiceOptions): Promise<TestService> {
  return startTestService({ ...opts, encryptionKeys: keys, ...(db ? { databaseUrl: db.url } : { dataDir: dataDir! }) });
}

async function connect(s: TestService, provider: 'google' | 'microsoft', email: string): Promise<string> {
  const { result } = await connectMailbox(s, apiKey, provider, email, { returnUrl: `${RETURN}/done` });
  const back = new URL(result.location!);
  expect(back.searchParams.get('status')).toBe('connected');
  return back.searchParams.get('mailbox_id')!;
}

async function mailbox(s: TestService, id: string): Promise<{ status: string; statusReason: string | null; sync: { state: string; error: string | null } }> {
  const res = await s.api(apiKey, 'GET', `/v1/mailboxes/${id}`);
  expect(res.status).toBe(200);
  return res.body;
}

async function until(what: string, fn: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

const stackLines = (s: TestService) => s.logs.filter((l) => l.includes('"stack"') || l.includes('    at '));

beforeAll(async () => {
  if (process.env.DATABASE_URL) db = await createTestDatabase();
  else dataDir = mkdtempSync(path.join(tmpdir(), 'mbc-sandbox-state-'));
  svc = await start({ env: { SANDBOX: '1' }, workers: false });
  apiKey = (await svc.createTenant({ allowedReturnOrigins: [RETURN] })).apiKey;
  ids.google = await connect(svc, 'google', 'old-g@acme.test');
  ids.microsoft = await connect(svc, 'microsoft', 'old-m@contoso.test');
  await svc.close();
  svc = undefined;
}, 120_000);
afterAll(async () => {
  await svc?.close();
  await db?.drop();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

describe('sandbox state after restarts', () => {
  it('SANDBOX=1 again: mailboxes of the previous stand-ins become reauth_required (sandbox_reset) with one log line; new ones work', async () => {
    svc = await start({ env: { SANDBOX: '1' }, workers: true });
    const s = svc;

    await until('both old mailboxes flagged', async () => (await mailbox(s, ids.google!)).status === 'reauth_required' && (await mailbox(s, ids.microsoft!)).status === 'reauth_required');
    for (const id of [ids.google!, ids.microsoft!]) {
      const m = await mailbox(s, id);
      expect(m.statusReason).toMatch(/^sandbox_reset: /);
      expect(await eventsOf(s, id, 'mailbox.reauth_required')).toHaveLength(1);
      // A manual sync is refused with the status instead of failing in a worker.
      const resync = await s.api(apiKey, 'POST', `/v1/mailboxes/${id}/resync`);
      expect(resync.body).toMatchObject({ queued: false, status: 'reauth_required' });
    }
    const summary = s.logs.filter((l) => l.includes('sandbox_reset'));
    expect(summary).toHaveLength(1);
    expect(summary[0]).toContain('"count":2');

    // Connected through this run's stand-ins: untouched, and the marker survives for the next run.
    ids.fresh = await connect(s, 'google', 'new-g@acme.test');
    // Its first sync (and whatever that queues) has run: a sandbox_reset would have happened by now.
    await jobsSettled(s.core, { key: ids.fresh });
    expect((await mailbox(s, ids.fresh)).status).toBe('active');

    // A mailbox whose grant was not issued by a stand-in (a real grant on this data) is left alone
    // by SANDBOX runs; it stands for "production data" in the next step.
    ids.real = await connect(s, 'google', 'real-g@acme.test');
    const access = s.services.access;
    const sealed = await access.vault.sealCredential(ids.real, { provider: 'google', kind: 'delegated', refreshToken: '1//0real-refresh-token-for-the-test' } as GoogleDelegatedCredential);
    await s.core.prisma.mailbox.update({ where: { id: ids.real }, data: { credentialEnc: Buffer.from(sealed.credentialEnc) } });
    expect(await access.vault.isSandboxGrant(ids.real)).toBe(false);
    expect(await access.vault.isSandboxGrant(ids.fresh)).toBe(true);
    expect(stackLines(s)).toEqual([]);
    await s.close();
    svc = undefined;
  }, 180_000);

  it('without SANDBOX and without provider configuration: stand-in grants are sandbox_reset, other mailboxes get one clear line and a sync error, no stack traces', async () => {
    svc = await start({ env: {}, workers: true });
    const s = svc;
    await until('the sandbox mailbox flagged', async () => (await mailbox(s, ids.fresh!)).status === 'reauth_required');
    expect((await mailbox(s, ids.fresh!)).statusReason).toMatch(/^sandbox_reset: /);

    await until('the real mailbox marked', async () => (await mailbox(s, ids.real!)).sync.state === 'error');
    const real = await mailbox(s, ids.real!);
    expect(real.status).toBe('active');
    expect(real.sync.error).toBe('provider_not_configured');
    const lines = s.logs.filter((l) => l.includes(ids.real!));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain('GOOGLE_CLIENT_ID');

    // A sync of it fails as an expected, permanent failure: a one-line warning, no retry storm, no stack.
    const resync = await s.api(apiKey, 'POST', `/v1/mailboxes/${ids.real}/resync`);
    expect(resync.body.queued).toBe(true);
    await until('the sync attempt logged', async () => s.logs.some((l) => l.includes(ids.real!) && l.includes('sync failed')));
    // No retry: nothing for this mailbox is running, due or scheduled for later (a retry would keep it busy until the timeout).
    await jobsSettled(s.core, { key: ids.real!, deferred: true });
    expect(s.logs.filter((l) => l.includes(ids.real!) && l.includes('sync failed'))).toHaveLength(1);
    expect(s.logs.some((l) => l.includes('ProviderNotConfiguredError') || l.includes('job threw'))).toBe(false);
    expect(stackLines(s)).toEqual([]);
  }, 180_000);
});
