import { newId } from '../storage/ids.js';
import type { AuditRepository, StoredAuditEntry } from '../storage/audit.repository.js';
import type { Prisma } from '../storage/database.js';
import { sealEntry, verifyChain, type ChainEntry, type ChainHead, type ChainVerification } from './hash-chain.js';

export type AuditActorType = 'api_key' | 'ops' | 'system' | 'break_glass';

export interface AuditInput {
  tenantId?: string | null;
  actorType: AuditActorType;
  actorId: string;
  /** Dotted verb, e.g. `message.read`, `attachment.download`, `mailbox.purged`, `break_glass.opened`. */
  action: string;
  targetType?: string;
  targetId?: string;
  /** Human reason (ops actions, break-glass). Never mail content. */
  reason?: string;
  /** Ids and counts only, never content. */
  metadata?: Record<string, string | number | boolean | null | string[]>;
}

/** The append-only, hash-chained audit log (ARCHITECTURE: every content read and ops action). */
export class AuditService {
  constructor(
    private readonly repo: AuditRepository,
    private readonly clock: () => Date = () => new Date(),
  ) {}

  async record(input: AuditInput, tx?: Prisma.TransactionClient): Promise<StoredAuditEntry> {
    const createdAt = this.clock().toISOString();
    return this.repo.append(
      (head) =>
        sealEntry(head, {
          id: newId('audit'),
          tenantId: input.tenantId ?? null,
          actorType: input.actorType,
          actorId: input.actorId,
          action: input.action,
          targetType: input.targetType ?? null,
          targetId: input.targetId ?? null,
          reason: input.reason ?? null,
          metadata: input.metadata ?? {},
          createdAt,
        }),
      tx,
    );
  }

  /** Entries visible to one tenant, oldest first, keyset-paginated by seq. */
  async listForTenant(tenantId: string, afterSeq: number, limit: number): Promise<StoredAuditEntry[]> {
    return this.repo.page(afterSeq, limit, tenantId);
  }

  /** Walks the whole chain page by page; detects edited, removed and reordered entries. */
  async verify(opts: { expectedHead?: ChainHead; pageSize?: number } = {}): Promise<ChainVerification> {
    const pageSize = opts.pageSize ?? 1000;
    let after: ChainHead | undefined;
    let count = 0;
    for (;;) {
      const page = await this.repo.page(after?.seq ?? 0, pageSize);
      const isLast = page.length < pageSize;
      const result = verifyChain(page.map((e): ChainEntry => ({ ...e })), {
        ...(after ? { after } : {}),
        ...(isLast && opts.expectedHead ? { expectedHead: opts.expectedHead } : {}),
      });
      if (!result.ok) return result;
      count += result.count;
      if (result.head) after = result.head;
      if (isLast) return { ok: true, count, head: after ?? null };
    }
  }
}
