import type { Readable } from 'node:stream';
import type { BlobStore } from '../storage/blob.store.js';
import type { AttachmentMeta, AttachmentSink, AttachmentSinkResult } from './attachment-sink.port.js';

/**
 * Streams each attachment into the encrypted BlobStore under the MAILBOX data key (shredding the
 * mailbox key makes the bytes unreadable with the rest of its mail). Remembers every blob it
 * wrote, so the ingest service can delete them when the message is not stored after all
 * (a duplicate that lost the insert race, a failed transaction).
 */
export class BlobAttachmentSink implements AttachmentSink {
  readonly written: string[] = [];

  constructor(
    private readonly blobs: Pick<BlobStore, 'write'>,
    private readonly owner: { tenantId: string; mailboxId: string },
  ) {}

  async put(_meta: AttachmentMeta, content: Readable): Promise<AttachmentSinkResult> {
    // BlobStore.write deletes its partial blob itself when `content` errors (a cut message).
    const ref = await this.blobs.write({ tenantId: this.owner.tenantId, mailboxId: this.owner.mailboxId, kind: 'attachment', content });
    this.written.push(ref.blobId);
    return { id: ref.blobId };
  }
}
