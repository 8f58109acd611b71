// Per-test Postgres databases, so integration tests never share state (and can run in parallel).
//
//   const db = await createTestDatabase();   // fresh, empty database
//   ... use db.url as DATABASE_URL ...
//   await db.drop();                          // in afterAll, AFTER closing your pools/clients
//
// drop() forces remaining connections closed; a pg.Client/Pool still open at that point emits
// 'error' (57P01 terminating connection), which is an unhandled error in vitest unless the
// client has an 'error' listener — so close them first.
//
// The server is the one named by TEST_ADMIN_DATABASE_URL (default: local trust-auth Postgres).
// Guard suites with `describe.skipIf(missing('Postgres', (await hasPostgres()) ? null : '…'))` when Postgres
// may be absent (test/helpers/requirements.ts: a skip locally, a failure in CI).
import { randomBytes } from 'node:crypto';
import pg from 'pg';

const DEFAULT_ADMIN_URL = 'postgresql://root@127.0.0.1:5432/postgres';

export function adminDatabaseUrl(): string {
  return process.env.TEST_ADMIN_DATABASE_URL || DEFAULT_ADMIN_URL;
}

export interface TestDatabase {
  /** Connection URL of the new database (same server, user and options as the admin URL). */
  url: string;
  /** Database name, `mbc_test_<pid>_<random>`. */
  name: string;
  /** Terminates remaining connections and drops the database (and its derived key store). Safe to call twice. */
  drop(): Promise<void>;
}

/** Runs `fn` with a client on the admin database, closed afterwards. */
export async function withAdmin<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: adminDatabaseUrl(), connectionTimeoutMillis: 5_000 });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** True when the admin server answers within a few seconds. Never throws. */
export async function hasPostgres(): Promise<boolean> {
  try {
    await withAdmin((c) => c.query('SELECT 1'));
    return true;
  } catch {
    return false;
  }
}

/**
 * `template`: copy this migrated database (and `<template>_keystore` as the derived key store)
 * instead of starting empty (test/helpers/postgres-template.ts).
 */
export async function createTestDatabase(opts: { template?: string | undefined } = {}): Promise<TestDatabase> {
  // Lowercase letters, digits and `_` only, so the name needs no quoting anywhere.
  const name = `mbc_test_${process.pid}_${randomBytes(6).toString('hex')}`;
  const template = opts.template;
  if (template !== undefined && !/^[a-z0-9_]+$/.test(template)) throw new Error(`not a test template name: ${template}`);
  await withAdmin(async (c) => {
    if (!template) return c.query(`CREATE DATABASE ${name}`);
    await c.query(`CREATE DATABASE ${name} TEMPLATE ${template}`);
    await c.query(`CREATE DATABASE ${name}_keystore TEMPLATE ${template}_keystore`);
  });
  const url = new URL(adminDatabaseUrl());
  url.pathname = `/${name}`;
  let dropped = false;
  return {
    url: url.toString(),
    name,
    async drop() {
      if (dropped) return;
      dropped = true;
      // WITH (FORCE) (Postgres 13+) ends connections a pool forgot to close instead of failing.
      // `<name>_keystore` is the key store the service derives when KEYSTORE_URL is unset.
      await withAdmin(async (c) => {
        await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
        await c.query(`DROP DATABASE IF EXISTS ${name}_keystore WITH (FORCE)`);
      });
    },
  };
}
