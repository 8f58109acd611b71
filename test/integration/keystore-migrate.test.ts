// An install from before the key store kept data_keys in the data database. This release refuses
// to start on it with one line naming `keystore migrate`, which moves the keys (checked byte for
// byte) and drops the old table; afterwards the mail reads as before.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Core } from '../../src/bootstrap/core.js';
import { messagesModule } from '../../src/bootstrap/messages.module.js';
import type { ServiceModule } from '../../src/bootstrap/module.js';
import { tenancyModule } from '../../src/bootstrap/tenancy.module.js';
import { runKeystoreMigrate } from '../../src/cli/backup-runner.js';
import { loadConfig } from '../../src/config/config.js';
import { createTestDatabase, type TestDatabase } from '../helpers/postgres.js';
import { postgresTemplateName } from '../helpers/postgres-template.js';
import { startTestService, testEncryptionKeys, type TestService } from '../helpers/test-service.js';
import { seedMailbox, seedMessage } from './webhooks-seed.js';

const modules = async (core: Core): Promise<ServiceModule[]> => [tenancyModule(core), messagesModule(core)];
const cleanups: Array<() => Promise<void> | void> = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

// The data_keys table as releases before the key store created it (migration 20261129000000_init).
const LEGACY_TABLE = `CREATE TABLE "data_keys" (
  "id" TEXT NOT NULL, "ownerType" TEXT NOT NULL, "ownerId" TEXT NOT NULL, "dekVersion" INTEGER NOT NULL DEFAULT 1,
  "kekVersion" INTEGER NOT NULL, "wrappedKey" BYTEA NOT NULL, "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
  "rotatedAt" TIMESTAMP(3), CONSTRAINT "data_keys_pkey" PRIMARY KEY ("id"));
CREATE UNIQUE INDEX "data_keys_ownerType_ownerId_key" ON "data_keys"("ownerType", "ownerId");`;

describe(`keystore migrate (${process.env.DATABASE_URL ? 'postgres' : 'embedded'})`, () => {
  it('an install with its keys in the data database is refused until keystore migrate moved them; then mail reads as before', async () => {
    const work = mkdtempSync(path.join(tmpdir(), 'mbc-ksm-'));
    cleanups.push(() => rmSync(work, { recursive: true, force: true }));
    const dataDir = path.join(work, 'data');
    let db: TestDatabase | undefined;
    if (process.env.DATABASE_URL) {
      db = await createTestDatabase({ template: postgresTemplateName() }); // migrated: the test stages the older layout itself
      cleanups.push(() => db!.drop());
    }
    const encryptionKeys = testEncryptionKeys();
    const where = { ...(db ? { databaseUrl: db.url } : { dataDir }), encryptionKeys, env: { DATA_DIR: dataDir, ...(db ? { DATABASE_URL: db.url } : {}) }, modules, workers: false };
    const config = loadConfig({ NODE_ENV: 'test', ENCRYPTION_KEYS: encryptionKeys, DATA_DIR: dataDir, ...(db ? { DATABASE_URL: db.url } : {}) });
    let svc: TestService | undefined;
    cleanups.push(() => svc?.close());

    svc = await startTestService(where);
    const t = await svc.createTenant();
    const mbx = await seedMailbox(svc.core, t.tenantId, { address: 'old-install@example.com' });
    const msg = await seedMessage(svc.core, t.tenantId, mbx.id, { subject: 'from before the key store' });
    // Stage the older layout: the keys in the data database, none in the key store.
    const { rows } = await svc.core.keystore.sql.query<{ id: string; ownerType: string; ownerId: string; dekVersion: number; kekVersion: number; wrappedKey: Uint8Array }>(
      'SELECT "id", "ownerType", "ownerId", "dekVersion", "kekVersion", "wrappedKey" FROM "data_keys"',
    );
    expect(rows.length).toBeGreaterThanOrEqual(3); // system, tenant, mailbox
    await svc.core.db.sql.exec(LEGACY_TABLE);
    for (const r of rows) {
      await svc.core.db.sql.query('INSERT INTO "data_keys" ("id", "ownerType", "ownerId", "dekVersion", "kekVersion", "wrappedKey") VALUES ($1, $2, $3, $4, $5, $6)', [
        r.id, r.ownerType, r.ownerId, r.dekVersion, r.kekVersion, Buffer.from(r.wrappedKey),
      ]);
    }
    await svc.core.keystore.sql.exec('DELETE FROM "data_keys"');
    await svc.close();
    svc = undefined;

    await expect(startTestService(where)).rejects.toThrow(/still holds \d+ data key\(s\).*mailbox-connector keystore migrate/);

    const moved = await runKeystoreMigrate(config);
    expect(moved).toMatchObject({ moved: rows.length, alreadyInKeystore: 0 });
    expect(moved.warning).toMatch(/within 30 days/);
    // Idempotent: nothing left to move.
    expect(await runKeystoreMigrate(config)).toMatchObject({ moved: 0, alreadyInKeystore: 0 });

    svc = await startTestService(where);
    const { rows: table } = await svc.core.db.sql.query<{ t: string | null }>(`SELECT to_regclass('public.data_keys')::text AS t`);
    expect(table[0]!.t).toBeNull();
    const view = await svc.api(t.apiKey, 'GET', `/v1/mailboxes/${mbx.id}`);
    expect(view.body.address).toBe('old-install@example.com');
    const read = await svc.api(t.apiKey, 'GET', `/v1/messages/${msg.id}`);
    expect(read.status).toBe(200);
    expect(JSON.stringify(read.body)).toContain('from before the key store');
  }, 300_000);
});
