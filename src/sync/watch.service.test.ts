import { describe, expect, it } from 'vitest';
import { ProviderError } from '../providers/provider-error.js';
import type { MailboxSyncRecord, SyncStateRepository } from '../storage/sync-state.repository.js';
import type { GraphSubscriptionsPort } from '../providers/ports.js';
import type { SyncProviders } from './sync-providers.port.js';
import { WatchService } from './watch.service.js';

const NOW = new Date('2026-03-10T12:00:00Z');
const DAY = 86_400_000;

function mailbox(over: Partial<MailboxSyncRecord>): MailboxSyncRecord {
  return {
    id: 'mbx_1',
    tenantId: 'ten_1',
    provider: 'microsoft',
    status: 'active',
    syncCursor: null,
    backfillCompletedAt: NOW,
    lastSyncedAt: null,
    lastPushAt: null,
    watchExpiresAt: null,
    subscriptionId: null,
    subscriptionExpiresAt: null,
    pushRenewAt: null,
    pushMissedAt: null,
    clientStateEnc: null,
    createdAt: NOW,
    ...over,
  };
}

function harness(
  opts: { renewFails?: ProviderError; renewFailsTimes?: number; topic?: string; grantedLifetimeMs?: number; confirmAuthFailure?: (mailboxId: string) => Promise<'grant_valid' | 'reauth_required'> } = {},
) {
  let failuresLeft = opts.renewFailsTimes ?? Infinity;
  const granted = (asked: Date) => (opts.grantedLifetimeMs === undefined ? asked : new Date(NOW.getTime() + opts.grantedLifetimeMs));
  const calls: string[] = [];
  const saved: Array<Record<string, unknown>> = [];
  const subs: GraphSubscriptionsPort = {
    create: async (input) => {
      calls.push(`create ${input.notificationUrl} ${input.lifecycleNotificationUrl} ${input.clientState.length}`);
      return { subscriptionId: 'sub-new', expiresAt: granted(input.expiresAt), historyId: undefined };
    },
    renew: async (id, expiresAt) => {
      calls.push(`renew ${id}`);
      if (opts.renewFails && failuresLeft-- > 0) throw opts.renewFails;
      return { subscriptionId: id, expiresAt: granted(expiresAt), historyId: undefined };
    },
    reauthorize: async () => undefined,
    delete: async () => undefined,
  };
  const providers: SyncProviders = {
    forMailbox: () => {
      throw new Error('unused');
    },
    gmailWatch: () => ({
      watch: async (topic) => {
        calls.push(`watch ${topic}`);
        return { expiresAt: granted(new Date(NOW.getTime() + 7 * DAY)), subscriptionId: undefined, historyId: '1' };
      },
    }),
    graphSubscriptions: () => subs,
  };
  const state = {
    saveSubscription: async (_id: string, s: Record<string, unknown>) => void saved.push(s),
    saveWatch: async (_id: string, expiresAt: Date, renewAt: Date) => void saved.push({ watchExpiresAt: expiresAt, renewAt }),
  } as unknown as SyncStateRepository;
  const service = new WatchService({
    providers,
    state,
    dataKeys: { encryptFor: async (_o, plain) => Buffer.from(`enc:${String(plain).length}`) },
    clock: () => NOW,
    random: () => 0.5,
    logger: { info: () => undefined, warn: () => undefined },
    settings: { googleTopic: opts.topic, publicUrl: 'https://connector.example/' },
    ...(opts.confirmAuthFailure ? { confirmAuthFailure: opts.confirmAuthFailure } : {}),
  });
  return { service, calls, saved };
}

describe('WatchService', () => {
  it('creates a Graph subscription with our push URLs and a random clientState stored encrypted first', async () => {
    const h = harness();
    await h.service.ensure(mailbox({}));
    expect(h.calls).toEqual(['create https://connector.example/push/microsoft https://connector.example/push/microsoft/lifecycle 43']);
    expect(h.saved[0]!.clientStateEnc).toBeDefined(); // the secret is stored before Graph can use it
    expect(h.saved[1]).toMatchObject({ subscriptionId: 'sub-new' });
    expect((h.saved[1]!.expiresAt as Date).getTime() - NOW.getTime()).toBeLessThanOrEqual(10_080 * 60_000);
  });

  it('leaves a subscription alone until its renewal time, renews it then, recreates one Graph forgot', async () => {
    const fresh = harness();
    await fresh.service.ensure(mailbox({ subscriptionId: 'sub-1', subscriptionExpiresAt: new Date(NOW.getTime() + 2 * DAY), pushRenewAt: new Date(NOW.getTime() + 1) }));
    expect(fresh.calls).toEqual([]);

    const due = harness();
    await due.service.ensure(mailbox({ subscriptionId: 'sub-1', subscriptionExpiresAt: new Date(NOW.getTime() + 5 * DAY), pushRenewAt: NOW }));
    expect(due.calls).toEqual(['renew sub-1']);

    const gone = harness({ renewFails: new ProviderError('microsoft', 'not_found', 'gone', { status: 404 }) });
    await gone.service.ensure(mailbox({ subscriptionId: 'sub-1', subscriptionExpiresAt: NOW }));
    expect(gone.calls[0]).toBe('renew sub-1');
    expect(gone.calls[1]).toMatch(/^create /);
  });

  it('plans the next renewal from the expiration Graph granted (here a one-day rich subscription), not an assumed week', async () => {
    const h = harness({ grantedLifetimeMs: DAY });
    await h.service.ensure(mailbox({}));
    const created = h.saved[1]!;
    expect((created.expiresAt as Date).getTime() - NOW.getTime()).toBe(DAY);
    // random 0.5 → 75 % of the granted day.
    expect((created.renewAt as Date).getTime() - NOW.getTime()).toBe(0.75 * DAY);
    const renewed = harness({ grantedLifetimeMs: 3 * DAY });
    await renewed.service.ensure(mailbox({ subscriptionId: 'sub-1', subscriptionExpiresAt: NOW, pushRenewAt: NOW }));
    expect(renewed.saved[0]).toMatchObject({ subscriptionId: 'sub-1', renewAt: new Date(NOW.getTime() + 0.75 * 3 * DAY) });
  });

  it('a failed renewal does not fail the sync, except when the grant is revoked', async () => {
    const flaky = harness({ renewFails: new ProviderError('microsoft', 'transient', '503') });
    await expect(flaky.service.ensure(mailbox({ subscriptionId: 's', subscriptionExpiresAt: NOW }))).resolves.toBeUndefined();
    const revoked = harness({ renewFails: new ProviderError('microsoft', 'auth_revoked', 'invalid_grant') });
    await expect(revoked.service.ensure(mailbox({ subscriptionId: 's', subscriptionExpiresAt: NOW }))).rejects.toMatchObject({ kind: 'auth_revoked' });
  });

  it('a 401 is checked with the vault: a refused grant stops the sync; a valid one (token only expired) retries once; a second refusal or an undecided check does not fail the sync', async () => {
    const revoked = new ProviderError('microsoft', 'auth_revoked', 'Graph rejected the access token', { status: 401 });
    const due = mailbox({ subscriptionId: 's', subscriptionExpiresAt: NOW });
    const asked: string[] = [];
    const gone = harness({ renewFails: revoked, confirmAuthFailure: async (id) => (asked.push(id), 'reauth_required') });
    await expect(gone.service.ensure(due)).rejects.toBe(revoked);
    expect(asked).toEqual(['mbx_1']);
    expect(gone.calls).toEqual(['renew s']);

    const expired = harness({ renewFails: revoked, renewFailsTimes: 1, confirmAuthFailure: async () => 'grant_valid' });
    await expect(expired.service.ensure(due)).resolves.toBeUndefined();
    expect(expired.calls).toEqual(['renew s', 'renew s']);
    expect(expired.saved).toEqual([expect.objectContaining({ subscriptionId: 's' })]);

    const refusedAgain = harness({ renewFails: revoked, confirmAuthFailure: async () => 'grant_valid' });
    await expect(refusedAgain.service.ensure(due)).resolves.toBeUndefined();
    expect(refusedAgain.calls).toEqual(['renew s', 'renew s']);
    expect(refusedAgain.saved).toEqual([]);

    const undecided = harness({ renewFails: revoked, confirmAuthFailure: async () => Promise.reject(new ProviderError('microsoft', 'transient', 'token endpoint 503')) });
    await expect(undecided.service.ensure(due)).resolves.toBeUndefined();
    expect(undecided.calls).toEqual(['renew s']);
  });

  it('Gmail: watch only with a topic; renewed at its stored time, planned from the returned expiration (at most a day)', async () => {
    const none = harness();
    await none.service.ensure(mailbox({ provider: 'google' }));
    expect(none.calls).toEqual([]);
    const h = harness({ topic: 'projects/p/topics/gmail' });
    await h.service.ensure(mailbox({ provider: 'google', watchExpiresAt: new Date(NOW.getTime() + 6.5 * DAY), pushRenewAt: new Date(NOW.getTime() + 1000) }));
    expect(h.calls).toEqual([]);
    await h.service.ensure(mailbox({ provider: 'google', watchExpiresAt: new Date(NOW.getTime() + 6.5 * DAY), pushRenewAt: NOW }));
    expect(h.calls).toEqual(['watch projects/p/topics/gmail']);
    // Google returned 7 days: renew in about a day (0.95 day with random 0.5), not in six.
    expect(h.saved[0]).toMatchObject({ watchExpiresAt: new Date(NOW.getTime() + 7 * DAY), renewAt: new Date(NOW.getTime() + 0.95 * DAY) });
    // A watch Google granted for 10 hours only: renewed at 75 % of them.
    const short = harness({ topic: 'projects/p/topics/gmail', grantedLifetimeMs: 10 * 3_600_000 });
    await short.service.ensure(mailbox({ provider: 'google' }));
    expect(short.saved[0]).toMatchObject({ renewAt: new Date(NOW.getTime() + 7.5 * 3_600_000) });
  });
});
