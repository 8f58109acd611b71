/**
 * Storage for wrapped data keys (DEKs). Implemented with Prisma in `storage/`; an in-memory
 * version for tests lives in `in-memory-data-key.store.ts`.
 *
 * A row holds only the DEK *wrapped* (AES-256-GCM) by a KEK; the KEK never reaches the database.
 * Deleting the row is crypto-shredding: without it, every ciphertext of that owner — including
 * copies in backups — is unreadable.
 */
export type DekOwnerType = 'tenant' | 'mailbox' | 'system';

export interface DekOwner {
  readonly type: DekOwnerType;
  /** Tenant id, mailbox id, or a fixed name for system keys (see `SYSTEM_BLIND_INDEX_OWNER`). */
  readonly id: string;
}

/** The one system DEK; used only to derive blind-index keys. Never destroyed. */
export const SYSTEM_BLIND_INDEX_OWNER: DekOwner = Object.freeze({ type: 'system', id: 'blind-index' });

export interface DataKeyWrapping {
  /** Version of the KEK in the key ring that wrapped `wrappedKey`. */
  readonly kekVersion: number;
  /** Envelope (see envelope.ts) of the 32-byte DEK; opaque to storage. */
  readonly wrappedKey: Uint8Array;
}

export interface NewDataKey extends DataKeyWrapping {
  /** Version of the DEK itself; written into every data ciphertext it seals. Starts at 1. */
  readonly dekVersion: number;
}

export interface StoredDataKey extends NewDataKey {
  /** Storage id (opaque). */
  readonly id: string;
  readonly owner: DekOwner;
  readonly createdAt: Date;
  /** When `updateWrapping` last re-wrapped it; null if never. */
  readonly rotatedAt: Date | null;
}

export interface DataKeyStore {
  /** The owner's key, or null when it has none (never created, or destroyed). */
  find(owner: DekOwner): Promise<StoredDataKey | null>;

  /**
   * Inserts the owner's key. Must be idempotent under races: with a unique constraint on
   * (owner type, owner id), a losing concurrent insert returns the row that won, NOT the
   * caller's key (`INSERT … ON CONFLICT DO NOTHING` then select). The service always uses the
   * returned row, so two processes never seal with different DEKs for one owner.
   */
  create(owner: DekOwner, key: NewDataKey): Promise<StoredDataKey>;

  /**
   * Every key, in stable order (e.g. keyset pagination by id), fetching `batchSize` rows at a
   * time. Rows updated while iterating must neither be skipped nor repeated.
   */
  listAll(batchSize: number): AsyncIterable<StoredDataKey>;

  /**
   * Compare-and-set re-wrap for key rotation: update only if the row still exists and is still
   * wrapped by `expectedKekVersion` (`UPDATE … WHERE id = $1 AND kek_version = $2`), also setting
   * `rotatedAt`. Returns whether a row was updated. Must never insert: a key destroyed meanwhile stays destroyed.
   */
  updateWrapping(id: string, next: DataKeyWrapping, expectedKekVersion: number): Promise<boolean>;

  /** Deletes the owner's key. Returns whether one existed. */
  destroy(owner: DekOwner): Promise<boolean>;
}
