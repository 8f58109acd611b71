// Runs once before the suite, in vitest's main process.
//
// On the embedded database every test file starts its own PGlite. Creating one runs initdb inside
// WebAssembly (about 5 s of CPU, a minute of wall time on a loaded 2-core machine) and then every
// migration; copying a folder that already went through both costs a fraction of that. So when
// the suite runs on the embedded database, build that folder once here; `startTestService` copies
// it (test/helpers/pglite-template.ts). Each file still gets its own database.
import { rmSync } from 'node:fs';
import type { TestProject } from 'vitest/node';
import { buildPgliteTemplate } from './pglite-template.js';

export default async function setup(project: TestProject): Promise<() => void> {
  if (process.env.DATABASE_URL) return () => undefined;
  const dir = await buildPgliteTemplate();
  project.provide('pgliteTemplate', dir);
  return () => rmSync(dir, { recursive: true, force: true });
}
