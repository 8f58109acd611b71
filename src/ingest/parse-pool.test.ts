import { readdirSync, readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { listCorpusMessages } from '../../test/corpus/corpus-files.js';
import type { AttachmentMeta, AttachmentSink, AttachmentSinkResult } from './attachment-sink.port.js';
import { InMemoryAttachmentSink } from './in-memory-attachment-sink.js';
import { AttachmentSinkError, MimeSourceError } from './mime-parse.errors.js';
import type { ParsedMessage } from './mime-parser.js';
import { MimeParsePool, parseInProcess } from './parse-pool.js';

const pool = new MimeParsePool({ threads: 2 });
afterAll(() => pool.close());

const FIXTURES = new URL('../../fixtures/mime/', import.meta.url);
const chunks = (buf: Buffer, size = 4096): Readable =>
  Readable.from(
    (function* () {
      for (let i = 0; i < buf.length; i += size) yield buf.subarray(i, i + size);
    })(),
  );

const withAttachments = (parts: Array<{ name: string; content: Buffer }>): Buffer =>
  Buffer.from(
    [
      'From: Sender <sender@example.com>',
      'To: support@helpdesk.example',
      'Subject: pool',
      'Message-ID: <pool@example.com>',
      'MIME-Version: 1.0',
      'Content-Type: multipart/mixed; boundary="zz"',
      '',
      '--zz',
      'Content-Type: text/plain',
      '',
      'hello',
      ...parts.flatMap((p) => [
        '--zz',
        `Content-Type: application/octet-stream; name="${p.name}"`,
        `Content-Disposition: attachment; filename="${p.name}"`,
        'Content-Transfer-Encoding: base64',
        '',
        p.content.toString('base64').replace(/.{76}/g, '$&\r\n'),
      ]),
      '--zz--',
      '',
    ].join('\r\n'),
  );

/** Everything but the sink-assigned ids, which differ between two sinks. */
function comparable(m: ParsedMessage): unknown {
  return { ...m, attachments: m.attachments.map((a) => ({ ...a, id: a.id === null ? null : 'id' })) };
}

async function both(bytes: Buffer, opts: { maxBytes?: number } = {}) {
  const local = new InMemoryAttachmentSink();
  const remote = new InMemoryAttachmentSink();
  const now = () => new Date('2026-01-01T00:00:00Z');
  // In-process: parseMime and the same derived content (safeHtml, …) the worker adds.
  const a = await parseInProcess(chunks(bytes), { attachmentSink: local, now, ...opts });
  const b = await pool.parse(chunks(bytes), { attachmentSink: remote, now, ...opts });
  return { a, b, local, remote };
}

describe('MimeParsePool: parseMime in worker threads', () => {
  it('gives the same result as in-process parsing, attachments byte for byte (fixtures and a corpus sample)', async () => {
    const inputs: Buffer[] = readdirSync(FIXTURES).map((f) => readFileSync(new URL(f, FIXTURES)));
    const corpus = listCorpusMessages().messages;
    const step = Math.max(1, Math.floor(corpus.length / 60));
    inputs.push(...corpus.filter((_, i) => i % step === 0).map((m) => m.bytes));
    expect(inputs.length).toBeGreaterThan(50);
    let withFiles = 0;
    for (const bytes of inputs) {
      const { a, b, local, remote } = await both(bytes);
      expect(comparable(b)).toEqual(comparable(a));
      expect([...remote.stored.values()].map((s) => s.sha256)).toEqual([...local.stored.values()].map((s) => s.sha256));
      if (a.attachments.length > 0) withFiles++;
    }
    expect(withFiles).toBeGreaterThan(5);
  });

  it('streams a large attachment back in chunks and cuts an oversize message the same way', async () => {
    const big = Buffer.alloc(3 * 1024 * 1024 + 17);
    for (let i = 0; i < big.length; i++) big[i] = (i * 31) % 251;
    const bytes = withAttachments([{ name: 'a.bin', content: Buffer.from('small') }, { name: 'big.bin', content: big }]);
    const whole = await both(bytes);
    expect(comparable(whole.b)).toEqual(comparable(whole.a));
    expect([...whole.remote.stored.values()][1]!.content.equals(big)).toBe(true);

    const cut = await both(bytes, { maxBytes: 2 * 1024 * 1024 });
    expect(cut.b.oversize).toBe(true);
    // Everything up to the cap is parsed the same; `sizeBytes` (bytes read before stopping) counts
    // the whole chunk that crossed the cap, and the pool reads bigger chunks.
    expect({ ...(comparable(cut.b) as object), sizeBytes: 0 }).toEqual({ ...(comparable(cut.a) as object), sizeBytes: 0 });
    expect(cut.b.sizeBytes).toBeGreaterThan(2 * 1024 * 1024);
    expect(cut.b.attachments.at(-1)!.status).toBe('truncated');
  });

  it('reports a failing source as MimeSourceError and a failing sink as AttachmentSinkError with the cause', async () => {
    const broken = new Readable({ read() {} });
    broken.push(Buffer.from('From: a@b.example\r\nSubject: x\r\n\r\nbody starts'));
    setTimeout(() => broken.destroy(new Error('connection reset')), 20);
    const err = await pool.parse(broken, { attachmentSink: new InMemoryAttachmentSink() }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MimeSourceError);
    expect(((err as Error).cause as Error).message).toBe('connection reset');

    const failing: AttachmentSink = {
      async put(_meta: AttachmentMeta, content: Readable): Promise<AttachmentSinkResult> {
        content.resume();
        throw new Error('storage down');
      },
    };
    // 100 kB: read whole and parsed as one task (attachments replayed into the sink here);
    // 600 kB: streamed both ways. Both fail the same way.
    for (const size of [100_000, 600_000]) {
      const sinkErr = await pool.parse(chunks(withAttachments([{ name: 'x.bin', content: Buffer.alloc(size, 1) }])), { attachmentSink: failing }).catch((e: unknown) => e);
      expect(sinkErr, `${size} bytes`).toBeInstanceOf(AttachmentSinkError);
      expect(((sinkErr as Error).cause as Error).message).toBe('storage down');
    }
  });

  it('parses small messages that wait for a thread in batches: each gets its own result and its own sink, one failure stays its own', async () => {
    const one = new MimeParsePool({ threads: 1 });
    try {
      const corpus = listCorpusMessages().messages.filter((m) => m.bytes.length < 64 * 1024);
      const step = Math.max(1, Math.floor(corpus.length / 60));
      const inputs = corpus.filter((_, i) => i % step === 0).map((m) => m.bytes);
      inputs.push(withAttachments([{ name: 'a.bin', content: Buffer.from('first') }, { name: 'b.bin', content: Buffer.alloc(5000, 7) }]));
      inputs.push(withAttachments([{ name: 'fails.bin', content: Buffer.from('x') }]));
      const now = () => new Date('2026-01-01T00:00:00Z');
      const failing: AttachmentSink = {
        async put(_meta: AttachmentMeta, content: Readable): Promise<AttachmentSinkResult> {
          content.resume();
          throw new Error('storage down');
        },
      };
      const sinks = inputs.map(() => new InMemoryAttachmentSink());
      // All at once, as ingestPage's parse-ahead does: the first goes alone, the rest queue up.
      const results = await Promise.allSettled(
        inputs.map((bytes, i) => one.parse(chunks(bytes), { attachmentSink: i === inputs.length - 1 ? failing : sinks[i]!, now })),
      );
      expect(one.batches).toBeGreaterThan(0);
      expect(one.batches).toBeLessThan(inputs.length / 4);
      for (const [i, bytes] of inputs.entries()) {
        const r = results[i]!;
        if (i === inputs.length - 1) {
          expect(r.status).toBe('rejected');
          expect((r as PromiseRejectedResult).reason).toBeInstanceOf(AttachmentSinkError);
          continue;
        }
        expect(r.status, `message ${i}`).toBe('fulfilled');
        const local = new InMemoryAttachmentSink();
        const expected = await parseInProcess(chunks(bytes), { attachmentSink: local, now });
        expect(comparable((r as PromiseFulfilledResult<ParsedMessage>).value)).toEqual(comparable(expected));
        expect([...sinks[i]!.stored.values()].map((s) => s.content.toString('base64'))).toEqual([...local.stored.values()].map((s) => s.content.toString('base64')));
      }
      expect([...sinks[inputs.length - 2]!.stored.values()].map((s) => s.content.length)).toEqual([5, 5000]);
    } finally {
      await one.close();
    }
  });
});
