// Issue 16 item 5: tenant keys issued by a sandbox process are visibly sandbox keys (`mbc_test_…`)
// and a production process refuses them with its own 401 (and says so once at start).
import { afterAll, describe, expect, it } from 'vitest';
import { embeddedRun } from '../helpers/requirements.js';
import { createTestDatabase } from '../helpers/postgres.js';
import { postgresTemplateName } from '../helpers/postgres-template.js';
import { startTestService, testEncryptionKeys, type TestService } from '../helpers/test-service.js';

describe('sandbox API keys', () => {
  let svc: TestService | undefined;
  afterAll(async () => svc?.close());

  it('a SANDBOX=1 process issues mbc_test_ tenant keys (ops keys stay mbc_admin_) and accepts them', async () => {
    svc = await startTestService({ env: { SANDBOX: '1' }, workers: false });
    const t = await svc.createTenant({ name: 'sandbox tenant' });
    expect(t.apiKey).toMatch(/^mbc_test_[0-9A-Za-z]+$/);
    const listed = await svc.core.apiKeys.list(t.tenantId);
    expect(listed[0]!.prefix.startsWith('mbc_test_')).toBe(true);
    expect((await svc.api(t.apiKey, 'GET', '/v1/mailboxes')).status).toBe(200);
    expect((await svc.core.apiKeys.issue({ admin: true })).key).toMatch(/^mbc_admin_/);
  }, 120_000);

  it('a process without SANDBOX issues mbc_live_ keys', async () => {
    const live = await startTestService({ workers: false });
    try {
      const t = await live.createTenant();
      expect(t.apiKey).toMatch(/^mbc_live_/);
      expect((await live.api(t.apiKey, 'GET', '/v1/mailboxes')).status).toBe(200);
    } finally {
      await live.close();
    }
  }, 120_000);
});

describe.skipIf(embeddedRun('sandbox keys refused in production'))('in production', () => {
  it('a sandbox key in the database is refused with 401 sandbox_key_refused and a start-up warning; live keys work', async () => {
    const db = await createTestDatabase({ template: postgresTemplateName() });
    const encryptionKeys = testEncryptionKeys();
    try {
      const sandbox = await startTestService({ databaseUrl: db.url, encryptionKeys, env: { SANDBOX: '1' }, workers: false });
      const t = await sandbox.createTenant({ name: 'tried in the sandbox' });
      expect((await sandbox.api(t.apiKey, 'GET', '/v1/mailboxes')).status).toBe(200);
      await sandbox.close();

      const prod = await startTestService({ databaseUrl: db.url, encryptionKeys, workers: false, env: { NODE_ENV: 'production', PUBLIC_URL: 'https://connector.example.com' } });
      try {
        const warning = prod.logs.filter((l) => l.includes('"sandboxKeys"')).map((l) => JSON.parse(l) as { level: number; msg: string; sandboxKeys?: number })[0];
        expect(warning).toMatchObject({ level: 40, sandboxKeys: 1 });
        expect(warning!.msg).toContain('mbc_test_');
        expect(JSON.stringify(prod.logs)).not.toContain(t.apiKey);

        const refused = await prod.api(t.apiKey, 'GET', '/v1/mailboxes');
        expect(refused.status).toBe(401);
        expect(refused.body.error.code).toBe('sandbox_key_refused');
        expect(refused.body.error.message).toContain('sandbox API key');
        expect(JSON.stringify(refused.body)).not.toContain(t.apiKey);

        const live = await prod.core.apiKeys.issue({ tenantId: t.tenantId });
        expect(live.key).toMatch(/^mbc_live_/);
        expect((await prod.api(live.key, 'GET', '/v1/mailboxes')).status).toBe(200);
      } finally {
        await prod.close();
      }
    } finally {
      await db.drop();
    }
  }, 180_000);
});
