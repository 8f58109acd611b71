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
   * Several entries in ONE transaction through the driver (appendChained). What AuditService's
   * group commit sends for the appends that are not part of a caller's transaction: five
   * statements and one commit for a whole batch instead of per entry, and the lock — cluster-wide
   * — held once per batch.
   */
  async appendMany(seals: readonly AuditSeal[]): Promise<StoredAuditEntry[]> {
    if (seals.length === 0) return [];
    return this.db.transaction((tx) =>
      appendChained(
        async (text, values) => {
          await tx.query(text, values);
        },
        async (text, values) => (await tx.query<HeadRow>(text, values)).rows,
        seals,
      ),
    );
  }

  /**
   * One entry inside the caller's transaction (an ops action audited with what it changed):
   * appendChained's statements on that transaction; committed or rolled back with the caller's work.
   */
  async append(seal: AuditSeal, tx: Tx): Promise<StoredAuditEntry> {
    const [entry] = await appendChained(
      async (text, values) => {
        await tx.$executeRawUnsafe(text, ...values);
      },
      (text, values) => tx.$queryRawUnsafe<HeadRow[]>(text, ...values),
      [seal],
    );
    return entry!;
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

interface HeadRow {
  head_seq: string;
  hash: string;
}

/**
 * The chain's append protocol, on one open transaction (the writer's contract in
 * audit/hash-chain.ts): the append lock, then — a statement of its own, so its snapshot sees the
 * last holder's commit — the head, `seals` called in order (each entry chained to the one
 * before), and one multi-row insert of exactly what was sealed.
 */
async function appendChained(
  exec: (text: string, values: unknown[]) => Promise<void>,
  rows: (text: string, values: unknown[]) => Promise<HeadRow[]>,
  seals: readonly AuditSeal[],
): Promise<StoredAuditEntry[]> {
  await exec('SELECT pg_advisory_xact_lock($1::bigint)', [AUDIT_LOCK_KEY]);
  const last = (await rows('SELECT seq::text AS head_seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1', []))[0];
  let head = last ? { seq: Number(last.head_seq), hash: last.hash } : null;
  const entries = seals.map((seal) => {
    const entry = seal(head);
    head = { seq: entry.seq, hash: entry.hash };
    return entry;
  });
  const column = <K extends keyof StoredAuditEntry>(k: K): Array<StoredAuditEntry[K]> => entries.map((e) => e[k]);
  await exec(
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
