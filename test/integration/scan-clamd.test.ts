import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InMemoryAttachmentSink } from '../../src/ingest/in-memory-attachment-sink.js';
import { parseMime } from '../../src/ingest/mime-parser.js';
import { ScanningAttachmentSink } from '../../src/ingest/scanning-attachment-sink.js';
import { ClamdScanner } from '../../src/scan/clamd.scanner.js';
import { INITIAL_SCAN_STATE, isServable, nextScanState } from '../../src/scan/scan-policy.js';
import { clamdUnavailableReason, disposeClamd, startClamd, type ClamdHandle } from '../helpers/clamd.js';
import { missing, requireInTest } from '../helpers/requirements.js';
import { storedZip } from '../helpers/zip.js';

// The EICAR test file (provider-facts §7.2), assembled from hex so this source file itself is not
// flagged by scanners on developer machines.
const EICAR = Buffer.from(
  '58354f2150254041505b345c505a58353428505e2937434329377d2445494341522d5354414e444152442d414e544956495255532d544553542d46494c452124482b482a',
  'hex',
);



/** Chunks a buffer into a stream the way a network body arrives. */
function streamOf(buf: Buffer, chunk = 16 * 1024): Readable {
  return Readable.from(
    (function* () {
      for (let i = 0; i < buf.length; i += chunk) yield buf.subarray(i, i + chunk);
    })(),
  );
}

/** A pseudo-random (incompressible, signature-free) stream of `size` bytes, generated lazily. */
function noiseStream(size: number): Readable {
  let produced = 0;
  let x = 0x12345678;
  return new Readable({
    read() {
      if (produced >= size) return void this.push(null);
      const n = Math.min(64 * 1024, size - produced);
      const buf = Buffer.allocUnsafe(Math.ceil(n / 4) * 4);
      for (let i = 0; i < buf.length; i += 4) {
        x ^= x << 13;
        x ^= x >>> 17;
        x ^= x << 5;
        buf.writeInt32LE(x | 0, i);
      }
      produced += n;
      this.push(buf.subarray(0, n));
    },
  });
}

function messageWithAttachedMessage(): Buffer {
  const inner = [
    'From: inner@example.com',
    'To: someone@example.com',
    'Subject: forwarded invoice',
    'Message-ID: <inner@example.com>',
    'MIME-Version: 1.0',
    'Content-Type: multipart/mixed; boundary="in"',
    '',
    '--in',
    'Content-Type: text/plain',
    '',
    'see attachment',
    '--in',
    'Content-Type: application/octet-stream; name="invoice.com"',
    'Content-Disposition: attachment; filename="invoice.com"',
    'Content-Transfer-Encoding: base64',
    '',
    EICAR.toString('base64'),
    '--in--',
    '',
  ].join('\r\n');
  return Buffer.from(
    [
      'From: Customer <customer@example.com>',
      'To: support@helpdesk.example',
      'Subject: Fwd: invoice',
      'Message-ID: <outer@example.com>',
      'MIME-Version: 1.0',
      'Content-Type: multipart/mixed; boundary="out"',
      '',
      '--out',
      'Content-Type: text/plain',
      '',
      'forwarding the message below',
      '--out',
      'Content-Type: message/rfc822',
      'Content-Disposition: attachment; filename="fwd.eml"',
      '',
      inner,
      '--out--',
      '',
    ].join('\r\n'),
  );
}

describe.skipIf(missing('clamd', clamdUnavailableReason()))('ClamdScanner against a real clamd (INSTREAM)', () => {
  let clamd: ClamdHandle;
  let scanner: ClamdScanner;

  beforeAll(async () => {
    clamd = await startClamd({ streamMaxLength: '8M' });
    scanner = new ClamdScanner({ socket: clamd.socket, idleTimeoutMs: 10_000, scanTimeoutMs: 20_000 });
  });

  afterAll(async () => {
    if (clamd) await disposeClamd(clamd);
  });

  it('answers PING', async () => {
    expect(await scanner.ping()).toBe(true);
  });

  it('finds EICAR as a plain file', async () => {
    const verdict = await scanner.scan(streamOf(EICAR), { filename: 'eicar.com' });
    expect(verdict).toEqual({ status: 'infected', signature: expect.stringMatching(/Eicar/i) });
  });

  it('finds EICAR inside a zip archive', async () => {
    const verdict = await scanner.scan(streamOf(storedZip('readme.com', EICAR)));
    expect(verdict.status).toBe('infected');
  });

  it('finds EICAR embedded in a larger file, split across many chunks', async () => {
    const padding = Buffer.alloc(300_000, 0x41);
    const verdict = await scanner.scan(streamOf(Buffer.concat([padding, EICAR, padding]), 1000));
    expect(verdict).toEqual({ status: 'infected', signature: expect.stringMatching(/Eicar/i) });
  });

  it('reports a clean file as clean', async () => {
    const verdict = await scanner.scan(noiseStream(2 * 1024 * 1024));
    expect(verdict).toEqual({ status: 'clean' });
  });

  it('catches EICAR inside an attached message/rfc822 while ingesting, and keeps the clean part servable', async () => {
    const store = new InMemoryAttachmentSink();
    const parsed = await parseMime(streamOf(messageWithAttachedMessage(), 512), {
      attachmentSink: new ScanningAttachmentSink(store, scanner),
    });
    expect(parsed.parseError).toBeNull();
    expect(parsed.attachments).toHaveLength(1);
    const [attachment] = parsed.attachments;
    expect(attachment!.contentType).toBe('message/rfc822');
    expect(attachment!.scan).toEqual({ status: 'infected', signature: expect.stringMatching(/Eicar/i) });
    // Stored (for the audit trail / quarantine) but never servable.
    expect(store.stored.get(attachment!.id!)).toBeDefined();
    const state = nextScanState(INITIAL_SCAN_STATE, attachment!.scan!, 1, new Date());
    expect(isServable(state)).toBe(false);
  });

  it('answers too_large — never clean — for a stream over StreamMaxLength', async (ctx) => {
    requireInTest(ctx, 'the StreamMaxLength of the external clamd', clamd.streamMaxBytes === null ? 'CLAMD_STREAM_MAX_LENGTH is not set' : null);
    const over = clamd.streamMaxBytes! + 1024 * 1024;
    for (let i = 0; i < 2; i++) {
      // Repeated: clamd's refusal races our writes (see clamd.scanner.ts); the verdict must not.
      expect(await scanner.scan(noiseStream(over))).toEqual({ status: 'error', reason: 'too_large' });
    }
    const verdict = await scanner.scan(noiseStream(over));
    expect(verdict).toEqual({ status: 'error', reason: 'too_large' });
    const state = nextScanState(INITIAL_SCAN_STATE, verdict, 1, new Date());
    expect(state.status).toBe('unscannable');
    expect(isServable(state)).toBe(false);
  });

  it('answers too_large up front when the client knows StreamMaxLength, without streaming it all', async () => {
    const limited = new ClamdScanner({ socket: clamd.socket, streamMaxBytes: 4 * 1024 * 1024 });
    expect(await limited.scan(noiseStream(5 * 1024 * 1024))).toEqual({ status: 'error', reason: 'too_large' });
    expect(await limited.scan(noiseStream(10), { sizeBytes: 5 * 1024 * 1024 })).toEqual({
      status: 'error',
      reason: 'too_large',
    });
    expect(await limited.scan(streamOf(EICAR))).toMatchObject({ status: 'infected' });
  });

  it('fails closed while clamd is down and serves the file once a rescan succeeds', async (ctx) => {
    // Needs a clamd we may stop: a private one even when CI provides a shared CLAMD_SOCKET.
    requireInTest(ctx, 'a private clamd', clamdUnavailableReason({ forcePrivate: true }));
    const own = await startClamd({ forcePrivate: true });
    ctx.onTestFinished(() => disposeClamd(own));
    const scanner = new ClamdScanner({ socket: own.socket, idleTimeoutMs: 10_000, scanTimeoutMs: 20_000 });
    await own.stop();
    const now = new Date('2026-01-01T00:00:00Z');
    expect(await scanner.ping()).toBe(false);
    const down = await scanner.scan(streamOf(Buffer.from('a perfectly clean attachment')));
    expect(down).toEqual({ status: 'error', reason: 'unreachable' });
    let state = nextScanState(INITIAL_SCAN_STATE, down, 1, now);
    expect(state.status).toBe('pending');
    expect(isServable(state)).toBe(false);

    await own.start();
    const up = await scanner.scan(streamOf(Buffer.from('a perfectly clean attachment')));
    expect(up).toEqual({ status: 'clean' });
    state = nextScanState(state, up, 2, new Date(now.getTime() + 60_000));
    expect(isServable(state)).toBe(true);
  });
});
