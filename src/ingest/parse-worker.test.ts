// The parse thread's side of batching: batches handed to one thread run one after the other.
import { describe, expect, it } from 'vitest';
import parseTask, { type ParseBatchTask } from './parse-worker.js';

const message = (i: number): Uint8Array =>
  new Uint8Array(Buffer.from(`From: a${i}@example.com\r\nTo: b@example.com\r\nSubject: batch ${i}\r\nMessage-ID: <b${i}@example.com>\r\n\r\nBody ${i}\r\n`));

const batch = (from: number, n: number): ParseBatchTask => ({
  batch: Array.from({ length: n }, (_, i) => ({ raw: message(from + i), receivedAt: null, nowMs: 0 })),
});

describe('parse worker batches', () => {
  it('runs the batches it holds in arrival order, not interleaved: a long batch handed over first is finished first', async () => {
    // The pool keeps a second batch in the thread so that the thread has work while the first
    // one's results go back; interleaved, both would finish late (the one-message batch first).
    const done: string[] = [];
    const long = parseTask(batch(0, 12)).then(() => done.push('long'));
    const short = parseTask(batch(100, 1)).then(() => done.push('short'));
    await Promise.all([long, short]);
    expect(done).toEqual(['long', 'short']);
  });

  it('still runs a batch after one that failed', async () => {
    const bad = parseTask({ batch: [{ raw: undefined as unknown as Uint8Array, receivedAt: null, nowMs: 0 }] });
    const good = parseTask(batch(200, 1));
    await bad.catch(() => undefined);
    await expect(good).resolves.toBeDefined();
  });
});
