// Issue 17, item 1: a backup taken before a purge, restored afterwards, never serves the purged
// mailbox again — not through the API, not offline with the restored key store — while another
// mailbox comes back intact; webhooks the old data had not delivered wait for an operator.
// Real Postgres (pg_dump/pg_restore, a key store database of its own) when DATABASE_URL is set,
// the embedded PGlite (dumpDataDir, DATA_DIR/keystore) otherwise.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { lifecycleModule } from '../../src/bootstrap/lifecycle.module.js';
import { messagesModule } from '../../src/bootstrap/messages.module.js';
import type { ServiceModule } from '../../src/bootstrap/module.js';
import type { ProcessServices } from '../../src/bootstrap/modules.js';
import { tenancyModule } from '../../src/bootstrap/tenancy.module.js';
import { webhooksModule } from '../../src/bootstrap/webhooks.module.js';
import type { Core } from '../../src/bootstrap/core.js';
import { runBackup, runRestore } from '../../src/cli/backup-runner.js';
import { loadConfig } from '../../src/config/config.js';
import { isCryptoError } from '../../src/crypto/crypto-error.js';
import { DataKeyService } from '../../src/crypto/data-key.service.js';
import { parseKeyring } from '../../src/crypto/keyring.js';
import { MESSAGE_CONTENT_AAD } from '../../src/mailboxes/message-content.js';
import { DataKeyRepository } from '../../src/storage/data-key.repository.js';
import { openKeystore } from '../../src/storage/keystore.js';
import { HELD_AFTER_RESTORE } from '../../src/storage/restore.repository.js';
import { writeRestoreMarker } from '../../src/storage/restore-marker.js';
import { createTestDatabase, type TestDatabase } from '../helpers/postgres.js';
import { startTestService, testEncryptionKeys, type TestService } from '../helpers/test-service.js';
import { webhooksSettled } from '../helpers/settled.js';
import { emit, seedMailbox, seedMessage, startReceiver, waitFor } from './webhooks-seed.js';

const modules = async (core: Core, services: ProcessServices): Promise<ServiceModule[]> => [tenancyModule(core), lifecycleModule(core, services), webhooksModule(core), messagesModule(core)];

const cleanups: Array<() => Promise<void> | void> = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

describe(`backup and restore (${process.env.DATABASE_URL ? 'postgres' : 'embedded'})`, () => {
  it('a backup taken before a purge, restored after it, cannot serve the purged mailbox; the other is intact; old webhooks wait for release', async () => {
    const work = mkdtempSync(path.join(tmpdir(), 'mbc-backup-'));
    cleanups.push(() => rmSync(work, { recursive: true, force: true }));
    const dataDir = path.join(work, 'data');
    const backupDir = path.join(work, 'backup');
    let db: TestDatabase | undefined;
    if (process.env.DATABASE_URL) {
      db = await createTestDatabase();
      cleanups.push(() => db!.drop());
    }
    const encryptionKeys = testEncryptionKeys();
    // One location for every process of the test: the same database (or DATA_DIR) each time.
    const where = { ...(db ? { databaseUrl: db.url } : { dataDir }), encryptionKeys, env: { DATA_DIR: dataDir, ...(db ? { DATABASE_URL: db.url } : {}) } };
    const config = loadConfig({ NODE_ENV: 'test', ENCRYPTION_KEYS: encryptionKeys, DATA_DIR: dataDir, ...(db ? { DATABASE_URL: db.url } : {}) });
    const receiver = await startReceiver();
    cleanups.push(() => receiver.close());
    let svc: TestService | undefined;
    cleanups.push(() => svc?.close());

    // 1. Two mailboxes with mail, an endpoint, and one event not delivered yet (no workers run).
    svc = await startTestService({ ...where, modules, workers: false });
    const t = await svc.createTenant();
    const endpoint = await svc.api(t.apiKey, 'POST', '/v1/webhook-endpoints', { url: receiver.url });
    expect(endpoint.status).toBe(201);
    const purged = await seedMailbox(svc.core, t.tenantId, { address: 'leaving@example.com' });
    const kept = await seedMailbox(svc.core, t.tenantId, { address: 'staying@example.com' });
    const purgedMsg = await seedMessage(svc.core, t.tenantId, purged.id, { subject: 'purged subject', text: 'purged body' });
    const keptMsg = await seedMessage(svc.core, t.tenantId, kept.id, { subject: 'kept subject', text: 'kept body' });
    const [oldEvent] = await emit(svc.core, [{ tenantId: t.tenantId, mailboxId: kept.id, type: 'message.received', refs: { messageId: keptMsg.id } }]);
    // The ciphertext as every backup holds it.
    const purgedCipher = (await svc.core.prisma.message.findUniqueOrThrow({ where: { id: purgedMsg.id } })).contentEnc;
    const keptCipher = (await svc.core.prisma.message.findUniqueOrThrow({ where: { id: keptMsg.id } })).contentEnc;
    await svc.close();
    svc = undefined;

    // 2. Backup: two files, and the retention each needs.
    const backup = await runBackup(config, backupDir);
    expect(backup.data.keepAtMostDays).toBe(365);
    expect(backup.keystore.keepAtMostDays).toBe(30);
    expect(backup.data.file).not.toBe(backup.keystore.file);

    // 3. Live on: the old event is delivered, then the mailbox is disconnected and purged.
    svc = await startTestService({ ...where, modules });
    await waitFor(() => receiver.received.some((r) => r.headers['webhook-id'] === oldEvent!.id), 30_000, 'the old event delivered live');
    const del = await svc.api(t.apiKey, 'DELETE', `/v1/mailboxes/${purged.id}`);
    expect(del.status).toBe(202);
    const purgeId = del.body.purgeId as string;
    await waitFor(async () => (await svc!.api(t.apiKey, 'GET', `/v1/purges/${purgeId}`)).body?.status === 'completed', 60_000, 'purge completed');
    await waitFor(() => receiver.received.some((r) => r.body.includes('mailbox.purged')), 30_000, 'mailbox.purged delivered');
    expect(await svc.core.keyStore.find({ type: 'mailbox', id: purged.id })).toBeNull();
    await svc.close();
    svc = undefined;
    const receivedBeforeRestore = receiver.received.length;

    // 4. Restore the backup from before the purge.
    const restored = await runRestore(config, backupDir, { actorId: 'ops:test' });
    expect(restored.keysDestroyedAgain).toBeGreaterThanOrEqual(1);
    expect(restored.mailboxesDeleted).toBe(1);
    expect(restored.deliveriesHeld).toBeGreaterThanOrEqual(1);

    // 5. Offline: the key store as restored (plus the ledger) cannot decrypt the purged mailbox.
    const keystore = await openKeystore({ url: config.keystore.url, dataDir });
    try {
      const store = new DataKeyRepository(keystore);
      expect(await store.find({ type: 'mailbox', id: purged.id })).toBeNull();
      expect((await store.ledger()).map((e) => e.ownerId)).toContain(purged.id);
      const offline = new DataKeyService(parseKeyring(encryptionKeys), store);
      await expect(offline.decryptFor({ type: 'mailbox', id: purged.id }, purgedCipher, MESSAGE_CONTENT_AAD(purgedMsg.id))).rejects.toSatisfy((e: unknown) => isCryptoError(e, 'key_destroyed'));
      expect((await offline.decryptFor({ type: 'mailbox', id: kept.id }, keptCipher, MESSAGE_CONTENT_AAD(keptMsg.id))).toString('utf8')).toContain('kept body');
    } finally {
      await keystore.close();
    }

    // 6. Served again: the purged mailbox is gone, the other is intact; nothing old is re-sent.
    svc = await startTestService({ ...where, modules });
    expect((await svc.api(t.apiKey, 'GET', `/v1/mailboxes/${purged.id}`)).status).toBe(404);
    expect((await svc.api(t.apiKey, 'GET', `/v1/mailboxes/${purged.id}/messages`)).status).toBe(404);
    expect((await svc.api(t.apiKey, 'GET', `/v1/messages/${purgedMsg.id}`)).status).toBe(404);
    const keptView = await svc.api(t.apiKey, 'GET', `/v1/mailboxes/${kept.id}`);
    expect(keptView.status).toBe(200);
    expect(keptView.body.address).toBe('staying@example.com');
    const keptRead = await svc.api(t.apiKey, 'GET', `/v1/messages/${keptMsg.id}`);
    expect(keptRead.status).toBe(200);
    expect(JSON.stringify(keptRead.body)).toContain('kept subject');
    expect(await svc.core.prisma.webhookDelivery.count({ where: { status: HELD_AFTER_RESTORE } })).toBeGreaterThanOrEqual(1);
    const ready = (await (await fetch(`${svc.url}/readyz`)).json()) as { checks: Record<string, unknown> };
    expect(ready.checks.keystore).toEqual({ status: 'ok' });
    // The pump has nothing left to do (held deliveries are not due): none of them went out.
    await webhooksSettled(svc.core);
    expect(receiver.received.length).toBe(receivedBeforeRestore);

    // 7. The operator releases them (audited): now they go out.
    const admin = (await svc.core.apiKeys.issue({ admin: true })).key;
    const release = await svc.api(admin, 'POST', '/v1/admin/ops/events.releaseHeld', {});
    expect(release.status).toBe(200);
    expect(release.body.result.released).toBeGreaterThanOrEqual(1);
    await waitFor(() => receiver.received.length > receivedBeforeRestore, 30_000, 'released delivery sent');
    expect(receiver.received.slice(receivedBeforeRestore).map((r) => r.headers['webhook-id'])).toContain(oldEvent!.id);
    const audit = await svc.core.prisma.auditEntry.findMany({ where: { action: { in: ['backup.restored', 'events.held_released'] } }, select: { action: true } });
    expect(audit.map((a) => a.action).sort()).toEqual(['backup.restored', 'events.held_released']);
    // The audit log went back to the backup's end, past heads anchored since (every stop anchors):
    // restore says so in the anchor file, signed, so the restored log verifies and keeps growing.
    const verified = await svc.core.audit.verify();
    expect(verified).toMatchObject({ ok: true, keyed: true });
    expect((verified as { anchorsChecked: number }).anchorsChecked).toBeGreaterThanOrEqual(1);
    await svc.close();
    svc = undefined;

    // 8. An interrupted restore keeps the service from starting. Its marker carries the ledger it
    // had read (here one more owner, as if purged since), and running restore again merges it.
    const goneSince = 'mbx_purged_after_the_backup';
    writeRestoreMarker(dataDir, { startedAt: new Date().toISOString(), from: backupDir, ledger: [{ ownerType: 'mailbox', ownerId: goneSince, shreddedAt: new Date().toISOString() }] });
    await expect(startTestService({ ...where, modules })).rejects.toThrow(/a restore did not finish/);
    const resumed = await runRestore(config, backupDir, { actorId: 'ops:test' });
    expect(resumed).toMatchObject({ mailboxesDeleted: 1, replacedLedgerEntries: 2 });
    expect(resumed.deliveriesHeld).toBeGreaterThanOrEqual(1);

    // 9. Held deliveries can be discarded instead (audited): nothing goes out.
    svc = await startTestService({ ...where, modules });
    expect((await svc.core.keyStore.ledger()).map((e) => e.ownerId)).toEqual(expect.arrayContaining([purged.id, goneSince]));
    expect((await svc.api(t.apiKey, 'GET', `/v1/mailboxes/${purged.id}`)).status).toBe(404);
    expect((await svc.api(t.apiKey, 'GET', `/v1/mailboxes/${kept.id}`)).status).toBe(200);
    const receivedBeforeDiscard = receiver.received.length;
    const admin2 = (await svc.core.apiKeys.issue({ admin: true })).key;
    const discard = await svc.api(admin2, 'POST', '/v1/admin/ops/events.releaseHeld', { discard: true });
    expect(discard.body.result.discarded).toBeGreaterThanOrEqual(1);
    expect(await svc.core.prisma.webhookDelivery.count({ where: { status: HELD_AFTER_RESTORE } })).toBe(0);
    await webhooksSettled(svc.core);
    expect(receiver.received.length).toBe(receivedBeforeDiscard);
    expect(await svc.core.prisma.auditEntry.count({ where: { action: 'events.held_discarded' } })).toBe(1);
  }, 400_000);
});
