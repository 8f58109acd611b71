import { createSecretKey, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { chunkAad, decryptBlob, encryptBlob, type BlobAad } from './chunked-envelope.js';
import { DecryptionError } from './crypto-error.js';

const key = { version: 1, key: createSecretKey(randomBytes(32)) };
const base: BlobAad = { table: 'blobs', column: 'data', blobId: 'blob_1' };

describe('chunked envelope', () => {
  it('round-trips a multi-chunk blob and an empty one', () => {
    const bytes = randomBytes(10_000);
    const chunks = encryptBlob(key, bytes, base, 4096);
    expect(chunks).toHaveLength(3);
    expect(decryptBlob(key, chunks, base).equals(bytes)).toBe(true);
    const empty = encryptBlob(key, Buffer.alloc(0), base);
    expect(empty).toHaveLength(1);
    expect(decryptBlob(key, empty, base).length).toBe(0);
  });

  it('binds chunks to index, blob and finality', () => {
    expect(chunkAad(base, 3, false).rowId).toBe('blob_1:3');
    expect(chunkAad(base, 3, true).rowId).toBe('blob_1:3:last');
  });

  it('detects reordered, truncated, extended and foreign chunks', () => {
    const chunks = encryptBlob(key, randomBytes(10_000), base, 4096);
    const other = encryptBlob(key, randomBytes(10_000), { ...base, blobId: 'blob_2' }, 4096);
    const attempts = [
      [chunks[1]!, chunks[0]!, chunks[2]!], // reordered
      chunks.slice(0, 2), // trailing chunk dropped
      [...chunks, chunks[2]!], // chunk appended
      [chunks[0]!, other[1]!, chunks[2]!], // chunk from another blob
      [],
    ];
    for (const attempt of attempts) expect(() => decryptBlob(key, attempt, base)).toThrow(DecryptionError);
  });
});
