import type { DbTransaction } from '../storage/database.js';

/** The two events this room emits (CONTRACT.md "Webhooks to the ticket service"). */
export type GrantEventType = 'mailbox.connected' | 'mailbox.reauth_required';

/**
 * What the connect flow and the token vault need from the transactional outbox: append inside
 * the transaction that changes the mailbox, then nudge dispatch once it committed. Wired to
 * `OutboxService` in the composition root.
 */
export interface MailboxEventSink {
  append(tx: DbTransaction, input: { tenantId: string; mailboxId: string; type: GrantEventType; data?: Record<string, string | number | boolean | null> }): Promise<string>;
  committed(eventIds: readonly string[]): Promise<void>;
}
