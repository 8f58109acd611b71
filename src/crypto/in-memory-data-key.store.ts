import type { DataKeyStore, DataKeyWrapping, DekOwner, NewDataKey, StoredDataKey } from './data-key.port.js';

/**
 * `DataKeyStore` in memory, for unit tests and the in-process demo. Behaves like the Prisma
 * implementation must: unique per owner, create returns the existing row on conflict,
 * compare-and-set updates, keyset iteration by id.
 */
export class InMemoryDataKeyStore implements DataKeyStore {
  readonly #rows = new Map<string, StoredDataKey>(); // by id
  #nextId = 1;
  readonly #now: () => Date;

  constructor(now: () => Date = () => new Date()) {
    this.#now = now;
  }

  async find(owner: DekOwner): Promise<StoredDataKey | null> {
    return this.#findSync(owner);
  }

  async create(owner: DekOwner, key: NewDataKey): Promise<StoredDataKey> {
    const existing = this.#findSync(owner);
    if (existing) return existing;
    const now = this.#now();
    // Zero-padded ids so lexical order equals insertion order, like a sortable uuid/cuid.
    const row: StoredDataKey = {
      id: `dek_${String(this.#nextId++).padStart(10, '0')}`,
      owner: { type: owner.type, id: owner.id },
      dekVersion: key.dekVersion,
      kekVersion: key.kekVersion,
      wrappedKey: Buffer.from(key.wrappedKey),
      createdAt: now,
      rotatedAt: null,
    };
    this.#rows.set(row.id, row);
    return row;
  }

  async *listAll(batchSize: number): AsyncIterable<StoredDataKey> {
    if (!Number.isInteger(batchSize) || batchSize < 1) throw new RangeError('batchSize must be a positive integer');
    let after = '';
    for (;;) {
      const batch = [...this.#rows.values()]
        .filter((r) => r.id > after)
        .sort((a, b) => (a.id < b.id ? -1 : 1))
        .slice(0, batchSize);
      if (batch.length === 0) return;
      for (const row of batch) yield row;
      after = batch[batch.length - 1]!.id;
    }
  }

  async updateWrapping(id: string, next: DataKeyWrapping, expectedKekVersion: number): Promise<boolean> {
    const row = this.#rows.get(id);
    if (!row || row.kekVersion !== expectedKekVersion) return false;
    this.#rows.set(id, {
      ...row,
      kekVersion: next.kekVersion,
      wrappedKey: Buffer.from(next.wrappedKey),
      rotatedAt: this.#now(),
    });
    return true;
  }

  async destroy(owner: DekOwner): Promise<boolean> {
    const row = this.#findSync(owner);
    if (!row) return false;
    this.#rows.delete(row.id);
    return true;
  }

  /** Test helper: the raw rows, as an attacker with database access would see them. */
  rows(): StoredDataKey[] {
    return [...this.#rows.values()];
  }

  /** Test helper: overwrite a row as someone with database access could. */
  tamper(id: string, patch: Partial<Omit<StoredDataKey, 'id'>>): void {
    const row = this.#rows.get(id);
    if (!row) throw new Error(`no data key row ${id}`);
    this.#rows.set(id, { ...row, ...patch });
  }

  #findSync(owner: DekOwner): StoredDataKey | null {
    for (const row of this.#rows.values()) {
      if (row.owner.type === owner.type && row.owner.id === owner.id) return row;
    }
    return null;
  }
}
