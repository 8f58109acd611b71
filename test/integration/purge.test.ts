// Disconnect → stop → revoke → shred → delete → receipt → event → audit, against real Postgres
// and the Google stand-in over real HTTP (google-auth-library, @googleapis/gmail).
import nock from 'nock';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Core } from '../../src/bootstrap/core.js';
import { lifecycleModule } from '../../src/bootstrap/lifecycle.module.js';
import { tenancyModule } from '../../src/bootstrap/tenancy.module.js';
import { isCryptoError } from '../../src/crypto/crypto-error.js';
import { DataKeyService } from '../../src/crypto/data-key.service.js';
import { OutboxService } from '../../src/events/outbox.service.js';
import { EVENT_DATA_AAD as OUTBOX_DATA_AAD } from '../../src/events/outbox.service.js';
import { LifecycleEventWriter } from '../../src/lifecycle/lifecycle-event.writer.js';
import { MailboxCredentialReader } from '../../src/lifecycle/mailbox-credential.reader.js';
import type { TeardownPort } from '../../src/providers/ports.js';
import { PurgeService, type PurgeDeps } from '../../src/lifecycle/purge.service.js';
import { ATTACHMENT_FILENAME_AAD, MAILBOX_ADDRESS_AAD, MESSAGE_CONTENT_AAD } from '../../src/mailboxes/message-content.js';
import { GmailWatchAdapter } from '../../src/providers/google/gmail-watch.adapter.js';
import { sandboxGoogleEndpoints } from '../../src/providers/google/google-endpoints.js';
import { startGoogleSandbox, type GoogleSandbox } from '../../src/sandbox/google/google-sandbox.server.js';
import { connectGoogleSandboxUser } from '../../src/sandbox/google/google-sandbox-connect.client.js';
import { DataKeyRepository } from '../../src/storage/data-key.repository.js';
import { OutboxRepository } from '../../src/storage/outbox.repository.js';
import { PurgeRepository } from '../../src/storage/purge.repository.js';
import { SyncLockRepository } from '../../src/storage/sync-lock.repository.js';
import { startTestService, type TestService } from '../helpers/test-service.js';
import { waitUntil } from '../helpers/wait.js';
import { seedMailbox, waitFor } from './purge-seed.fixture.js';

const CLIENT_ID = 'purge-test.apps.googleusercontent.com';
const CLIENT_SECRET = 'purge-test-secret';
const GMAIL_MODIFY = 'https://www.googleapis.com/auth/gmail.modify';

let google: GoogleSandbox;
let svc: TestService;

beforeAll(async () => {
  google = await startGoogleSandbox();
  svc = await startTestService({
    env: { SANDBOX: '1', SANDBOX_GOOGLE_URL: google.url, GOOGLE_CLIENT_ID: CLIENT_ID, GOOGLE_CLIENT_SECRET: CLIENT_SECRET },
    // Only the rooms under test: another room's unfinished worker must not race these purges.
    modules: async (core, services) => [tenancyModule(core), lifecycleModule(core, services, { purge: { revokeRetryDelayMs: () => 300 } })],
  });
}, 60_000);

afterAll(async () => {
  nock.cleanAll();
  nock.restore();
  await svc?.close();
  await google?.close();
});

async function connect(email: string): Promise<{ refreshToken: string; accessToken: string }> {
  google.createUser(email);
  const user = await connectGoogleSandboxUser(google.endpoints, { email, scopes: [GMAIL_MODIFY], clientId: CLIENT_ID, clientSecret: CLIENT_SECRET });
  if (!user.refreshToken) throw new Error('no refresh token');
  await new GmailWatchAdapter({ endpoints: sandboxGoogleEndpoints(google.url), accessToken: async () => user.accessToken }).watch('projects/p/topics/mail');
  return { refreshToken: user.refreshToken, accessToken: user.accessToken };
}

const mail = (from: string, to: string, subject: string) => ({
  from,
  to: [to],
  subject,
  text: `body of ${subject}`,
  attachments: [{ filename: `${subject}.pdf`, content: Buffer.from(`%PDF ${subject}`), contentType: 'application/pdf' }],
});

async function receipt(apiKey: string, purgeId: string) {
  return (await svc.api(apiKey, 'GET', `/v1/purges/${purgeId}`)).body;
}

async function awaitCompleted(apiKey: string, purgeId: string) {
  return waitFor(async () => {
    const r = await receipt(apiKey, purgeId);
    return r?.status === 'completed' ? r : undefined;
  }, 30_000, `purge ${purgeId}`);
}

/**
 * Every place in the database that still mentions `needle`: all base tables of the schema, every
 * column whose type can hold an id (text, varchar, json, arrays). Only the purge receipt, the
 * audit log and the lifecycle's `mailbox.disconnected` / `mailbox.purged` events may name a purged
 * mailbox (ids and tenant-keyed facts only).
 */
async function leftovers(core: Core, needles: string[]): Promise<string[]> {
  const { rows: cols } = await core.db.sql.query(
    `SELECT c.table_name, c.column_name FROM information_schema.columns c
       JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name
      WHERE c.table_schema = 'public' AND t.table_type = 'BASE TABLE'
        AND (c.data_type IN ('text', 'character varying', 'json', 'jsonb', 'ARRAY'))`,
  );
  const found: string[] = [];
  const tables = new Set<string>();
  for (const col of cols as Array<{ table_name: string; column_name: string }>) {
    tables.add(col.table_name);
    if (col.table_name === 'purge_receipts' || col.table_name === 'audit_log') continue;
    const extra = col.table_name === 'outbox_events' ? ` AND "type" NOT IN ('mailbox.disconnected', 'mailbox.purged')` : '';
    for (const needle of needles) {
      const { rows } = await core.db.sql.query(`SELECT count(*)::int AS n FROM "${col.table_name}" WHERE "${col.column_name}"::text LIKE '%' || $1 || '%'${extra}`, [needle]);
      const n = (rows[0] as { n: number }).n;
      if (n > 0) found.push(`${col.table_name}.${col.column_name} (${n}) mentions ${needle}`);
    }
  }
  // The walk must have covered the tables that hold mail, or it proves nothing.
  // The keys live in the key store (its own database); its shred ledger names purged owners on purpose.
  for (const needle of needles) {
    const { rows } = await core.keystore.sql.query(`SELECT count(*)::int AS n FROM "data_keys" WHERE "ownerId" = $1`, [needle]);
    if ((rows[0] as { n: number }).n > 0) found.push(`key store data_keys mentions ${needle}`);
  }
  for (const t of ['mailboxes', 'messages', 'message_addresses', 'attachments', 'blobs', 'blob_chunks', 'thread_refs', 'outbox_events', 'webhook_deliveries', 'outbound_messages', 'connect_sessions', 'break_glass_sessions']) {
    expect(tables.has(t), `table walk covers ${t}`).toBe(true);
  }
  return found;
}

/** A purge service wired like the module's, but whose jobs are never enqueued (the test runs them). */
function manualPurges(core: Core, afterStep?: (step: string) => void, syncLock?: PurgeDeps['syncLock']): PurgeService {
  const fakeGoogle: TeardownPort = {
    provider: 'google',
    stopWatch: async () => ({ status: 'stopped' }),
    revokeGrant: async () => ({ status: 'revoked' }),
    retryRevoke: async () => ({ status: 'revoked' }),
  };
  return new PurgeService(
    {
      repo: new PurgeRepository(core.prisma, core.keyStore),
      dataKeys: core.dataKeys,
      audit: core.audit,
      // Nothing is enqueued: the real worker must not pick these purges up.
      jobs: { enqueue: async () => null, cancelByKey: (n, k) => core.jobs.cancelByKey(n, k) },
      events: new LifecycleEventWriter(new OutboxService({ repo: new OutboxRepository(core.prisma), dataKeys: core.dataKeys, clock: core.clock }), core.jobs, core.logger, core.clock),
      teardown: { google: fakeGoogle, microsoft: fakeGoogle },
      credentials: new MailboxCredentialReader(core.dataKeys),
      logger: core.logger,
      clock: core.clock,
      ...(syncLock ? { syncLock } : {}),
    },
    afterStep ? { afterStep } : {},
  );
}

describe('disconnect and purge', () => {
  it('customer DELETE revokes the grant and stops the watch in the sandbox, and leaves no row, blob or key; a pre-purge copy cannot be decrypted', async () => {
    const core = svc.core;
    const a = await svc.createTenant({ name: 'tenant a' });
    const b = await svc.createTenant({ name: 'tenant b' });
    const { refreshToken } = await connect('alice@example.com');
    const target = await seedMailbox(core, {
      tenantId: a.tenantId,
      address: 'alice@example.com',
      refreshToken,
      messages: [mail('customer@example.org', 'alice@example.com', 'invoice 1'), mail('customer@example.org', 'alice@example.com', 'invoice 2')],
      extras: true,
    });
    const sibling = await seedMailbox(core, { tenantId: a.tenantId, address: 'support@example.com', messages: [mail('customer@example.org', 'support@example.com', 'sibling')] });
    const other = await seedMailbox(core, { tenantId: b.tenantId, address: 'alice@example.com', messages: [mail('customer@example.org', 'alice@example.com', 'other tenant')] });

    // A tenant cannot disconnect another tenant's mailbox.
    expect((await svc.api(b.apiKey, 'DELETE', `/v1/mailboxes/${target.mailboxId}`)).status).toBe(404);

    // The "backup": ciphertext exactly as stored before the purge, readable right now.
    const backupMessages = await core.prisma.message.findMany({ where: { mailboxId: target.mailboxId }, select: { id: true, contentEnc: true } });
    const backupAttachments = await core.prisma.attachment.findMany({ where: { mailboxId: target.mailboxId }, select: { id: true, filenameEnc: true } });
    const backupMailbox = await core.prisma.mailbox.findUniqueOrThrow({ where: { id: target.mailboxId }, select: { addressEnc: true } });
    const owner = { type: 'mailbox', id: target.mailboxId } as const;
    expect((await core.dataKeys.decryptFor(owner, backupMessages[0]!.contentEnc, MESSAGE_CONTENT_AAD(backupMessages[0]!.id))).toString()).toContain('invoice');

    const del = await svc.api(a.apiKey, 'DELETE', `/v1/mailboxes/${target.mailboxId}`);
    expect(del.status).toBe(202);
    const purgeId = del.body.purgeId as string;
    const during = await svc.api(a.apiKey, 'GET', `/v1/mailboxes/${target.mailboxId}`);
    expect(['disconnecting', 'purged']).toContain(during.body.status);

    const done = await awaitCompleted(a.apiKey, purgeId);
    expect(done).toMatchObject({ mailboxId: target.mailboxId, trigger: 'customer', revoke: { status: 'revoked', retryPending: false } });
    expect(done.steps).toEqual(['disconnecting', 'jobs_cancelled', 'watch_stopped', 'revoked', 'key_destroyed', 'rows_deleted', 'completed']);
    expect(done.counts).toMatchObject({ messages: 2, attachments: 2, blobs: 4, messageAddresses: 4, threadRefs: 2, outboundMessages: 1, outboxEvents: 1, webhookDeliveries: 1, connectSessions: 1, breakGlassSessions: 1, mailboxes: 1, watch: 'stopped', syncDrain: 'idle' });

    // The provider side, as the sandbox saw it.
    expect(google.revokedTokens().some((t) => t.email === 'alice@example.com' && t.kind === 'refresh')).toBe(true);
    const watch = google.watches().find((w) => w.email === 'alice@example.com');
    expect(watch?.active).toBe(false);
    expect(watch?.stoppedAt).toBeTypeOf('number');

    // Nothing left anywhere.
    expect(await leftovers(core, [target.mailboxId, ...target.messageIds, ...target.attachmentIds, ...target.blobIds])).toEqual([]);

    // The copy cannot be decrypted with the live key ring: the DEK row is gone, even for a
    // process that never cached it.
    const freshKeys = new DataKeyService(core.keyring, new DataKeyRepository(core.keystore));
    for (const keys of [core.dataKeys, freshKeys]) {
      for (const m of backupMessages) await expect(keys.decryptFor(owner, m.contentEnc, MESSAGE_CONTENT_AAD(m.id))).rejects.toSatisfy((e: unknown) => isCryptoError(e, 'key_destroyed'));
      for (const att of backupAttachments) await expect(keys.decryptFor(owner, att.filenameEnc!, ATTACHMENT_FILENAME_AAD(att.id))).rejects.toSatisfy((e: unknown) => isCryptoError(e, 'key_destroyed'));
      await expect(keys.decryptFor(owner, backupMailbox.addressEnc, MAILBOX_ADDRESS_AAD(target.mailboxId))).rejects.toSatisfy((e: unknown) => isCryptoError(e, 'key_destroyed'));
    }

    // The mailbox answers as purged; deleting again is the same purge.
    const after = await svc.api(a.apiKey, 'GET', `/v1/mailboxes/${target.mailboxId}`);
    expect(after.body).toMatchObject({ id: target.mailboxId, status: 'purged', purgeId });
    expect(after.body.purgedAt).toBe(done.completedAt);
    expect((await svc.api(a.apiKey, 'DELETE', `/v1/mailboxes/${target.mailboxId}`)).body.purgeId).toBe(purgeId);
    expect((await svc.api(b.apiKey, 'GET', `/v1/purges/${purgeId}`)).status).toBe(404);
    expect(((await svc.api(a.apiKey, 'GET', '/v1/purges')).body.data as Array<{ id: string }>).map((r) => r.id)).toContain(purgeId);
    expect(((await svc.api(b.apiKey, 'GET', '/v1/purges')).body.data as Array<{ id: string }>).map((r) => r.id)).not.toContain(purgeId);

    // Other mailboxes, of this tenant and another, are untouched and still readable.
    for (const m of [sibling, other]) {
      const rows = await core.prisma.message.findMany({ where: { mailboxId: m.mailboxId } });
      expect(rows).toHaveLength(1);
      const plain = await core.dataKeys.decryptFor({ type: 'mailbox', id: m.mailboxId }, rows[0]!.contentEnc, MESSAGE_CONTENT_AAD(rows[0]!.id));
      expect(plain.toString()).toContain('body of');
      expect(await core.prisma.blob.count({ where: { mailboxId: m.mailboxId } })).toBe(2);
    }

    // The events for the ticket service, readable with the tenant key after the mailbox key is gone:
    // `mailbox.disconnected` at once, `mailbox.purged` with the receipt.
    const events = await core.prisma.outboxEvent.findMany({ where: { mailboxId: target.mailboxId }, orderBy: { seq: 'asc' } });
    expect(events.map((e) => e.type)).toEqual(['mailbox.disconnected', 'mailbox.purged']);
    const event = await core.prisma.outboxEvent.findFirstOrThrow({ where: { mailboxId: target.mailboxId, type: 'mailbox.purged' } });
    expect(event.tenantId).toBe(a.tenantId);
    expect(event.refs).toEqual({ purgeId });
    const data = JSON.parse((await core.dataKeys.decryptFor({ type: 'tenant', id: a.tenantId }, event.dataEnc!, OUTBOX_DATA_AAD(event.id))).toString());
    expect(data).toMatchObject({ purgeId, status: 'purged', trigger: 'customer', revokeStatus: 'revoked', messages: 2 });

    // Audited, and the chain still verifies.
    const audit = await core.prisma.auditEntry.findMany({ where: { targetId: target.mailboxId }, orderBy: { seq: 'asc' } });
    expect(audit.map((e) => e.action)).toEqual(['mailbox.disconnect_requested', 'mailbox.purged']);
    expect(audit[0]).toMatchObject({ actorType: 'api_key', actorId: a.apiKeyId });
    expect((await core.audit.verify()).ok).toBe(true);

    const metrics = await (await fetch(`${svc.url}/metrics`)).text();
    expect(metrics).toMatch(/mbc_purges_total\{trigger="customer",revoke="revoked"\} [1-9]/);

    // No token or mail content in any log line.
    const logs = svc.logs.join('\n');
    expect(logs).not.toContain(refreshToken);
    expect(logs).not.toContain('body of invoice');
  }, 60_000);

  it('a provider outage during the purge still deletes everything locally; the revoke completes later in the background', async () => {
    const core = svc.core;
    const a = await svc.createTenant();
    const { refreshToken } = await connect('bob@example.com');
    const target = await seedMailbox(core, { tenantId: a.tenantId, address: 'bob@example.com', refreshToken, messages: [mail('x@example.org', 'bob@example.com', 'outage')] });

    // Google's revoke endpoint is down (503 on every call; the rest of the stand-in stays up).
    const scope = nock(google.url, { allowUnmocked: true }).persist().post('/revoke').query(true).reply(503, { error: 'backend_error' });

    const purgeId = (await svc.api(a.apiKey, 'DELETE', `/v1/mailboxes/${target.mailboxId}`)).body.purgeId as string;
    const done = await awaitCompleted(a.apiKey, purgeId);
    expect(scope.isDone()).toBe(true);
    expect(done.revoke).toMatchObject({ status: 'failed', retryPending: true });
    expect(done.counts.messages).toBe(1);
    expect(await core.prisma.message.count({ where: { mailboxId: target.mailboxId } })).toBe(0);
    expect(await core.keyStore.find({ type: 'mailbox', id: target.mailboxId })).toBeNull();
    // Still down: the background retries keep failing and keep the token (tenant key) meanwhile.
    await waitFor(async () => (await receipt(a.apiKey, purgeId)).revoke.attempts >= 2, 20_000, 'a failed retry');
    expect(google.revokedTokens().some((t) => t.email === 'bob@example.com')).toBe(false);

    // Google is back.
    nock.cleanAll();
    const revoked = await waitFor(async () => {
      const r = await receipt(a.apiKey, purgeId);
      return r.revoke.status === 'revoked' ? r : undefined;
    }, 20_000, 'background revoke');
    expect(revoked.revoke).toMatchObject({ status: 'revoked', retryPending: false, error: null });
    expect(revoked.revoke.attempts).toBeGreaterThanOrEqual(3);
    const row = await core.prisma.purgeReceipt.findUniqueOrThrow({ where: { id: purgeId } });
    expect(row.revokeTokenEnc).toBeNull();
    expect(google.revokedTokens().some((t) => t.email === 'bob@example.com' && t.kind === 'refresh')).toBe(true);
    const actions = (await core.prisma.auditEntry.findMany({ where: { targetId: target.mailboxId }, orderBy: { seq: 'asc' } })).map((e) => e.action);
    expect(actions).toContain('mailbox.revoke_completed');
    expect(svc.logs.join('\n')).not.toContain(refreshToken);
  }, 60_000);

  it('a crash in the middle of a purge resumes from the recorded step and completes', async () => {
    const core = svc.core;
    const a = await svc.createTenant();
    const target = await seedMailbox(core, { tenantId: a.tenantId, address: 'carol@example.com', refreshToken: 'rt-not-known-to-google', messages: [mail('x@example.org', 'carol@example.com', 'c1'), mail('y@example.org', 'carol@example.com', 'c2')], extras: true });
    class Crash extends Error {}
    const crashing = manualPurges(core, (step) => {
      if (step === 'key_destroyed') throw new Crash('process died');
    });
    const { purgeId } = await crashing.start({ tenantId: a.tenantId, mailboxId: target.mailboxId, trigger: 'customer', reason: null, actor: { actorType: 'api_key', actorId: a.apiKeyId } });
    await expect(crashing.run(purgeId)).rejects.toBeInstanceOf(Crash);

    const mid = await receipt(a.apiKey, purgeId);
    expect(mid.status).toBe('running');
    expect(mid.steps).toEqual(['disconnecting', 'jobs_cancelled', 'watch_stopped', 'revoked', 'key_destroyed']);
    // Mid-purge: rows still there but already unreadable, and the API refuses to show them.
    expect(await core.prisma.message.count({ where: { mailboxId: target.mailboxId } })).toBe(2);
    expect((await svc.api(a.apiKey, 'GET', `/v1/mailboxes/${target.mailboxId}`)).body.status).toBe('disconnecting');
    const list = await svc.api(a.apiKey, 'GET', '/v1/mailboxes');
    expect(list.status).toBe(200);

    // The real worker resumes it (as the stale-purge sweep would after a restart).
    await core.jobs.enqueue('lifecycle.purge', { purgeId });
    const done = await awaitCompleted(a.apiKey, purgeId);
    expect(done.steps).toEqual(['disconnecting', 'jobs_cancelled', 'watch_stopped', 'revoked', 'key_destroyed', 'rows_deleted', 'completed']);
    expect(done.counts).toMatchObject({ messages: 2, attachments: 2, blobs: 4, mailboxes: 1 });
    expect(await leftovers(core, [target.mailboxId, ...target.messageIds, ...target.blobIds])).toEqual([]);
    // Exactly one purged event, however many times the steps ran.
    expect(await core.prisma.outboxEvent.count({ where: { mailboxId: target.mailboxId, type: 'mailbox.purged' } })).toBe(1);
  }, 60_000);

  it('two runners of the same purge finish it once', async () => {
    const core = svc.core;
    const a = await svc.createTenant();
    const target = await seedMailbox(core, { tenantId: a.tenantId, address: 'twin@example.com', messages: [mail('x@example.org', 'twin@example.com', 't1')] });
    const purges = manualPurges(core);
    const { purgeId } = await purges.start({ tenantId: a.tenantId, mailboxId: target.mailboxId, trigger: 'customer', reason: null, actor: { actorType: 'api_key', actorId: a.apiKeyId } });
    await Promise.all([purges.run(purgeId), purges.run(purgeId)]);
    expect((await receipt(a.apiKey, purgeId)).status).toBe('completed');
    expect(await core.prisma.outboxEvent.count({ where: { mailboxId: target.mailboxId, type: 'mailbox.purged' } })).toBe(1);
    expect(await core.prisma.auditEntry.count({ where: { targetId: target.mailboxId, action: 'mailbox.purged' } })).toBe(1);
  }, 60_000);

  it('waits for a sync that is still running before shredding the key', async () => {
    const core = svc.core;
    const a = await svc.createTenant();
    const target = await seedMailbox(core, { tenantId: a.tenantId, address: 'erin@example.com', messages: [mail('x@example.org', 'erin@example.com', 'busy')] });
    // A sync run holds the mailbox's sync lock (the sync room's advisory lock) for its whole run.
    const syncRun = await new SyncLockRepository(core.db).tryAcquire(target.mailboxId);
    expect(syncRun).not.toBeNull();
    // The purge's drain takes the same lock (as lifecycle.module wires it; the first test sees it
    // there: syncDrain 'idle'); each time it is refused is counted: the signal that it is waiting.
    const locks = new SyncLockRepository(core.db);
    let refused = 0;
    const purges = manualPurges(core, undefined, {
      async tryAcquire(mailboxId) {
        const held = await locks.tryAcquire(mailboxId);
        if (!held && mailboxId === target.mailboxId) refused++;
        return held;
      },
    });
    const { purgeId } = await purges.start({ tenantId: a.tenantId, mailboxId: target.mailboxId, trigger: 'customer', reason: null, actor: { actorType: 'api_key', actorId: a.apiKeyId } });
    const running = purges.run(purgeId);
    // Refused twice: it has been waiting across one of its pauses, and went no further.
    await waitUntil('the purge to find the sync running twice', () => refused >= 2);
    const mid = await receipt(a.apiKey, purgeId);
    expect(mid.steps).toEqual(['disconnecting']);
    expect(await core.keyStore.find({ type: 'mailbox', id: target.mailboxId })).not.toBeNull();
    await syncRun!.release();
    await running;
    const done = await receipt(a.apiKey, purgeId);
    expect(done.status).toBe('completed');
    expect(done.counts).toMatchObject({ syncDrain: 'waited', messages: 1 });
    expect(await core.keyStore.find({ type: 'mailbox', id: target.mailboxId })).toBeNull();
  }, 60_000);

  it('after a restore from a backup taken before a purge, the sweep purges the returned rows again', async () => {
    const core = svc.core;
    const a = await svc.createTenant();
    const admin = await core.apiKeys.issue({ admin: true });
    const target = await seedMailbox(core, { tenantId: a.tenantId, address: 'frank@example.com', messages: [mail('x@example.org', 'frank@example.com', 'restored')] });
    // The "backup" (data tables only; keys are not kept with long-retention backups).
    const tables = ['mailboxes', 'messages', 'message_addresses', 'attachments', 'blobs', 'thread_refs'];
    // (DDL takes no bind parameters; the id is one of ours.)
    for (const t of tables) await core.db.sql.query(`CREATE TABLE "bk_${t}" AS SELECT * FROM "${t}" WHERE ${t === 'mailboxes' ? '"id"' : '"mailboxId"'} = '${target.mailboxId}'`);
    await core.db.sql.query(`CREATE TABLE "bk_blob_chunks" AS SELECT c.* FROM "blob_chunks" c JOIN "blobs" b ON b."id" = c."blobId" WHERE b."mailboxId" = '${target.mailboxId}'`);
    const purgeId = (await svc.api(a.apiKey, 'DELETE', `/v1/mailboxes/${target.mailboxId}`)).body.purgeId as string;
    await awaitCompleted(a.apiKey, purgeId);

    // Restore: the rows come back, the key does not. An orphan (rows without their mailbox) too.
    for (const t of [...tables, 'blob_chunks']) await core.db.sql.query(`INSERT INTO "${t}" SELECT * FROM "bk_${t}"`);
    for (const t of [...tables, 'blob_chunks']) await core.db.sql.query(`DROP TABLE "bk_${t}"`);
    const orphan = await seedMailbox(core, { tenantId: a.tenantId, address: 'gone@example.com', messages: [mail('x@example.org', 'gone@example.com', 'orphan')] });
    await core.prisma.mailbox.delete({ where: { id: orphan.mailboxId } });
    expect(await core.prisma.message.count({ where: { mailboxId: target.mailboxId } })).toBe(1);
    await expect(core.dataKeys.decryptFor({ type: 'mailbox', id: target.mailboxId }, (await core.prisma.message.findFirstOrThrow({ where: { mailboxId: target.mailboxId } })).contentEnc, MESSAGE_CONTENT_AAD(target.messageIds[0]!))).rejects.toSatisfy((e: unknown) => isCryptoError(e, 'key_destroyed'));

    const sweep = await svc.api(admin.key, 'POST', '/v1/admin/ops/purges.sweepShredded', {});
    expect(sweep.body.result).toMatchObject({ mailboxesPurged: 1 });
    expect(sweep.body.result.orphansDeleted).toBeGreaterThanOrEqual(1);
    await waitFor(async () => (await core.prisma.mailbox.count({ where: { id: target.mailboxId } })) === 0, 30_000, 'second purge');
    expect(await leftovers(core, [target.mailboxId, orphan.mailboxId, ...orphan.blobIds])).toEqual([]);
  }, 60_000);

  it('ops revocation (admin API) purges a Microsoft mailbox and records that Microsoft offers no per-app revoke', async () => {
    const core = svc.core;
    const a = await svc.createTenant();
    const admin = await core.apiKeys.issue({ admin: true });
    const target = await seedMailbox(core, { tenantId: a.tenantId, provider: 'microsoft', address: 'dave@contoso.example', msalCache: '{"Account":{}}', messages: [mail('x@example.org', 'dave@contoso.example', 'ms')] });

    expect((await svc.api(a.apiKey, 'POST', `/v1/admin/mailboxes/${target.mailboxId}/revoke`, { reason: 'abuse report 42' })).status).toBe(403);
    expect((await svc.api(admin.key, 'POST', `/v1/admin/mailboxes/${target.mailboxId}/revoke`, {})).status).toBe(400);
    const res = await svc.api(admin.key, 'POST', `/v1/admin/mailboxes/${target.mailboxId}/revoke`, { reason: 'abuse report 42' });
    expect(res.status).toBe(202);
    const done = await awaitCompleted(a.apiKey, res.body.purgeId);
    expect(done).toMatchObject({ trigger: 'ops', reason: 'abuse report 42', revoke: { status: 'not_supported' }, counts: { watch: 'not_needed', messages: 1 } });
    const first = await core.prisma.auditEntry.findFirstOrThrow({ where: { targetId: target.mailboxId, action: 'mailbox.disconnect_requested' } });
    expect(first).toMatchObject({ actorType: 'ops', reason: 'abuse report 42' });
    expect(await core.prisma.mailbox.count({ where: { id: target.mailboxId } })).toBe(0);
  }, 60_000);

  it('a mailbox left in reauth_required past the grace period is purged; one within it is kept', async () => {
    const core = svc.core;
    const a = await svc.createTenant();
    const day = 86_400_000;
    const expired = await seedMailbox(core, { tenantId: a.tenantId, address: 'old@example.com', status: 'reauth_required', reauthRequiredAt: new Date(Date.now() - 31 * day), messages: [mail('x@example.org', 'old@example.com', 'old')] });
    const recent = await seedMailbox(core, { tenantId: a.tenantId, address: 'new@example.com', status: 'reauth_required', reauthRequiredAt: new Date(Date.now() - 5 * day), messages: [mail('x@example.org', 'new@example.com', 'new')] });
    await core.jobs.enqueue('lifecycle.reauth-expiry', {});
    const r = await waitFor(async () => {
      const row = await core.prisma.purgeReceipt.findFirst({ where: { mailboxId: expired.mailboxId, status: 'completed' } });
      return row ?? undefined;
    }, 30_000, 'reauth-expiry purge');
    expect(r.trigger).toBe('provider_revoked');
    expect(await core.prisma.message.count({ where: { mailboxId: expired.mailboxId } })).toBe(0);
    expect(await core.prisma.message.count({ where: { mailboxId: recent.mailboxId } })).toBe(1);
    expect(await core.prisma.purgeReceipt.count({ where: { mailboxId: recent.mailboxId } })).toBe(0);
  }, 60_000);
});
