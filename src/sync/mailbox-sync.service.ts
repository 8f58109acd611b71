import type { JobMap, JobOutcome } from '../jobs/job-map.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { MailProvider, SyncCursor } from '../providers/mail-provider.port.js';
import { isProviderError, ProviderError } from '../providers/provider-error.js';
import type { MessageWriteRepository } from '../storage/message-write.repository.js';
import type { SyncLockRepository } from '../storage/sync-lock.repository.js';
import type { MailboxSyncRecord, SyncStateRepository } from '../storage/sync-state.repository.js';
import type { IngestInput, IngestResult, IngestService } from '../ingest/ingest.service.js';
import { readSyncCursor } from './sync-cursor.js';
import type { SyncProviders } from './sync-providers.port.js';
import type { WatchService } from './watch.service.js';
import { Backoff } from '../retry/backoff.js';

const HOUR = 3_600_000;
/** Provider message downloads in flight per mailbox sync (IngestPageHooks.parseAhead). */
const FETCH_CONCURRENCY = 4;
/**
 * A window walk's messages per ingestPage call: each call keeps its results and the provider ids
 * it saw until it returns, so a mailbox with a large window is streamed in runs of this many.
 */
const WINDOW_STREAM_MESSAGES = 1000;

export interface SyncSettings {
  backfillDays: number;
  /** A window resync starts this long before the newest stored message (clock skew, late delivery). */
  resyncOverlapMs?: number;
  /** First delay of the jittered backoff for transient provider errors. */
  transientBaseDelayMs?: number;
}

export interface SyncHooks {
  /** Called after each message is committed (with the rest of its batch; tests abort a run here to simulate a crash). */
  afterMessage?(mailboxId: string, result: IngestResult): void | Promise<void>;
}

export interface MailboxSyncDeps {
  providers: SyncProviders;
  state: SyncStateRepository;
  locks: SyncLockRepository;
  messages: Pick<MessageWriteRepository, 'storedProviderIds' | 'newestReceivedAt'>;
  ingest: Pick<IngestService, 'ingestPage'>;
  watches: Pick<WatchService, 'ensure'>;
  settings: SyncSettings;
  clock: () => Date;
  logger: Pick<Logger, 'info' | 'warn' | 'debug'>;
  metrics?: Metrics;
  hooks?: SyncHooks;
  random?: () => number;
}

class SyncStoppedError extends Error {
  override readonly name = 'SyncStoppedError';
  constructor(readonly status: string) {
    super(`mailbox is ${status}`);
  }
}

interface RunStats {
  stored: number;
  duplicates: number;
  skipped: number;
  mode: 'backfill' | 'incremental' | 'resync';
}

/**
 * `sync.mailbox`: one run of one mailbox, under a cross-process lock.
 *
 * 1. First run: take the provider's current cursor BEFORE listing the backfill window and store it,
 *    so mail arriving during the backfill is picked up by the incremental pass; then ingest the
 *    window (`BACKFILL_DAYS`) as `origin: backfill` (what the provider received before the mailbox
 *    was connected; anything newer the window meets is `live`). `backfillCompletedAt` is set only at the end, so a crash mid-backfill
 *    repeats the (idempotent) backfill.
 * 2. Incremental: `listChanges` from the last STORED cursor, page by page; a page's cursor is
 *    stored only after every message on it committed — a crash replays at most one page, and a
 *    replayed message is a no-op (unique per provider id).
 * 3. `cursor_expired` (Gmail history 404, Graph 410/syncStateNotFound): take a fresh cursor first,
 *    ingest the window from the newest stored message's receive time minus an overlap, then store
 *    the fresh cursor. Nothing is lost (the window covers the gap, the fresh cursor covers what
 *    arrives meanwhile) and nothing is doubled (ingest is idempotent).
 *
 * ProviderError kinds drive the outcome: rate_limited → retry after Retry-After; transient →
 * jittered backoff; auth_revoked → stop (the vault flagged the mailbox); not_found on one message
 * (deleted between list and fetch) → skip it.
 */
export class MailboxSyncService {
  readonly #overlap: number;
  readonly #random: () => number;
  readonly #runs: ReturnType<Metrics['counter']> | undefined;

  constructor(private readonly d: MailboxSyncDeps) {
    this.#overlap = d.settings.resyncOverlapMs ?? HOUR;
    this.#random = d.random ?? Math.random;
    this.#runs = d.metrics?.counter('mbc_sync_runs_total', 'Mailbox sync runs by provider, mode and outcome', ['provider', 'mode', 'outcome'] as const);
  }

  async run(payload: JobMap['sync.mailbox'], attempt = 1): Promise<JobOutcome> {
    const lock = await this.d.locks.tryAcquire(payload.mailboxId);
    // Another worker is syncing this mailbox right now; it will see whatever this job was for.
    if (!lock) return { status: 'skipped', reason: 'sync already running for this mailbox' };
    const stats: RunStats = { stored: 0, duplicates: 0, skipped: 0, mode: 'incremental' };
    let mailbox: MailboxSyncRecord | null = null;
    try {
      // The run's read and its `syncing` state in one statement, under the lock (so a run that
      // finds the lock busy never marks a mailbox another run has just marked idle).
      mailbox = await this.d.state.startSync(payload.mailboxId);
      if (!mailbox) {
        const row = await this.d.state.find(payload.mailboxId);
        return { status: 'skipped', reason: row ? `mailbox is ${row.status}` : 'mailbox not found' };
      }
      const outcome = await this.#sync(mailbox, stats, payload.reason);
      this.#runs?.inc({ provider: mailbox.provider, mode: stats.mode, outcome: outcome.status });
      return outcome;
    } catch (err) {
      if (err instanceof SyncStoppedError) return { status: 'skipped', reason: `mailbox became ${err.status} during the sync` };
      if (!mailbox) throw err;
      const outcome = await this.#failure(mailbox, err, attempt);
      this.#runs?.inc({ provider: mailbox.provider, mode: stats.mode, outcome: outcome.status });
      return outcome;
    } finally {
      await lock.release();
    }
  }

  async #sync(mailbox: MailboxSyncRecord, stats: RunStats, reason: string): Promise<JobOutcome> {
    const d = this.d;
    let runStart = d.clock();
    const provider = d.providers.forMailbox(mailbox);
    let cursor = readSyncCursor(mailbox.syncCursor, mailbox.provider);

    if (!mailbox.backfillCompletedAt) {
      stats.mode = 'backfill';
      await d.state.setState(mailbox.id, 'backfilling'); // the first run only: startSync wrote `syncing`
      if (!cursor) {
        cursor = await provider.currentCursor();
        await d.state.saveCursor(mailbox.id, cursor);
      }
      await d.watches.ensure(mailbox);
      const since = new Date(d.clock().getTime() - d.settings.backfillDays * 86_400_000);
      await this.#ingestWindow(mailbox, provider, since, stats, mailbox.createdAt);
      await d.state.markBackfillCompleted(mailbox.id, d.clock());
    } else {
      await d.watches.ensure(mailbox);
    }

    // The row as the run's own read left it, when nothing long ran since (a backfill or a window
    // resync did: the incremental pass then reads the status again before its first page).
    let known: MailboxSyncRecord | null = stats.mode === 'incremental' ? mailbox : null;
    if (!cursor) {
      // A missing or unreadable stored cursor after the backfill: recover as from an expired one.
      cursor = await this.#windowResync(mailbox, provider, stats);
      known = null;
    }
    let latest: MailboxSyncRecord;
    try {
      latest = await this.#incremental(mailbox, provider, cursor, stats, known);
    } catch (err) {
      if (!isProviderError(err, 'cursor_expired')) throw err;
      d.logger.info({ mailboxId: mailbox.id, provider: mailbox.provider }, 'sync cursor expired; resyncing a window');
      const fresh = await this.#windowResync(mailbox, provider, stats);
      // Anything after the fresh cursor (arrived during the resync) is fetched now.
      latest = await this.#incremental(mailbox, provider, fresh, stats, null);
    }
    const pushLive = pushWasLive(mailbox, runStart);
    let lastPushAt = mailbox.lastPushAt;
    // A push that arrived while this run held the lock was skipped by its own job (lock busy):
    // run the incremental pass again so that mail is not left for the poll to find. `latest` is
    // the row as the pass's last cursor save returned it — the moment a read here would see.
    for (let extra = 0; ; extra++) {
      lastPushAt = latest.lastPushAt ?? lastPushAt;
      if (extra === 3 || !latest.lastPushAt || latest.lastPushAt.getTime() <= runStart.getTime() || latest.status !== 'active') break;
      runStart = d.clock();
      const stored = readSyncCursor(latest.syncCursor, mailbox.provider);
      if (!stored) break;
      latest = await this.#incremental(mailbox, provider, stored, stats, latest);
    }
    // New mail that no notification announced since the previous sync, while the watch /
    // subscription was live: push is failing (dropped notifications, a broken Pub/Sub push
    // subscription, a silently removed Graph subscription). The scheduler polls the mailbox until
    // a notification arrives again. Only the incremental pass counts: a backfill or window resync
    // brings mail from before this sync's predecessor.
    const pushMissed =
      stats.mode === 'incremental' && stats.stored > 0 && pushLive && mailbox.lastSyncedAt !== null && !(lastPushAt && lastPushAt.getTime() > mailbox.lastSyncedAt.getTime());
    await d.state.markSynced(mailbox.id, d.clock(), { pushMissed });
    if (pushMissed) d.logger.info({ mailboxId: mailbox.id, provider: mailbox.provider, stored: stats.stored }, 'new mail without a push notification; polling the mailbox until push works again');
    d.logger.info({ mailboxId: mailbox.id, reason, mode: stats.mode, stored: stats.stored, duplicates: stats.duplicates, skipped: stats.skipped }, 'mailbox synced');
    return { status: 'done', detail: { mode: stats.mode, stored: stats.stored, duplicates: stats.duplicates, skipped: stats.skipped } };
  }

  /**
   * The incremental pass from `start`; answers the row as its last cursor save left it.
   * `known`: the row as read (or written) just before — its status is what a page's check would
   * read (see #freshIds); null after anything long (a backfill, a window resync): read it.
   */
  async #incremental(mailbox: MailboxSyncRecord, provider: MailProvider, start: SyncCursor, stats: RunStats, known: MailboxSyncRecord | null): Promise<MailboxSyncRecord> {
    let cursor = start;
    let current = known;
    for (;;) {
      const page = await provider.listChanges(cursor);
      await this.#ingestIds(mailbox, provider, page.addedMessageIds, stats, null, current);
      // Only now: every message before nextCursor is committed.
      current = await this.d.state.saveCursor(mailbox.id, page.nextCursor);
      cursor = page.nextCursor;
      if (!page.hasMore) return current;
    }
  }

  async #windowResync(mailbox: MailboxSyncRecord, provider: MailProvider, stats: RunStats): Promise<SyncCursor> {
    stats.mode = 'resync';
    const fresh = await provider.currentCursor();
    const newest = await this.d.messages.newestReceivedAt(mailbox.id);
    const floor = this.d.clock().getTime() - this.d.settings.backfillDays * 86_400_000;
    const since = new Date(newest ? Math.min(newest.getTime() - this.#overlap, this.d.clock().getTime()) : floor);
    // What the provider received since the connection is mail the incremental pass missed (the
    // cursor was lost): live. Only what predates the connection is history.
    await this.#ingestWindow(mailbox, provider, since, stats, mailbox.createdAt);
    await this.d.state.saveCursor(mailbox.id, fresh);
    return fresh;
  }

  /**
   * A window walk (backfill, resync) is one ingest stream across the listing's pages, in runs of
   * up to WINDOW_STREAM_MESSAGES: the next page is listed, and its messages fetched and parsed,
   * while the previous page's last messages are still being written. One ingestPage per listing
   * page (Gmail lists 100 ids a page) left the parse thread idle at every page end while the
   * page's last transactions committed: the stream ingests about 10 % more messages per second
   * (docs/benchmarks.md, Ingest). No cursor is saved per page here: the window is done when all
   * of it is stored, and a rerun skips what is.
   */
  async #ingestWindow(mailbox: MailboxSyncRecord, provider: MailProvider, since: Date, stats: RunStats, liveSince: Date): Promise<void> {
    const fresh = (ids: readonly string[]): Promise<string[]> => this.#freshIds(mailbox, ids, stats);
    const ids = (async function* (): AsyncGenerator<string> {
      let pageToken: string | undefined;
      do {
        const page = await provider.listWindow(since, pageToken);
        yield* await fresh(page.messageIds);
        pageToken = page.nextPageToken;
      } while (pageToken);
    })();
    try {
      let more = true;
      while (more) {
        const run = takeUpTo(ids, WINDOW_STREAM_MESSAGES);
        await this.#ingestStream(mailbox, provider, run, stats, liveSince);
        more = !run.exhausted();
      }
    } finally {
      await ids.return(undefined);
    }
  }

  /**
   * `liveSince`: null for the incremental pass (everything it brings is live); for a window walk,
   * when the mailbox was connected — a message the provider received from then on is live (it
   * arrived after the connection: the incremental pass would have brought it, or missed it while
   * its cursor was lost), anything older, or without a receive time, is imported history.
   */
  async #ingestIds(mailbox: MailboxSyncRecord, provider: MailProvider, ids: readonly string[], stats: RunStats, liveSince: Date | null, known: MailboxSyncRecord | null): Promise<void> {
    if (ids.length === 0) return;
    await this.#ingestStream(mailbox, provider, await this.#freshIds(mailbox, ids, stats, known), stats, liveSince);
  }

  /**
   * The ids of a listing page still to fetch — after checking that the mailbox is still active,
   * in `known` when the caller has the row as read or written just before (the incremental pass:
   * the run's read, the previous page's cursor save), else read now.
   */
  async #freshIds(mailbox: MailboxSyncRecord, ids: readonly string[], stats: RunStats, known: MailboxSyncRecord | null = null): Promise<string[]> {
    if (ids.length === 0) return [];
    // A disconnect may start while a long backfill runs: stop at the next page rather than keep
    // writing mail (and re-creating keys) for a mailbox that is being purged. This is the early
    // stop only: the purge waits for the sync's lock before it deletes, and sweeps after.
    const current = known ?? (await this.d.state.find(mailbox.id));
    if (current?.status !== 'active') throw new SyncStoppedError(current?.status ?? 'purged');
    // Skip the fetch (and its quota) for what is already stored.
    const stored = await this.d.messages.storedProviderIds(mailbox.id, ids);
    return ids.filter((id) => {
      if (!stored.has(id)) return true;
      stats.duplicates++;
      return false;
    });
  }

  async #ingestStream(mailbox: MailboxSyncRecord, provider: MailProvider, ids: Iterable<string> | AsyncIterable<string>, stats: RunStats, liveSince: Date | null): Promise<void> {
    // Fetching and parsing run a few messages ahead of the writer, which commits what is ready
    // in one transaction (IngestService.ingestPage); it returns once every message pulled is
    // committed, so the caller's cursor never passes a message that is not stored.
    const fetchAll = async function* (): AsyncGenerator<IngestInput> {
      for await (const id of ids) {
        let raw;
        try {
          raw = await provider.fetchRaw(id);
        } catch (err) {
          if (isProviderError(err, 'not_found')) {
            // Deleted between listing and fetching: nothing to store.
            stats.skipped++;
            continue;
          }
          throw err;
        }
        const origin = liveSince === null || (raw.receivedAt !== undefined && raw.receivedAt.getTime() >= liveSince.getTime()) ? 'live' : 'backfill';
        yield { providerMessageId: id, providerThreadId: raw.providerThreadId, raw: raw.raw, receivedAt: raw.receivedAt, knownNew: true, origin };
      }
    };
    await this.d.ingest.ingestPage({ id: mailbox.id, tenantId: mailbox.tenantId, provider: mailbox.provider }, fetchAll(), {
      // At most this many message downloads open at once (Graph allows 4 concurrent requests per
      // mailbox; a Gmail mailbox is quota-bound at about 5 messages/s anyway).
      parseAhead: FETCH_CONCURRENCY,
      onResult: async (result) => {
        if (result.status === 'stored') stats.stored++;
        else stats.duplicates++;
        await this.d.hooks?.afterMessage?.(mailbox.id, result);
      },
    });
  }

  async #failure(mailbox: MailboxSyncRecord, err: unknown, attempt: number): Promise<JobOutcome> {
    const d = this.d;
    if (!(err instanceof ProviderError)) {
      await d.state.setState(mailbox.id, 'error', 'internal_error').catch(() => undefined);
      throw err; // unexpected: pg-boss retries with its backoff, the log has the stack
    }
    const code = err.reason ? `${err.kind}:${err.reason}` : err.kind;
    await d.state.setState(mailbox.id, 'error', code.slice(0, 200)).catch(() => undefined);
    switch (err.kind) {
      case 'rate_limited':
        return { status: 'retry', reason: 'provider rate limit', afterMs: err.retryAfterMs ?? this.#backoff(attempt) };
      case 'transient':
        return { status: 'retry', reason: 'transient provider error', afterMs: this.#backoff(attempt) };
      case 'auth_revoked':
        // The token vault has already moved the mailbox to reauth_required; nothing to retry.
        return { status: 'failed', reason: 'authorization revoked' };
      case 'cursor_expired':
        // Expired again during the resync itself: start over soon.
        return { status: 'retry', reason: 'cursor expired during resync', afterMs: this.#backoff(attempt) };
      default:
        d.logger.warn({ mailboxId: mailbox.id, kind: err.kind, reason: err.reason, status: err.status }, 'sync failed');
        return { status: 'failed', reason: code };
    }
  }

  /** Full-jitter exponential backoff: up to 5 s, 10 s, 20 s … capped at 15 min, at least 1 s. */
  #backoff(attempt: number): number {
    const base = this.d.settings.transientBaseDelayMs ?? 5_000;
    return new Backoff({ baseMs: base, capMs: Math.max(base, 15 * 60_000), floorMs: Math.min(base, 1000) }, { random: this.#random }).delayMs(attempt);
  }
}

/** The mailbox had a live Gmail watch / Graph subscription when the run started (what push could have announced). */
function pushWasLive(m: MailboxSyncRecord, at: Date): boolean {
  const expiresAt = m.provider === 'google' ? m.watchExpiresAt : m.subscriptionId ? m.subscriptionExpiresAt : null;
  return expiresAt !== null && expiresAt.getTime() > at.getTime();
}

/**
 * The next `limit` items of a shared iterator, as an iterable of their own that leaves the rest in
 * `source`: ending it early (ingestPage stops pulling on a failure) never closes `source`.
 */
function takeUpTo<T>(source: AsyncIterator<T>, limit: number): AsyncIterable<T> & { exhausted(): boolean } {
  let done = false;
  return {
    exhausted: () => done,
    async *[Symbol.asyncIterator]() {
      for (let n = 0; n < limit; n++) {
        const next = await source.next();
        if (next.done) {
          done = true;
          return;
        }
        yield next.value;
      }
    },
  };
}
