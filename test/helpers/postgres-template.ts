// One migrated Postgres database for the whole suite, copied per test service.
//
// Every service a test starts on Postgres used to get an empty database and run every data and
// key-store migration itself. Postgres copies a database from a template (CREATE DATABASE …
// TEMPLATE, https://www.postgresql.org/docs/15/manage-ag-templatedbs.html) in a fraction of that,
// so the global setup migrates one pair (data + `<name>_keystore`) with the project's own migrator,
// lets pg-boss install its schema and queues (about a second per start on a loaded machine when
// missing), and `createTestDatabase({ template })` copies it. The service's migrator then finds every
// migration applied and still checks their checksums. Each test still gets its own database.
import { randomBytes } from 'node:crypto';
import { inject } from 'vitest';
import { migrateTemplate } from './migrate-template.js';
import { adminDatabaseUrl, withAdmin } from './postgres.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Name of a migrated Postgres template database (its key store is `<name>_keystore`). */
    postgresTemplate: string;
  }
}

function urlOf(name: string): string {
  const url = new URL(adminDatabaseUrl());
  url.pathname = `/${name}`;
  return url.toString();
}

/**
 * Creates and migrates the template pair on the admin server; returns its name and a function
 * that drops it. The pair is marked IS_TEMPLATE and closed to connections, because Postgres
 * refuses to copy a database someone is connected to.
 */
export async function buildPostgresTemplate(): Promise<{ name: string; drop(): Promise<void> }> {
  const name = `mbc_template_${process.pid}_${randomBytes(4).toString('hex')}`;
  const names = [name, `${name}_keystore`];
  await withAdmin(async (c) => {
    for (const n of names) await c.query(`CREATE DATABASE ${n}`);
  });
  const drop = () =>
    withAdmin(async (c) => {
      for (const n of names) {
        await c.query(`ALTER DATABASE ${n} WITH IS_TEMPLATE false ALLOW_CONNECTIONS true`).catch(() => undefined);
        await c.query(`DROP DATABASE IF EXISTS ${n} WITH (FORCE)`);
      }
    });
  try {
    await migrateTemplate({ databaseUrl: urlOf(name), keystoreUrl: urlOf(`${name}_keystore`), dataDir: '' });
    await withAdmin(async (c) => {
      for (const n of names) await c.query(`ALTER DATABASE ${n} WITH IS_TEMPLATE true ALLOW_CONNECTIONS false`);
    });
  } catch (err) {
    await drop().catch(() => undefined);
    throw err;
  }
  return { name, drop };
}

/** The suite's template name inside a vitest worker, or undefined (no global setup, or the embedded run). */
export function postgresTemplateName(): string | undefined {
  try {
    return inject('postgresTemplate') || undefined;
  } catch {
    return undefined; // not inside a vitest worker
  }
}
