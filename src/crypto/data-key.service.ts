import { createSecretKey, randomBytes } from 'node:crypto';
import { CryptoError, DecryptionError, KeyDestroyedError, UnknownKekVersionError } from './crypto-error.js';
import type { DataKeyStore, DekOwner, StoredDataKey } from './data-key.port.js';
import { decrypt, encrypt, type Aad, type EnvelopeKey } from './envelope.js';
import { KEY_BYTES, type Keyring } from './keyring.js';

/** An unwrapped data key, ready for `encrypt`/`decrypt` (it is an `EnvelopeKey`). */
export interface DataKey extends EnvelopeKey {
  readonly owner: DekOwner;
}

export interface DataKeyServiceOptions {
  /** Most unwrapped DEKs kept in memory (least recently used evicted). Default 1000. */
  readonly cacheSize?: number;
  /**
   * How long an unwrapped DEK is trusted without re-reading its row. Bounds how long another
   * process keeps decrypting after a mailbox was crypto-shredded elsewhere. Default 60 s.
   */
  readonly cacheTtlMs?: number;
  /** Clock in ms, for the cache TTL. */
  readonly now?: () => number;
}

export interface RotationProgress {
  readonly scanned: number;
  readonly rewrapped: number;
  readonly alreadyCurrent: number;
  /** Rows destroyed or re-wrapped by someone else between read and write. */
  readonly skipped: number;
}

export type RotationResult = RotationProgress;

/** What a transaction may do with data keys (see `DataKeyService.within`). */
export type TransactionalDataKeys = Pick<DataKeyService, 'getOrCreate' | 'get' | 'encryptFor' | 'decryptFor'>;

const OWNER_TYPES: ReadonlySet<string> = new Set(['tenant', 'mailbox', 'system']);
const FIRST_DEK_VERSION = 1;

/**
 * Per-owner data keys (DEKs), wrapped at rest by the active KEK of the key ring.
 *
 * Only encrypt paths create keys (`getOrCreate`, `encryptFor`). Read paths (`get`, `decryptFor`)
 * never do: a missing key means the owner was crypto-shredded, and quietly minting a fresh key
 * there would turn "this data is gone" into confusing authentication failures.
 */
export class DataKeyService {
  readonly #keyring: Keyring;
  readonly #store: DataKeyStore;
  readonly #cacheSize: number;
  readonly #cacheTtlMs: number;
  readonly #now: () => number;
  readonly #cache = new Map<string, { dek: DataKey; expiresAt: number }>();
  readonly #inflight = new Map<string, Promise<DataKey | null>>();
  // Bumped on every destroy: a load that started before a destroy must not repopulate the cache.
  #destroyEpoch = 0;
  #prunedAt = 0;

  constructor(keyring: Keyring, store: DataKeyStore, options: DataKeyServiceOptions = {}) {
    this.#keyring = keyring;
    this.#store = store;
    this.#cacheSize = options.cacheSize ?? 1000;
    this.#cacheTtlMs = options.cacheTtlMs ?? 60_000;
    this.#now = options.now ?? Date.now;
  }

  /** Unwrapped keys held in memory (observability and tests). */
  get cachedKeys(): number {
    return this.#cache.size;
  }

  /** The owner's DEK, creating (and storing wrapped) one on first use. */
  async getOrCreate(owner: DekOwner): Promise<DataKey> {
    const dek = await this.#load(owner, true);
    if (!dek) throw new Error('unreachable: create path returned no key');
    return dek;
  }

  /** The owner's existing DEK; `KeyDestroyedError` if it has none. Never creates. */
  async get(owner: DekOwner): Promise<DataKey> {
    const dek = await this.#load(owner, false);
    if (!dek) throw new KeyDestroyedError(owner.type, owner.id);
    return dek;
  }

  /**
   * The same keys, loaded on a cache miss through `store`: a store bound to the caller's OPEN
   * transaction. Anything sealed inside a transaction must go through this. The service's own
   * store queries on another connection, which the embedded database (one connection) cannot
   * give while the transaction holds it: a cache miss there (first use, or after `cacheTtlMs`)
   * waited until the transaction expired.
   *
   * Keys loaded this way are not cached: the transaction may have created the row itself and may
   * still roll back, and a cached key that never committed would seal data nobody can decrypt.
   */
  within(store: DataKeyStore): TransactionalDataKeys {
    return {
      getOrCreate: async (owner) => (await this.#loadWithin(owner, true, store))!,
      get: async (owner) => {
        const dek = await this.#loadWithin(owner, false, store);
        if (!dek) throw new KeyDestroyedError(owner.type, owner.id);
        return dek;
      },
      encryptFor: async (owner, plaintext, aad) => encrypt((await this.#loadWithin(owner, true, store))!, plaintext, aad),
      decryptFor: async (owner, blob, aad) => {
        const dek = await this.#loadWithin(owner, false, store);
        if (!dek) throw new KeyDestroyedError(owner.type, owner.id);
        return decrypt(dek, blob, aad);
      },
    };
  }

  async encryptFor(owner: DekOwner, plaintext: Uint8Array | string, aad: Aad): Promise<Buffer> {
    return encrypt(await this.getOrCreate(owner), plaintext, aad);
  }

  async decryptFor(owner: DekOwner, blob: Uint8Array, aad: Aad): Promise<Buffer> {
    return decrypt(await this.get(owner), blob, aad);
  }

  /**
   * Crypto-shredding: deletes the owner's wrapped DEK, after which none of its ciphertext (in the
   * database or any backup) can be decrypted. Returns whether a key existed. Other processes
   * stop using their cached copy within `cacheTtlMs`.
   */
  async destroy(owner: DekOwner): Promise<boolean> {
    assertOwner(owner);
    if (owner.type === 'system') {
      // The system DEK derives every blind index; losing it breaks all lookups for all tenants.
      throw new CryptoError('not_destroyable', `refusing to destroy system data key ${owner.id}`);
    }
    const key = ownerKey(owner);
    this.#destroyEpoch++;
    this.#cache.delete(key);
    try {
      return await this.#store.destroy(owner);
    } finally {
      this.#destroyEpoch++;
      this.#cache.delete(key);
    }
  }

  /**
   * Re-wraps every DEK not wrapped by the active KEK. Data ciphertext is untouched: DEKs keep
   * their bytes and version, only their wrapping changes. Idempotent and safe to re-run or run
   * concurrently (compare-and-set per row). Stops at the first row whose KEK is not in the ring.
   */
  async rotate(onProgress?: (progress: RotationProgress) => void, batchSize = 100): Promise<RotationResult> {
    const active = this.#keyring.activeVersion;
    let scanned = 0;
    let rewrapped = 0;
    let alreadyCurrent = 0;
    let skipped = 0;
    for await (const row of this.#store.listAll(batchSize)) {
      scanned++;
      if (row.kekVersion === active) {
        alreadyCurrent++;
      } else {
        if (!this.#keyring.has(row.kekVersion)) {
          throw new UnknownKekVersionError(
            row.kekVersion,
            `data key ${row.id} of ${row.owner.type} ${row.owner.id}; ${rewrapped} key(s) re-wrapped before stopping`,
          );
        }
        const raw = this.#unwrapRaw(row, row.owner);
        let wrappedKey: Buffer;
        try {
          wrappedKey = this.#wrap(raw, row.owner, row.dekVersion);
        } finally {
          raw.fill(0);
        }
        const updated = await this.#store.updateWrapping(row.id, { kekVersion: active, wrappedKey }, row.kekVersion);
        if (updated) rewrapped++;
        else skipped++;
      }
      onProgress?.({ scanned, rewrapped, alreadyCurrent, skipped });
    }
    return { scanned, rewrapped, alreadyCurrent, skipped };
  }

  async #load(owner: DekOwner, create: boolean): Promise<DataKey | null> {
    assertOwner(owner);
    const key = ownerKey(owner);
    const cached = this.#cacheGet(key);
    if (cached) return cached;
    this.#pruneExpired();
    // Single-flight per owner and mode, so a burst of messages for a new mailbox does one
    // insert, not many racing ones.
    const flightKey = `${create ? 'c' : 'r'}|${key}`;
    const pending = this.#inflight.get(flightKey);
    if (pending) return pending;
    const epoch = this.#destroyEpoch;
    const flight = (async () => {
      let row = await this.#store.find(owner);
      if (!row) {
        if (!create) return null;
        row = await this.#createRow(owner);
      }
      const dek = this.#unwrap(row, owner);
      if (epoch === this.#destroyEpoch) this.#cacheSet(key, dek);
      return dek;
    })();
    this.#inflight.set(flightKey, flight);
    try {
      return await flight;
    } finally {
      this.#inflight.delete(flightKey);
    }
  }

  /**
   * Cache first; otherwise through the transaction's store, on its own (no single-flight with the
   * main path: joining a load queued behind this very transaction would wait for ever).
   */
  async #loadWithin(owner: DekOwner, create: boolean, store: DataKeyStore): Promise<DataKey | null> {
    assertOwner(owner);
    const cached = this.#cacheGet(ownerKey(owner));
    if (cached) return cached;
    let row = await store.find(owner);
    if (!row) {
      if (!create) return null;
      row = await this.#createRow(owner, store);
    }
    return this.#unwrap(row, owner);
  }

  async #createRow(owner: DekOwner, store: DataKeyStore = this.#store): Promise<StoredDataKey> {
    const raw = randomBytes(KEY_BYTES);
    try {
      const wrappedKey = this.#wrap(raw, owner, FIRST_DEK_VERSION);
      // If another process won the race, this returns *its* row; we unwrap and use that one.
      return await store.create(owner, {
        dekVersion: FIRST_DEK_VERSION,
        kekVersion: this.#keyring.activeVersion,
        wrappedKey,
      });
    } finally {
      raw.fill(0);
    }
  }

  #wrap(raw: Buffer, owner: DekOwner, dekVersion: number): Buffer {
    const kek: EnvelopeKey = { version: this.#keyring.activeVersion, key: this.#keyring.activeKey };
    return encrypt(kek, raw, wrapAad(owner, dekVersion));
  }

  #unwrap(row: StoredDataKey, owner: DekOwner): DataKey {
    const raw = this.#unwrapRaw(row, owner);
    try {
      return Object.freeze({ owner: { type: owner.type, id: owner.id }, version: row.dekVersion, key: createSecretKey(raw) });
    } finally {
      raw.fill(0);
    }
  }

  /**
   * Unwraps with the KEK version recorded on the row. The AAD is the *requested* owner, so a
   * wrapped key copied onto another owner's row does not unwrap there.
   */
  #unwrapRaw(row: StoredDataKey, owner: DekOwner): Buffer {
    if (!this.#keyring.has(row.kekVersion)) {
      throw new UnknownKekVersionError(row.kekVersion, `data key of ${owner.type} ${owner.id}`);
    }
    let raw: Buffer;
    try {
      raw = decrypt({ version: row.kekVersion, key: this.#keyring.get(row.kekVersion) }, row.wrappedKey, wrapAad(owner, row.dekVersion));
    } catch (err) {
      if (err instanceof DecryptionError) {
        throw new DecryptionError(
          err.code,
          `wrapped data key of ${owner.type} ${owner.id} did not unwrap under KEK version ${row.kekVersion} (${err.code})`,
        );
      }
      throw err;
    }
    if (raw.length !== KEY_BYTES) {
      raw.fill(0);
      throw new DecryptionError('authentication_failed', `wrapped data key of ${owner.type} ${owner.id} has the wrong length`);
    }
    return raw;
  }

  #cacheGet(key: string): DataKey | undefined {
    const hit = this.#cache.get(key);
    if (!hit) return undefined;
    if (hit.expiresAt <= this.#now()) {
      this.#cache.delete(key);
      return undefined;
    }
    // Re-insert to mark as most recently used (Map keeps insertion order).
    this.#cache.delete(key);
    this.#cache.set(key, hit);
    return hit.dek;
  }

  /**
   * Drops keys past their TTL, on a cache miss, at most once per TTL: an owner idle for longer
   * (a mailbox between hourly polls) holds no unwrapped key in this process, whatever the
   * cache size.
   */
  #pruneExpired(): void {
    const now = this.#now();
    if (now - this.#prunedAt < this.#cacheTtlMs) return;
    this.#prunedAt = now;
    for (const [key, hit] of this.#cache) if (hit.expiresAt <= now) this.#cache.delete(key);
  }

  #cacheSet(key: string, dek: DataKey): void {
    if (this.#cacheSize <= 0) return;
    this.#cache.delete(key);
    this.#cache.set(key, { dek, expiresAt: this.#now() + this.#cacheTtlMs });
    while (this.#cache.size > this.#cacheSize) {
      const oldest = this.#cache.keys().next().value;
      if (oldest === undefined) break;
      this.#cache.delete(oldest);
    }
  }
}

/**
 * AAD for a wrapped DEK: binds it to its owner and DEK version. (`@` + decimal version at the
 * end keeps the row id injective whatever the owner id contains.) The KEK version is bound too,
 * through the authenticated envelope header.
 */
function wrapAad(owner: DekOwner, dekVersion: number): Aad {
  return { table: 'data_keys', column: `wrapped_key:${owner.type}`, rowId: `${owner.id}@${dekVersion}` };
}

function ownerKey(owner: DekOwner): string {
  return `${owner.type}:${owner.id}`; // type never contains ':'
}

function assertOwner(owner: DekOwner): void {
  if (!owner || !OWNER_TYPES.has(owner.type)) throw new TypeError('data key owner type must be tenant, mailbox or system');
  if (typeof owner.id !== 'string' || owner.id === '') throw new TypeError('data key owner id must be a non-empty string');
}
