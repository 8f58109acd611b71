import { PassThrough, type Readable } from 'node:stream';
import type { Scanner } from '../scan/scanner.port.js';
import type { AttachmentMeta, AttachmentSink, AttachmentSinkResult } from './attachment-sink.port.js';

/**
 * Decorator: stores and scans each attachment in ONE pass over the decoded bytes. The content is
 * teed into the inner sink and the scanner; `pipe` to two destinations pauses the source while
 * either is behind, so memory stays at a few chunks, never the attachment.
 *
 * The verdict comes back in `result.scan`; the storage transaction turns it into a ScanState with
 * nextScanState(). A scanner failure is a verdict (error/*), never a sink failure: the attachment
 * is still stored, locked as pending/unscannable, and rescanned later.
 */
export class ScanningAttachmentSink implements AttachmentSink {
  constructor(
    private readonly inner: AttachmentSink,
    private readonly scanner: Scanner,
  ) {}

  async put(meta: AttachmentMeta, content: Readable): Promise<AttachmentSinkResult> {
    const toStore = new PassThrough();
    const toScan = new PassThrough();
    content.on('error', (err) => {
      toStore.destroy(err);
      toScan.destroy(err);
    });
    content.pipe(toStore);
    content.pipe(toScan);

    const stored = this.inner.put(meta, toStore).catch((err: unknown) => {
      // Keep the other branch flowing so the scan (and the parser behind it) can finish.
      toStore.resume();
      throw err;
    });
    const scanned = this.scanner
      .scan(toScan, { filename: meta.filename, contentType: meta.contentType })
      .catch((err: unknown) => {
        toScan.resume();
        throw err;
      });
    const [storeResult, scanResult] = await Promise.allSettled([stored, scanned]);
    if (storeResult.status === 'rejected') throw storeResult.reason;
    if (scanResult.status === 'rejected') throw scanResult.reason; // content itself failed
    return { ...storeResult.value, scan: scanResult.value };
  }
}
