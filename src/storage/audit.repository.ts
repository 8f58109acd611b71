import type { Prisma, PrismaClient } from './database.js';

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

// Serialises appends across processes so the chain never forks.
const AUDIT_LOCK_KEY = 727_384_616;

export class AuditRepository {
  constructor(private readonly prisma: PrismaClient) {}

  /**
   * Runs `build` with the current head under the append lock and inserts what it returns, in
   * one transaction (or inside the caller's transaction when `tx` is given).
   */
  async append(
    seal: (head: { seq: number; hash: string } | null) => StoredAuditEntry,
    tx?: Tx,
  ): Promise<StoredAuditEntry> {
    const run = async (t: Tx): Promise<StoredAuditEntry> => {
      await t.$executeRaw`SELECT pg_advisory_xact_lock(${AUDIT_LOCK_KEY})`;
      const last = await t.auditEntry.findFirst({ orderBy: { seq: 'desc' }, select: { seq: true, hash: true } });
      const entry = seal(last ? { seq: Number(last.seq), hash: last.hash } : null);
      await t.auditEntry.create({
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
    };
    return tx ? run(tx) : this.prisma.$transaction(run);
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
