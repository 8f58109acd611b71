import type { Readable } from 'node:stream';
import type { BlobStore, HeldBlob } from '../storage/blob.store.js';
import type { AttachmentMeta, AttachmentSink, AttachmentSinkResult } from './attachment-sink.port.js';

/** Bytes of one chunk (1 MiB) plus its envelope: what holding one more blob can cost at most. */
const HOLD_RESERVE = 1024 * 1024 + 1024;

/**
 * Streams each attachment into the encrypted BlobStore under the MAILBOX data key (shredding the
 * mailbox key makes the bytes unreadable with the rest of its mail).
 *
 * An attachment that fits in one chunk (most of them) is not written here: it is kept encrypted
 * in `held` (up to `holdBytes` per message) and written with its message, in the same statement
 * (MessageWriteRepository.insertPage). Larger ones are written as they stream; `written` lists
 * them, so the ingest service can delete them when the message is not stored after all (a
 * duplicate that lost the insert race, a failed transaction).
 */
export class BlobAttachmentSink implements AttachmentSink {
  readonly written: string[] = [];
  readonly held = new Map<string, HeldBlob>();
  #heldBytes = 0;

  constructor(
    private readonly blobs: Pick<BlobStore, 'writeOrHold'>,
    private readonly owner: { tenantId: string; mailboxId: string },
    private readonly holdBytes = 0,
  ) {}

  async put(_meta: AttachmentMeta, content: Readable): Promise<AttachmentSinkResult> {
    // BlobStore deletes its partial blob itself when `content` errors (a cut message).
    const hold = this.#heldBytes + HOLD_RESERVE <= this.holdBytes;
    const ref = await this.blobs.writeOrHold({ tenantId: this.owner.tenantId, mailboxId: this.owner.mailboxId, kind: 'attachment', content, hold });
    if (ref.held) {
      this.held.set(ref.blobId, ref.held);
      this.#heldBytes += ref.held.dataEnc.length;
    } else {
      this.written.push(ref.blobId);
    }
    return { id: ref.blobId };
  }
}
