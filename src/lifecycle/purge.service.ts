import type { AuditActorType, AuditService } from '../audit/audit.service.js';
import type { DataKeyService } from '../crypto/data-key.service.js';
import type { JobOutcome } from '../jobs/job-map.js';
import type { JobQueue } from '../jobs/job-queue.js';
import type { Logger } from '../observability/logger.js';
import type { PurgeMailboxRow, PurgeReceiptRecord, PurgeRepository, PurgeTrigger, RevokeStatus } from '../storage/purge.repository.js';
import type { LifecycleEventWriter } from './lifecycle-event.writer.js';
import type { ProviderName } from '../providers/mail-provider.port.js';
import type { RevokeResult, TeardownMailbox, TeardownPort } from '../providers/ports.js';
import type { CredentialReader } from './provider-teardown.port.js';
import { Backoff } from '../retry/backoff.js';

/**
 * The steps of a purge, in order. Each one is recorded in `purge_receipts.steps` when done, so
 * a purge interrupted by a crash resumes at the first step not recorded. Every step is
 * idempotent (a step that ran but was not recorded runs again harmlessly).
 */
export const PURGE_STEPS = ['disconnecting', 'jobs_cancelled', 'watch_stopped', 'revoked', 'key_destroyed', 'rows_deleted', 'completed'] as const;
export type PurgeStep = (typeof PURGE_STEPS)[number];

export const REVOKE_TOKEN_AAD = (purgeId: string) => ({ table: 'purge_receipts', column: 'revokeTokenEnc', rowId: purgeId }) as const;

export interface PurgeActor {
  actorType: AuditActorType;
  actorId: string;
}

export interface PurgeServiceOptions {
  /** Delay before revoke retry `attempt` (1-based). Default: 1 min doubling, capped at 6 h. */
  revokeRetryDelayMs?: (attempt: number) => number;
  /** After this many failed attempts the kept token is discarded and the receipt says so. */
  maxRevokeAttempts?: number;
  /** Test seam: runs after each recorded step (a crash injected here must be resumable). */
  afterStep?: (step: PurgeStep, purgeId: string) => Promise<void> | void;
}

export interface PurgeStart {
  purgeId: string;
  /** False when a purge of this mailbox was already under way (or done): the same receipt. */
  created: boolean;
}

export interface PurgeDeps {
  repo: PurgeRepository;
  dataKeys: DataKeyService;
  audit: AuditService;
  jobs: Pick<JobQueue, 'enqueue' | 'cancelByKey'>;
  events: LifecycleEventWriter;
  teardown: Record<ProviderName, TeardownPort>;
  credentials: CredentialReader;
  logger: Logger;
  clock: () => Date;
  /**
   * The sync room's per-mailbox lock. Held by a running sync for its whole run; taking it once
   * after the status flip means no sync is writing any more (new ones skip a non-active mailbox).
   */
  syncLock?: { tryAcquire(mailboxId: string): Promise<{ release(): Promise<void> } | null> };
  /**
   * Drops the stored grant (refresh token / MSAL cache and account id) and any access token held
   * in memory (the token vault's `forget`). Called once the revoke step is recorded.
   */
  forgetCredential?: (mailboxId: string) => Promise<void>;
  /** How long to wait for a running sync to finish before shredding anyway. Default 60 s. */
  syncDrainMs?: number;
  sleep?: (ms: number) => Promise<void>;
  /** Counts completed purges and revoke outcomes (Prometheus). */
  metrics?: PurgeMetrics;
}

export interface PurgeMetrics {
  purgeCompleted(labels: { trigger: string; revoke: string }): void;
  revokeRetried(labels: { outcome: string }): void;
}

export class MailboxNotFoundError extends Error {
  override readonly name = 'MailboxNotFoundError';
}

const DEFAULT_MAX_REVOKE_ATTEMPTS = 12;

/**
 * Disconnect → stop → revoke → shred → delete → receipt → event → audit (issue 8). The local
 * purge never waits on a provider beyond one bounded call per step: a failed revoke keeps the
 * token under the tenant DEK and is retried by `lifecycle.revoke-retry`.
 */
export class PurgeService {
  private readonly maxRevokeAttempts: number;
  private readonly retryDelay: (attempt: number) => number;

  constructor(
    private readonly deps: PurgeDeps,
    private readonly opts: PurgeServiceOptions = {},
  ) {
    this.maxRevokeAttempts = opts.maxRevokeAttempts ?? DEFAULT_MAX_REVOKE_ATTEMPTS;
    const revokeBackoff = new Backoff({ baseMs: 60_000, capMs: 6 * 3600_000, floorMs: 30_000 });
    this.retryDelay = opts.revokeRetryDelayMs ?? ((n) => revokeBackoff.delayMs(n));
  }

  /**
   * Marks the mailbox `disconnecting` and creates the receipt in one transaction (reads and sends
   * refuse from the moment it commits), audits the request, then enqueues the purge job.
   * `tenantId` null = ops (any tenant). Idempotent: a second call returns the same receipt.
   */
  async start(input: { tenantId: string | null; mailboxId: string; trigger: PurgeTrigger; reason: string | null; actor: PurgeActor }): Promise<PurgeStart> {
    const { repo, audit } = this.deps;
    const result = await repo.transaction(async (tx) => {
      const mailbox = await repo.lockMailboxForTenant(tx, input.tenantId, input.mailboxId);
      if (!mailbox) {
        const done = await repo.latestReceiptForMailbox(input.tenantId, input.mailboxId, tx);
        if (done) return { purgeId: done.id, created: false, pending: null };
        throw new MailboxNotFoundError('mailbox not found');
      }
      if (mailbox.status === 'disconnecting') {
        const running = await repo.latestReceiptForMailbox(mailbox.tenantId, mailbox.id, tx);
        if (running) return { purgeId: running.id, created: false, pending: null };
      }
      await repo.markDisconnecting(tx, mailbox.id, `purge:${input.trigger}`);
      const receipt = await repo.createReceipt(tx, {
        tenantId: mailbox.tenantId,
        mailboxId: mailbox.id,
        provider: mailbox.provider,
        trigger: input.trigger,
        reason: input.reason,
        startedAt: this.deps.clock(),
      });
      await repo.completeStep(receipt.id, 'disconnecting', {}, tx);
      // Tells the ticket service at once that this mailbox is going away (the purge may take a
      // while); `mailbox.purged` follows with the receipt.
      const disconnected = await this.deps.events.append(tx, {
        tenantId: mailbox.tenantId,
        mailboxId: mailbox.id,
        type: 'mailbox.disconnected',
        refs: { purgeId: receipt.id },
        data: { purgeId: receipt.id, provider: mailbox.provider, status: 'disconnecting', trigger: input.trigger },
      });
      await audit.record(
        {
          tenantId: mailbox.tenantId,
          actorType: input.actor.actorType,
          actorId: input.actor.actorId,
          action: 'mailbox.disconnect_requested',
          targetType: 'mailbox',
          targetId: mailbox.id,
          ...(input.reason ? { reason: input.reason } : {}),
          metadata: { purgeId: receipt.id, trigger: input.trigger },
        },
        tx,
      );
      return { purgeId: receipt.id, created: true, pending: [disconnected] };
    });
    if (result.pending) await this.deps.events.dispatch(result.pending);
    await this.enqueue(result.purgeId);
    return { purgeId: result.purgeId, created: result.created };
  }

  async enqueue(purgeId: string): Promise<void> {
    await this.deps.jobs.enqueue('lifecycle.purge', { purgeId }, { singletonKey: purgeId }).catch((err: unknown) => {
      // The stale-purge sweep (lifecycle.reauth-expiry) re-enqueues running receipts.
      this.deps.logger.warn({ err, purgeId }, 'could not enqueue purge; the sweep will resume it');
    });
  }

  /** The `lifecycle.purge` job: runs every step not yet recorded. */
  async run(purgeId: string): Promise<JobOutcome> {
    const { repo } = this.deps;
    const receipt = await repo.findReceipt(purgeId);
    if (!receipt) return { status: 'skipped', reason: 'no such purge' };
    if (receipt.status === 'completed') return { status: 'skipped', reason: 'already completed' };
    const done = new Set(receipt.steps);
    const mailbox = await repo.findMailboxUnscoped(receipt.mailboxId);
    const teardownMailbox: TeardownMailbox = {
      id: receipt.mailboxId,
      tenantId: receipt.tenantId,
      provider: receipt.provider as ProviderName,
      subscriptionId: mailbox?.subscriptionId ?? null,
    };

    if (!done.has('jobs_cancelled')) {
      const cancelled = await this.cancelJobs(receipt.mailboxId);
      const drained = await this.drainSync(receipt.mailboxId);
      await this.step(receipt, 'jobs_cancelled', { counts: { jobsCancelled: cancelled, syncDrain: drained } });
    }

    if (!done.has('watch_stopped')) {
      const credential = mailbox ? await this.deps.credentials.read(mailbox) : null;
      const stop = await this.teardownFor(teardownMailbox.provider).stopWatch(teardownMailbox, credential);
      await this.step(receipt, 'watch_stopped', { counts: { watch: stop.status === 'failed' ? `failed: ${stop.error}` : stop.status } });
    }

    if (!done.has('revoked')) {
      await this.revokeStep(receipt, teardownMailbox, mailbox);
      // Microsoft: this *is* the revocation we can do — the MSAL cache is gone from storage and
      // memory. Google: the (revoked, or kept-for-retry under the tenant key) token is dropped.
      await this.deps.forgetCredential?.(receipt.mailboxId).catch((err: unknown) => {
        this.deps.logger.warn({ err, purgeId }, 'could not clear the stored credential; the row deletion removes it');
      });
    }

    if (!done.has('key_destroyed')) {
      // Crypto-shredding: from here on no copy of this mailbox's ciphertext — in the database or
      // in any backup — can be decrypted (docs/data-lifecycle.md).
      await this.deps.dataKeys.destroy({ type: 'mailbox', id: receipt.mailboxId });
      await this.step(receipt, 'key_destroyed');
    }

    if (!done.has('rows_deleted')) {
      await this.deleteRows(receipt);
      await this.step(receipt, 'rows_deleted');
    }

    await this.finish(purgeId);
    return { status: 'done', detail: { purgeId } };
  }

  /** The `lifecycle.revoke-retry` job. */
  async retryRevoke(purgeId: string): Promise<JobOutcome> {
    const { repo, dataKeys, audit } = this.deps;
    const receipt = await repo.findReceipt(purgeId);
    if (!receipt || receipt.revokeStatus !== 'failed' || !receipt.revokeTokenEnc) return { status: 'skipped', reason: 'nothing to retry' };
    const token = (await dataKeys.decryptFor({ type: 'tenant', id: receipt.tenantId }, receipt.revokeTokenEnc, REVOKE_TOKEN_AAD(receipt.id))).toString('utf8');
    const result = await this.teardownFor(receipt.provider as ProviderName).retryRevoke(token);
    const attempts = receipt.revokeAttempts + 1;
    this.deps.metrics?.revokeRetried({ outcome: result.status });
    if (result.status === 'failed') {
      if (attempts >= this.maxRevokeAttempts) {
        // Keeping a live token for ever is worse than giving up: discard it and say so.
        // The receipt and its audit entry in one transaction: no reader sees one without the other.
        await repo.transaction(async (tx) => {
          await repo.updateRevoke(receipt.id, { revokeStatus: 'failed', revokeError: `gave up after ${attempts} attempts: ${result.error}`, revokeTokenEnc: null, revokeAttempts: attempts }, tx);
          await audit.record({ tenantId: receipt.tenantId, actorType: 'system', actorId: 'lifecycle', action: 'mailbox.revoke_abandoned', targetType: 'mailbox', targetId: receipt.mailboxId, metadata: { purgeId: receipt.id, attempts } }, tx);
        });
        return { status: 'failed', reason: 'revoke abandoned' };
      }
      await repo.updateRevoke(receipt.id, { revokeStatus: 'failed', revokeError: result.error, revokeTokenEnc: receipt.revokeTokenEnc, revokeAttempts: attempts });
      await this.scheduleRevokeRetry(receipt.id, attempts);
      return { status: 'done', detail: { revoke: 'failed', attempts } };
    }
    await repo.transaction(async (tx) => {
      await repo.updateRevoke(receipt.id, { revokeStatus: result.status, revokeError: null, revokeTokenEnc: null, revokeAttempts: attempts }, tx);
      await audit.record({ tenantId: receipt.tenantId, actorType: 'system', actorId: 'lifecycle', action: 'mailbox.revoke_completed', targetType: 'mailbox', targetId: receipt.mailboxId, metadata: { purgeId: receipt.id, attempts, revokeStatus: result.status } }, tx);
    });
    return { status: 'done', detail: { revoke: result.status, attempts } };
  }

  /** Re-enqueues purges left running (a crash, a lost enqueue) and revoke retries that lost their job. */
  async resumeStale(olderThanMs: number): Promise<{ purges: number; revokes: number }> {
    const stale = await this.deps.repo.listRunningStartedBefore(new Date(this.deps.clock().getTime() - olderThanMs), 100);
    for (const r of stale) await this.enqueue(r.id);
    const failed = await this.deps.repo.listRevokeFailed(100);
    for (const r of failed) {
      await this.deps.jobs.enqueue('lifecycle.revoke-retry', { purgeId: r.id }, { singletonKey: r.id, startAfter: new Date(this.deps.clock().getTime() + this.retryDelay(r.revokeAttempts)) }).catch(() => undefined);
    }
    return { purges: stale.length, revokes: failed.length };
  }

  /**
   * After a database restore: rows of mailboxes purged since the backup come back, but their
   * DEKs do not (docs/data-lifecycle.md, backups). Restored mailbox rows without a key are purged
   * again; rows left without a mailbox are shredded and deleted. Idempotent.
   */
  async sweepShredded(actor: PurgeActor): Promise<{ mailboxesPurged: number; orphansDeleted: number }> {
    const { repo, dataKeys, audit } = this.deps;
    let mailboxesPurged = 0;
    for (const m of await repo.listShreddedMailboxes(500)) {
      await this.start({ tenantId: m.tenantId, mailboxId: m.id, trigger: 'ops', reason: 'data key already destroyed (purged before a restore)', actor });
      mailboxesPurged++;
    }
    let orphansDeleted = 0;
    for (const mailboxId of await repo.listOrphanMailboxIds(500)) {
      await dataKeys.destroy({ type: 'mailbox', id: mailboxId });
      const counts = await this.deleteOrphanRows(mailboxId);
      await audit.record({ actorType: actor.actorType, actorId: actor.actorId, action: 'mailbox.orphans_deleted', targetType: 'mailbox', targetId: mailboxId, metadata: counts });
      orphansDeleted++;
    }
    return { mailboxesPurged, orphansDeleted };
  }

  private async deleteOrphanRows(mailboxId: string): Promise<Record<string, number>> {
    const counts: Record<string, number> = {};
    const add = (delta: Record<string, number>) => {
      for (const [k, v] of Object.entries(delta)) counts[k] = (counts[k] ?? 0) + v;
    };
    for (;;) {
      const batch = await this.deps.repo.deleteMessageBatch(mailboxId);
      if (batch.messages === 0 && batch.blobs === 0) break;
      add(batch);
    }
    for (const table of ['thread_refs', 'blobs', 'outbound_messages', 'outbox_events', 'connect_sessions', 'break_glass_sessions'] as const) {
      for (;;) {
        const n = await this.deps.repo.deleteBatch(table, mailboxId);
        if (n === 0) break;
        add({ [table]: n });
      }
    }
    return counts;
  }

  private async step(receipt: PurgeReceiptRecord, step: PurgeStep, patch: Parameters<PurgeRepository['completeStep']>[2] = {}): Promise<void> {
    await this.deps.repo.completeStep(receipt.id, step, patch);
    await this.opts.afterStep?.(step, receipt.id);
  }

  private teardownFor(provider: ProviderName): TeardownPort {
    const t = this.deps.teardown[provider];
    if (!t) throw new Error(`no teardown for provider ${provider}`);
    return t;
  }

  private async cancelJobs(mailboxId: string): Promise<number> {
    const { jobs, repo } = this.deps;
    // Sync jobs are keyed by mailbox id; send jobs by outbound id (their rows go with the purge,
    // so a send job that slipped through finds nothing to send).
    let cancelled = await jobs.cancelByKey('sync.mailbox', mailboxId);
    for (const outboundId of await repo.queuedOutboundIds(mailboxId)) cancelled += await jobs.cancelByKey('send.outbound', outboundId);
    return cancelled;
  }

  /**
   * Waits for a sync that was already running when the status flipped: it may be about to write
   * a message (and, after the key is shredded, would even mint a new key). The final sweep in
   * `finish` catches anything that slips past a timeout.
   */
  private async drainSync(mailboxId: string): Promise<'idle' | 'waited' | 'timeout' | 'skipped'> {
    const lock = this.deps.syncLock;
    if (!lock) return 'skipped';
    const sleep = this.deps.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
    const deadline = Date.now() + (this.deps.syncDrainMs ?? 60_000);
    for (let waited = false; ; waited = true) {
      const held = await lock.tryAcquire(mailboxId);
      if (held) {
        await held.release();
        return waited ? 'waited' : 'idle';
      }
      if (Date.now() >= deadline) return 'timeout';
      await sleep(500);
    }
  }

  private async revokeStep(receipt: PurgeReceiptRecord, mailbox: TeardownMailbox, row: PurgeMailboxRow | null): Promise<void> {
    const credential = row ? await this.deps.credentials.read(row) : null;
    const result: RevokeResult = await this.teardownFor(mailbox.provider).revokeGrant(mailbox, credential);
    if (result.status === 'failed') {
      // The mailbox DEK is about to be destroyed: keep the token under the TENANT DEK, only for
      // the retry, and clear it on success. Recorded together with the step, so a crash cannot
      // lose it between shredding and the retry.
      const keep = result.retryToken
        ? await this.deps.dataKeys.encryptFor({ type: 'tenant', id: receipt.tenantId }, result.retryToken, REVOKE_TOKEN_AAD(receipt.id))
        : null;
      await this.step(receipt, 'revoked', { revokeStatus: 'failed', revokeError: result.error, revokeTokenEnc: keep, revokeAttempts: 1, counts: { revoke: 'failed' } });
      if (keep) await this.scheduleRevokeRetry(receipt.id, 1);
      return;
    }
    const status: RevokeStatus = result.status;
    await this.step(receipt, 'revoked', { revokeStatus: status, revokeError: null, revokeTokenEnc: null, revokeAttempts: status === 'revoked' ? 1 : 0 });
  }

  private async scheduleRevokeRetry(purgeId: string, attempt: number): Promise<void> {
    const startAfter = new Date(this.deps.clock().getTime() + this.retryDelay(attempt));
    await this.deps.jobs.enqueue('lifecycle.revoke-retry', { purgeId }, { singletonKey: purgeId, startAfter }).catch((err: unknown) => {
      this.deps.logger.warn({ err, purgeId }, 'could not enqueue revoke retry; the sweep will');
    });
  }

  private async deleteRows(receipt: PurgeReceiptRecord): Promise<void> {
    const { repo } = this.deps;
    const mailboxId = receipt.mailboxId;
    // Messages first (with addresses, attachments, blobs), batch by batch, counting as we go so a
    // resumed purge reports the total.
    for (;;) {
      const batch = await repo.deleteMessageBatch(mailboxId);
      if (batch.messages === 0 && batch.blobs === 0) break;
      await repo.addCounts(receipt.id, batch);
    }
    const deliveries = await repo.countWebhookDeliveriesOfMailbox(mailboxId);
    if (deliveries) await repo.addCounts(receipt.id, { webhookDeliveries: deliveries });
    const tables = [
      ['thread_refs', 'threadRefs'],
      ['blobs', 'blobs'],
      ['outbound_messages', 'outboundMessages'],
      ['outbox_events', 'outboxEvents'],
      ['connect_sessions', 'connectSessions'],
      ['break_glass_sessions', 'breakGlassSessions'],
    ] as const;
    for (const [table, key] of tables) {
      for (;;) {
        const n = await repo.deleteBatch(table, mailboxId);
        if (n === 0) break;
        await repo.addCounts(receipt.id, { [key]: n });
      }
    }
  }

  /**
   * One transaction: a last sweep for rows an in-flight sync may have written meanwhile, the
   * mailbox row, the receipt `completed`, the `mailbox.purged` event and the audit entry.
   */
  private async finish(purgeId: string): Promise<void> {
    const { repo, events, audit, dataKeys } = this.deps;
    const receipt = await repo.findReceipt(purgeId);
    if (!receipt || receipt.status === 'completed') return;
    // A sync job that was already running when the purge began may have created a fresh DEK and
    // written a message after the first pass; shred and sweep once more.
    await dataKeys.destroy({ type: 'mailbox', id: receipt.mailboxId });
    await this.deleteRows(receipt);
    const completedAt = this.deps.clock();
    const pending = await repo.transaction(async (tx) => {
      // Two runners of one purge (a retry overlapping a sweep) must not both finish it.
      if ((await repo.lockReceiptStatus(tx, receipt.id)) !== 'running') return null;
      const mailbox = await repo.lockMailboxForTenant(tx, null, receipt.mailboxId);
      const final = await repo.findReceipt(receipt.id, tx);
      const counts: Record<string, number | string> = { ...(final?.counts ?? receipt.counts), mailboxes: mailbox ? 1 : 0 };
      await repo.completeStep(receipt.id, 'completed', { counts }, tx);
      await repo.markCompleted(tx, receipt.id, completedAt);
      const event = await events.append(tx, {
        tenantId: receipt.tenantId,
        mailboxId: receipt.mailboxId,
        type: 'mailbox.purged',
        // Taken from the mailbox counter while the row still exists (it is deleted just below).
        ...(mailbox ? {} : { seq: 1n }),
        refs: { purgeId: receipt.id },
        data: {
          purgeId: receipt.id,
          provider: receipt.provider,
          status: 'purged',
          trigger: receipt.trigger,
          revokeStatus: final?.revokeStatus ?? receipt.revokeStatus,
          startedAt: receipt.startedAt.toISOString(),
          completedAt: completedAt.toISOString(),
          ...counts,
        },
      });
      await repo.deleteMailbox(tx, receipt.mailboxId);
      await audit.record(
        {
          tenantId: receipt.tenantId,
          actorType: 'system',
          actorId: 'lifecycle',
          action: 'mailbox.purged',
          targetType: 'mailbox',
          targetId: receipt.mailboxId,
          metadata: {
            purgeId: receipt.id,
            trigger: receipt.trigger,
            revokeStatus: final?.revokeStatus ?? receipt.revokeStatus,
            ...counts,
          },
        },
        tx,
      );
      return event;
    });
    if (!pending) return;
    this.deps.metrics?.purgeCompleted({ trigger: receipt.trigger, revoke: (await repo.findReceipt(receipt.id))?.revokeStatus ?? 'unknown' });
    await events.dispatch([pending]);
    this.deps.logger.info({ purgeId: receipt.id, mailboxId: receipt.mailboxId }, 'mailbox purged');
  }
}
