import { describe, expect, it } from 'vitest';
import { ProviderError } from '../providers/provider-error.js';
import type { MailboxSyncRecord, SyncStateRepository } from '../storage/sync-state.repository.js';
import type { GraphSubscriptionsPort, SyncProviders } from './sync-providers.port.js';
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
    clientStateEnc: null,
    ...over,
  };
}

function harness(opts: { renewFails?: ProviderError; topic?: string } = {}) {
  const calls: string[] = [];
  const saved: Array<Record<string, unknown>> = [];
  const subs: GraphSubscriptionsPort = {
    create: async (input) => {
      calls.push(`create ${input.notificationUrl} ${input.lifecycleNotificationUrl} ${input.clientState.length}`);
      return { subscriptionId: 'sub-new', expiresAt: input.expiresAt, historyId: undefined };
    },
    renew: async (id, expiresAt) => {
      calls.push(`renew ${id}`);
      if (opts.renewFails) throw opts.renewFails;
      return { subscriptionId: id, expiresAt, historyId: undefined };
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
        return { expiresAt: new Date(NOW.getTime() + 7 * DAY), subscriptionId: undefined, historyId: '1' };
      },
    }),
    graphSubscriptions: () => subs,
  };
  const state = {
    saveSubscription: async (_id: string, s: Record<string, unknown>) => void saved.push(s),
    saveWatch: async (_id: string, expiresAt: Date) => void saved.push({ watchExpiresAt: expiresAt }),
  } as unknown as SyncStateRepository;
  const service = new WatchService({
    providers,
    state,
    dataKeys: { encryptFor: async (_o, plain) => Buffer.from(`enc:${String(plain).length}`) },
    clock: () => NOW,
    logger: { info: () => undefined, warn: () => undefined },
    settings: { googleTopic: opts.topic, publicUrl: 'https://connector.example/' },
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

  it('leaves a fresh subscription alone, renews one close to expiry, recreates one Graph forgot', async () => {
    const fresh = harness();
    await fresh.service.ensure(mailbox({ subscriptionId: 'sub-1', subscriptionExpiresAt: new Date(NOW.getTime() + 5 * DAY) }));
    expect(fresh.calls).toEqual([]);

    const due = harness();
    await due.service.ensure(mailbox({ subscriptionId: 'sub-1', subscriptionExpiresAt: new Date(NOW.getTime() + DAY) }));
    expect(due.calls).toEqual(['renew sub-1']);

    const gone = harness({ renewFails: new ProviderError('microsoft', 'not_found', 'gone', { status: 404 }) });
    await gone.service.ensure(mailbox({ subscriptionId: 'sub-1', subscriptionExpiresAt: NOW }));
    expect(gone.calls[0]).toBe('renew sub-1');
    expect(gone.calls[1]).toMatch(/^create /);
  });

  it('a failed renewal does not fail the sync, except when the grant is revoked', async () => {
    const flaky = harness({ renewFails: new ProviderError('microsoft', 'transient', '503') });
    await expect(flaky.service.ensure(mailbox({ subscriptionId: 's', subscriptionExpiresAt: NOW }))).resolves.toBeUndefined();
    const revoked = harness({ renewFails: new ProviderError('microsoft', 'auth_revoked', 'invalid_grant') });
    await expect(revoked.service.ensure(mailbox({ subscriptionId: 's', subscriptionExpiresAt: NOW }))).rejects.toMatchObject({ kind: 'auth_revoked' });
  });

  it('Gmail: watch only with a topic, again once less than six of its seven days are left', async () => {
    const none = harness();
    await none.service.ensure(mailbox({ provider: 'google' }));
    expect(none.calls).toEqual([]);
    const h = harness({ topic: 'projects/p/topics/gmail' });
    await h.service.ensure(mailbox({ provider: 'google', watchExpiresAt: new Date(NOW.getTime() + 6.5 * DAY) }));
    expect(h.calls).toEqual([]);
    await h.service.ensure(mailbox({ provider: 'google', watchExpiresAt: new Date(NOW.getTime() + 5.9 * DAY) }));
    expect(h.calls).toEqual(['watch projects/p/topics/gmail']);
  });
});
