import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { DataKeyStore } from '../crypto/data-key.port.js';
import { DataKeyService } from '../crypto/data-key.service.js';
import { InMemoryDataKeyStore } from '../crypto/in-memory-data-key.store.js';
import { parseKeyring } from '../crypto/keyring.js';
import type { Prisma } from '../storage/database.js';
import type { NewOutboxEvent, OutboxRepository } from '../storage/outbox.repository.js';
import { EVENT_DATA_AAD, notifyEventsCommitted, OutboxError, OutboxService } from './outbox.service.js';

/**
 * Strict fake: only the methods appendEvent may use; per-mailbox and per-tenant counters.
 */
function fakeRepo() {
  const mailboxSeq = new Map<string, bigint>([['mbx_a', 0n]]);
  const tenantSeq = new Map<string, bigint>();
  const inserted: NewOutboxEvent[] = [];
  const repo = {
    async nextMailboxSeq(_tx: unknown, mailboxId: string) {
      if (!mailboxSeq.has(mailboxId)) return null;
      const next = mailboxSeq.get(mailboxId)! + 1n;
      mailboxSeq.set(mailboxId, next);
      return next;
    },
    async nextTenantSeq(_tx: unknown, tenantId: string) {
      const next = (tenantSeq.get(tenantId) ?? 0n) + 1n;
      tenantSeq.set(tenantId, next);
      return next;
    },
    async insert(_tx: unknown, e: NewOutboxEvent) {
      inserted.push(e);
    },
  };
  return { repo: repo as unknown as OutboxRepository, inserted };
}

const tx = {} as Prisma.TransactionClient;
const keyring = parseKeyring(`1:${randomBytes(32).toString('base64')}`);
const dataKeys = (store: DataKeyStore = new InMemoryDataKeyStore()) => new DataKeyService(keyring, store);

describe('OutboxService.appendEvent', () => {
  it('numbers events per mailbox, and per tenant when there is no mailbox', async () => {
    const { repo, inserted } = fakeRepo();
    const outbox = new OutboxService({ repo, dataKeys: dataKeys(), clock: () => new Date('2026-11-29T00:00:00Z') });
    const a = await outbox.appendEvent(tx, { tenantId: 'ten_1', mailboxId: 'mbx_a', type: 'mailbox.connected' });
    const b = await outbox.appendEvent(tx, { tenantId: 'ten_1', mailboxId: 'mbx_a', type: 'message.received', refs: { messageId: 'msg_1' } });
    const c = await outbox.appendEvent(tx, { tenantId: 'ten_1', mailboxId: null, type: 'mailbox.purged' });
    expect([a.sequence, b.sequence, c.sequence]).toEqual([1n, 2n, 1n]);
    expect(inserted.map((e) => e.id)).toEqual([a.id, b.id, c.id]);
    expect(inserted[1]!.refs).toEqual({ messageId: 'msg_1' });
    expect(a.id).toMatch(/^evt_/);
  });

  it('encrypts data with the tenant key, bound to the event row', async () => {
    const store = new InMemoryDataKeyStore();
    const { repo, inserted } = fakeRepo();
    const keys = dataKeys(store);
    const outbox = new OutboxService({ repo, dataKeys: keys, clock: () => new Date() });
    const ev = await outbox.appendEvent(tx, { tenantId: 'ten_1', mailboxId: 'mbx_a', type: 'mailbox.reauth_required', data: { reason: 'invalid_grant' } });
    const stored = inserted[0]!.dataEnc!;
    expect(Buffer.from(stored).toString('latin1')).not.toContain('invalid_grant');
    const plain = await keys.decryptFor({ type: 'tenant', id: 'ten_1' }, stored, EVENT_DATA_AAD(ev.id));
    expect(JSON.parse(plain.toString('utf8'))).toEqual({ reason: 'invalid_grant' });
    await expect(keys.decryptFor({ type: 'tenant', id: 'ten_1' }, stored, EVENT_DATA_AAD('evt_other'))).rejects.toThrow();
  });

  it('seals with the tenant key from the key store, which the open transaction does not hold', async () => {
    // The key store is its own database (docs/security.md): its connection is free while the
    // caller's transaction holds the data database's, and a key it creates is committed at once.
    const store = new InMemoryDataKeyStore();
    const { repo, inserted } = fakeRepo();
    const keys = dataKeys(store);
    const ev = await new OutboxService({ repo, dataKeys: keys, clock: () => new Date() }).appendEvent(tx, {
      tenantId: 'ten_cold',
      mailboxId: 'mbx_a',
      type: 'mailbox.disconnected',
      refs: { purgeId: 'purge_1' },
      data: { trigger: 'customer' },
    });
    expect(store.rows().map((r) => r.owner)).toEqual([{ type: 'tenant', id: 'ten_cold' }]);
    const plain = await dataKeys(store).decryptFor({ type: 'tenant', id: 'ten_cold' }, inserted[0]!.dataEnc!, EVENT_DATA_AAD(ev.id));
    expect(JSON.parse(plain.toString('utf8'))).toEqual({ trigger: 'customer' });
  });

  it('refuses what would make an undeliverable or content-carrying event', async () => {
    const { repo, inserted } = fakeRepo();
    const outbox = new OutboxService({ repo, dataKeys: dataKeys(), clock: () => new Date() });
    await expect(outbox.appendEvent(tx, { tenantId: 't', mailboxId: 'mbx_a', type: 'message.received' })).rejects.toBeInstanceOf(OutboxError);
    await expect(outbox.appendEvent(tx, { tenantId: 't', mailboxId: 'mbx_gone', type: 'mailbox.connected' })).rejects.toBeInstanceOf(OutboxError);
    await expect(outbox.appendEvent(tx, { tenantId: 't', mailboxId: 'mbx_a', type: 'mailbox.connected', data: { body: 'x'.repeat(3000) } })).rejects.toThrow();
    await expect(
      outbox.appendEvent(tx, { tenantId: 't', mailboxId: 'mbx_a', type: 'nope' as 'mailbox.connected' }),
    ).rejects.toThrow();
    expect(inserted).toEqual([]);
  });
});

describe('notifyEventsCommitted', () => {
  it('enqueues one dispatch per event and survives a failing queue (the sweep catches up)', async () => {
    const sent: unknown[] = [];
    const warned: unknown[] = [];
    await notifyEventsCommitted(
      {
        async enqueue(name, payload) {
          if ((payload as { eventId: string }).eventId === 'evt_2') throw new Error('queue down');
          sent.push([name, payload]);
          return 'job';
        },
      },
      ['evt_1', 'evt_2', 'evt_3'],
      { warn: (o: unknown) => void warned.push(o) } as never,
    );
    expect(sent).toEqual([
      ['webhooks.dispatch', { eventId: 'evt_1' }],
      ['webhooks.dispatch', { eventId: 'evt_3' }],
    ]);
    expect(warned).toHaveLength(1);
  });
});
