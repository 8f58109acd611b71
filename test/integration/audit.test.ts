// The audit log is tamper-evident: `audit verify` passes on an intact chain and fails on an
// edited, deleted or reordered entry (rows changed with raw SQL, as an attacker with database
// access would), and the printed anchor catches removal of trailing entries.
import { execFile } from 'node:child_process';
import { createSecretKey, randomBytes, type KeyObject } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuditAnchorFile } from '../../src/audit/audit-anchor.js';
import { AuditService } from '../../src/audit/audit.service.js';
import { entryHash, GENESIS_HASH } from '../../src/audit/hash-chain.js';
import { lifecycleModule } from '../../src/bootstrap/lifecycle.module.js';
import { parseKeyring } from '../../src/crypto/keyring.js';
import { AuditRepository } from '../../src/storage/audit.repository.js';
import { tenancyModule } from '../../src/bootstrap/tenancy.module.js';
import { startTestService, type TestService } from '../helpers/test-service.js';

const BIN = fileURLToPath(new URL('../../bin/mailbox-connector.js', import.meta.url));
let svc: TestService;
let adminKey: string;

beforeAll(async () => {
  svc = await startTestService({ modules: async (core, services) => [tenancyModule(core), lifecycleModule(core, services)] });
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
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      ENCRYPTION_KEYS: svc.config.encryptionKeys!,
      AUDIT_HMAC_KEYS: svc.config.audit.hmacKeys!,
      AUDIT_ANCHOR_FILE: svc.config.audit.anchorFile,
      LOG_LEVEL: 'silent',
      NODE_ENV: 'test',
    };
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
    await sql(`UPDATE "audit_log" SET "actorId" = 'ops:test' WHERE "seq" = 1`);
    expect((await verify()).ok).toBe(true);
  }, 120_000);
});

// Someone with write access to the database but not the audit key (AUDIT_HMAC_KEYS) and not the
// anchor file: every rewrite must be caught by `audit verify` alone, with no operator-kept head.
describe('keyed audit chain and signed anchors', () => {
  type Row = Record<string, unknown> & { seq: string | number; prevHash: string; hash: string; keyVersion: number | null };
  const rows = async (): Promise<Row[]> =>
    (await sql(`SELECT * FROM "audit_log" ORDER BY "seq"`)).rows.map((r) => r as Row);

  /** Recomputes every link from `fromSeq` on, as an attacker would: plain SHA-256, or HMAC under `key`. */
  async function recomputeFrom(fromSeq: number, key?: KeyObject, keyVersion: number | null = null): Promise<void> {
    const all = await rows();
    let prev = all.find((r) => Number(r.seq) === fromSeq - 1)?.hash ?? GENESIS_HASH;
    for (const r of all.filter((x) => Number(x.seq) >= fromSeq)) {
      const seq = Number(r.seq);
      const body = {
        id: r.id, tenantId: r.tenantId, actorType: r.actorType, actorId: r.actorId, action: r.action,
        targetType: r.targetType, targetId: r.targetId, reason: r.reason, metadata: r.metadata,
        createdAt: (r.createdAt as Date).toISOString(), seq, keyVersion,
      };
      const hash = entryHash(prev, body, key);
      await sql(`UPDATE "audit_log" SET "prevHash" = $1, "hash" = $2, "keyVersion" = $3 WHERE "seq" = $4`, [prev, hash, keyVersion, seq]);
      prev = hash;
    }
  }

  let saved: Row[] = [];
  async function restore(): Promise<void> {
    await sql(`DELETE FROM "audit_log"`);
    for (const r of saved) {
      await sql(
        `INSERT INTO "audit_log" ("seq","id","tenantId","actorType","actorId","action","targetType","targetId","reason","metadata","prevHash","hash","keyVersion","createdAt")
         VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14)`,
        [r.seq, r.id, r.tenantId, r.actorType, r.actorId, r.action, r.targetType, r.targetId, r.reason, JSON.stringify(r.metadata), r.prevHash, r.hash, r.keyVersion, r.createdAt],
      );
    }
    expect((await verify()).ok).toBe(true);
  }

  beforeAll(async () => {
    saved = await rows();
    expect(saved.every((r) => r.keyVersion === 1)).toBe(true);
    // The head is anchored outside the database (serve does this on a schedule).
    const anchored = await svc.api(adminKey, 'POST', '/v1/admin/ops/audit.anchor', {});
    expect(anchored.body.result).toMatchObject({ anchored: true, head: { seq: saved.length } });
  });

  it('entries are HMAC-sealed: edited and re-hashed with plain SHA-256 is caught as unkeyed', async () => {
    await sql(`UPDATE "audit_log" SET "reason" = 'nothing to see here' WHERE "seq" = 2`);
    await recomputeFrom(2);
    expect(await verify()).toMatchObject({ ok: false, brokenAt: 2, reason: 'unkeyed_entry' });
    await restore();
  });

  it('edited and re-sealed with a guessed key: hash_mismatch', async () => {
    await sql(`UPDATE "audit_log" SET "reason" = 'nothing to see here' WHERE "seq" = 3`);
    await recomputeFrom(3, createSecretKey(randomBytes(32)), 1);
    expect(await verify()).toMatchObject({ ok: false, brokenAt: 3, reason: 'hash_mismatch' });
    await restore();
  });

  it('deleted, reordered and truncated entries are caught without an operator-kept head', async () => {
    await sql(`DELETE FROM "audit_log" WHERE "seq" = 2`);
    expect(await verify()).toMatchObject({ ok: false, reason: 'sequence_gap' });
    await restore();

    await sql(`UPDATE "audit_log" SET "seq" = -2 WHERE "seq" = 2`);
    await sql(`UPDATE "audit_log" SET "seq" = 2 WHERE "seq" = 3`);
    await sql(`UPDATE "audit_log" SET "seq" = 3 WHERE "seq" = -2`);
    expect(await verify()).toMatchObject({ ok: false, brokenAt: 2 });
    await restore();

    // Cutting the tail leaves a valid chain: the signed anchor in the file still names the head.
    await sql(`DELETE FROM "audit_log" WHERE "seq" >= $1`, [saved.length - 1]);
    expect(await verify()).toMatchObject({ ok: false, reason: 'truncated' });
    // Cutting everything after entry 1 and re-sealing nothing: the same.
    await sql(`DELETE FROM "audit_log" WHERE "seq" > 1`);
    expect(await verify()).toMatchObject({ ok: false, reason: 'truncated' });
    await restore();
  });

  it('a tampered anchor file is itself a finding', async () => {
    const file = svc.config.audit.anchorFile;
    const original = readFileSync(file, 'utf8');
    const line = JSON.parse(original.trim().split('\n').at(-1)!) as { seq: number };
    // Moving the anchored head back (to hide a truncation) breaks its MAC.
    writeFileSync(file, original.replace(`"seq":${line.seq}`, `"seq":${line.seq - 2}`));
    expect(await verify()).toMatchObject({ ok: false, reason: 'anchor_invalid', anchorLine: expect.any(Number) });
    writeFileSync(file, original);
    expect((await verify()).ok).toBe(true);
  });

  it('rotating the audit key keeps older entries verifiable; plain SHA-256 history is accepted only up to the signed boundary', async () => {
    const oldRing = parseKeyring(svc.config.audit.hmacKeys!, 'AUDIT_HMAC_KEYS');
    const rotated = parseKeyring(`2:${randomBytes(32).toString('base64')},1:${oldRing.activeKey.export().toString('base64')}`);
    const keysOf = (ring: typeof rotated) => ({
      activeVersion: ring.activeVersion,
      activeKey: ring.activeKey,
      key: (v: number) => (ring.has(v) ? ring.get(v) : undefined),
    });
    const file = svc.config.audit.anchorFile;
    const after = new AuditService(new AuditRepository(svc.core.prisma, svc.core.db), () => new Date(), { keys: keysOf(rotated), anchors: new AuditAnchorFile(file, keysOf(rotated)) });
    await after.record({ actorType: 'ops', actorId: 'ops:test', action: 'test.rotated' });
    const v = await after.verify();
    expect(v).toMatchObject({ ok: true, count: saved.length + 1, keyed: true });
    expect((await rows()).map((r) => r.keyVersion)).toEqual([...saved.map(() => 1), 2]);
    // A process that lost version 1 cannot vouch for the entries sealed with it.
    const onlyNew = parseKeyring(`2:${rotated.activeKey.export().toString('base64')}`);
    const lost = new AuditService(new AuditRepository(svc.core.prisma, svc.core.db), () => new Date(), { keys: keysOf(onlyNew) });
    expect(await lost.verify()).toMatchObject({ ok: false, brokenAt: 1, reason: 'unknown_key' });
    await sql(`DELETE FROM "audit_log" WHERE "seq" > $1`, [saved.length]);

    // An install upgraded from the plain chain: its unkeyed history ends where the signed
    // `upgrade` anchor says; a later entry rewritten as plain SHA-256 is not accepted.
    const legacyFile = path.join(mkdtempSync(path.join(tmpdir(), 'mbc-legacy-')), 'anchors.jsonl');
    await recomputeFrom(1); // all plain, as before the upgrade
    const upgraded = new AuditService(new AuditRepository(svc.core.prisma, svc.core.db), () => new Date(), { keys: keysOf(oldRing), anchors: new AuditAnchorFile(legacyFile, keysOf(oldRing)) });
    await upgraded.prepare();
    await upgraded.record({ actorType: 'ops', actorId: 'ops:test', action: 'test.after_upgrade' });
    expect(await upgraded.verify()).toMatchObject({ ok: true, count: saved.length + 1 });
    await recomputeFrom(saved.length + 1); // the keyed entry rewritten as plain SHA-256
    expect(await upgraded.verify()).toMatchObject({ ok: false, brokenAt: saved.length + 1, reason: 'unkeyed_entry' });
    // A second prepare() does not move the boundary to bless the downgrade.
    await upgraded.prepare();
    expect(await upgraded.verify()).toMatchObject({ ok: false, reason: 'unkeyed_entry' });
    await sql(`DELETE FROM "audit_log" WHERE "seq" > $1`, [saved.length]);
    await restore();
  });
});
