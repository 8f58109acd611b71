// `prisma generate` needs no schema engine, but the CLI insists on finding one before it runs;
// any existing file satisfies the check (the engine is only used by migrate/db commands, which
// this project does not use: migrations are SQL applied by src/storage/migrator.ts).
import { spawnSync } from 'node:child_process';

const env = { ...process.env, PRISMA_SCHEMA_ENGINE_BINARY: process.env.PRISMA_SCHEMA_ENGINE_BINARY ?? process.execPath, PRISMA_HIDE_UPDATE_MESSAGE: '1' };
const res = spawnSync('npx', ['--no-install', 'prisma', 'generate'], { stdio: 'inherit', env });
process.exit(res.status ?? 1);
