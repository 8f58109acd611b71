import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkDataKeyStoreContract } from '../../src/crypto/data-key-store.contract.js';
import { DataKeyService } from '../../src/crypto/data-key.service.js';
import { parseKeyring } from '../../src/crypto/keyring.js';
import { keystoreSettings } from '../../src/config/config.js';
import { DataKeyRepository } from '../../src/storage/data-key.repository.js';
import { KEYSTORE_MIGRATIONS_DIR, openKeystore, type KeystoreDatabase } from '../../src/storage/keystore.js';
import { migrate, readMigrations } from '../../src/storage/migrator.js';
import { adapters, reportMissingPostgres, type OpenedDatabase } from '../helpers/adapters.js';

const k = () => randomBytes(32).toString('base64');

reportMissingPostgres();
describe.each(adapters)('data keys in the key store ($name)', (adapter) => {
  let opened: OpenedDatabase;
  let keystore: KeystoreDatabase;
  beforeAll(async () => {
    opened = await adapter.open();
    // The key store the service would open for this data database: `<db>_keystore` on the same
    // server, or DATA_DIR/keystore.
    const settings = keystoreSettings(opened.location.databaseUrl, undefined);
    keystore = await openKeystore({ url: settings.url, dataDir: opened.location.dataDir ?? '', createThrough: opened.location.databaseUrl });
    const s = await keystore.session();
    await migrate(s, await readMigrations(KEYSTORE_MIGRATIONS_DIR));
    await s.release();
  }, 120_000);
  afterAll(async () => {
    await keystore?.close();
    await opened?.cleanup();
  });

  it('the key store repository meets the DataKeyStore contract', async () => {
    await checkDataKeyStoreContract(new DataKeyRepository(keystore));
  });

  it('a destroyed key is recorded in the shred ledger and never created again for that owner', async () => {
    const store = new DataKeyRepository(keystore);
    const keys = new DataKeyService(parseKeyring(`1:${k()}`), store);
    const owner = { type: 'mailbox' as const, id: `mbx_ledger_${randomBytes(4).toString('hex')}` };
    await keys.encryptFor(owner, 'x', { table: 'messages', column: 'contentEnc', rowId: 'm1' });
    expect(await keys.destroy(owner)).toBe(true);
    expect((await store.ledger()).some((e) => e.ownerType === 'mailbox' && e.ownerId === owner.id)).toBe(true);
    // A sync that raced the purge cannot mint a fresh key for the purged mailbox.
    await expect(keys.encryptFor(owner, 'y', { table: 'messages', column: 'contentEnc', rowId: 'm2' })).rejects.toMatchObject({ code: 'key_destroyed' });
    expect(await store.find(owner)).toBeNull();
  });

  it('keys rotate re-wraps DEKs under the new KEK without touching data; shredding makes data unreadable', async () => {
    const v1 = `1:${k()}`;
    const store = new DataKeyRepository(keystore);
    const before = new DataKeyService(parseKeyring(v1), store);
    const owners = [1, 2, 3].map((i) => ({ type: 'mailbox' as const, id: `mbx_rot_${i}` }));
    const aad = (id: string) => ({ table: 'messages', column: 'contentEnc', rowId: id });
    const sealed = await Promise.all(owners.map((o) => before.encryptFor(o, `secret of ${o.id}`, aad(o.id))));

    const v2 = `2:${k()}`;
    const after = new DataKeyService(parseKeyring(`${v2},${v1}`), store);
    const result = await after.rotate();
    expect(result.rewrapped).toBeGreaterThanOrEqual(3);
    const rows = await Promise.all(owners.map((o) => store.find(o)));
    expect(rows.every((r) => r?.kekVersion === 2)).toBe(true);
    for (const [i, o] of owners.entries()) {
      expect((await after.decryptFor(o, sealed[i]!, aad(o.id))).toString()).toBe(`secret of ${o.id}`);
    }
    // With only the new KEK left in the ring, old data still opens: the data was never re-encrypted.
    const onlyNew = new DataKeyService(parseKeyring(v2), store);
    expect((await onlyNew.decryptFor(owners[2]!, sealed[2]!, aad(owners[2]!.id))).toString()).toBe(`secret of ${owners[2]!.id}`);
    // …and the retired KEK alone can no longer unwrap anything.
    const onlyOld = new DataKeyService(parseKeyring(v1), store);
    await expect(onlyOld.decryptFor(owners[2]!, sealed[2]!, aad(owners[2]!.id))).rejects.toMatchObject({ code: 'unknown_kek_version' });
    // Shredding one owner's DEK: its ciphertext is gone for good, others are untouched.
    await after.destroy(owners[0]!);
    await expect(after.decryptFor(owners[0]!, sealed[0]!, aad(owners[0]!.id))).rejects.toMatchObject({ code: 'key_destroyed' });
    expect((await after.decryptFor(owners[1]!, sealed[1]!, aad(owners[1]!.id))).toString()).toBe(`secret of ${owners[1]!.id}`);
  });
});
