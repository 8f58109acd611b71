// Content reads are audited in group commits: entries recorded at the same time share one
// transaction (one hold of the cluster-wide append lock, one commit), each `record` resolves only
// once its entry is committed, writers in several processes keep one unbroken chain, and an entry
// that cannot be written fails alone.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AUDIT_BATCH_MAX, AuditService, type AuditInput } from '../../src/audit/audit.service.js';
import { parseKeyring } from '../../src/crypto/keyring.js';
import { AuditRepository, type AuditSeal, type StoredAuditEntry } from '../../src/storage/audit.repository.js';
import { startTestService, type TestService } from '../helpers/test-service.js';

let svc: TestService;

beforeAll(async () => {
  svc = await startTestService({ workers: false });
}, 60_000);
afterAll(async () => svc?.close());

/** A repository that counts the transactions it writes entries in (each `appendMany` is one). */
class CountingRepository extends AuditRepository {
  batches: number[] = [];
  override async appendMany(seals: readonly AuditSeal[]): Promise<StoredAuditEntry[]> {
    this.batches.push(seals.length);
    return super.appendMany(seals);
  }
}

/** An audit service over the test service's database and audit key (as another process would be). */
function auditService(): { service: AuditService; repo: CountingRepository } {
  const ring = parseKeyring(svc.config.audit.hmacKeys!, 'AUDIT_HMAC_KEYS');
  const keys = { activeVersion: ring.activeVersion, activeKey: ring.activeKey, key: (v: number) => (ring.has(v) ? ring.get(v) : undefined) };
  const repo = new CountingRepository(svc.core.prisma, svc.core.db);
  return { service: new AuditService(repo, () => new Date(), { keys }), repo };
}

const read = (i: number, metadata: AuditInput['metadata'] = { i }): AuditInput => ({
  tenantId: 'ten_group_commit',
  actorType: 'api_key',
  actorId: 'key_group_commit',
  action: 'message.read',
  targetType: 'message',
  targetId: `msg_${i}`,
  metadata,
});

async function stored(): Promise<Array<{ seq: string; id: string }>> {
  return (await svc.core.db.sql.query<{ seq: string; id: string }>('SELECT seq::text AS seq, id FROM audit_log ORDER BY audit_log.seq')).rows;
}

describe('audit group commit', () => {
  it('writes entries recorded at the same time in a few transactions, each resolved once committed, as one verified chain', async () => {
    const { service, repo } = auditService();
    const before = (await stored()).length;
    const n = AUDIT_BATCH_MAX + 144; // more than one batch can hold
    const entries = await Promise.all(Array.from({ length: n }, (_, i) => service.record(read(i))));
    // Before: one transaction per entry. Now the first entry goes alone (nothing else was
    // queued yet) and the rest in batches of at most AUDIT_BATCH_MAX.
    expect(repo.batches.reduce((a, b) => a + b, 0)).toBe(n);
    expect(repo.batches.length).toBeLessThanOrEqual(3);
    expect(Math.max(...repo.batches)).toBeLessThanOrEqual(AUDIT_BATCH_MAX);
    // Each caller got its own entry, in the order they were recorded, with no gap.
    expect(entries.map((e) => e.targetId)).toEqual(Array.from({ length: n }, (_, i) => `msg_${i}`));
    expect(entries.map((e) => e.seq)).toEqual(Array.from({ length: n }, (_, i) => before + 1 + i));
    const rows = await stored();
    expect(rows.slice(before).map((r) => r.id)).toEqual(entries.map((e) => e.id));
    expect(await svc.core.audit.verify()).toMatchObject({ ok: true, count: before + n });
  });

  it('resolves a record only after its entry is committed (another connection sees it)', async () => {
    const { service } = auditService();
    const results = await Promise.all(
      Array.from({ length: 20 }, async (_, i) => {
        const entry = await service.record(read(1000 + i));
        const seen = await svc.core.db.sql.query('SELECT 1 FROM audit_log WHERE id = $1', [entry.id]);
        return seen.rows.length;
      }),
    );
    expect(results).toEqual(results.map(() => 1));
  });

  it('keeps one chain when several processes write batches at once, and with entries written inside callers’ transactions', async () => {
    const a = auditService();
    const b = auditService();
    const before = (await stored()).length;
    await Promise.all([
      ...Array.from({ length: 150 }, (_, i) => a.service.record(read(2000 + i))),
      ...Array.from({ length: 150 }, (_, i) => b.service.record(read(3000 + i))),
      // An ops action audited inside its own transaction takes the same lock.
      ...Array.from({ length: 5 }, (_, i) => svc.core.prisma.$transaction((tx) => svc.core.audit.record(read(4000 + i), tx))),
    ]);
    expect(a.repo.batches.length).toBeLessThan(150);
    expect(b.repo.batches.length).toBeLessThan(150);
    const rows = await stored();
    expect(rows.length).toBe(before + 305);
    expect(rows.map((r) => Number(r.seq))).toEqual(rows.map((_, i) => i + 1));
    expect(await svc.core.audit.verify()).toMatchObject({ ok: true, count: before + 305 });
  });

  it('fails only the entry that cannot be written; the others of its batch are committed', async () => {
    const { service } = auditService();
    const before = (await stored()).length;
    // Postgres refuses U+0000 in jsonb: this entry's insert fails, and with it its batch's transaction.
    const outcomes = await Promise.allSettled(Array.from({ length: 30 }, (_, i) => service.record(read(5000 + i, i === 17 ? { name: 'a\u0000b' } : { i }))));
    expect(outcomes.filter((o) => o.status === 'rejected')).toHaveLength(1);
    expect(outcomes[17]!.status).toBe('rejected');
    const written = outcomes.flatMap((o) => (o.status === 'fulfilled' ? [o.value] : []));
    expect(written).toHaveLength(29);
    const rows = await stored();
    expect(rows.slice(before).map((r) => r.id)).toEqual(written.map((e) => e.id));
    expect(await svc.core.audit.verify()).toMatchObject({ ok: true, count: before + 29 });
    // And the service goes on writing.
    await expect(service.record(read(6000))).resolves.toMatchObject({ seq: before + 30 });
  });

  it('fails a whole batch at once when the database fails (no attempt per entry), and writes the next batch when it is back', async () => {
    class FailingRepository extends CountingRepository {
      down = true;
      override async appendMany(seals: readonly AuditSeal[]): Promise<StoredAuditEntry[]> {
        if (this.down) {
          this.batches.push(seals.length);
          await new Promise((r) => setTimeout(r, 50)); // a connection attempt timing out
          throw Object.assign(new Error('Connection terminated due to connection timeout'), {});
        }
        return super.appendMany(seals);
      }
    }
    const ring = parseKeyring(svc.config.audit.hmacKeys!, 'AUDIT_HMAC_KEYS');
    const repo = new FailingRepository(svc.core.prisma, svc.core.db);
    const service = new AuditService(repo, () => new Date(), { keys: { activeVersion: ring.activeVersion, activeKey: ring.activeKey, key: (v: number) => (ring.has(v) ? ring.get(v) : undefined) } });
    const outcomes = await Promise.allSettled(Array.from({ length: 100 }, (_, i) => service.record(read(7000 + i))));
    expect(outcomes.every((o) => o.status === 'rejected')).toBe(true);
    // The first entry alone, then one batch of the 99 that queued meanwhile: two attempts, not 100.
    expect(repo.batches).toEqual([1, 99]);
    repo.down = false;
    const before = (await stored()).length;
    await expect(service.record(read(8000))).resolves.toMatchObject({ seq: before + 1 });
    expect(await svc.core.audit.verify()).toMatchObject({ ok: true, count: before + 1 });
  });
});
