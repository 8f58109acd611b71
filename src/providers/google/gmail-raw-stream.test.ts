import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { isProviderError } from '../provider-error.js';
import { readGmailRawMessage } from './gmail-raw-stream.js';

/** The JSON body split into pieces of `piece` bytes (odd sizes cut escapes, quads and keys). */
function body(json: string, piece = 997): Readable {
  const bytes = Buffer.from(json);
  return Readable.from((function* () {
    for (let i = 0; i < bytes.length; i += piece) yield bytes.subarray(i, i + piece);
  })());
}

async function readAll(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of stream) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

describe('readGmailRawMessage', () => {
  it('decodes raw byte-identically for every length mod 3 and any split of the body', async () => {
    for (const size of [0, 1, 2, 3, 1000, 65_537, 300_001]) {
      const mime = randomBytes(size);
      const json = JSON.stringify({ id: 'm1', threadId: 't1', labelIds: ['INBOX', 'UNREAD'], snippet: 'hi "there"', sizeEstimate: size, historyId: '9', internalDate: '1700000000000', raw: mime.toString('base64url') });
      for (const piece of [7, 4096]) {
        const r = await readGmailRawMessage(body(json, piece), { decodeChars: 1024 });
        expect(r.metadata).toEqual({ id: 'm1', threadId: 't1', labelIds: ['INBOX', 'UNREAD'], sizeEstimate: size, internalDate: '1700000000000' });
        expect(sha(await readAll(r.raw))).toBe(sha(mime));
      }
    }
  });

  it('accepts padded standard base64 and escaped characters in metadata', async () => {
    const mime = randomBytes(1001);
    const json = `{"raw":"${mime.toString('base64')}","id":"m\\u0032","threadId":"t\\/1","internalDate":"1"}`;
    const r = await readGmailRawMessage(body(json, 13));
    expect(sha(await readAll(r.raw))).toBe(sha(mime));
    expect(r.metadata.id).toBe('m2');
    expect(r.metadata.threadId).toBe('t/1');
  });

  it('hands the stream over before the body is read when the metadata comes first', async () => {
    const mime = randomBytes(4 * 1024 * 1024);
    const json = JSON.stringify({ id: 'm1', threadId: 't1', internalDate: '5', raw: mime.toString('base64url') });
    let served = 0;
    const bytes = Buffer.from(json);
    const src = new Readable({
      highWaterMark: 16 * 1024,
      read() {
        const n = Math.min(16 * 1024, bytes.length - served);
        if (n === 0) return void this.push(null);
        this.push(bytes.subarray(served, served + n));
        served += n;
      },
    });
    const r = await readGmailRawMessage(src);
    // Backpressure: nothing consumed the decoded stream yet, so most of the body is still unread.
    await new Promise((res) => setTimeout(res, 50));
    expect(served).toBeLessThan(bytes.length / 2);
    expect(sha(await readAll(r.raw))).toBe(sha(mime));
    expect(served).toBe(bytes.length);
  });

  it('waits for metadata that follows a small raw, and asks for it separately after a large one', async () => {
    const small = randomBytes(10_000);
    const late = await readGmailRawMessage(body(JSON.stringify({ id: 'm1', raw: small.toString('base64url'), threadId: 't1', internalDate: '7' })), {
      onMetadataLate: () => Promise.reject(new Error('must not be called')),
    });
    expect(late.metadata.internalDate).toBe('7');
    expect(sha(await readAll(late.raw))).toBe(sha(small));

    const big = randomBytes(300_000);
    const asked: Array<string | undefined> = [];
    const r = await readGmailRawMessage(body(JSON.stringify({ id: 'm2', raw: big.toString('base64url'), threadId: 't2', internalDate: '8' })), {
      holdBytes: 64 * 1024,
      onMetadataLate: async (id) => {
        asked.push(id);
        return { threadId: 't2', labelIds: ['INBOX'], internalDate: '8' };
      },
    });
    expect(asked).toEqual(['m2']);
    expect(r.metadata.internalDate).toBe('8');
    expect(sha(await readAll(r.raw))).toBe(sha(big));
  });

  it('rejects a body without raw, a non-JSON body and a raw that is not base64, as transient provider errors', async () => {
    for (const json of ['{"id":"m1","threadId":"t","internalDate":"1"}', '<html>oops</html>', '{"id":"m1","threadId":"t","internalDate":"1","raw":"ab$d"}']) {
      const err = await readGmailRawMessage(body(json)).then(
        async (r) => readAll(r.raw).then(() => null, (e: unknown) => e),
        (e: unknown) => e,
      );
      expect(isProviderError(err) && err.kind === 'transient', json).toBe(true);
      expect(String((err as Error).message)).not.toContain('oops');
    }
  });

  it('a body cut mid-raw fails the stream instead of ending it short', async () => {
    const json = JSON.stringify({ id: 'm1', threadId: 't', internalDate: '1', raw: randomBytes(200_000).toString('base64url') });
    const cut = Buffer.from(json).subarray(0, 100_000);
    let reads = 0;
    const src = new Readable({
      read() {
        if (reads++ === 0) this.push(cut);
        else setTimeout(() => this.destroy(new Error('ECONNRESET')), 5);
      },
    });
    const r = await readGmailRawMessage(src);
    const err = await readAll(r.raw).then(() => null, (e: unknown) => e);
    expect(isProviderError(err) && err.kind === 'transient').toBe(true);
  });

  it('destroying the decoded stream stops reading the body', async () => {
    const json = JSON.stringify({ id: 'm1', threadId: 't', internalDate: '1', raw: randomBytes(2_000_000).toString('base64url') });
    const src = body(json, 8192);
    const r = await readGmailRawMessage(src);
    r.raw.destroy();
    await new Promise((res) => setTimeout(res, 20));
    expect(src.destroyed).toBe(true);
  });
});
