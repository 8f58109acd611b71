import type { Prisma } from './database.js';

type Tx = Prisma.TransactionClient;

/**
 * `thread_refs`: blind index of a Message-ID → thread key, per mailbox. Bound to one mailbox and
 * one transaction, so the mappings commit or roll back with the message that introduced them.
 * Implements ingest's ThreadIndex port structurally; ids are hashed with `hash` (the HMAC blind
 * index) so no Message-ID is stored in plaintext.
 */
export class ThreadRefRepository {
  constructor(
    private readonly tx: Tx,
    private readonly mailboxId: string,
    private readonly hash: (messageId: string) => string,
  ) {}

  async lookup(messageIds: readonly string[]): Promise<ReadonlyMap<string, string>> {
    if (messageIds.length === 0) return new Map();
    const byIndex = new Map<string, string>();
    for (const id of messageIds) byIndex.set(this.hash(id), id);
    const rows = await this.tx.threadRef.findMany({
      where: { mailboxId: this.mailboxId, refIndex: { in: [...byIndex.keys()] } },
      select: { refIndex: true, threadKey: true },
    });
    const found = new Map<string, string>();
    for (const r of rows) {
      const id = byIndex.get(r.refIndex);
      if (id !== undefined) found.set(id, r.threadKey);
    }
    return found;
  }

  /** First writer wins (ON CONFLICT DO NOTHING): a delivered thread key never moves. */
  async record(messageIds: readonly string[], threadKey: string): Promise<void> {
    if (messageIds.length === 0) return;
    const data = [...new Set(messageIds.map((id) => this.hash(id)))].map((refIndex) => ({ mailboxId: this.mailboxId, refIndex, threadKey }));
    await this.tx.threadRef.createMany({ data, skipDuplicates: true });
  }
}
