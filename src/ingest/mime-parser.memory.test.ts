import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import type { AttachmentMeta, AttachmentSink, AttachmentSinkResult } from './attachment-sink.port.js';
import { parseMime } from './mime-parser.js';

const ATTACHMENT_BYTES = 100 * 1024 * 1024;

/**
 * A message with one ~100 MB base64 attachment, generated chunk by chunk so the test itself never
 * holds it. Content is a deterministic byte pattern whose SHA-256 we compute on the fly.
 */
function hugeMessage(): { stream: Readable; expectedSha256: () => string } {
  const hash = createHash('sha256');
  const head = Buffer.from(
    [
      'From: big@example.com',
      'To: support@helpdesk.example',
      'Subject: big file',
      'Message-ID: <big@example.com>',
      'MIME-Version: 1.0',
      'Content-Type: multipart/mixed; boundary="b"',
      '',
      '--b',
      'Content-Type: text/plain',
      '',
      'see attached',
      '--b',
      'Content-Type: application/octet-stream',
      'Content-Disposition: attachment; filename="disk.img"',
      'Content-Transfer-Encoding: base64',
      '',
      '',
    ].join('\r\n'),
  );
  const raw = 57 * 1024; // multiple of 57 → whole 76-char base64 lines per chunk
  let produced = 0;
  let counter = 0;
  let phase: 'head' | 'body' | 'tail' | 'done' = 'head';
  const stream = new Readable({
    read() {
      if (phase === 'head') {
        phase = 'body';
        return void this.push(head);
      }
      if (phase === 'body') {
        const n = Math.min(raw, ATTACHMENT_BYTES - produced);
        const chunk = Buffer.alloc(n, counter++ & 0xff);
        chunk.writeUInt32BE(counter, 0);
        hash.update(chunk);
        produced += n;
        if (produced >= ATTACHMENT_BYTES) phase = 'tail';
        const b64 = chunk.toString('base64');
        const lines: string[] = [];
        for (let i = 0; i < b64.length; i += 76) lines.push(b64.slice(i, i + 76));
        return void this.push(lines.join('\r\n') + '\r\n');
      }
      if (phase === 'tail') {
        phase = 'done';
        return void this.push('--b--\r\n');
      }
      this.push(null);
    },
  });
  return { stream, expectedSha256: () => hash.digest('hex') };
}

/** Counts and hashes, holds nothing — like a sink writing to blob storage. */
class CountingSink implements AttachmentSink {
  bytes = 0;
  sha256 = '';
  async put(_meta: AttachmentMeta, content: Readable): Promise<AttachmentSinkResult> {
    const hash = createHash('sha256');
    for await (const chunk of content as AsyncIterable<Buffer>) {
      this.bytes += chunk.length;
      hash.update(chunk);
    }
    this.sha256 = hash.digest('hex');
    return { id: 'blob-1' };
  }
}

// A forced GC before each sample measures what is actually retained, not garbage V8 has not
// collected yet (the parser churns through many short-lived chunks).
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

describe('parseMime memory', () => {
  it('streams a ~100 MB attachment to the sink without holding it in memory', { timeout: 120_000 }, async () => {
    gc();
    const before = process.memoryUsage();
    let peakRss = before.rss;
    let peakHeap = before.heapUsed + before.arrayBuffers;
    const sampler = setInterval(() => {
      gc();
      const m = process.memoryUsage();
      peakRss = Math.max(peakRss, m.rss);
      peakHeap = Math.max(peakHeap, m.heapUsed + m.arrayBuffers);
    }, 1000);

    const { stream, expectedSha256 } = hugeMessage();
    const sink = new CountingSink();
    const started = Date.now();
    const parsed = await parseMime(stream, { attachmentSink: sink, maxBytes: 200 * 1024 * 1024 });
    clearInterval(sampler);

    const rssGrowth = peakRss - before.rss;
    const heapGrowth = peakHeap - (before.heapUsed + before.arrayBuffers);
    const summary =
      `100 MB attachment: ${((Date.now() - started) / 1000).toFixed(1)} s, ` +
      `peak RSS +${(rssGrowth / 2 ** 20).toFixed(0)} MB, peak live heap+buffers +${(heapGrowth / 2 ** 20).toFixed(0)} MB`;

    expect(parsed.oversize).toBe(false);
    expect(parsed.attachments).toHaveLength(1);
    expect(sink.bytes).toBe(ATTACHMENT_BYTES);
    expect(parsed.attachments[0]!.sizeBytes).toBe(ATTACHMENT_BYTES);
    expect(sink.sha256).toBe(expectedSha256());
    expect(parsed.attachments[0]!.sha256).toBe(sink.sha256);
    // Held whole even once, live heap+buffers would grow by ≥100 MB (and RSS with it). What is
    // live while streaming is the chunks in flight when a sample lands: 3–22 MB over 17 runs
    // (2026-12-06, quiet and loaded, at 256027a and after), so the bound is 40 %, not 20 % (which
    // failed once under load at +21.3 MB) — still far below one whole copy.
    expect(heapGrowth, summary).toBeLessThan(ATTACHMENT_BYTES * 0.4);
    expect(rssGrowth, summary).toBeLessThan(ATTACHMENT_BYTES * 0.8);
  });
});
