// Runs once before the suite, in vitest's main process.
//
// Every test service gets a database of its own, but none migrates it: the migrations run once
// here, into a template each service's database is copied from.
// - Embedded: every test file starts its own PGlite. Creating one runs initdb inside WebAssembly
//   (about 5 s of CPU, a minute of wall time on a loaded 2-core machine) and then every
//   migration; copying a folder that already went through both costs a fraction of that
//   (test/helpers/pglite-template.ts).
// - Postgres (DATABASE_URL set): a migrated template database pair that CREATE DATABASE …
//   TEMPLATE copies (test/helpers/postgres-template.ts).
import { rmSync } from 'node:fs';
import type { TestProject } from 'vitest/node';
import { buildPgliteTemplate } from './pglite-template.js';
import { buildPostgresTemplate } from './postgres-template.js';
import { hasPostgres } from './postgres.js';

export default async function setup(project: TestProject): Promise<() => Promise<void> | void> {
  if (process.env.DATABASE_URL) {
    // Without a server the tests that need one say so themselves (test/helpers/requirements.ts).
    if (!(await hasPostgres())) return () => undefined;
    const template = await buildPostgresTemplate();
    project.provide('postgresTemplate', template.name);
    return () => template.drop();
  }
  const dir = await buildPgliteTemplate();
  project.provide('pgliteTemplate', dir);
  return () => rmSync(dir, { recursive: true, force: true });
}
