import { describe, expect, it } from 'vitest';
import { outcomeOutput } from './job-queue.js';

describe('outcomeOutput (what the queue keeps of a finished job)', () => {
  it('keeps the status, the fixed reason and numeric or code-like detail only', () => {
    expect(outcomeOutput({ status: 'done', detail: { mode: 'incremental', stored: 3, duplicates: 0 } })).toEqual({ outcome: 'done', detail: { mode: 'incremental', stored: 3, duplicates: 0 } });
    expect(outcomeOutput({ status: 'failed', reason: 'authorization revoked' })).toEqual({ outcome: 'failed', reason: 'authorization revoked' });
    expect(outcomeOutput({ status: 'retry', reason: 'provider rate limit', afterMs: 5000 })).toEqual({ outcome: 'retry', reason: 'provider rate limit' });
  });

  it('drops detail values that could carry content (free text, addresses, objects, NaN)', () => {
    const out = outcomeOutput({ status: 'done', detail: { subject: 'Order 1042 arrived damaged', from: 'ada@customer.example', nested: { a: 1 }, list: [1], bad: Number.NaN, ok: 2 } });
    expect(out).toEqual({ outcome: 'done', detail: { ok: 2 } });
  });
});
