import { DecryptionError } from './crypto-error.js';
import { decrypt, encrypt, type Aad, type EnvelopeKey } from './envelope.js';

/** Blobs (raw MIME, attachments) are stored as 1 MiB plaintext chunks, one envelope each. */
export const CHUNK_BYTES = 1024 * 1024;

/** Where a blob lives: like `Aad`, but the row is the blob and each chunk gets its own row id. */
export interface BlobAad {
  readonly table: string;
  readonly column: string;
  readonly blobId: string;
}

/**
 * Per-chunk AAD: `rowId = <blobId>:<index>`, and `<blobId>:<index>:last` for the final chunk.
 * The index stops chunks being reordered or swapped between blobs; the `last` marker stops a
 * blob being silently truncated (dropping trailing chunks leaves a non-final chunk at the end,
 * which then fails to decrypt as final). This is the STREAM construction's idea, in AAD form.
 */
export function chunkAad(base: BlobAad, index: number, isLast: boolean): Aad {
  if (!Number.isSafeInteger(index) || index < 0) throw new TypeError('chunk index must be a non-negative integer');
  return { table: base.table, column: base.column, rowId: `${base.blobId}:${index}${isLast ? ':last' : ''}` };
}

export function encryptChunk(key: EnvelopeKey, chunk: Uint8Array, base: BlobAad, index: number, isLast: boolean): Buffer {
  return encrypt(key, chunk, chunkAad(base, index, isLast));
}

export function decryptChunk(key: EnvelopeKey, sealed: Uint8Array, base: BlobAad, index: number, isLast: boolean): Buffer {
  return decrypt(key, sealed, chunkAad(base, index, isLast));
}

/** Splits and seals a whole blob. An empty blob is one empty final chunk. */
export function encryptBlob(key: EnvelopeKey, bytes: Uint8Array, base: BlobAad, chunkBytes = CHUNK_BYTES): Buffer[] {
  const count = Math.max(1, Math.ceil(bytes.length / chunkBytes));
  const out: Buffer[] = [];
  for (let i = 0; i < count; i++) {
    out.push(encryptChunk(key, bytes.subarray(i * chunkBytes, (i + 1) * chunkBytes), base, i, i === count - 1));
  }
  return out;
}

/** Opens chunks given in index order; fails closed if any is missing, reordered or altered. */
export function decryptBlob(key: EnvelopeKey, chunks: readonly Uint8Array[], base: BlobAad): Buffer {
  if (chunks.length === 0) throw new DecryptionError('truncated', `blob ${base.table}.${base.column} has no chunks`);
  return Buffer.concat(chunks.map((c, i) => decryptChunk(key, c, base, i, i === chunks.length - 1)));
}
