import type { Database, Prisma, PrismaClient } from './database.js';

/** Hashed fields of one audit entry, exactly as stored (createdAt as an ISO string). */
export interface AuditFields {
  id: string;
  tenantId: string | null;
  actorType: string;
  actorId: string;
  action: string;
  targetType: string | null;
  targetId: string | null;
  reason: string | null;
  metadata: Record<string, unknown>;
  createdAt: string;
}

export interface StoredAuditEntry extends AuditFields {
  seq: number;
  prevHash: string;
  hash: string;
  /** Audit key version (HMAC); null for a plain SHA-256 entry written before the chain was keyed. */
  keyVersion: number | null;
}

type Tx = Prisma.TransactionClient;

/** Builds the next entry from the chain's head (null: the chain is empty). */
export type AuditSeal = (head: { seq: number; hash: string } | null) => StoredAuditEntry;

// Serialises appends across processes so the chain never forks.
const AUDIT_LOCK_KEY = 727_384_616;

export class AuditRepository {
  constructor(
    private readonly prisma: PrismaClient,
    private readonly db: Pick<Database, 'transaction'>,
  ) {}

  /**
   * Several entries in ONE transaction through the driver: the append lock, one read of the head,
   * `seals` called in order (each entry chained to the one before), one multi-row insert. What
   * AuditService's group commit sends for the appends that are not part of a caller's transaction:
   * five statements and one commit for a whole batch instead of per entry, and the lock —
   * cluster-wide — held once per batch.
   */
  async appendMany(seals: readonly AuditSeal[]): Promise<StoredAuditEntry[]> {
    if (seals.length === 0) return [];
    return this.db.transaction(async (tx) => {
      await tx.query('SELECT pg_advisory_xact_lock($1)', [AUDIT_LOCK_KEY]);
      // A statement of its own after the lock: its snapshot then sees the last holder's commit.
      const last = (await tx.query<{ head_seq: string; hash: string }>('SELECT seq::text AS head_seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1')).rows[0];
      let head = last ? { seq: Number(last.head_seq), hash: last.hash } : null;
      const entries = seals.map((seal) => {
        const entry = seal(head);
        head = { seq: entry.seq, hash: entry.hash };
        return entry;
      });
      const column = <K extends keyof StoredAuditEntry>(k: K): Array<StoredAuditEntry[K]> => entries.map((e) => e[k]);
      await tx.query(
        `INSERT INTO audit_log (seq, id, "tenantId", "actorType", "actorId", action, "targetType", "targetId", reason, metadata, "prevHash", hash, "keyVersion", "createdAt")
         SELECT x.seq, x.id, x.tid, x.at, x.aid, x.act, x.tt, x.tgt, x.reason, x.meta::jsonb, x.prev, x.hash, x.kv, x.created::timestamp(3)
           FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::int[], $14::text[])
             AS x(seq, id, tid, at, aid, act, tt, tgt, reason, meta, prev, hash, kv, created)`,
        [
          column('seq'),
          column('id'),
          column('tenantId'),
          column('actorType'),
          column('actorId'),
          column('action'),
          column('targetType'),
          column('targetId'),
          column('reason'),
          entries.map((e) => JSON.stringify(e.metadata)),
          column('prevHash'),
          column('hash'),
          column('keyVersion'),
          column('createdAt'),
        ],
      );
      return entries;
    });
  }

  /**
   * One entry inside the caller's transaction (an ops action audited with what it changed): the
   * append lock, the head, `seal`'s entry inserted; committed or rolled back with the caller's work.
   */
  async append(seal: AuditSeal, tx: Tx): Promise<StoredAuditEntry> {
    await tx.$executeRaw`SELECT pg_advisory_xact_lock(${AUDIT_LOCK_KEY})`;
    const last = await tx.auditEntry.findFirst({ orderBy: { seq: 'desc' }, select: { seq: true, hash: true } });
    const entry = seal(last ? { seq: Number(last.seq), hash: last.hash } : null);
    await tx.auditEntry.create({
      data: {
        seq: BigInt(entry.seq),
        id: entry.id,
        tenantId: entry.tenantId,
        actorType: entry.actorType,
        actorId: entry.actorId,
        action: entry.action,
        targetType: entry.targetType,
        targetId: entry.targetId,
        reason: entry.reason,
        metadata: entry.metadata as Prisma.InputJsonValue,
        prevHash: entry.prevHash,
        hash: entry.hash,
        keyVersion: entry.keyVersion,
        createdAt: new Date(entry.createdAt),
      },
    });
    return entry;
  }

  /** Entries in chain order, `afterSeq` exclusive. */
  async page(afterSeq: number, limit: number, tenantId?: string): Promise<StoredAuditEntry[]> {
    const rows = await this.prisma.auditEntry.findMany({
      where: { seq: { gt: BigInt(afterSeq) }, ...(tenantId ? { tenantId } : {}) },
      orderBy: { seq: 'asc' },
      take: limit,
    });
    return rows.map((r) => toStored(r));
  }

  /** The first entry (its hash names the chain), the last one, and the last plain SHA-256 one. */
  async ends(): Promise<{ first: StoredAuditEntry | null; last: StoredAuditEntry | null; lastUnkeyedSeq: number | null }> {
    const [first, last, unkeyed] = await Promise.all([
      this.prisma.auditEntry.findFirst({ orderBy: { seq: 'asc' } }),
      this.prisma.auditEntry.findFirst({ orderBy: { seq: 'desc' } }),
      this.prisma.auditEntry.findFirst({ where: { keyVersion: null }, orderBy: { seq: 'desc' }, select: { seq: true } }),
    ]);
    return {
      first: first ? toStored(first) : null,
      last: last ? toStored(last) : null,
      lastUnkeyedSeq: unkeyed ? Number(unkeyed.seq) : null,
    };
  }
}

type AuditRow = NonNullable<Awaited<ReturnType<PrismaClient['auditEntry']['findFirst']>>>;

function toStored(r: AuditRow): StoredAuditEntry {
  return {
    seq: Number(r.seq),
    id: r.id,
    tenantId: r.tenantId,
    actorType: r.actorType,
    actorId: r.actorId,
    action: r.action,
    targetType: r.targetType,
    targetId: r.targetId,
    reason: r.reason,
    metadata: (r.metadata ?? {}) as Record<string, unknown>,
    prevHash: r.prevHash,
    hash: r.hash,
    keyVersion: r.keyVersion ?? null,
    createdAt: r.createdAt.toISOString(),
  };
}
