import type { OutboxService } from '../events/outbox.service.js';
import { notifyEventsCommitted } from '../events/outbox.service.js';
import type { JobQueue } from '../jobs/job-queue.js';
import type { JobOutcome } from '../jobs/job-map.js';
import type { Logger } from '../observability/logger.js';
import { DEFAULT_SCAN_POLICY, nextScanState, type ScanPolicy, type ScanState } from '../scan/scan-policy.js';
import type { Scanner, ScanVerdict } from '../scan/scanner.port.js';
import type { AttachmentScanRecord, AttachmentScanRepository } from '../storage/attachment-scan.repository.js';
import type { BlobStore } from '../storage/blob.store.js';
import { scanColumns } from './scan-columns.js';

export interface AttachmentRescanDeps {
  attachments: AttachmentScanRepository;
  blobs: Pick<BlobStore, 'read' | 'delete'>;
  outbox: Pick<OutboxService, 'appendEvent'>;
  jobs: Pick<JobQueue, 'enqueue'> | null;
  scanner: { scanner: Scanner; configured: boolean };
  policy?: ScanPolicy;
  clock: () => Date;
  logger: Pick<Logger, 'info' | 'warn'>;
  /** Attachments per run (the job is scheduled every minute). */
  batchSize?: number;
}

/**
 * `scan.attachments`: scans attachments still `pending` — stored while clamd was down or not
 * configured, or whose scan errored and whose backoff time has come — from their encrypted blob.
 * Fail closed throughout: an error keeps the attachment pending (then `unscannable` after the
 * policy's attempts); only a clean verdict unlocks it; an infected one discards the content and
 * emits `attachment.infected` in the same transaction as the verdict. Every scan that ends the
 * `pending` state (clean, infected, unscannable) also emits `attachment.scanned`, in the same
 * transaction, so a consumer that saw the attachment `pending` in `message.received` learns the
 * outcome without polling (after `attachment.infected` when both are emitted).
 */
export class AttachmentRescanService {
  readonly #policy: ScanPolicy;

  constructor(private readonly d: AttachmentRescanDeps) {
    this.#policy = d.policy ?? DEFAULT_SCAN_POLICY;
  }

  async run(attachmentIds?: string[]): Promise<JobOutcome> {
    if (!this.d.scanner.configured) return { status: 'skipped', reason: 'no scanner configured' };
    if (!(await this.d.scanner.scanner.ping())) return { status: 'skipped', reason: 'scanner unreachable' };
    const due = await this.d.attachments.listDue(this.d.clock(), this.d.batchSize ?? 50, attachmentIds);
    const counts = { clean: 0, infected: 0, pending: 0, unscannable: 0 };
    for (const a of due) {
      const status = await this.#rescan(a);
      counts[status]++;
    }
    if (due.length > 0) this.d.logger.info({ scanned: due.length, ...counts }, 'attachments rescanned');
    return { status: 'done', detail: { scanned: due.length, ...counts } };
  }

  async #rescan(a: AttachmentScanRecord): Promise<ScanState['status']> {
    const now = this.d.clock();
    let verdict: ScanVerdict;
    try {
      verdict = await this.d.scanner.scanner.scan(this.d.blobs.read(a.blobId!), { contentType: a.contentType, sizeBytes: a.size });
    } catch (err) {
      // The blob itself failed to decrypt/read: that is not a scanner verdict; count an attempt.
      this.d.logger.warn({ err, attachmentId: a.id }, 'attachment content unreadable for rescan');
      verdict = { status: 'error', reason: 'protocol' };
    }
    const current: ScanState = { status: 'pending', attempts: a.scanAttempts, nextAttemptAt: a.nextScanAt, lastError: null };
    const attempts = verdict.status === 'not_configured' ? a.scanAttempts : a.scanAttempts + 1;
    const state = nextScanState(current, verdict, attempts, now, this.#policy);
    const eventIds = await this.d.attachments.transaction(async (tx) => {
      const updated = await this.d.attachments.update(tx, a.id, { ...scanColumns(state), ...(state.status === 'infected' ? { blobId: null } : {}) });
      if (!updated || state.status === 'pending') return [];
      const refs = { messageId: a.messageId, attachmentId: a.id };
      const ids: string[] = [];
      if (state.status === 'infected') ids.push((await this.d.outbox.appendEvent(tx, { tenantId: a.tenantId, mailboxId: a.mailboxId, type: 'attachment.infected', refs })).id);
      ids.push((await this.d.outbox.appendEvent(tx, { tenantId: a.tenantId, mailboxId: a.mailboxId, type: 'attachment.scanned', refs })).id);
      return ids;
    });
    if (state.status === 'infected') await this.d.blobs.delete([a.blobId!]);
    if (this.d.jobs && eventIds.length > 0) await notifyEventsCommitted(this.d.jobs, eventIds, this.d.logger);
    return state.status;
  }
}
