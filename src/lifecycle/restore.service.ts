import type { AuditService } from '../audit/audit.service.js';
import type { DekOwnerType } from '../crypto/data-key.port.js';
import type { PurgeRepository } from '../storage/purge.repository.js';
import type { RestoreRepository } from '../storage/restore.repository.js';

export interface LedgerEntry {
  ownerType: DekOwnerType;
  ownerId: string;
  shreddedAt: Date;
}

/** The key store's side of a restore (`DataKeyRepository`). */
export interface RestoreKeyStore {
  ledger(): Promise<LedgerEntry[]>;
  applyLedger(entries: readonly LedgerEntry[]): Promise<number>;
  ownersWithKeys(type: DekOwnerType, ids: readonly string[]): Promise<Set<string>>;
}

export interface RestoreOutcome {
  /** Keys the restored key store held for owners a ledger or a purge receipt names: destroyed again. */
  keysDestroyedAgain: number;
  /** Owners in the merged shred ledger. */
  ledgerEntries: number;
  /** Restored mailboxes without a key (purged since the backup): their rows deleted. */
  mailboxesDeleted: number;
  /** Undelivered webhook deliveries now `held_after_restore`. */
  deliveriesHeld: number;
}

/**
 * What makes a restored backup safe to serve (docs/operations.md, restore):
 * 1. the shred ledger that the restore replaced (newer than the backup) is merged into the restored
 *    key store's, with every mailbox a restored purge receipt names, and every key the merged
 *    ledger names is destroyed again;
 * 2. every restored mailbox that has no key any more is deleted, quietly (its purge was announced
 *    when it happened; no provider call, no new event);
 * 3. every webhook delivery not delivered at backup time is held until an operator releases it.
 * Idempotent: running it again after an interruption finds nothing more to do.
 */
export class RestoreService {
  constructor(
    private readonly deps: {
      keys: RestoreKeyStore;
      restore: RestoreRepository;
      purge: Pick<PurgeRepository, 'deleteMessageBatch' | 'deleteBatch' | 'transaction' | 'deleteMailbox'>;
      audit: AuditService;
      clock: () => Date;
    },
  ) {}

  async reshredAndHold(input: { replacedLedger: readonly LedgerEntry[]; backupCreatedAt: string; actorId: string }): Promise<RestoreOutcome> {
    const { keys, restore, audit, clock } = this.deps;
    const now = clock();
    const fromReceipts = (await restore.purgedMailboxIds()).map((id) => ({ ownerType: 'mailbox' as const, ownerId: id, shreddedAt: now }));
    const keysDestroyedAgain = await keys.applyLedger([...input.replacedLedger, ...fromReceipts]);
    const ledgerEntries = (await keys.ledger()).length;

    const keyless: string[] = [];
    for (let after = ''; ; ) {
      const page = await restore.mailboxIdsAfter(after);
      if (page.length === 0) break;
      const withKey = await keys.ownersWithKeys('mailbox', page);
      keyless.push(...page.filter((id) => !withKey.has(id)));
      after = page[page.length - 1]!;
    }
    for (const mailboxId of keyless) await this.deleteMailbox(mailboxId);
    await restore.closeRunningReceipts(keyless, now);

    const held = await restore.holdUndelivered(now);
    const outcome: RestoreOutcome = { keysDestroyedAgain, ledgerEntries, mailboxesDeleted: keyless.length, deliveriesHeld: held.deliveries + held.fannedOut };
    await audit.record({
      actorType: 'ops',
      actorId: input.actorId,
      action: 'backup.restored',
      metadata: { backupCreatedAt: input.backupCreatedAt, ...outcome, mailboxIds: keyless.slice(0, 100) },
    });
    return outcome;
  }

  private async deleteMailbox(mailboxId: string): Promise<void> {
    const { purge } = this.deps;
    for (;;) {
      const batch = await purge.deleteMessageBatch(mailboxId);
      if (batch.messages === 0 && batch.blobs === 0) break;
    }
    for (const table of ['thread_refs', 'blobs', 'outbound_messages', 'outbox_events', 'connect_sessions', 'break_glass_sessions'] as const) {
      while ((await purge.deleteBatch(table, mailboxId)) > 0);
    }
    await purge.transaction((tx) => purge.deleteMailbox(tx, mailboxId));
  }
}
