import { createHash } from 'node:crypto';
import { KeyDestroyedError } from '../crypto/crypto-error.js';
import type { DataKeyService } from '../crypto/data-key.service.js';
import type { OutboxService } from '../events/outbox.service.js';
import type { JobOutcome } from '../jobs/job-map.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { MailProvider, SendRequest, SendResult } from '../providers/mail-provider.port.js';
import { isProviderError, type ProviderError } from '../providers/provider-error.js';
import type { BlobStore } from '../storage/blob.store.js';
import type { DbTransaction } from '../storage/database.js';
import type { MailboxRepository } from '../storage/mailbox.repository.js';
import type { ClaimedOutbound, OutboundRepository, OutboundRow } from '../storage/outbound.repository.js';
import type { MailProviderSource } from './mail-provider-source.port.js';
import { decodeOutboundContent, OUTBOUND_CONTENT_AAD, type OutboundContent } from './outbound-content.js';
import { Backoff } from '../retry/backoff.js';

export interface OutboundSenderOptions {
  /**
   * How long a `sending` row belongs to the worker that claimed it after its last heartbeat. The
   * worker renews it every `heartbeatMs` for as long as the send runs (a 35 MB Gmail upload on a
   * slow link takes a while), so the lease only has to cover a dead worker: after it, another attempt takes
   * over and first looks for the copy the dead worker may have sent. 90 s keeps recovery within
   * 2 minutes while leaving the provider's search index at least a minute to show an accepted
   * message before that lookup.
   */
  leaseMs?: number;
  /** How often a running send renews its lease; default leaseMs / 6. */
  heartbeatMs?: number;
  /** Attempts (claims) before a retryable failure becomes `failed` / `retries_exhausted`. */
  maxAttempts?: number;
  /** Backoff for 5xx/network failures and 429s without Retry-After: full jitter below base × 2^(n-1), capped (src/retry/backoff.ts). */
  baseDelayMs?: number;
  maxDelayMs?: number;
  random?: () => number;
}

/** Test seams; production passes none. */
export interface OutboundSenderHooks {
  /** Runs after the provider accepted the message, before the database records it (crash tests). */
  afterProviderAccepted?(outboundId: string): Promise<void>;
}

export interface OutboundSenderDeps {
  outbound: Pick<OutboundRepository, 'claim' | 'findUnscoped' | 'markSent' | 'markFailed' | 'release' | 'heartbeat'>;
  mailboxes: Pick<MailboxRepository, 'findByIdUnscoped'>;
  blobs: Pick<BlobStore, 'readAll'>;
  dataKeys: Pick<DataKeyService, 'decryptFor' | 'getOrCreate'>;
  outbox: Pick<OutboxService, 'appendEvent'>;
  transaction: <T>(fn: (tx: DbTransaction) => Promise<T>) => Promise<T>;
  /** Called with the ids of events committed by a finished send (dispatch them promptly). */
  eventsCommitted: (eventIds: string[]) => Promise<void>;
  providers: MailProviderSource;
  logger: Pick<Logger, 'info' | 'warn' | 'error'>;
  metrics?: Pick<Metrics, 'counter'>;
  clock: () => Date;
  hooks?: OutboundSenderHooks;
  /**
   * The provider refused the message's From (Exchange's ErrorSendAsDenied): told so that requests
   * naming that address again are refused up front (SendAsDirectory.rememberDenied).
   */
  onSendAsDenied?: (mailboxId: string, fromAddress: string) => void | Promise<void>;
  /**
   * The provider sent the message from another address than its From (Exchange rewrote an alias
   * to the primary address: SendFromAliasEnabled is off): told so that requests naming that alias
   * are refused up front (SendAsDirectory.rememberRewritten).
   */
  onFromRewritten?: (mailboxId: string, fromAddress: string) => void | Promise<void>;
}

/** ProviderError reason of a refused From address (providers/microsoft/graph-send-as.ts SEND_AS_DENIED). */
const SEND_AS_DENIED = 'send_as_denied';

interface Failure {
  code: string;
  reason: string;
}

/** Default lease of a `sending` record after its last heartbeat. */
export const DEFAULT_SEND_LEASE_MS = 90_000;

/**
 * Worst case from a worker dying mid-send to another worker taking the record over: the send job
 * is retried after `jobRecoveryMs` (job-queue.ts deadWorkerRecoverySeconds: 67 s by default); if
 * the lease still runs then, the job comes back when it ends (≤ lease after the last heartbeat,
 * which is before the death) plus one poll.
 */
export function sendRecoveryBoundMs(leaseMs = DEFAULT_SEND_LEASE_MS, jobRecoveryMs = 67_000, pollMs = 2_000): number {
  return Math.max(jobRecoveryMs, leaseMs + pollMs);
}

const DEFAULTS: Required<Omit<OutboundSenderOptions, 'heartbeatMs'>> = {
  leaseMs: DEFAULT_SEND_LEASE_MS,
  maxAttempts: 12,
  baseDelayMs: 5_000,
  maxDelayMs: 15 * 60_000,
  random: Math.random,
};

/** Public, content-free reasons for permanent provider refusals. */
function permanentFailure(err: ProviderError): Failure {
  const detail = [err.status !== undefined ? `HTTP ${err.status}` : undefined, err.reason].filter(Boolean).join(', ');
  if (err.reason === SEND_AS_DENIED) {
    return {
      code: 'from_not_allowed',
      reason:
        'send_as_denied: the provider refused the From address — the connected account has neither Send As nor Send on Behalf permission for it (an Exchange administrator grants these); nothing was sent',
    };
  }
  switch (err.kind) {
    case 'auth_revoked':
      return { code: 'auth_revoked', reason: 'the mailbox’s authorization was revoked or has expired; the customer must reconnect the mailbox' };
    case 'not_found':
      return { code: 'not_found', reason: `the message being replied to no longer exists in the mailbox at the provider${detail ? ` (${detail})` : ''}` };
    default:
      return { code: 'invalid_request', reason: `the provider refused the message${detail ? ` (${detail})` : ''}` };
  }
}

/**
 * The `send.outbound` job: `queued → sending → sent | failed`, exactly once at the provider.
 *
 * Crash safety: the claim (attempts + 1, sendStartedAt) is committed BEFORE the provider call.
 * Any later attempt therefore knows an earlier one may have reached the provider, and asks the
 * provider for the generated Message-ID (`findByInternetMessageId`) before sending again; found
 * means sent. Gmail warns that even a 200 does not prove delivery and a failure does not prove
 * the opposite (provider-facts §1.5), so this check runs after every earlier attempt, not only
 * after crashes. `message.sent` / `message.send_failed` are appended in the same transaction as
 * the status change, fenced on the attempt number, so each is emitted once.
 */
export class OutboundSender {
  private readonly o: Required<OutboundSenderOptions>;
  private readonly outcomes: { inc(labels: { provider: string; outcome: string }): void } | undefined;
  private readonly rewrites: { inc(labels: { provider: string }): void } | undefined;

  constructor(
    private readonly deps: OutboundSenderDeps,
    options: OutboundSenderOptions = {},
  ) {
    const merged = { ...DEFAULTS, ...options };
    this.o = { ...merged, heartbeatMs: options.heartbeatMs ?? Math.max(250, Math.floor(merged.leaseMs / 6)) };
    this.outcomes = deps.metrics?.counter('mbc_outbound_sends_total', 'Outbound send attempts by provider and outcome', ['provider', 'outcome'] as const);
    this.rewrites = deps.metrics?.counter('mbc_outbound_from_rewritten_total', 'Messages the provider sent from another address than their From (an alias rewritten)', ['provider'] as const);
  }

  async handle(payload: { outboundId: string }): Promise<JobOutcome> {
    const id = payload.outboundId;
    const now = this.deps.clock();
    const claimed = await this.deps.outbound.claim(id, now, new Date(now.getTime() - this.o.leaseMs));
    if (!claimed) return this.notClaimed(id, now);
    // Renew the lease while this attempt runs; a dead worker stops renewing and loses it.
    const timer = setInterval(() => {
      this.deps.outbound.heartbeat(id, claimed.attempt, this.deps.clock()).catch((err: unknown) => this.deps.logger.warn({ err, outboundId: id }, 'outbound lease renewal failed'));
    }, this.o.heartbeatMs);
    try {
      return await this.attempt(claimed);
    } finally {
      clearInterval(timer);
    }
  }

  private async attempt(claimed: ClaimedOutbound): Promise<JobOutcome> {
    const { row, attempt } = claimed;
    const id = row.id;
    const mailbox = await this.deps.mailboxes.findByIdUnscoped(row.mailboxId);
    if (!mailbox || mailbox.status === 'purged' || mailbox.status === 'disconnecting') {
      return this.fail(claimed, { code: 'mailbox_not_active', reason: 'the mailbox was disconnected before the message could be sent' }, 'n/a');
    }
    if (mailbox.status === 'reauth_required') {
      return this.fail(claimed, { code: 'auth_revoked', reason: 'the mailbox needs to be reconnected by the customer (status reauth_required); nothing was sent' }, mailbox.provider);
    }

    let content: OutboundContent;
    try {
      content = decodeOutboundContent(await this.deps.dataKeys.decryptFor({ type: 'mailbox', id: row.mailboxId }, row.contentEnc, OUTBOUND_CONTENT_AAD(row.id)));
    } catch (err) {
      if (err instanceof KeyDestroyedError) return { status: 'skipped', reason: 'mailbox data was purged' };
      throw err;
    }

    let provider: MailProvider;
    try {
      provider = await this.deps.providers({ id: mailbox.id, provider: mailbox.provider, access: mailbox.access });
    } catch (err) {
      await this.deps.outbound.release(id, attempt, this.deps.clock());
      throw err;
    }

    try {
      if (attempt > 1) {
        // An earlier attempt was recorded: it may have reached the provider. Never send twice.
        const existing = await provider.findByInternetMessageId(content.internetMessageId);
        if (existing) {
          this.deps.logger.info({ outboundId: id, attempt }, 'outbound already at the provider; recorded as sent without re-sending');
          return await this.succeed(claimed, { providerMessageId: existing, providerThreadId: await threadOf(provider, existing) }, provider.name, true);
        }
      }
      if (attempt > this.o.maxAttempts) {
        return await this.fail(claimed, { code: 'retries_exhausted', reason: `the provider did not accept the message after ${this.o.maxAttempts} attempts` }, provider.name);
      }
      const mime = await this.deps.blobs.readAll(content.mime.blobId);
      if (mime.length !== content.mime.size || createHash('sha256').update(mime).digest('hex') !== content.mime.sha256) {
        return await this.fail(claimed, { code: 'content_unavailable', reason: 'the stored message could not be read back intact; nothing was sent' }, provider.name);
      }
      const request: SendRequest = {
        mime,
        internetMessageId: content.internetMessageId,
        // Each adapter uses the threading it understands (Gmail threadId, Graph reply on the original).
        ...(content.provider.threadId ? { providerThreadId: content.provider.threadId } : {}),
        ...(content.provider.replyToProviderMessageId ? { replyToProviderMessageId: content.provider.replyToProviderMessageId } : {}),
      };
      const result: SendResult = await provider.send(request);
      await this.deps.hooks?.afterProviderAccepted?.(id);
      await this.checkSentFrom(row.mailboxId, id, content.headers.from.address, result.sentFrom, provider.name);
      return await this.succeed(claimed, { providerMessageId: result.providerMessageId ?? null, providerThreadId: result.providerThreadId ?? null }, provider.name, false);
    } catch (err) {
      if (!isProviderError(err)) {
        // Ours (database, blob store) or the crash hook: hand the row back only if this is not a
        // simulated crash — a real crash cannot release, and the lease covers it.
        if (!(err instanceof SimulatedCrash)) await this.deps.outbound.release(id, attempt, this.deps.clock()).catch(() => false);
        throw err;
      }
      if (err.kind === 'rate_limited' || err.kind === 'transient') {
        if (attempt >= this.o.maxAttempts) {
          return this.fail(claimed, { code: 'retries_exhausted', reason: `the provider kept answering ${err.kind === 'rate_limited' ? 'rate limited' : 'with temporary errors'} for ${attempt} attempts` }, provider.name);
        }
        await this.deps.outbound.release(id, attempt, this.deps.clock());
        const afterMs = err.kind === 'rate_limited' && err.retryAfterMs !== undefined ? err.retryAfterMs : this.backoff(attempt);
        this.outcomes?.inc({ provider: provider.name, outcome: err.kind });
        this.deps.logger.warn({ outboundId: id, attempt, kind: err.kind, status: err.status, reason: err.reason, afterMs }, 'outbound send will be retried');
        return { status: 'retry', reason: err.kind, afterMs };
      }
      // Recorded (for every process, see SendAsDirectory) before the record fails; never throws into the send.
      if (err.reason === SEND_AS_DENIED) await Promise.resolve(this.deps.onSendAsDenied?.(row.mailboxId, content.headers.from.address)).catch(() => undefined);
      return this.fail(claimed, permanentFailure(err), provider.name);
    }
  }

  /**
   * Sent, but not from the address asked for: nothing can undo it, so say so (log and metric, no
   * address) and keep the next request for that address from going out the same way.
   */
  private async checkSentFrom(mailboxId: string, outboundId: string, requested: string, sentFrom: string | undefined, provider: string): Promise<void> {
    if (sentFrom === undefined || sentFrom.toLowerCase() === requested.toLowerCase()) return;
    this.rewrites?.inc({ provider });
    this.deps.logger.warn({ outboundId, mailboxId }, 'the provider sent the message from another address than its From (alias rewritten to the primary address)');
    await Promise.resolve(this.deps.onFromRewritten?.(mailboxId, requested)).catch(() => undefined);
  }

  private async notClaimed(id: string, now: Date): Promise<JobOutcome> {
    const current = await this.deps.outbound.findUnscoped(id);
    if (!current) return { status: 'skipped', reason: 'outbound record not found (purged)' };
    if (current.status === 'sent' || current.status === 'failed') return { status: 'skipped', reason: `already ${current.status}` };
    // Another worker holds a live lease: come back when it would have expired (if it is not renewed).
    const leaseEnd = current.updatedAt.getTime() + this.o.leaseMs;
    return { status: 'retry', reason: 'another attempt is in progress', afterMs: Math.max(1_000, leaseEnd - now.getTime()) };
  }

  private async succeed(claimed: ClaimedOutbound, result: { providerMessageId: string | null; providerThreadId: string | null }, provider: string, recovered: boolean): Promise<JobOutcome> {
    const row = claimed.row;
    const sentAt = this.deps.clock();
    await this.warmEventKey(row.tenantId);
    const eventId = await this.deps.transaction(async (tx) => {
      const won = await this.deps.outbound.markSent(tx, row.id, claimed.attempt, { ...result, sentAt });
      if (!won) return null;
      const event = await this.deps.outbox.appendEvent(tx, {
        tenantId: row.tenantId,
        mailboxId: row.mailboxId,
        type: 'message.sent',
        refs: { outboundId: row.id },
        data: { outboundId: row.id },
      });
      return event.id;
    });
    if (eventId === null) return { status: 'skipped', reason: 'a newer attempt owns the record' };
    this.outcomes?.inc({ provider, outcome: recovered ? 'recovered' : 'sent' });
    await this.deps.eventsCommitted([eventId]);
    return { status: 'done', detail: { outboundId: row.id, attempt: claimed.attempt, recovered } };
  }

  private async fail(claimed: ClaimedOutbound, failure: Failure, provider: string): Promise<JobOutcome> {
    const row: OutboundRow = claimed.row;
    const at = this.deps.clock();
    await this.warmEventKey(row.tenantId);
    const eventId = await this.deps.transaction(async (tx) => {
      const won = await this.deps.outbound.markFailed(tx, row.id, claimed.attempt, { ...failure, at });
      if (!won) return null;
      const event = await this.deps.outbox.appendEvent(tx, {
        tenantId: row.tenantId,
        mailboxId: row.mailboxId,
        type: 'message.send_failed',
        refs: { outboundId: row.id },
        data: { outboundId: row.id, code: failure.code, reason: failure.reason },
      });
      return event.id;
    });
    if (eventId === null) return { status: 'skipped', reason: 'a newer attempt owns the record' };
    this.outcomes?.inc({ provider, outcome: 'failed' });
    this.deps.logger.warn({ outboundId: row.id, attempt: claimed.attempt, failureCode: failure.code }, 'outbound send failed');
    await this.deps.eventsCommitted([eventId]);
    return { status: 'failed', reason: failure.code };
  }

  /**
   * The outbox encrypts event data with the tenant key inside our transaction. Creating that key
   * is a write on another connection; on the embedded database (one connection) it would wait
   * for our transaction to end — a deadlock until the timeout. So make sure it exists first.
   */
  private async warmEventKey(tenantId: string): Promise<void> {
    await this.deps.dataKeys.getOrCreate({ type: 'tenant', id: tenantId });
  }

  private backoff(attempt: number): number {
    const { baseDelayMs: baseMs, maxDelayMs, random } = this.o;
    // Gmail: "Start retry periods at least one second after the error" (handle-errors).
    return new Backoff({ baseMs, capMs: Math.max(baseMs, maxDelayMs), floorMs: Math.min(baseMs, 1000) }, { random }).delayMs(attempt);
  }
}

/**
 * The thread (Gmail threadId / Graph conversationId) of a copy found at the provider. Only the
 * metadata matters: the body stream is discarded unread. Best effort — the message is sent
 * either way, so a failure here leaves the thread id unknown rather than failing the send.
 */
async function threadOf(provider: MailProvider, providerMessageId: string): Promise<string | null> {
  try {
    const found = await provider.fetchRaw(providerMessageId);
    found.raw.destroy();
    return found.providerThreadId ?? null;
  } catch {
    return null;
  }
}

/** Thrown by test hooks to stand for a process that died at that point (no cleanup runs). */
export class SimulatedCrash extends Error {
  override readonly name = 'SimulatedCrash';
}
