import { describe, expect, it } from 'vitest';
import type { AuditInput, AuditService } from '../audit/audit.service.js';
import type { DataKeyService } from '../crypto/data-key.service.js';
import type { JobMap, JobName } from '../jobs/job-map.js';
import type { Logger } from '../observability/logger.js';
import type { PurgeReceiptRecord, PurgeRepository } from '../storage/purge.repository.js';
import type { LifecycleEventWriter } from './lifecycle-event.writer.js';
import type { RevokeResult, TeardownPort } from '../providers/ports.js';
import { PurgeService } from './purge.service.js';

const NOW = new Date('2026-11-29T06:00:00Z');

function receipt(over: Partial<PurgeReceiptRecord> = {}): PurgeReceiptRecord {
  return {
    id: 'prg_1',
    tenantId: 'ten_1',
    mailboxId: 'mbx_1',
    provider: 'google',
    trigger: 'customer',
    reason: null,
    status: 'completed',
    steps: [],
    counts: {},
    revokeStatus: 'failed',
    revokeAttempts: 1,
    revokeError: 'transient (503)',
    revokeTokenEnc: new Uint8Array([1, 2, 3]),
    startedAt: NOW,
    completedAt: NOW,
    ...over,
  };
}

/** Strict fakes: only what retryRevoke touches exists; anything else fails the test loudly. */
function harness(initial: PurgeReceiptRecord, results: RevokeResult[]) {
  let row = initial;
  const audits: AuditInput[] = [];
  const enqueued: Array<{ name: JobName; payload: unknown; startAfter: unknown }> = [];
  const tokens: string[] = [];
  const repo = {
    findReceipt: async () => row,
    transaction: async <T>(fn: (tx: unknown) => Promise<T>) => fn(undefined),
    updateRevoke: async (_id: string, patch: Pick<PurgeReceiptRecord, 'revokeStatus' | 'revokeError' | 'revokeTokenEnc' | 'revokeAttempts'>) => {
      row = { ...row, ...patch };
    },
  } as unknown as PurgeRepository;
  const teardown: TeardownPort = {
    provider: 'google',
    stopWatch: () => Promise.reject(new Error('not expected')),
    revokeGrant: () => Promise.reject(new Error('not expected')),
    retryRevoke: async (token) => {
      tokens.push(token);
      const next = results.shift();
      if (!next) throw new Error('no more scripted results');
      return next;
    },
  };
  const service = new PurgeService(
    {
      repo,
      dataKeys: { decryptFor: async () => Buffer.from('1//refresh') } as unknown as DataKeyService,
      audit: { record: async (input: AuditInput) => void audits.push(input) } as unknown as AuditService,
      jobs: {
        enqueue: async <N extends JobName>(name: N, payload: JobMap[N], opts?: { startAfter?: Date | number }) => {
          enqueued.push({ name, payload, startAfter: opts?.startAfter });
          return 'job';
        },
        cancelByKey: () => Promise.reject(new Error('not expected')),
      },
      events: {} as LifecycleEventWriter,
      teardown: { google: teardown, microsoft: teardown },
      credentials: { read: () => Promise.reject(new Error('not expected')) },
      logger: { warn: () => undefined, info: () => undefined } as unknown as Logger,
      clock: () => NOW,
    },
    { maxRevokeAttempts: 3, revokeRetryDelayMs: (n) => n * 1000 },
  );
  return { service, audits, enqueued, tokens, row: () => row };
}

describe('PurgeService.retryRevoke', () => {
  it('on success erases the kept token and records the outcome', async () => {
    const h = harness(receipt(), [{ status: 'revoked' }]);
    expect(await h.service.retryRevoke('prg_1')).toMatchObject({ status: 'done' });
    expect(h.tokens).toEqual(['1//refresh']);
    expect(h.row()).toMatchObject({ revokeStatus: 'revoked', revokeTokenEnc: null, revokeError: null, revokeAttempts: 2 });
    expect(h.audits.map((a) => a.action)).toEqual(['mailbox.revoke_completed']);
    expect(h.enqueued).toEqual([]);
  });

  it('on failure keeps the token and schedules the next attempt with backoff', async () => {
    const h = harness(receipt(), [{ status: 'failed', error: 'timeout', retryToken: '1//refresh' }]);
    await h.service.retryRevoke('prg_1');
    expect(h.row()).toMatchObject({ revokeStatus: 'failed', revokeError: 'timeout', revokeAttempts: 2 });
    expect(h.row().revokeTokenEnc).not.toBeNull();
    expect(h.enqueued).toEqual([{ name: 'lifecycle.revoke-retry', payload: { purgeId: 'prg_1' }, startAfter: new Date(NOW.getTime() + 2000) }]);
  });

  it('gives up after the last attempt and does not keep a live token for ever', async () => {
    const h = harness(receipt({ revokeAttempts: 2 }), [{ status: 'failed', error: 'http 500', retryToken: '1//refresh' }]);
    expect(await h.service.retryRevoke('prg_1')).toMatchObject({ status: 'failed' });
    expect(h.row()).toMatchObject({ revokeStatus: 'failed', revokeTokenEnc: null, revokeAttempts: 3 });
    expect(h.row().revokeError).toContain('gave up after 3 attempts');
    expect(h.audits.map((a) => a.action)).toEqual(['mailbox.revoke_abandoned']);
    expect(h.enqueued).toEqual([]);
  });

  it('does nothing for a receipt with nothing to retry (a duplicate job)', async () => {
    const h = harness(receipt({ revokeStatus: 'revoked', revokeTokenEnc: null }), []);
    expect(await h.service.retryRevoke('prg_1')).toMatchObject({ status: 'skipped' });
    expect(h.tokens).toEqual([]);
  });
});
