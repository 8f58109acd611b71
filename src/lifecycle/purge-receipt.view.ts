import type { PurgeReceiptRecord } from '../storage/purge.repository.js';

/** The public form of a purge receipt (GET /v1/purges/:id). Never includes the kept token. */
export interface PurgeReceiptView {
  id: string;
  object: 'purge';
  mailboxId: string;
  provider: string;
  trigger: string;
  reason: string | null;
  status: 'running' | 'completed';
  steps: string[];
  counts: Record<string, number | string>;
  revoke: { status: string; attempts: number; error: string | null; retryPending: boolean };
  startedAt: string;
  completedAt: string | null;
}

export function purgeReceiptView(r: PurgeReceiptRecord): PurgeReceiptView {
  return {
    id: r.id,
    object: 'purge',
    mailboxId: r.mailboxId,
    provider: r.provider,
    trigger: r.trigger,
    reason: r.reason,
    status: r.status,
    steps: r.steps,
    counts: r.counts,
    revoke: { status: r.revokeStatus, attempts: r.revokeAttempts, error: r.revokeError, retryPending: r.revokeTokenEnc !== null },
    startedAt: r.startedAt.toISOString(),
    completedAt: r.completedAt ? r.completedAt.toISOString() : null,
  };
}
