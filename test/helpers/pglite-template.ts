import { cpSync, existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { inject } from 'vitest';
import { openDatabase } from '../../src/storage/database.js';
import { KEYSTORE_MIGRATIONS_DIR, openKeystore } from '../../src/storage/keystore.js';
import { migrate, readMigrations } from '../../src/storage/migrator.js';
import { installJobQueue } from './postgres-template.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** A data folder whose `pgdata` and `keystore` are initialised, fully migrated embedded databases. */
    pgliteTemplate: string;
  }
}

/** An embedded database folder, initialised and migrated by the project's own migrator, with pg-boss's schema. */
export async function buildPgliteTemplate(): Promise<string> {
  const dir = mkdtempSync(path.join(tmpdir(), 'mbc-pglite-template-'));
  const db = await openDatabase({ databaseUrl: undefined, dataDir: dir, guardTransactions: false });
  try {
    const session = await db.session();
    try {
      await migrate(session, await readMigrations());
    } finally {
      await session.release();
    }
    await installJobQueue(db);
  } finally {
    await db.close();
  }
  // The key store is a PGlite of its own (DATA_DIR/keystore): initdb costs as much again.
  const keystore = await openKeystore({ url: undefined, dataDir: dir });
  try {
    const session = await keystore.session();
    await migrate(session, await readMigrations(KEYSTORE_MIGRATIONS_DIR));
  } finally {
    await keystore.close();
  }
  return dir;
}

/**
 * Gives `dataDir` a copy of the suite's template database when it has none yet (the service's
 * migrator then finds every migration applied, and checks their checksums). Without a template
 * (a Postgres run, or a file run outside the suite's global setup) the service creates the
 * database itself, as it would in production.
 */
export function seedFromPgliteTemplate(dataDir: string): void {
  let template: string | undefined;
  try {
    template = inject('pgliteTemplate');
  } catch {
    return; // not inside a vitest worker
  }
  if (!template) return;
  for (const folder of ['pgdata', 'keystore']) {
    if (!existsSync(path.join(dataDir, folder))) cpSync(path.join(template, folder), path.join(dataDir, folder), { recursive: true });
  }
}
