// The audit log is tamper-evident: `audit verify` passes on an intact chain and fails on an
// edited, deleted or reordered entry (rows changed with raw SQL, as an attacker with database
// access would), and the printed anchor catches removal of trailing entries.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lifecycleModule } from '../../src/bootstrap/lifecycle.module.js';
import { tenancyModule } from '../../src/bootstrap/tenancy.module.js';
import { startTestService, type TestService } from '../helpers/test-service.js';

const BIN = fileURLToPath(new URL('../../bin/mailbox-connector.js', import.meta.url));
let svc: TestService;
let adminKey: string;

beforeAll(async () => {
  svc = await startTestService({ modules: async (core) => [tenancyModule(core), await lifecycleModule(core)] });
  adminKey = (await svc.core.apiKeys.issue({ admin: true })).key;
  const t = await svc.createTenant();
  for (let i = 0; i < 5; i++) {
    await svc.core.audit.record({ tenantId: t.tenantId, actorType: 'ops', actorId: 'ops:test', action: 'test.action', targetType: 'tenant', targetId: t.tenantId, reason: `entry ${i}`, metadata: { i } });
  }
}, 60_000);
afterAll(async () => svc?.close());

async function verify(input: Record<string, unknown> = {}) {
  const res = await svc.api(adminKey, 'POST', '/v1/admin/ops/audit.verify', input);
  expect(res.status).toBe(200);
  return res.body.result as { ok: boolean; count?: number; head?: { seq: number; hash: string }; anchor?: string; brokenAt?: number; reason?: string };
}

const sql = (text: string, values?: unknown[]) => svc.core.db.sql.query(text, values);

describe('audit verify', () => {
  it('passes on the intact log and prints the head as an anchor', async () => {
    const r = await verify();
    expect(r.ok).toBe(true);
    expect(r.count).toBe(5);
    expect(r.anchor).toBe(`${r.head!.seq}:${r.head!.hash}`);
    expect(r.anchor).toMatch(/^5:[0-9a-f]{64}$/);
    expect((await verify({ expectedHead: r.head })).ok).toBe(true);
  });

  it('fails on an edited entry', async () => {
    const { rows } = await sql(`SELECT "reason" FROM "audit_log" WHERE "seq" = 2`);
    await sql(`UPDATE "audit_log" SET "reason" = 'nothing to see here' WHERE "seq" = 2`);
    expect(await verify()).toMatchObject({ ok: false, brokenAt: 2, reason: 'hash_mismatch' });
    await sql(`UPDATE "audit_log" SET "reason" = $1 WHERE "seq" = 2`, [(rows[0] as { reason: string }).reason]);
    // Metadata is covered too.
    await sql(`UPDATE "audit_log" SET "metadata" = '{"i": 99}' WHERE "seq" = 4`);
    expect(await verify()).toMatchObject({ ok: false, brokenAt: 4, reason: 'hash_mismatch' });
    await sql(`UPDATE "audit_log" SET "metadata" = '{"i": 3}' WHERE "seq" = 4`);
    expect((await verify()).ok).toBe(true);
  });

  it('fails on a deleted entry, and on removed trailing entries when given the anchor', async () => {
    const anchor = (await verify()).head!;
    // A plain table (the pool may hand each statement another connection, so no TEMP table).
    await sql(`CREATE TABLE audit_saved AS SELECT * FROM "audit_log" WITH NO DATA`);
    await sql(`INSERT INTO audit_saved SELECT * FROM "audit_log" WHERE "seq" IN (3, 5)`);
    await sql(`DELETE FROM "audit_log" WHERE "seq" = 3`);
    expect(await verify()).toMatchObject({ ok: false, brokenAt: 4, reason: 'sequence_gap' });
    await sql(`INSERT INTO "audit_log" SELECT * FROM audit_saved WHERE "seq" = 3`);
    expect((await verify()).ok).toBe(true);

    // Cutting the tail leaves a valid-looking chain; only the anchor kept outside shows it.
    await sql(`DELETE FROM "audit_log" WHERE "seq" = 5`);
    expect((await verify()).ok).toBe(true);
    expect(await verify({ expectedHead: anchor })).toMatchObject({ ok: false, reason: 'truncated' });
    await sql(`INSERT INTO "audit_log" SELECT * FROM audit_saved WHERE "seq" = 5`);
    expect((await verify({ expectedHead: anchor })).ok).toBe(true);
    await sql(`DROP TABLE audit_saved`);
  });

  it('fails on reordered entries', async () => {
    // Swap the content of entries 2 and 3 (keeping seq), as a reorder would.
    await sql(`UPDATE "audit_log" SET "seq" = -2 WHERE "seq" = 2`);
    await sql(`UPDATE "audit_log" SET "seq" = 2 WHERE "seq" = 3`);
    await sql(`UPDATE "audit_log" SET "seq" = 3 WHERE "seq" = -2`);
    expect(await verify()).toMatchObject({ ok: false, brokenAt: 2 });
    await sql(`UPDATE "audit_log" SET "seq" = -3 WHERE "seq" = 3`);
    await sql(`UPDATE "audit_log" SET "seq" = 3 WHERE "seq" = 2`);
    await sql(`UPDATE "audit_log" SET "seq" = 2 WHERE "seq" = -3`);
    expect((await verify()).ok).toBe(true);
  });

  it('the CLI prints the anchor and exits non-zero on a tampered log', async () => {
    const env: NodeJS.ProcessEnv = { ...process.env, ENCRYPTION_KEYS: svc.config.encryptionKeys!, LOG_LEVEL: 'silent', NODE_ENV: 'test' };
    // Where the service's data is: its Postgres database, or its embedded data folder (the CLI
    // finds the running service's lock there and asks it, as it would next to `npm start`).
    if (svc.config.database.url) {
      env.DATABASE_URL = svc.config.database.url;
    } else {
      delete env.DATABASE_URL;
      env.DATA_DIR = svc.config.database.dataDir;
    }
    // Asynchronously: on the embedded database the CLI asks the service running in this process,
    // which must keep answering while the CLI runs.
    const cli = (...args: string[]) =>
      new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
        execFile(process.execPath, [BIN, ...args], { env, encoding: 'utf8', timeout: 120_000 }, (err, stdout, stderr) => {
          resolve({ status: err ? (typeof err.code === 'number' ? err.code : null) : 0, stdout, stderr });
        });
      });
    const ok = await cli('audit', 'verify', '--json');
    expect(ok.status, ok.stderr).toBe(0);
    const result = JSON.parse(ok.stdout) as { ok: boolean; anchor: string };
    expect(result.ok).toBe(true);
    expect(result.anchor).toMatch(/^\d+:[0-9a-f]{64}$/);

    await sql(`UPDATE "audit_log" SET "actorId" = 'someone-else' WHERE "seq" = 1`);
    const bad = await cli('audit', 'verify', '--head', result.anchor);
    expect(bad.status).toBe(1);
    expect(bad.stdout).toContain('ok: false');
    expect(bad.stdout).toContain('hash_mismatch');
  }, 120_000);
});
