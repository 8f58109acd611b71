// Microsoft send-as refusals across processes (issue 15 item 4): the worker that sees Exchange
// refuse a From (ErrorSendAsDenied) or rewrite an alias records it in send_from_refusals, and the
// API process — which never ran that send — answers 422 up front. Real MSAL + Graph client against
// the Graph stand-in, real database. On Postgres the worker is a second service on the same
// database (http off, workers on), as `npm start -- worker` runs; embedded (one PGlite, one
// process) it is a second send module instance on the same database whose send.outbound handler
// runs the job.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sendModule } from '../../src/bootstrap/send.module.js';
import { tenancyModule } from '../../src/bootstrap/tenancy.module.js';
import type { JobQueue } from '../../src/jobs/job-queue.js';
import { MAILBOX_ADDRESS_AAD } from '../../src/mailboxes/message-content.js';
import type { MailProvider } from '../../src/providers/mail-provider.port.js';
import { GraphAdapter } from '../../src/providers/microsoft/graph.adapter.js';
import { sandboxMicrosoftEndpoints } from '../../src/providers/microsoft/microsoft-endpoints.js';
import { startMicrosoftSandbox, type MicrosoftSandbox } from '../../src/sandbox/microsoft/microsoft-sandbox.js';
import { newId } from '../../src/storage/ids.js';
import { SendFromRefusalRepository } from '../../src/storage/send-from-refusal.repository.js';
import { createTestDatabase, type TestDatabase } from '../helpers/postgres.js';
import { postgresTemplateName } from '../helpers/postgres-template.js';
import { startTestService, testEncryptionKeys, type TestService } from '../helpers/test-service.js';
import { cleanScanner, outboundSettled } from '../helpers/outbound.js';
import { msalSignIn } from '../helpers/msal-sign-in.js';

const REDIRECT = 'http://127.0.0.1:7777/connect/microsoft/callback';
const GRAPH = 'https://graph.microsoft.com';
const OWN = [`${GRAPH}/Mail.Read`, `${GRAPH}/Mail.Send`, `${GRAPH}/User.Read`];
const SHARED = [...OWN, `${GRAPH}/Mail.Read.Shared`, `${GRAPH}/Mail.Send.Shared`];
const SUPPORT = 'support@contoso.test';

let sb: MicrosoftSandbox;
let db: TestDatabase | undefined;
/** The API process: HTTP only, no job workers. */
let api: TestService;
/** The worker process (Postgres) — or, embedded, the second send module's job handler. */
let worker: TestService | undefined;
let runJob: ((outboundId: string) => Promise<unknown>) | undefined;
let tenant: { tenantId: string; apiKey: string };
const tokens = new Map<string, string>();

async function providerFor(mailbox: { id: string; provider: 'google' | 'microsoft' }): Promise<MailProvider> {
  const token = tokens.get(mailbox.id);
  if (!token || mailbox.provider !== 'microsoft') throw new Error(`no sandbox token for ${mailbox.id}`);
  return new GraphAdapter({ endpoints: sandboxMicrosoftEndpoints(sb), accessToken: async () => token, runner: { maxRetries: 0 } });
}

beforeAll(async () => {
  sb = await startMicrosoftSandbox({ clients: [{ clientId: 'app-1', clientSecret: 's3cret', redirectUris: [REDIRECT] }] });
  sb.createSharedMailbox(SUPPORT, 'Contoso Support');
  // The API reads the shared table on every check (no in-process reuse) so the test needs no wait;
  // the reuse window itself is covered by send-as.directory.test.ts.
  const apiModules = { sendAs: { refusalCacheMs: 0 } };
  if (process.env.DATABASE_URL) {
    db = await createTestDatabase({ template: postgresTemplateName() });
    // Two processes of one deployment: the same database and the same keys.
    const encryptionKeys = testEncryptionKeys();
    const env = { AUDIT_HMAC_KEYS: testEncryptionKeys() };
    api = await startTestService({
      databaseUrl: db.url,
      encryptionKeys,
      env,
      workers: false,
      modules: async (core, services) => [tenancyModule(core), sendModule(core, services, { providers: providerFor, scanner: cleanScanner, ...apiModules })],
    });
    worker = await startTestService({
      databaseUrl: db.url,
      encryptionKeys,
      env,
      http: false,
      modules: async (core, services) => [sendModule(core, services, { providers: providerFor, scanner: cleanScanner, sender: { baseDelayMs: 50, maxDelayMs: 500 } })],
    });
  } else {
    api = await startTestService({
      workers: false,
      modules: async (core, services) => [tenancyModule(core), sendModule(core, services, { providers: providerFor, scanner: cleanScanner, ...apiModules })],
    });
    // A second send module on the same database: its own SendAsDirectory, as in another process.
    const handlers = new Map<string, (payload: { outboundId: string }) => Promise<unknown>>();
    const second = sendModule(api.core, api.services, { providers: providerFor, scanner: cleanScanner });
    second.jobs?.({ register: (name: string, fn: (payload: { outboundId: string }) => Promise<unknown>) => void handlers.set(name, fn) } as unknown as JobQueue);
    runJob = (outboundId) => handlers.get('send.outbound')!({ outboundId });
  }
  tenant = await api.createTenant({ name: 'Contoso helpdesk' });
}, 180_000);

afterAll(async () => {
  await worker?.close();
  await api?.close();
  await db?.drop();
  await sb?.close();
});

const signIn = (email: string, scopes: string[]): Promise<string> => msalSignIn(sb, { clientId: 'app-1', clientSecret: 's3cret', redirectUri: REDIRECT }, email, scopes);

async function connectMicrosoft(address: string, scopes: string[]): Promise<string> {
  const core = api.core;
  const id = newId('mailbox');
  await core.prisma.mailbox.create({
    data: {
      id,
      tenantId: tenant.tenantId,
      provider: 'microsoft',
      addressEnc: new Uint8Array(await core.dataKeys.encryptFor({ type: 'mailbox', id }, address, MAILBOX_ADDRESS_AAD(id))),
      addressIndex: core.blindIndex.emailIndex(address),
      grantedScopes: scopes,
    },
  });
  tokens.set(id, await signIn(address, scopes));
  return id;
}

async function send(mailboxId: string, from: unknown): Promise<{ status: number; body: any }> { // eslint-disable-line @typescript-eslint/no-explicit-any -- JSON answers
  const res = await api.api(tenant.apiKey, 'POST', `/v1/mailboxes/${mailboxId}/send`, { to: 'carla@customer.example', subject: 'Your order', text: 'Shipped today.', from }, { 'idempotency-key': randomUUID() });
  // Embedded: the second module's worker runs the job now (on Postgres the worker service polls).
  if (res.status === 202 && runJob) await runJob(res.body.outboundId as string);
  return res;
}

const settled = (outboundId: string): Promise<Record<string, unknown>> => outboundSettled(api, tenant.apiKey, outboundId);

describe('send-as refusals seen by the worker are known to the API process', () => {
  it('a Send As refusal and an alias rewrite make the API answer 422 up front; stored as a blind index only; gone with the mailbox', async () => {
    sb.createUser('quinn@contoso.test', 'Quinn Member');
    sb.setAliases('quinn@contoso.test', ['claims@contoso.test']);
    sb.setSendFromAliasEnabled(false);
    const mailboxId = await connectMicrosoft('quinn@contoso.test', SHARED);

    // Exchange refuses support@ (no Send As / Send on Behalf): the worker fails the send.
    const first = await send(mailboxId, { address: SUPPORT, delegated: true });
    expect(first.status).toBe(202);
    expect(await settled(first.body.outboundId as string)).toMatchObject({ status: 'failed', attempts: 1, failure: { code: 'from_not_allowed' } });
    // The API process never ran that send, and still refuses the next request for that From.
    const second = await send(mailboxId, { address: SUPPORT, delegated: true });
    expect(second.status).toBe(422);
    expect(second.body.error).toMatchObject({ code: 'from_not_allowed', details: { field: 'from', reason: 'send_as_denied' } });

    // An alias Exchange rewrote to the primary address: sent once, then refused by the API too.
    const alias = await send(mailboxId, 'claims@contoso.test');
    expect(alias.status).toBe(202);
    expect(await settled(alias.body.outboundId as string)).toMatchObject({ status: 'sent' });
    const again = await send(mailboxId, 'Claims@Contoso.test');
    expect(again.status).toBe(422);
    expect(again.body.error).toMatchObject({ code: 'from_not_allowed', details: { field: 'from', reason: 'alias_rewritten' } });
    expect(sb.sentMessages('quinn@contoso.test')).toHaveLength(1);

    // What is stored: the keyed blind index, the reason, an expiry about 10 minutes out — no address.
    const rows = await api.core.prisma.$queryRawUnsafe<Array<Record<string, unknown>>>('SELECT * FROM "send_from_refusals" WHERE "mailboxId" = $1 ORDER BY "reason"', mailboxId);
    expect(rows.map((r) => ({ addressIndex: r.addressIndex, reason: r.reason }))).toEqual([
      { addressIndex: api.core.blindIndex.emailIndex('claims@contoso.test'), reason: 'alias_rewritten' },
      { addressIndex: api.core.blindIndex.emailIndex(SUPPORT), reason: 'send_as_denied' },
    ]);
    for (const r of rows) expect((r.expiresAt as Date).getTime() - Date.now()).toBeGreaterThan(8 * 60_000);
    expect(JSON.stringify(rows)).not.toMatch(/contoso/i);

    // Expired rows are ignored and deleted by the cleanup the daily retention job runs.
    const repo = new SendFromRefusalRepository(api.core.prisma);
    const later = new Date(Date.now() + 11 * 60_000);
    expect(await repo.find(mailboxId, api.core.blindIndex.emailIndex(SUPPORT), later)).toBeNull();
    await repo.deleteExpired(new Date());
    expect(await api.core.prisma.sendFromRefusal.count({ where: { mailboxId } })).toBe(2);

    // The purge's last step deletes the mailbox row (PurgeRepository.deleteMailbox): the refusals go with it.
    await api.core.prisma.mailbox.deleteMany({ where: { id: mailboxId } });
    expect(await api.core.prisma.sendFromRefusal.count({ where: { mailboxId } })).toBe(0);
  });

  it('expired refusals are deleted by the cleanup and no longer refuse', async () => {
    sb.createUser('ruth@contoso.test');
    const mailboxId = await connectMicrosoft('ruth@contoso.test', SHARED);
    const repo = new SendFromRefusalRepository(api.core.prisma);
    const index = api.core.blindIndex.emailIndex(SUPPORT);
    await repo.remember({ mailboxId, addressIndex: index, reason: 'send_as_denied', expiresAt: new Date(Date.now() - 1_000), now: new Date(Date.now() - 601_000) });
    // Expired: the API does not refuse (the send goes to Exchange, which decides).
    const res = await send(mailboxId, { address: SUPPORT, delegated: true });
    expect(res.status).toBe(202);
    await settled(res.body.outboundId as string);
    // That send was refused again, so a fresh row replaced the expired one; expire it and clean up.
    await api.core.prisma.sendFromRefusal.updateMany({ where: { mailboxId }, data: { expiresAt: new Date(Date.now() - 1_000) } });
    expect(await repo.deleteExpired(new Date())).toBeGreaterThanOrEqual(1);
    expect(await api.core.prisma.sendFromRefusal.count({ where: { mailboxId } })).toBe(0);
  });
});
