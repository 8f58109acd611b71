import { isCryptoError } from '../crypto/crypto-error.js';
import type { DataKeyService } from '../crypto/data-key.service.js';
import type { MailboxAccess, MailboxRecord, MailboxRepository, MailboxStatus } from '../storage/mailbox.repository.js';
import { CONNECTED_BY_AAD } from './message-content.js';

export interface MailboxView {
  id: string;
  object: 'mailbox';
  provider: 'google' | 'microsoft';
  /**
   * The connected address; null when it cannot be decrypted because the mailbox's data key is
   * gone: being purged (`disconnecting`), or a row brought back by a database restore after its
   * purge (docs/data-lifecycle.md, "After a restore").
   */
  address: string | null;
  access: MailboxAccess;
  /** A shared mailbox: the member whose grant reads it; null otherwise (or when the key is gone). */
  connectedBy: string | null;
  status: MailboxStatus;
  statusReason: string | null;
  grantedScopes: string[];
  sync: {
    state: string;
    error: string | null;
    backfillCompletedAt: string | null;
    lastSyncedAt: string | null;
    lastPushAt: string | null;
    watchExpiresAt: string | null;
  };
  createdAt: string;
  updatedAt: string;
}

/** Reads mailboxes for their tenant and decrypts the address (the only content a mailbox row holds). */
export class MailboxQueryService {
  constructor(
    private readonly mailboxes: MailboxRepository,
    private readonly dataKeys: DataKeyService,
  ) {}

  async get(tenantId: string, mailboxId: string): Promise<MailboxView | null> {
    const row = await this.mailboxes.findForTenant(tenantId, mailboxId);
    return row ? this.view(row) : null;
  }

  /** `limit + 1` rows are fetched so the caller can tell whether there is a next page. */
  async list(tenantId: string, opts: { afterId?: string; limit: number; status?: MailboxStatus }): Promise<MailboxView[]> {
    const rows = await this.mailboxes.listForTenant(tenantId, { ...opts, limit: opts.limit + 1 });
    return Promise.all(rows.map((r) => this.view(r)));
  }

  async address(row: Pick<MailboxRecord, 'id' | 'addressEnc'>): Promise<string> {
    const plain = await this.dataKeys.decryptFor({ type: 'mailbox', id: row.id }, row.addressEnc, {
      table: 'mailboxes',
      column: 'addressEnc',
      rowId: row.id,
    });
    return plain.toString('utf8');
  }

  async view(row: MailboxRecord): Promise<MailboxView> {
    const iso = (d: Date | null): string | null => (d ? d.toISOString() : null);
    let address: string | null;
    let connectedBy: string | null = null;
    try {
      address = await this.address(row);
      if (row.connectedByEnc) connectedBy = (await this.dataKeys.decryptFor({ type: 'mailbox', id: row.id }, row.connectedByEnc, CONNECTED_BY_AAD(row.id))).toString('utf8');
    } catch (err) {
      // A mailbox being purged has its key shredded before its row goes, and a restore can bring
      // back the row of a mailbox purged since the backup: list it without its address rather than
      // fail the whole list. Any other decryption failure is a real fault and stays one.
      if (!isCryptoError(err, 'key_destroyed')) throw err;
      address = null;
    }
    return {
      id: row.id,
      object: 'mailbox',
      provider: row.provider,
      address,
      access: row.access,
      connectedBy,
      status: row.status,
      statusReason: row.statusReason,
      // Rows connected before the Microsoft duplicate fix may hold offline_access twice.
      grantedScopes: [...new Set(row.grantedScopes)],
      sync: {
        state: row.syncState,
        error: row.syncError,
        backfillCompletedAt: iso(row.backfillCompletedAt),
        lastSyncedAt: iso(row.lastSyncedAt),
        lastPushAt: iso(row.lastPushAt),
        watchExpiresAt: iso(row.watchExpiresAt ?? row.subscriptionExpiresAt),
      },
      createdAt: row.createdAt.toISOString(),
      updatedAt: row.updatedAt.toISOString(),
    };
  }
}
