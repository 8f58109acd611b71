import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { AttachmentMeta, AttachmentSink, AttachmentSinkResult } from './attachment-sink.port.js';

export interface InMemoryAttachment {
  id: string;
  meta: AttachmentMeta;
  content: Buffer;
  sha256: string;
}

/** Test/bench sink. `retainContent: false` only counts bytes (for memory tests). */
export class InMemoryAttachmentSink implements AttachmentSink {
  readonly stored = new Map<string, InMemoryAttachment>();
  private nextId = 1;

  constructor(private readonly options: { retainContent?: boolean } = {}) {}

  async put(meta: AttachmentMeta, content: Readable): Promise<AttachmentSinkResult> {
    const retain = this.options.retainContent ?? true;
    const hash = createHash('sha256');
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of content as AsyncIterable<Buffer>) {
      hash.update(chunk);
      size += chunk.length;
      if (retain) chunks.push(chunk);
    }
    const id = `att_${this.nextId++}`;
    this.stored.set(id, {
      id,
      meta,
      content: retain ? Buffer.concat(chunks, size) : Buffer.alloc(0),
      sha256: hash.digest('hex'),
    });
    return { id };
  }
}
