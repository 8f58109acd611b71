import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import type { ChangePage, MailProvider, RawMessage, SyncCursor, WindowPage } from '../providers/mail-provider.port.js';
import { ProviderError } from '../providers/provider-error.js';
import type { IngestResult } from '../ingest/ingest.service.js';
import type { HeldLock, SyncLockRepository } from '../storage/sync-lock.repository.js';
import type { MailboxSyncRecord, SyncStateRepository } from '../storage/sync-state.repository.js';
import { MailboxSyncService, type MailboxSyncDeps } from './mailbox-sync.service.js';

const NOW = new Date('2026-03-10T12:00:00Z');
/** When the test mailbox was connected: mail received before it is imported history. */
const CONNECTED = new Date(NOW.getTime() - 3_600_000);
const cursor = (historyId: string): SyncCursor => ({ v: 1, provider: 'google', historyId });

/** A scripted Gmail-like provider: history pages keyed by start cursor, one inbox window. */
class FakeProvider implements Partial<MailProvider> {
  readonly name = 'google' as const;
  fetched: string[] = [];
  changes = new Map<string, ChangePage | ProviderError>();
  window: string[] = [];
  windowSince: Date[] = [];
  current = cursor('100');
  failFetch = new Map<string, ProviderError>();
  /** Provider receive time per message (default NOW). */
  receivedAt = new Map<string, Date>();
  async currentCursor(): Promise<SyncCursor> {
    return this.current;
  }
  async listChanges(c: SyncCursor): Promise<ChangePage> {
    const page = this.changes.get((c as { historyId: string }).historyId);
    if (page instanceof ProviderError) throw page;
    return page ?? { addedMessageIds: [], nextCursor: c, hasMore: false };
  }
  /** When set, the window's listing pages (the page token is the next page's index); else one page, `window`. */
  windowPages: string[][] | null = null;
  /** A window listing page that fails (by page index). */
  windowFailures = new Map<number, ProviderError>();
  /** Listing calls and fetches, in order (`list <page index>`, `fetch <id>`). */
  events: string[] = [];
  async listWindow(since: Date, pageToken?: string): Promise<WindowPage> {
    this.windowSince.push(since);
    if (!this.windowPages) return { messageIds: this.window, nextPageToken: undefined };
    const index = Number(pageToken ?? 0);
    this.events.push(`list ${index}`);
    const failure = this.windowFailures.get(index);
    if (failure) throw failure;
    return { messageIds: this.windowPages[index]!, nextPageToken: index + 1 < this.windowPages.length ? String(index + 1) : undefined };
  }
  async fetchRaw(id: string): Promise<RawMessage> {
    const err = this.failFetch.get(id);
    if (err) throw err;
    this.fetched.push(id);
    this.events.push(`fetch ${id}`);
    return { providerMessageId: id, providerThreadId: `t-${id}`, raw: Readable.from([Buffer.from('x')]), sizeEstimate: 1, receivedAt: this.receivedAt.get(id) ?? NOW, labelIds: ['INBOX'] };
  }
}

function harness(mailbox: Partial<MailboxSyncRecord> = {}) {
  const provider = new FakeProvider();
  const stored = new Set<string>();
  const log: string[] = [];
  const origins = new Map<string, string | undefined>();
  let row: MailboxSyncRecord = {
    id: 'mbx_1',
    tenantId: 'ten_1',
    provider: 'google',
    status: 'active',
    syncCursor: cursor('100'),
    backfillCompletedAt: NOW,
    lastSyncedAt: null,
    lastPushAt: null,
    watchExpiresAt: null,
    subscriptionId: null,
    subscriptionExpiresAt: null,
    pushRenewAt: null,
    pushMissedAt: null,
    clientStateEnc: null,
    createdAt: CONNECTED,
    ...mailbox,
  };
  let locked = false;
  let failAfter: number | null = null;
  let ingestCalls = 0;
  const synced: Array<{ pushMissed?: boolean }> = [];
  let reads = 0;
  const state = {
    find: async () => {
      reads++;
      return { ...row };
    },
    startSync: async () => {
      reads++;
      if (row.status !== 'active') return null;
      return { ...row, syncState: 'syncing' };
    },
    saveCursor: async (_id: string, c: unknown) => {
      log.push(`cursor ${(c as { historyId: string }).historyId}`);
      row = { ...row, syncCursor: c };
      return { ...row };
    },
    setState: async () => undefined,
    markBackfillCompleted: async () => {
      row = { ...row, backfillCompletedAt: NOW };
    },
    markSynced: async (_id: string, _at: Date, opts: { pushMissed?: boolean } = {}) => void synced.push(opts),
  } as unknown as SyncStateRepository;
  const locks = {
    tryAcquire: async (): Promise<HeldLock | null> => {
      if (locked) return null;
      locked = true;
      return { release: async () => void (locked = false) };
    },
  } as unknown as SyncLockRepository;
  const deps: MailboxSyncDeps = {
    providers: { forMailbox: () => provider as unknown as MailProvider, gmailWatch: () => ({ watch: async () => ({ expiresAt: NOW, subscriptionId: undefined, historyId: undefined }) }), graphSubscriptions: () => { throw new Error('unused'); } },
    state,
    locks,
    messages: { storedProviderIds: async (_m, ids) => new Set(ids.filter((i) => stored.has(i))), newestReceivedAt: async () => (stored.size ? new Date(NOW.getTime() - 86_400_000) : null) },
    ingest: {
      // One message per transaction: the most a crash can leave half-done.
      ingestPage: async (_mb, inputs, hooks = {}): Promise<IngestResult[]> => {
        ingestCalls++;
        const results: IngestResult[] = [];
        for await (const input of inputs) {
          if (failAfter !== null && failAfter-- <= 0) throw new Error('database went away');
          stored.add(input.providerMessageId);
          origins.set(input.providerMessageId, input.origin);
          log.push(`store ${input.providerMessageId}`);
          const result: IngestResult = { status: 'stored', messageId: `msg_${input.providerMessageId}`, direction: 'inbound', eventIds: [], oversize: false, infected: 0, pending: 0 };
          results.push(result);
          await hooks.onResult?.(result, input);
        }
        return results;
      },
    },
    watches: { ensure: async () => undefined },
    settings: { backfillDays: 7 },
    clock: () => NOW,
    logger: { info: () => undefined, warn: () => undefined, debug: () => undefined },
    random: () => 0.5,
  };
  return {
    provider,
    stored,
    log,
    origins,
    deps,
    row: () => row,
    /** What each finished run told markSynced (pushMissed: new mail no notification announced). */
    synced,
    setRow: (patch: Partial<MailboxSyncRecord>) => (row = { ...row, ...patch }),
    lock: () => (locked = true),
    failAfter: (n: number) => (failAfter = n),
    ingestCalls: () => ingestCalls,
    /** Reads of the mailbox row (SyncStateRepository.find), each a statement. */
    reads: () => reads,
    service: new MailboxSyncService(deps),
  };
}

describe('MailboxSyncService', () => {
  it('stores each page’s cursor only after that page’s messages', async () => {
    const h = harness();
    h.provider.changes.set('100', { addedMessageIds: ['a', 'b'], nextCursor: cursor('110'), hasMore: true });
    h.provider.changes.set('110', { addedMessageIds: ['c'], nextCursor: cursor('120'), hasMore: false });
    expect(await h.service.run({ mailboxId: 'mbx_1', reason: 'push' })).toMatchObject({ status: 'done', detail: { stored: 3 } });
    expect(h.log).toEqual(['store a', 'store b', 'cursor 110', 'store c', 'cursor 120']);
  });

  it('a failure mid-page leaves the cursor before that page, and the rerun stores the rest once', async () => {
    const h = harness();
    h.provider.changes.set('100', { addedMessageIds: ['a', 'b', 'c'], nextCursor: cursor('110'), hasMore: false });
    h.failAfter(1);
    await expect(h.service.run({ mailboxId: 'mbx_1', reason: 'push' })).rejects.toThrow('database went away');
    expect(h.row().syncCursor).toEqual(cursor('100'));
    h.failAfter(99);
    await h.service.run({ mailboxId: 'mbx_1', reason: 'push' });
    expect([...h.stored].sort()).toEqual(['a', 'b', 'c']);
    expect(h.provider.fetched.filter((id) => id === 'a')).toHaveLength(1); // already stored → not fetched again
    expect(h.row().syncCursor).toEqual(cursor('110'));
  });

  it('first run: takes the cursor before the backfill window, marks the backfill complete', async () => {
    const h = harness({ syncCursor: null, backfillCompletedAt: null });
    h.provider.current = cursor('500');
    h.provider.window = ['w1', 'w2'];
    await h.service.run({ mailboxId: 'mbx_1', reason: 'connect' });
    expect(h.log[0]).toBe('cursor 500');
    expect([...h.stored].sort()).toEqual(['w1', 'w2']);
    expect(h.provider.windowSince[0]!.getTime()).toBe(NOW.getTime() - 7 * 86_400_000);
    expect(h.row().backfillCompletedAt).toEqual(NOW);
  });

  it('a window walk is one ingest stream across the listing pages (the next page listed as the stream reaches it), in runs of at most 1,000 messages', async () => {
    const h = harness({ syncCursor: null, backfillCompletedAt: null });
    h.provider.current = cursor('500');
    h.provider.windowPages = [['a', 'b'], ['c'], [], ['d', 'e']];
    h.stored.add('c'); // stored by an earlier run: not fetched again
    expect(await h.service.run({ mailboxId: 'mbx_1', reason: 'connect' })).toMatchObject({ status: 'done', detail: { mode: 'backfill', stored: 4, duplicates: 1 } });
    expect(h.ingestCalls()).toBe(1);
    expect(h.provider.events).toEqual(['list 0', 'fetch a', 'fetch b', 'list 1', 'list 2', 'list 3', 'fetch d', 'fetch e']);
    // Then the incremental pass from the cursor taken before the window.
    expect(h.log).toEqual(['cursor 500', 'store a', 'store b', 'store d', 'store e', 'cursor 500']);
    expect(h.row().backfillCompletedAt).toEqual(NOW);

    // 2,500 messages over 25 pages: three streams (1,000 + 1,000 + 500), every message once.
    const big = harness({ syncCursor: null, backfillCompletedAt: null });
    const ids = Array.from({ length: 2500 }, (_, i) => `m${i}`);
    big.provider.windowPages = Array.from({ length: 25 }, (_, p) => ids.slice(p * 100, (p + 1) * 100));
    expect(await big.service.run({ mailboxId: 'mbx_1', reason: 'connect' })).toMatchObject({ status: 'done', detail: { stored: 2500 } });
    expect(big.ingestCalls()).toBe(3);
    expect(big.provider.fetched).toEqual(ids);
    expect(big.provider.events.filter((e) => e.startsWith('list'))).toHaveLength(25);
  });

  it('a window listing page that fails mid-stream: the messages before it are stored, the job retries, the rerun fetches only the rest', async () => {
    const h = harness({ syncCursor: null, backfillCompletedAt: null });
    h.provider.current = cursor('500');
    h.provider.windowPages = [['a', 'b'], ['c']];
    h.provider.windowFailures.set(1, new ProviderError('google', 'transient', '503'));
    expect(await h.service.run({ mailboxId: 'mbx_1', reason: 'connect' })).toMatchObject({ status: 'retry' });
    expect([...h.stored]).toEqual(['a', 'b']);
    expect(h.row().backfillCompletedAt).toBeNull();
    h.provider.windowFailures.clear();
    expect(await h.service.run({ mailboxId: 'mbx_1', reason: 'connect' })).toMatchObject({ status: 'done', detail: { stored: 1, duplicates: 2 } });
    expect(h.provider.fetched).toEqual(['a', 'b', 'c']);
    expect(h.row().backfillCompletedAt).toEqual(NOW);
  });

  it('a window walk stops at the next listing page once the mailbox is no longer active; what was stored stays, the backfill is not marked complete', async () => {
    const h = harness({ syncCursor: null, backfillCompletedAt: null });
    h.provider.current = cursor('500');
    h.provider.windowPages = [['a', 'b'], ['c', 'd']];
    h.deps.hooks = {
      afterMessage: () => {
        if (h.stored.size === 2) h.setRow({ status: 'disconnecting' });
      },
    };
    expect(await h.service.run({ mailboxId: 'mbx_1', reason: 'connect' })).toMatchObject({ status: 'skipped', reason: 'mailbox became disconnecting during the sync' });
    expect([...h.stored]).toEqual(['a', 'b']);
    expect(h.provider.fetched).toEqual(['a', 'b']);
    expect(h.row().backfillCompletedAt).toBeNull();
  });

  it('an incremental pass stops at the next page once the mailbox is no longer active (the status its cursor save returned)', async () => {
    const h = harness();
    h.provider.changes.set('100', { addedMessageIds: ['a'], nextCursor: cursor('110'), hasMore: true });
    h.provider.changes.set('110', { addedMessageIds: ['b'], nextCursor: cursor('120'), hasMore: false });
    h.deps.hooks = { afterMessage: () => void h.setRow({ status: 'disconnecting' }) };
    expect(await h.service.run({ mailboxId: 'mbx_1', reason: 'push' })).toMatchObject({ status: 'skipped', reason: 'mailbox became disconnecting during the sync' });
    expect(h.provider.fetched).toEqual(['a']);
    expect(h.row().syncCursor).toEqual(cursor('110'));
  });

  it('a push that arrives while the run holds the lock: the run passes again and brings that mail; the row is read once per run', async () => {
    const h = harness();
    let t = NOW.getTime();
    h.deps.clock = () => new Date(t++);
    h.provider.changes.set('100', { addedMessageIds: ['a'], nextCursor: cursor('110'), hasMore: false });
    h.deps.hooks = {
      afterMessage: (_id, result) => {
        if (result.messageId !== 'msg_a') return;
        // Mail b arrives and its push is recorded while this run still holds the lock (its own sync job was skipped).
        h.provider.changes.set('110', { addedMessageIds: ['b'], nextCursor: cursor('120'), hasMore: false });
        h.setRow({ lastPushAt: new Date(t++) });
      },
    };
    expect(await h.service.run({ mailboxId: 'mbx_1', reason: 'push' })).toMatchObject({ status: 'done', detail: { stored: 2 } });
    expect(h.log).toEqual(['store a', 'cursor 110', 'store b', 'cursor 120']);
    // The run's read at its start; the page checks and the push re-check use what the cursor saves returned.
    expect(h.reads()).toBe(1);
    // No push after the second pass started: one extra pass, not three.
    expect(h.provider.fetched).toEqual(['a', 'b']);
  });

  it('cursor_expired → window from the newest stored message minus 1 h, then the fresh cursor', async () => {
    const h = harness();
    h.stored.add('old');
    h.provider.changes.set('100', new ProviderError('google', 'cursor_expired', 'history 404', { status: 404 }));
    h.provider.current = cursor('900');
    h.provider.window = ['old', 'gap1', 'gap2'];
    expect(await h.service.run({ mailboxId: 'mbx_1', reason: 'poll' })).toMatchObject({ status: 'done', detail: { mode: 'resync', stored: 2, duplicates: 1 } });
    expect(h.provider.windowSince[0]!.getTime()).toBe(NOW.getTime() - 86_400_000 - 3_600_000);
    expect(h.row().syncCursor).toEqual(cursor('900'));
    expect(h.provider.fetched).toEqual(['gap1', 'gap2']);
  });

  it('origin: a window walk marks what was received before the connection backfill, the rest live; the incremental pass is live', async () => {
    const h = harness({ syncCursor: null, backfillCompletedAt: null });
    h.provider.current = cursor('500');
    h.provider.window = ['history', 'arrived-after-connect'];
    h.provider.receivedAt.set('history', new Date(CONNECTED.getTime() - 86_400_000));
    h.provider.receivedAt.set('arrived-after-connect', new Date(CONNECTED.getTime() + 1000));
    h.provider.changes.set('500', { addedMessageIds: ['pushed', 'moved-old'], nextCursor: cursor('501'), hasMore: false });
    // A message moved into the inbox after connect: it comes through the incremental pass, live.
    h.provider.receivedAt.set('moved-old', new Date(CONNECTED.getTime() - 30 * 86_400_000));
    await h.service.run({ mailboxId: 'mbx_1', reason: 'connect' });
    expect(Object.fromEntries(h.origins)).toEqual({ history: 'backfill', 'arrived-after-connect': 'live', pushed: 'live', 'moved-old': 'live' });

    // A window resync after the cursor expired: mail missed since the connection is live.
    const r = harness();
    r.provider.changes.set('100', new ProviderError('google', 'cursor_expired', 'history 404', { status: 404 }));
    r.provider.current = cursor('900');
    r.provider.window = ['gap', 'old'];
    r.provider.receivedAt.set('old', new Date(CONNECTED.getTime() - 1));
    await r.service.run({ mailboxId: 'mbx_1', reason: 'poll' });
    expect(Object.fromEntries(r.origins)).toEqual({ gap: 'live', old: 'backfill' });
  });

  it('maps provider errors to job outcomes', async () => {
    const cases: Array<[ProviderError, unknown]> = [
      [new ProviderError('google', 'rate_limited', 'slow down', { retryAfterMs: 42_000 }), { status: 'retry', afterMs: 42_000 }],
      [new ProviderError('google', 'transient', '503'), { status: 'retry' }],
      [new ProviderError('google', 'auth_revoked', 'invalid_grant'), { status: 'failed' }],
    ];
    for (const [err, expected] of cases) {
      const h = harness();
      h.provider.changes.set('100', err);
      expect(await h.service.run({ mailboxId: 'mbx_1', reason: 'poll' })).toMatchObject(expected as object);
      expect(h.row().syncCursor).toEqual(cursor('100'));
    }
  });

  it('skips a message deleted between listing and fetching, and keeps going', async () => {
    const h = harness();
    h.provider.changes.set('100', { addedMessageIds: ['gone', 'here'], nextCursor: cursor('101'), hasMore: false });
    h.provider.failFetch.set('gone', new ProviderError('google', 'not_found', '404'));
    expect(await h.service.run({ mailboxId: 'mbx_1', reason: 'push' })).toMatchObject({ status: 'done', detail: { stored: 1, skipped: 1 } });
  });

  it('push failing: new mail that no notification announced since the last sync, while the watch was live, is reported as missed', async () => {
    const MIN = 60_000;
    const watched = { watchExpiresAt: new Date(NOW.getTime() + 5 * 86_400_000), lastSyncedAt: new Date(NOW.getTime() - 10 * MIN) };
    const newMail = (h: ReturnType<typeof harness>) => h.provider.changes.set('100', { addedMessageIds: ['m1'], nextCursor: cursor('101'), hasMore: false });

    // A reconciliation finds mail; the last push is older than the previous sync: missed.
    const missed = harness({ ...watched, lastPushAt: new Date(NOW.getTime() - 60 * MIN) });
    newMail(missed);
    await missed.service.run({ mailboxId: 'mbx_1', reason: 'poll' });
    expect(missed.synced).toEqual([{ pushMissed: true }]);

    // A push came after the previous sync (it announced this mail): not missed.
    const announced = harness({ ...watched, lastPushAt: new Date(NOW.getTime() - MIN) });
    newMail(announced);
    await announced.service.run({ mailboxId: 'mbx_1', reason: 'push' });
    expect(announced.synced).toEqual([{ pushMissed: false }]);

    // Nothing new: nothing missed, however long push has been quiet.
    const quiet = harness({ ...watched });
    await quiet.service.run({ mailboxId: 'mbx_1', reason: 'poll' });
    expect(quiet.synced).toEqual([{ pushMissed: false }]);

    // No live watch: there was no push to miss (the mailbox is polled anyway).
    const noWatch = harness({ lastSyncedAt: watched.lastSyncedAt, watchExpiresAt: new Date(NOW.getTime() - MIN) });
    newMail(noWatch);
    await noWatch.service.run({ mailboxId: 'mbx_1', reason: 'poll' });
    expect(noWatch.synced).toEqual([{ pushMissed: false }]);

    // A window resync (cursor expired) brings older mail: not evidence against push.
    const resync = harness({ ...watched });
    resync.provider.changes.set('100', new ProviderError('google', 'cursor_expired', 'history 404', { status: 404 }));
    resync.provider.current = cursor('900');
    resync.provider.window = ['gap'];
    await resync.service.run({ mailboxId: 'mbx_1', reason: 'poll' });
    expect(resync.synced).toEqual([{ pushMissed: false }]);
  });

  it('skips when another run holds the lock, and mailboxes that are not active', async () => {
    const h = harness();
    h.lock();
    expect(await h.service.run({ mailboxId: 'mbx_1', reason: 'push' })).toMatchObject({ status: 'skipped', reason: 'sync already running for this mailbox' });
    // Nothing read or written: the run that holds the lock owns the row's sync state.
    expect(h.reads()).toBe(0);
    const off = harness({ status: 'reauth_required' });
    expect(await off.service.run({ mailboxId: 'mbx_1', reason: 'push' })).toMatchObject({ status: 'skipped', reason: 'mailbox is reauth_required' });
    expect(off.provider.fetched).toEqual([]);
  });
});
