import { describe, expect, it } from 'vitest';
import { checkDataKeyStoreContract } from './data-key-store.contract.js';
import type { DataKeyStore } from './data-key.port.js';
import { InMemoryDataKeyStore } from './in-memory-data-key.store.js';

describe('InMemoryDataKeyStore', () => {
  it('meets the DataKeyStore contract, also when shared with other rows', async () => {
    const store = new InMemoryDataKeyStore();
    await store.create({ type: 'mailbox', id: 'unrelated' }, { dekVersion: 1, kekVersion: 1, wrappedKey: Buffer.alloc(66, 1) });
    await checkDataKeyStoreContract(store);
    await checkDataKeyStoreContract(store);
    expect(store.rows().map((r) => r.owner.id)).toEqual(['unrelated']);
  });

  it('the contract catches a store whose create() overwrites the winner', async () => {
    const inner = new InMemoryDataKeyStore();
    const overwriting: DataKeyStore = {
      find: (o) => inner.find(o),
      create: async (o, key) => {
        await inner.destroy(o);
        return inner.create(o, key);
      },
      listAll: (n) => inner.listAll(n),
      updateWrapping: (id, next, e) => inner.updateWrapping(id, next, e),
      destroy: (o) => inner.destroy(o),
    };
    await expect(checkDataKeyStoreContract(overwriting)).rejects.toThrow(/existing row unchanged/);
  });

  it('the contract catches an updateWrapping() without compare-and-set', async () => {
    const inner = new InMemoryDataKeyStore();
    const blind: DataKeyStore = {
      find: (o) => inner.find(o),
      create: (o, key) => inner.create(o, key),
      listAll: (n) => inner.listAll(n),
      updateWrapping: async (id, next) => {
        const row = inner.rows().find((r) => r.id === id);
        return row ? inner.updateWrapping(id, next, row.kekVersion) : false;
      },
      destroy: (o) => inner.destroy(o),
    };
    await expect(checkDataKeyStoreContract(blind)).rejects.toThrow(/must not update when kekVersion differs/);
  });
});
