import { describe, expect, it } from 'vitest';
import { createMetrics } from '../observability/metrics.js';
import type { MailboxRecord } from '../storage/mailbox.repository.js';
import type { SyncStateRepository } from '../storage/sync-state.repository.js';
import { coveredByCursor, PushIntakeService } from './push-intake.service.js';

const NOW = new Date('2026-12-06T00:00:00Z');

function mailbox(id: string, over: Partial<MailboxRecord> = {}): MailboxRecord {
  return {
    id,
    tenantId: 'ten_1',
    provider: 'google',
    status: 'active',
    syncCursor: { v: 1, provider: 'google', historyId: '5000' },
    backfillCompletedAt: NOW,
    ...over,
  } as MailboxRecord;
}

function envelope(emailAddress: string, historyId: string | number): unknown {
  return { message: { data: Buffer.from(JSON.stringify({ emailAddress, historyId })).toString('base64url'), messageId: '1' }, subscription: 'projects/p/subscriptions/s' };
}

function intake(rows: MailboxRecord[]) {
  const enqueued: Array<{ name: string; mailboxId: string; reason: string }> = [];
  const pushed: string[] = [];
  const service = new PushIntakeService({
    jobs: {
      enqueue: (async (name: string, payload: { mailboxId: string; reason: string }) => {
        enqueued.push({ name, mailboxId: payload.mailboxId, reason: payload.reason });
        return 'job';
      }) as never,
    },
    state: {
      // As the UPDATE … RETURNING does: the push is recorded on the active mailboxes, which it answers.
      markPushByAddress: async () => {
        const active = rows.filter((r) => r.status === 'active');
        pushed.push(...active.map((r) => r.id));
        return active;
      },
    } as unknown as SyncStateRepository,
    blindIndex: { emailIndex: (e: string) => `idx:${e}` },
    dataKeys: { decryptFor: async () => Buffer.from('') },
    clock: () => NOW,
    logger: { info: () => undefined, warn: () => undefined, debug: () => undefined },
    metrics: createMetrics(),
    google: { authenticate: async () => 'ok' as const },
  });
  return { service, enqueued, pushed };
}

describe('Gmail push intake and the stored cursor', () => {
  it('a notification the stored cursor already covers counts as a push but requests no sync', async () => {
    const { service, enqueued, pushed } = intake([mailbox('mbx_a')]);
    for (const historyId of ['4999', '5000', 4000]) {
      expect(await service.receiveGoogle('Bearer t', envelope('a@acme.test', historyId))).toEqual({ status: 'accepted', mailboxes: 1 });
    }
    expect(enqueued).toEqual([]);
    // Still a sign that push works (the push-health rule reads lastPushAt).
    expect(pushed).toEqual(['mbx_a', 'mbx_a', 'mbx_a']);
  });

  it('a notification past the cursor requests a sync', async () => {
    const { service, enqueued } = intake([mailbox('mbx_a')]);
    await service.receiveGoogle('Bearer t', envelope('a@acme.test', '5001'));
    expect(enqueued).toEqual([{ name: 'sync.mailbox', mailboxId: 'mbx_a', reason: 'push' }]);
  });

  it('compares history ids as numbers, not as text', async () => {
    const { service, enqueued } = intake([mailbox('mbx_a', { syncCursor: { v: 1, provider: 'google', historyId: '999' } })]);
    await service.receiveGoogle('Bearer t', envelope('a@acme.test', '1000'));
    expect(enqueued.map((e) => e.mailboxId)).toEqual(['mbx_a']);
    expect(coveredByCursor(mailbox('x', { syncCursor: { v: 1, provider: 'google', historyId: '10' } }), '9')).toBe(true);
    expect(coveredByCursor(mailbox('x', { syncCursor: { v: 1, provider: 'google', historyId: '123456789012345678901' } }), '123456789012345678902')).toBe(false);
  });

  it('syncs whenever the cursor cannot vouch for it: backfill not done, no or unreadable cursor', async () => {
    const rows = [
      mailbox('mbx_backfilling', { backfillCompletedAt: null }),
      mailbox('mbx_no_cursor', { syncCursor: null }),
      mailbox('mbx_bad_cursor', { syncCursor: { v: 2, provider: 'google', historyId: '9999999' } }),
      mailbox('mbx_graph_cursor', { syncCursor: { v: 1, provider: 'microsoft', link: 'https://graph.microsoft.com/v1.0/me/delta' } }),
      mailbox('mbx_covered'),
    ];
    const { service, enqueued } = intake(rows);
    await service.receiveGoogle('Bearer t', envelope('shared@acme.test', '10'));
    expect(enqueued.map((e) => e.mailboxId).sort()).toEqual(['mbx_backfilling', 'mbx_bad_cursor', 'mbx_graph_cursor', 'mbx_no_cursor']);
  });

  it('a malformed notification is refused and requests nothing', async () => {
    const { service, enqueued } = intake([mailbox('mbx_a')]);
    expect(await service.receiveGoogle('Bearer t', envelope('a@acme.test', 'not-a-number'))).toEqual({ status: 'bad_request' });
    expect(await service.receiveGoogle('Bearer t', envelope('a@acme.test', 1e300))).toEqual({ status: 'bad_request' });
    expect(await service.receiveGoogle('Bearer t', { message: { data: '!!!' } })).toEqual({ status: 'bad_request' });
    expect(enqueued).toEqual([]);
  });
});
