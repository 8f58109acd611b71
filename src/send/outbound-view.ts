import type { OutboundRepository, OutboundRow, OutboundStatus } from '../storage/outbound.repository.js';

/** `GET /v1/outbound/:id`: status only, never recipients or content. */
export interface OutboundView {
  id: string;
  object: 'outbound';
  kind: 'reply' | 'new';
  status: OutboundStatus;
  failure: { code: string; reason: string } | null;
  /** The message replied to (null for a new message). */
  messageId: string | null;
  mailboxId: string;
  threadKey: string | null;
  providerMessageId: string | null;
  providerThreadId: string | null;
  attempts: number;
  createdAt: string;
  sentAt: string | null;
}

export function outboundView(row: OutboundRow): OutboundView {
  return {
    id: row.id,
    object: 'outbound',
    kind: row.kind,
    status: row.status,
    failure: row.status === 'failed' ? { code: row.failureCode ?? 'unknown', reason: row.failureReason ?? '' } : null,
    messageId: row.replyToMessageId,
    mailboxId: row.mailboxId,
    threadKey: row.threadKey,
    providerMessageId: row.providerMessageId,
    providerThreadId: row.providerThreadId,
    attempts: row.attempts,
    createdAt: row.createdAt.toISOString(),
    sentAt: row.sentAt?.toISOString() ?? null,
  };
}

export class OutboundQueryService {
  constructor(private readonly repo: Pick<OutboundRepository, 'findForTenant'>) {}

  async get(tenantId: string, id: string): Promise<OutboundView | null> {
    const row = await this.repo.findForTenant(tenantId, id);
    return row ? outboundView(row) : null;
  }
}
