import { cpSync, existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { inject } from 'vitest';
import { migrateTemplate } from './migrate-template.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** A data folder whose `pgdata` and `keystore` are initialised, fully migrated embedded databases. */
    pgliteTemplate: string;
  }
}

/** An embedded database folder, initialised and migrated by the project's own migrator, with pg-boss's schema. */
export async function buildPgliteTemplate(): Promise<string> {
  const dir = mkdtempSync(path.join(tmpdir(), 'mbc-pglite-template-'));
  await migrateTemplate({ databaseUrl: undefined, keystoreUrl: undefined, dataDir: dir });
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
