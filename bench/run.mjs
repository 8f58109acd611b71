#!/usr/bin/env node
// `npm run bench -- <name> [args…]`: runs bench/<name>/<name>.bench.ts through tsx against the
// Postgres named by DATABASE_URL. Every benchmark prints its figures and ends with one line
// `RESULT {json}` (docs/benchmarks.md lists the keys and the recorded runs).
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const benchDir = fileURLToPath(new URL('.', import.meta.url));
const available = readdirSync(benchDir, { withFileTypes: true })
  .filter((d) => d.isDirectory() && existsSync(`${benchDir}${d.name}/${d.name}.bench.ts`))
  .map((d) => d.name)
  .sort();
const [name, ...args] = process.argv.slice(2);
if (!name || !available.includes(name)) {
  console.error(`usage: npm run bench -- <${available.join('|')}> [args…]${name ? ` (no benchmark named "${name}")` : ''}`);
  process.exit(2);
}
if (!process.env.DATABASE_URL) {
  console.error('error: benchmarks run against Postgres; set DATABASE_URL (e.g. postgresql://root@127.0.0.1:5432/postgres)');
  process.exit(2);
}
const result = spawnSync(process.execPath, ['--import', 'tsx', `${benchDir}${name}/${name}.bench.ts`, ...args], { stdio: 'inherit' });
process.exit(result.status ?? 1);
