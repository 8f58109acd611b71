import { Readable } from 'node:stream';
import { CHUNK_BYTES, decryptChunk, encryptChunk, type BlobAad } from '../crypto/chunked-envelope.js';
import type { DekOwner } from '../crypto/data-key.port.js';
import type { DataKeyService } from '../crypto/data-key.service.js';
import type { PrismaClient } from './database.js';
import { newId } from './ids.js';
import type { SqlExecutor } from './sql-executor.port.js';

export type BlobKind = 'raw' | 'attachment' | 'outbound_attachment' | 'outbound_mime';

export interface BlobRef {
  blobId: string;
  size: number;
}

export interface BlobWriteInput {
  tenantId: string;
  mailboxId: string | null;
  kind: BlobKind;
  content: Readable | Buffer;
}

/** A one-chunk blob encrypted but not yet written (BlobStore.writeOrHold): chunk 0, sealed as last. */
export interface HeldBlob {
  blobId: string;
  tenantId: string;
  mailboxId: string | null;
  kind: BlobKind;
  size: number;
  dataEnc: Buffer;
}

/**
 * Encrypted bytes in 1 MiB chunks (table blob_chunks), so a 100 MB attachment is streamed in and
 * out without ever being held whole. Each chunk is sealed with the owner's DEK and AAD naming
 * the blob, its index and whether it is the last (truncation and reordering fail closed).
 * Mailbox blobs use the mailbox DEK — shredding it makes them unreadable with the rest of the
 * mailbox; tenant blobs (outgoing attachments before a mailbox is involved) use the tenant DEK.
 */
export interface BlobStoreOptions {
  chunkBytes?: number;
  /**
   * The raw SQL executor (pg driver / PGlite), for the chunk statements. Each carries ~1 MiB of
   * ciphertext: the driver sends it as one binary parameter, where Prisma's raw path serialises it
   * to base64 JSON strings (several copies per chunk; measured +250 MiB RSS while writing a
   * 100 MiB blob on Postgres, against +23 MiB through the driver — issue 12 target 4). Outside a
   * transaction only, like the main Prisma client (on the embedded database it waits for an open
   * transaction to end). Absent: Prisma.
   */
  sql?: Pick<SqlExecutor, 'query'>;
}

export class BlobStore {
  private readonly chunkBytes: number;
  private readonly sql: Pick<SqlExecutor, 'query'> | undefined;

  constructor(
    private readonly prisma: PrismaClient,
    private readonly dataKeys: DataKeyService,
    options: BlobStoreOptions = {},
  ) {
    this.chunkBytes = options.chunkBytes ?? CHUNK_BYTES;
    this.sql = options.sql;
  }

  private async execute(text: string, values: unknown[]): Promise<void> {
    if (this.sql) await this.sql.query(text, values.map((v) => (typeof v === 'bigint' ? v.toString() : v instanceof Date ? v.toISOString() : v)));
    else await this.prisma.$executeRawUnsafe(text, ...values);
  }

  private static aad(blobId: string): BlobAad {
    return { table: 'blob_chunks', column: 'dataEnc', blobId };
  }

  private static owner(tenantId: string, mailboxId: string | null): DekOwner {
    return mailboxId ? { type: 'mailbox', id: mailboxId } : { type: 'tenant', id: tenantId };
  }

  /**
   * Streams `content` into a new blob. The blob is marked complete only after its last chunk.
   * A blob of one chunk is one statement (the row, complete, with its chunk); a larger one is one
   * statement per chunk (the first carries the row, the last marks it complete), with one chunk in
   * flight.
   */
  async write(input: BlobWriteInput): Promise<BlobRef> {
    const result = await this.writeOrHold({ ...input, hold: false });
    return { blobId: result.blobId, size: result.size };
  }

  /**
   * Like `write`, but with `hold: true` a blob that fits in one chunk is NOT written: it comes back
   * encrypted (`held`), for the caller to insert with its own rows in one transaction
   * (MessageWriteRepository.insertPage). Larger blobs are written as by `write`.
   */
  async writeOrHold(input: BlobWriteInput & { hold: boolean }): Promise<BlobRef & { held: HeldBlob | null }> {
    const blobId = newId('blob');
    const key = await this.dataKeys.getOrCreate(BlobStore.owner(input.tenantId, input.mailboxId));
    const aad = BlobStore.aad(blobId);
    let index = 0;
    let size = 0;
    let rowWritten = false;
    let pending: Buffer | undefined; // one chunk of look-ahead: only the end of the stream says which chunk is last
    let buffer: Buffer[] = [];
    let buffered = 0;
    const flush = async (chunk: Buffer, isLast: boolean): Promise<void> => {
      const dataEnc = encryptChunk(key, chunk, aad, index, isLast);
      if (!rowWritten) {
        // The row (complete when this is also the last chunk) and the chunk in one statement.
        await this.execute(
          `WITH b AS (INSERT INTO blobs (id, "tenantId", "mailboxId", kind, size, chunks, complete, "createdAt")
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8))
           INSERT INTO blob_chunks ("blobId", seq, "dataEnc") VALUES ($1, 0, $9)`,
          [blobId, input.tenantId, input.mailboxId, input.kind, isLast ? BigInt(size) : 0n, isLast ? 1 : 0, isLast, new Date(), dataEnc],
        );
        rowWritten = true;
      } else if (isLast) {
        await this.execute(
          `WITH c AS (INSERT INTO blob_chunks ("blobId", seq, "dataEnc") VALUES ($1, $2, $3))
           UPDATE blobs SET size = $4, chunks = $5, complete = true WHERE id = $1`,
          [blobId, index, dataEnc, BigInt(size), index + 1],
        );
      } else {
        await this.execute(`INSERT INTO blob_chunks ("blobId", seq, "dataEnc") VALUES ($1, $2, $3)`, [blobId, index, dataEnc]);
      }
      index++;
    };
    const source = Buffer.isBuffer(input.content) ? Readable.from([input.content]) : input.content;
    try {
      for await (const part of source) {
        const buf = Buffer.isBuffer(part) ? part : Buffer.from(part as Uint8Array);
        size += buf.length;
        buffer.push(buf);
        buffered += buf.length;
        while (buffered >= this.chunkBytes) {
          const all = Buffer.concat(buffer);
          const chunk = all.subarray(0, this.chunkBytes);
          buffer = [all.subarray(this.chunkBytes)];
          buffered = all.length - this.chunkBytes;
          if (pending) await flush(pending, false);
          pending = Buffer.from(chunk);
        }
      }
      const rest = Buffer.concat(buffer);
      if (rest.length > 0) {
        if (pending) await flush(pending, false);
        pending = rest;
      }
      const last = pending ?? Buffer.alloc(0);
      if (index === 0 && input.hold) {
        const held: HeldBlob = { blobId, tenantId: input.tenantId, mailboxId: input.mailboxId, kind: input.kind, size, dataEnc: encryptChunk(key, last, aad, 0, true) };
        return { blobId, size, held };
      }
      await flush(last, true);
      return { blobId, size, held: null };
    } catch (err) {
      if (rowWritten) await this.delete([blobId]).catch(() => undefined);
      throw err;
    }
  }

  /** A stream of the plaintext; fails (stream error) on a missing, reordered or altered chunk. */
  read(blobId: string): Readable {
    const prisma = this.prisma;
    const dataKeys = this.dataKeys;
    const aad = BlobStore.aad(blobId);
    async function* chunks(): AsyncGenerator<Buffer> {
      const blob = await prisma.blob.findUnique({ where: { id: blobId } });
      if (!blob || !blob.complete) throw new Error('blob not found or incomplete');
      const key = await dataKeys.get(BlobStore.owner(blob.tenantId, blob.mailboxId));
      for (let seq = 0; seq < blob.chunks; seq++) {
        const row = await prisma.blobChunk.findUnique({ where: { blobId_seq: { blobId, seq } } });
        if (!row) throw new Error('blob chunk missing');
        yield decryptChunk(key, row.dataEnc, aad, seq, seq === blob.chunks - 1);
      }
    }
    return Readable.from(chunks(), { objectMode: false });
  }

  async readAll(blobId: string): Promise<Buffer> {
    const parts: Buffer[] = [];
    for await (const part of this.read(blobId)) parts.push(part as Buffer);
    return Buffer.concat(parts);
  }

  async delete(blobIds: string[]): Promise<number> {
    if (blobIds.length === 0) return 0;
    await this.prisma.blobChunk.deleteMany({ where: { blobId: { in: blobIds } } });
    const res = await this.prisma.blob.deleteMany({ where: { id: { in: blobIds } } });
    return res.count;
  }
}
