// `prisma generate` needs no schema engine, but the CLI insists on finding one before it runs;
// any existing file satisfies the check (the engine is only used by migrate/db commands, which
// this project does not use: migrations are SQL applied by src/storage/migrator.ts).
//
// The Prisma CLI is a development dependency: a production install (`npm ci --omit=dev`) has no
// CLI and needs none (it runs the compiled dist/, whose client was generated at build time), so
// this postinstall step says so and succeeds instead of failing the install.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
if (!existsSync(`${root}node_modules/prisma/package.json`)) {
  console.log('prisma-generate: the Prisma CLI is not installed (production install): not generating the client');
  process.exit(0);
}
const env = { ...process.env, PRISMA_SCHEMA_ENGINE_BINARY: process.env.PRISMA_SCHEMA_ENGINE_BINARY ?? process.execPath, PRISMA_HIDE_UPDATE_MESSAGE: '1' };
const res = spawnSync('npx', ['--no-install', 'prisma', 'generate'], { stdio: 'inherit', env, cwd: root });
process.exit(res.status ?? 1);
