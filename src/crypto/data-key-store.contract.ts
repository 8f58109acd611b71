import { randomBytes, randomUUID } from 'node:crypto';
import type { DataKeyStore, DekOwner, StoredDataKey } from './data-key.port.js';

/**
 * Executable contract for `DataKeyStore` implementations: call it from a test with a fresh or
 * shared store (it only touches owners it invents) and it throws naming the first broken
 * promise. The in-memory store runs it in unit tests; the Prisma repository should run it
 * against real Postgres/PGlite, since the race and compare-and-set rules matter most there.
 */
export async function checkDataKeyStoreContract(store: DataKeyStore): Promise<void> {
  const run = randomUUID();
  const owner = (type: DekOwner['type'], n: number): DekOwner => ({ type, id: `contract-${run}-${n}` });
  const wrapped = (kekVersion = 1) => ({ dekVersion: 1, kekVersion, wrappedKey: randomBytes(66) });
  const fail = (rule: string): never => {
    throw new Error(`DataKeyStore contract violated: ${rule}`);
  };
  const sameBytes = (a: Uint8Array, b: Uint8Array) => Buffer.from(a).equals(Buffer.from(b));

  // find / create
  const a = owner('mailbox', 1);
  if ((await store.find(a)) !== null) fail('find() of an unknown owner must return null');
  const first = wrapped();
  const created = await store.create(a, first);
  if (typeof created.id !== 'string' || created.id === '') fail('create() must return a row with an id');
  if (created.owner.type !== a.type || created.owner.id !== a.id) fail('create() must return the owner it stored');
  if (created.kekVersion !== 1 || created.dekVersion !== 1) fail('create() must store kekVersion and dekVersion');
  if (!sameBytes(created.wrappedKey, first.wrappedKey)) fail('create() must store wrappedKey byte for byte');
  if (!(created.createdAt instanceof Date) || created.rotatedAt !== null) fail('a new row has createdAt and rotatedAt = null');
  const found = await store.find(a);
  if (!found || found.id !== created.id || !sameBytes(found.wrappedKey, first.wrappedKey)) fail('find() must return the created row');

  // idempotent create: the existing row wins
  const again = await store.create(a, wrapped());
  if (again.id !== created.id || !sameBytes(again.wrappedKey, first.wrappedKey)) {
    fail('create() for an owner that has a key must return the existing row unchanged');
  }
  const b = owner('mailbox', 2);
  const racers = await Promise.all([...Array(5)].map(() => store.create(b, wrapped())));
  if (new Set(racers.map((r) => r.id)).size !== 1 || new Set(racers.map((r) => Buffer.from(r.wrappedKey).toString('hex'))).size !== 1) {
    fail('concurrent create() calls for one owner must all return the same (winning) row');
  }

  // owner identity is (type, id)
  const t = { type: 'tenant' as const, id: a.id };
  const tenantRow = await store.create(t, wrapped());
  if (tenantRow.id === created.id) fail('owners with the same id but another type are different keys');

  // listAll: every row exactly once, across batches
  const mine = new Map<string, number>();
  for await (const row of store.listAll(1)) {
    if (row.owner.id.startsWith(`contract-${run}-`)) mine.set(row.id, (mine.get(row.id) ?? 0) + 1);
  }
  if (mine.size !== 3 || [...mine.values()].some((n) => n !== 1)) fail('listAll() must yield every row exactly once');

  // compare-and-set rewrap
  const next = { kekVersion: 2, wrappedKey: randomBytes(66) };
  if (await store.updateWrapping(created.id, next, 7)) fail('updateWrapping() must not update when kekVersion differs from expected');
  if ((await store.find(a))!.kekVersion !== 1) fail('a refused updateWrapping() must leave the row unchanged');
  if (!(await store.updateWrapping(created.id, next, 1))) fail('updateWrapping() with the right expected version must return true');
  const rewrapped = (await store.find(a)) as StoredDataKey;
  if (rewrapped.kekVersion !== 2 || !sameBytes(rewrapped.wrappedKey, next.wrappedKey)) fail('updateWrapping() must store the new wrapping');
  if (!(rewrapped.rotatedAt instanceof Date)) fail('updateWrapping() must set rotatedAt');
  if (rewrapped.dekVersion !== 1) fail('updateWrapping() must not change dekVersion');

  // destroy
  if (!(await store.destroy(a))) fail('destroy() of an existing key must return true');
  if ((await store.find(a)) !== null) fail('after destroy() find() must return null');
  if (await store.destroy(a)) fail('destroy() of a missing key must return false');
  if (await store.updateWrapping(created.id, { kekVersion: 3, wrappedKey: randomBytes(66) }, 2)) {
    fail('updateWrapping() of a destroyed key must return false');
  }
  if ((await store.find(a)) !== null) fail('updateWrapping() must never re-create a destroyed key');
  if ((await store.find(t)) === null) fail('destroy() must only remove the given owner');

  await store.destroy(b);
  await store.destroy(t);
}
