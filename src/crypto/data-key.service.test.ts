import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { CryptoError, DecryptionError, KeyDestroyedError, UnknownKekVersionError } from './crypto-error.js';
import type { DataKeyStore, DekOwner } from './data-key.port.js';
import { SYSTEM_BLIND_INDEX_OWNER } from './data-key.port.js';
import { DataKeyService, type RotationProgress } from './data-key.service.js';
import { encrypt, type Aad } from './envelope.js';
import { InMemoryDataKeyStore } from './in-memory-data-key.store.js';
import { parseKeyring } from './keyring.js';

const k = () => randomBytes(32).toString('base64');
const mailbox = (id: string): DekOwner => ({ type: 'mailbox', id });
const aad = (rowId: string): Aad => ({ table: 'messages', column: 'body', rowId });

async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a rejection');
}

describe('DataKeyService', () => {
  const key1 = k();
  const key2 = k();
  const key3 = k();

  it('encrypts and decrypts per owner; one DEK per owner, stored only wrapped', async () => {
    const store = new InMemoryDataKeyStore();
    const svc = new DataKeyService(parseKeyring(`1:${key1}`), store);
    const blob = await svc.encryptFor(mailbox('mb_1'), 'Hello Jane', aad('m1'));
    expect((await svc.decryptFor(mailbox('mb_1'), blob, aad('m1'))).toString()).toBe('Hello Jane');

    await svc.encryptFor(mailbox('mb_1'), 'again', aad('m2'));
    await svc.encryptFor({ type: 'tenant', id: 'tn_1' }, 'tenant secret', aad('t1'));
    const rows = store.rows();
    expect(rows.map((r) => `${r.owner.type}:${r.owner.id}`).sort()).toEqual(['mailbox:mb_1', 'tenant:tn_1']);
    const dek = await svc.get(mailbox('mb_1'));
    const raw = dek.key.export();
    for (const row of rows) {
      expect(row.kekVersion).toBe(1);
      expect(row.dekVersion).toBe(1);
      expect(Buffer.from(row.wrappedKey).includes(raw)).toBe(false); // not stored in clear
    }
  });

  it("one owner's key cannot decrypt another owner's ciphertext", async () => {
    const svc = new DataKeyService(parseKeyring(`1:${key1}`), new InMemoryDataKeyStore());
    const blob = await svc.encryptFor(mailbox('mb_a'), 'for a only', aad('m1'));
    await svc.getOrCreate(mailbox('mb_b'));
    const err = await rejection(svc.decryptFor(mailbox('mb_b'), blob, aad('m1')));
    expect(err).toBeInstanceOf(DecryptionError);
  });

  it('a fresh process with the same ring and store reads existing data', async () => {
    const store = new InMemoryDataKeyStore();
    const blob = await new DataKeyService(parseKeyring(`1:${key1}`), store).encryptFor(mailbox('mb_1'), 'persisted', aad('m1'));
    const other = new DataKeyService(parseKeyring(`1:${key1}`), store);
    expect((await other.decryptFor(mailbox('mb_1'), blob, aad('m1'))).toString()).toBe('persisted');
  });

  it('concurrent first use creates exactly one key, also across processes racing on the store', async () => {
    const store = new InMemoryDataKeyStore();
    const a = new DataKeyService(parseKeyring(`1:${key1}`), store);
    const b = new DataKeyService(parseKeyring(`1:${key1}`), store);
    const keys = await Promise.all([...Array(5)].flatMap(() => [a.getOrCreate(mailbox('mb_1')), b.getOrCreate(mailbox('mb_1'))]));
    expect(store.rows()).toHaveLength(1);
    const first = keys[0]!.key.export();
    for (const dk of keys) expect(dk.key.export().equals(first)).toBe(true);
  });

  it('uses the row that won a create race, not its own freshly generated key', async () => {
    const inner = new InMemoryDataKeyStore();
    const winner = new DataKeyService(parseKeyring(`1:${key1}`), inner);
    // A store whose find() misses (the row did not exist yet when we looked) but whose create()
    // hits an existing row: exactly what a losing INSERT … ON CONFLICT sees.
    const racing: DataKeyStore = {
      find: async () => null,
      create: (owner, key) => inner.create(owner, key),
      listAll: (n) => inner.listAll(n),
      updateWrapping: (id, next, expected) => inner.updateWrapping(id, next, expected),
      destroy: (owner) => inner.destroy(owner),
    };
    const blob = await winner.encryptFor(mailbox('mb_1'), 'sealed by winner', aad('m1'));
    const loser = new DataKeyService(parseKeyring(`1:${key1}`), racing);
    await loser.getOrCreate(mailbox('mb_1'));
    expect(inner.rows()).toHaveLength(1);
    // If the loser had kept its own key this would fail authentication.
    const loserKey = await loser.getOrCreate(mailbox('mb_1'));
    expect(loserKey.key.export().equals((await winner.get(mailbox('mb_1'))).key.export())).toBe(true);
    expect((await loser.decryptFor(mailbox('mb_1'), blob, aad('m1'))).toString()).toBe('sealed by winner');
  });

  it('read paths never create a key', async () => {
    const store = new InMemoryDataKeyStore();
    const svc = new DataKeyService(parseKeyring(`1:${key1}`), store);
    const other = new DataKeyService(parseKeyring(`1:${key1}`), new InMemoryDataKeyStore());
    const blob = await other.encryptFor(mailbox('mb_x'), 'elsewhere', aad('m1'));
    const err = await rejection(svc.decryptFor(mailbox('mb_x'), blob, aad('m1')));
    expect(err).toBeInstanceOf(KeyDestroyedError);
    expect((err as KeyDestroyedError).code).toBe('key_destroyed');
    expect(await rejection(svc.get(mailbox('mb_x')))).toBeInstanceOf(KeyDestroyedError);
    expect(store.rows()).toHaveLength(0);
  });

  describe('crypto-shredding', () => {
    it('after destroy, old ciphertext is unreadable even with the same key ring, in this and a new process', async () => {
      const store = new InMemoryDataKeyStore();
      const ring = parseKeyring(`1:${key1}`);
      const svc = new DataKeyService(ring, store);
      const blob = await svc.encryptFor(mailbox('mb_1'), 'shred me', aad('m1'));
      const kept = await svc.encryptFor(mailbox('mb_2'), 'keep me', aad('m1'));

      expect(await svc.destroy(mailbox('mb_1'))).toBe(true);
      expect(await svc.destroy(mailbox('mb_1'))).toBe(false);

      expect(await rejection(svc.decryptFor(mailbox('mb_1'), blob, aad('m1')))).toBeInstanceOf(KeyDestroyedError);
      const fresh = new DataKeyService(parseKeyring(`1:${key1}`), store);
      expect(await rejection(fresh.decryptFor(mailbox('mb_1'), blob, aad('m1')))).toBeInstanceOf(KeyDestroyedError);

      // Even if an encrypt path later mints a new key for the same id, the old data stays gone.
      await svc.getOrCreate(mailbox('mb_1'));
      expect(await rejection(svc.decryptFor(mailbox('mb_1'), blob, aad('m1')))).toBeInstanceOf(DecryptionError);

      // Other owners are unaffected.
      expect((await svc.decryptFor(mailbox('mb_2'), kept, aad('m1'))).toString()).toBe('keep me');
    });

    it('a load in flight during destroy does not put the destroyed key back in the cache', async () => {
      const inner = new InMemoryDataKeyStore();
      const ring = parseKeyring(`1:${key1}`);
      const seeded = new DataKeyService(ring, inner);
      const blob = await seeded.encryptFor(mailbox('mb_1'), 'x', aad('m1'));
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      const slow: DataKeyStore = {
        find: async (o) => {
          const row = await inner.find(o);
          await gate;
          return row;
        },
        create: (o, key) => inner.create(o, key),
        listAll: (n) => inner.listAll(n),
        updateWrapping: (id, next, e) => inner.updateWrapping(id, next, e),
        destroy: (o) => inner.destroy(o),
      };
      const svc = new DataKeyService(ring, slow);
      const inFlight = svc.decryptFor(mailbox('mb_1'), blob, aad('m1'));
      await svc.destroy(mailbox('mb_1'));
      release();
      await inFlight; // it read the row before the destroy; that read may complete
      expect(await rejection(svc.decryptFor(mailbox('mb_1'), blob, aad('m1')))).toBeInstanceOf(KeyDestroyedError);
    });

    it('another process stops using its cached key once the cache TTL passes', async () => {
      const store = new InMemoryDataKeyStore();
      let now = 1_000;
      const a = new DataKeyService(parseKeyring(`1:${key1}`), store, { cacheTtlMs: 5_000, now: () => now });
      const b = new DataKeyService(parseKeyring(`1:${key1}`), store);
      const blob = await a.encryptFor(mailbox('mb_1'), 'x', aad('m1'));
      await b.destroy(mailbox('mb_1'));
      now += 6_000;
      expect(await rejection(a.decryptFor(mailbox('mb_1'), blob, aad('m1')))).toBeInstanceOf(KeyDestroyedError);
    });

    it('refuses to destroy the system key that derives every blind index', async () => {
      const svc = new DataKeyService(parseKeyring(`1:${key1}`), new InMemoryDataKeyStore());
      await svc.getOrCreate(SYSTEM_BLIND_INDEX_OWNER);
      const err = await rejection(svc.destroy(SYSTEM_BLIND_INDEX_OWNER));
      expect(err).toBeInstanceOf(CryptoError);
      expect((err as CryptoError).code).toBe('not_destroyable');
      await expect(svc.get(SYSTEM_BLIND_INDEX_OWNER)).resolves.toBeDefined();
    });
  });

  describe('wrapped key integrity', () => {
    it('a wrapped DEK copied onto another owner does not unwrap there', async () => {
      const store = new InMemoryDataKeyStore();
      const svc = new DataKeyService(parseKeyring(`1:${key1}`), store);
      const victim = await svc.encryptFor(mailbox('mb_victim'), 'private', aad('m1'));
      await svc.getOrCreate(mailbox('mb_attacker'));
      const victimRow = store.rows().find((r) => r.owner.id === 'mb_victim')!;
      const attackerRow = store.rows().find((r) => r.owner.id === 'mb_attacker')!;
      store.tamper(attackerRow.id, { wrappedKey: victimRow.wrappedKey });

      const fresh = new DataKeyService(parseKeyring(`1:${key1}`), store);
      const err = await rejection(fresh.decryptFor(mailbox('mb_attacker'), victim, aad('m1')));
      expect(err).toBeInstanceOf(DecryptionError);
      expect((err as DecryptionError).code).toBe('authentication_failed');
      expect(err.message).toMatch(/mailbox mb_attacker did not unwrap under KEK version 1/);
    });

    it('a tenant DEK row re-labelled as a mailbox DEK does not unwrap', async () => {
      const store = new InMemoryDataKeyStore();
      const svc = new DataKeyService(parseKeyring(`1:${key1}`), store);
      await svc.getOrCreate({ type: 'tenant', id: 'same_id' });
      const row = store.rows()[0]!;
      store.tamper(row.id, { owner: { type: 'mailbox', id: 'same_id' } });
      const fresh = new DataKeyService(parseKeyring(`1:${key1}`), store);
      expect(await rejection(fresh.get(mailbox('same_id')))).toBeInstanceOf(DecryptionError);
    });

    it('a row whose recorded KEK version was altered fails closed', async () => {
      const store = new InMemoryDataKeyStore();
      const ring = parseKeyring(`2:${key2},1:${key1}`);
      await new DataKeyService(ring, store).getOrCreate(mailbox('mb_1'));
      store.tamper(store.rows()[0]!.id, { kekVersion: 1 });
      const err = await rejection(new DataKeyService(ring, store).get(mailbox('mb_1')));
      expect((err as DecryptionError).code).toBe('key_version_mismatch');
    });

    it('names a missing KEK version, never the key', async () => {
      const store = new InMemoryDataKeyStore();
      await new DataKeyService(parseKeyring(`1:${key1}`), store).getOrCreate(mailbox('mb_1'));
      const err = await rejection(new DataKeyService(parseKeyring(`2:${key2}`), store).get(mailbox('mb_1')));
      expect(err).toBeInstanceOf(UnknownKekVersionError);
      expect(err.message).toMatch(/KEK version 1 is not in the key ring/);
      for (const s of [key1, key2]) expect(err.message).not.toContain(s);
    });

    it('data sealed under another DEK version is rejected as such', async () => {
      const svc = new DataKeyService(parseKeyring(`1:${key1}`), new InMemoryDataKeyStore());
      const dek = await svc.getOrCreate(mailbox('mb_1'));
      const blob = encrypt({ version: 7, key: dek.key }, 'future dek version', aad('m1'));
      const err = await rejection(svc.decryptFor(mailbox('mb_1'), blob, aad('m1')));
      expect((err as DecryptionError).code).toBe('key_version_mismatch');
    });
  });

  describe('rotate', () => {
    it('re-wraps every DEK under the new active KEK; data ciphertext stays byte-identical and readable', async () => {
      const store = new InMemoryDataKeyStore();
      const before = new DataKeyService(parseKeyring(`1:${key1}`), store);
      const owners = [mailbox('mb_1'), mailbox('mb_2'), { type: 'tenant', id: 'tn_1' } as DekOwner, SYSTEM_BLIND_INDEX_OWNER];
      const blobs = await Promise.all(owners.map((o) => before.encryptFor(o, `data of ${o.id}`, aad('r1'))));
      const copies = blobs.map((b) => Buffer.from(b));
      const wrappedBefore = store.rows().map((r) => Buffer.from(r.wrappedKey));

      const after = new DataKeyService(parseKeyring(`2:${key2},1:${key1}`), store);
      const progress: RotationProgress[] = [];
      const result = await after.rotate((p) => progress.push(p), 2);
      expect(result).toEqual({ scanned: 4, rewrapped: 4, alreadyCurrent: 0, skipped: 0 });
      expect(progress.at(-1)).toEqual(result);
      expect(progress).toHaveLength(4);

      for (const row of store.rows()) {
        expect(row.kekVersion).toBe(2);
        expect(row.rotatedAt).toBeInstanceOf(Date);
      }
      store.rows().forEach((r, i) => expect(Buffer.from(r.wrappedKey).equals(wrappedBefore[i]!)).toBe(false));
      blobs.forEach((b, i) => expect(b.equals(copies[i]!)).toBe(true));

      // Readable once the old KEK is dropped from the ring: nothing depends on it any more.
      const onlyNew = new DataKeyService(parseKeyring(`2:${key2}`), store);
      for (const [i, o] of owners.entries()) {
        expect((await onlyNew.decryptFor(o, blobs[i]!, aad('r1'))).toString()).toBe(`data of ${o.id}`);
      }

      // Idempotent.
      expect(await onlyNew.rotate()).toEqual({ scanned: 4, rewrapped: 0, alreadyCurrent: 4, skipped: 0 });
    });

    it('moves keys wrapped by several old KEKs, leaving current ones alone', async () => {
      const store = new InMemoryDataKeyStore();
      await new DataKeyService(parseKeyring(`1:${key1}`), store).getOrCreate(mailbox('a'));
      await new DataKeyService(parseKeyring(`2:${key2},1:${key1}`), store).getOrCreate(mailbox('b'));
      await new DataKeyService(parseKeyring(`3:${key3},2:${key2},1:${key1}`), store).getOrCreate(mailbox('c'));
      const svc = new DataKeyService(parseKeyring(`3:${key3},2:${key2},1:${key1}`), store);
      expect(await svc.rotate()).toEqual({ scanned: 3, rewrapped: 2, alreadyCurrent: 1, skipped: 0 });
      expect(store.rows().map((r) => r.kekVersion)).toEqual([3, 3, 3]);
    });

    it('stops with an error naming a KEK version missing from the ring; re-running after fixing the ring completes', async () => {
      const store = new InMemoryDataKeyStore();
      await new DataKeyService(parseKeyring(`1:${key1}`), store).getOrCreate(mailbox('a'));
      const err = await rejection(new DataKeyService(parseKeyring(`2:${key2}`), store).rotate());
      expect(err).toBeInstanceOf(UnknownKekVersionError);
      expect((err as UnknownKekVersionError).kekVersion).toBe(1);
      expect(err.message).toMatch(/KEK version 1 .*mailbox a/);
      expect(err.message).not.toContain(key1);
      expect(store.rows()[0]!.kekVersion).toBe(1);
      expect((await new DataKeyService(parseKeyring(`2:${key2},1:${key1}`), store).rotate()).rewrapped).toBe(1);
    });

    it('counts a row destroyed or re-wrapped concurrently as skipped, and never resurrects it', async () => {
      const inner = new InMemoryDataKeyStore();
      await new DataKeyService(parseKeyring(`1:${key1}`), inner).getOrCreate(mailbox('a'));
      const racing: DataKeyStore = {
        find: (o) => inner.find(o),
        create: (o, key) => inner.create(o, key),
        listAll: (n) => inner.listAll(n),
        updateWrapping: async (id, next, expected) => {
          await inner.destroy(mailbox('a')); // purge lands between read and write
          return inner.updateWrapping(id, next, expected);
        },
        destroy: (o) => inner.destroy(o),
      };
      const result = await new DataKeyService(parseKeyring(`2:${key2},1:${key1}`), racing).rotate();
      expect(result).toEqual({ scanned: 1, rewrapped: 0, alreadyCurrent: 0, skipped: 1 });
      expect(inner.rows()).toHaveLength(0);
    });
  });

  it('evicts least-recently-used keys beyond the cache size and still serves them from the store', async () => {
    const store = new InMemoryDataKeyStore();
    let finds = 0;
    const counting: DataKeyStore = {
      find: (o) => {
        finds++;
        return store.find(o);
      },
      create: (o, key) => store.create(o, key),
      listAll: (n) => store.listAll(n),
      updateWrapping: (id, next, e) => store.updateWrapping(id, next, e),
      destroy: (o) => store.destroy(o),
    };
    const svc = new DataKeyService(parseKeyring(`1:${key1}`), counting, { cacheSize: 2 });
    await svc.getOrCreate(mailbox('a'));
    await svc.getOrCreate(mailbox('b'));
    const base = finds;
    await svc.get(mailbox('a')); // hit
    await svc.get(mailbox('b')); // hit
    expect(finds).toBe(base);
    await svc.getOrCreate(mailbox('c')); // evicts a (least recently used)
    await svc.get(mailbox('b'));
    expect(finds).toBe(base + 1);
    await svc.get(mailbox('a'));
    expect(finds).toBe(base + 2);
  });

  it('drops unwrapped keys past their TTL on a later miss, whatever the cache size', async () => {
    let now = 1_000;
    const svc = new DataKeyService(parseKeyring(`1:${key1}`), new InMemoryDataKeyStore(), { cacheTtlMs: 60_000, now: () => now });
    for (let i = 0; i < 20; i++) await svc.getOrCreate(mailbox(`idle_${i}`));
    expect(svc.cachedKeys).toBe(20);
    now += 30_000;
    await svc.getOrCreate(mailbox('busy'));
    expect(svc.cachedKeys).toBe(21); // nothing expired yet
    now += 31_000;
    await svc.getOrCreate(mailbox('late')); // a miss: the 20 idle keys are past their TTL
    expect(svc.cachedKeys).toBe(2);
    const blob = await svc.encryptFor(mailbox('idle_3'), 'still readable', aad('m1'));
    expect((await svc.decryptFor(mailbox('idle_3'), blob, aad('m1'))).toString()).toBe('still readable');
  });

  it('rejects a malformed owner', async () => {
    const svc = new DataKeyService(parseKeyring(`1:${key1}`), new InMemoryDataKeyStore());
    await expect(svc.getOrCreate({ type: 'mailbox', id: '' })).rejects.toThrow(TypeError);
    await expect(svc.getOrCreate({ type: 'user' as 'mailbox', id: 'x' })).rejects.toThrow(TypeError);
  });
});
