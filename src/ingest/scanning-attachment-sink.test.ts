import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { NullScanner } from '../scan/null.scanner.js';
import type { ScanVerdict, Scanner } from '../scan/scanner.port.js';
import type { AttachmentMeta, AttachmentSink, AttachmentSinkResult } from './attachment-sink.port.js';
import { InMemoryAttachmentSink } from './in-memory-attachment-sink.js';
import { parseMime } from './mime-parser.js';
import { ScanningAttachmentSink } from './scanning-attachment-sink.js';

const meta: AttachmentMeta = {
  ordinal: 0,
  filename: 'a.bin',
  contentType: 'application/octet-stream',
  contentDisposition: 'attachment',
  contentId: null,
  related: false,
  partId: '2',
};

/** Reads everything slowly and reports the SHA-256 it saw, like clamd would see the bytes. */
class HashingScanner implements Scanner {
  seen = '';
  constructor(private readonly verdict: ScanVerdict) {}
  async scan(content: Readable): Promise<ScanVerdict> {
    const hash = createHash('sha256');
    for await (const chunk of content as AsyncIterable<Buffer>) {
      hash.update(chunk);
      await new Promise((r) => setImmediate(r));
    }
    this.seen = hash.digest('hex');
    return this.verdict;
  }
  async ping(): Promise<boolean> {
    return true;
  }
}

/** Gives up immediately, the way ClamdScanner does when clamd is unreachable (it drains). */
class UnreachableScanner implements Scanner {
  async scan(content: Readable): Promise<ScanVerdict> {
    content.resume();
    return { status: 'error', reason: 'unreachable' };
  }
  async ping(): Promise<boolean> {
    return false;
  }
}

const bytes = Buffer.alloc(3 * 1024 * 1024, 9);
const source = (): Readable =>
  Readable.from(
    (function* () {
      for (let i = 0; i < bytes.length; i += 64 * 1024) yield bytes.subarray(i, i + 64 * 1024);
    })(),
  );

describe('ScanningAttachmentSink', () => {
  it('stores and scans the same bytes in one pass', async () => {
    const store = new InMemoryAttachmentSink();
    const scanner = new HashingScanner({ status: 'infected', signature: 'Test.Sig' });
    const result = await new ScanningAttachmentSink(store, scanner).put(meta, source());
    const expected = createHash('sha256').update(bytes).digest('hex');
    expect(scanner.seen).toBe(expected);
    expect(store.stored.get(result.id)!.sha256).toBe(expected);
    expect(result.scan).toEqual({ status: 'infected', signature: 'Test.Sig' });
  });

  it('still stores the attachment when the scanner is down: the verdict says error, not the sink', async () => {
    const store = new InMemoryAttachmentSink();
    const result = await new ScanningAttachmentSink(store, new UnreachableScanner()).put(meta, source());
    expect(result.scan).toEqual({ status: 'error', reason: 'unreachable' });
    expect(store.stored.get(result.id)!.content.length).toBe(bytes.length);
  });

  it('reports not_configured through NullScanner and stores everything', async () => {
    const store = new InMemoryAttachmentSink();
    const result = await new ScanningAttachmentSink(store, new NullScanner()).put(meta, source());
    expect(result.scan).toEqual({ status: 'not_configured' });
    expect(store.stored.get(result.id)!.content.length).toBe(bytes.length);
  });

  it('rejects when storage fails (so ingest retries) without hanging the scan branch', async () => {
    const failing: AttachmentSink = {
      async put(): Promise<AttachmentSinkResult> {
        throw new Error('disk full');
      },
    };
    await expect(
      new ScanningAttachmentSink(failing, new HashingScanner({ status: 'clean' })).put(meta, source()),
    ).rejects.toThrow('disk full');
  });

  it('carries verdicts into ParsedMessage.attachments', async () => {
    const mime = [
      'Subject: scan me',
      'Content-Type: multipart/mixed; boundary="q"',
      '',
      '--q',
      'Content-Type: text/plain',
      '',
      'hi',
      '--q',
      'Content-Type: application/zip; name="a.zip"',
      'Content-Transfer-Encoding: base64',
      '',
      Buffer.from('zip bytes').toString('base64'),
      '--q--',
      '',
    ].join('\r\n');
    const parsed = await parseMime(Readable.from([Buffer.from(mime)]), {
      attachmentSink: new ScanningAttachmentSink(new InMemoryAttachmentSink(), new HashingScanner({ status: 'clean' })),
    });
    expect(parsed.attachments[0]).toMatchObject({ filename: 'a.zip', status: 'stored', scan: { status: 'clean' } });
  });
});
