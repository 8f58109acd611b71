import { execFile } from 'node:child_process';
import { chmodSync, existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';

const run = promisify(execFile);

/**
 * Dumps and restores of one database: `pg_dump`/`pg_restore` (custom format) on Postgres, PGlite's
 * `dumpDataDir` (a gzipped tarball of its folder) embedded. The data and the key store are always
 * separate files (docs/operations.md: they are kept for different lengths of time).
 */
export type DumpTarget = { kind: 'postgres'; url: string } | { kind: 'embedded'; dir: string };

export class BackupError extends Error {
  override readonly name = 'BackupError';
}

/**
 * The connection for the Postgres client tools: the URL without its password (which would show in
 * the process list) and the password in PGPASSWORD.
 */
function pgToolArgs(url: string): { dbname: string; env: NodeJS.ProcessEnv } {
  const u = new URL(url);
  const password = decodeURIComponent(u.password);
  u.password = '';
  return { dbname: u.toString(), env: { ...process.env, ...(password ? { PGPASSWORD: password } : {}) } };
}

/** The version line of a Postgres client tool, or undefined when it is not installed. */
export async function pgToolVersion(tool: 'pg_dump' | 'pg_restore'): Promise<string | undefined> {
  try {
    const { stdout } = await run(tool, ['--version']);
    return stdout.trim();
  } catch {
    return undefined;
  }
}

export async function dumpDatabase(target: DumpTarget, file: string): Promise<void> {
  if (target.kind === 'postgres') {
    if (!(await pgToolVersion('pg_dump'))) throw new BackupError('pg_dump is not installed: install the PostgreSQL client tools of the server’s major version');
    const { dbname, env } = pgToolArgs(target.url);
    try {
      await run('pg_dump', ['--format=custom', '--no-owner', '--no-privileges', `--file=${file}`, `--dbname=${dbname}`], { env, maxBuffer: 16 * 1024 * 1024 });
    } catch (err) {
      throw new BackupError(`pg_dump failed: ${firstLine((err as { stderr?: string }).stderr) ?? (err as Error).message}`);
    }
    // Ciphertext and wrapped keys, but still nobody else's business (pg_dump follows the umask).
    chmodSync(file, 0o600);
    return;
  }
  if (!existsSync(target.dir)) throw new BackupError(`no embedded database in ${target.dir}`);
  const lite = await PGlite.create(target.dir);
  try {
    const blob = await lite.dumpDataDir('gzip');
    writeFileSync(file, Buffer.from(await blob.arrayBuffer()), { mode: 0o600 });
  } finally {
    await lite.close();
  }
}

/**
 * Replaces the database's content with a dump. Postgres: every schema of the database is dropped
 * first (so tables added after the backup by a newer migration do not survive next to it), then
 * `pg_restore` runs in one transaction. Embedded: the folder is replaced by the dump's.
 */
export async function restoreDatabase(target: DumpTarget, file: string): Promise<void> {
  if (!existsSync(file)) throw new BackupError(`backup file ${file} is missing`);
  if (target.kind === 'postgres') {
    if (!(await pgToolVersion('pg_restore'))) throw new BackupError('pg_restore is not installed: install the PostgreSQL client tools of the server’s major version');
    const client = new pg.Client({ connectionString: target.url, connectionTimeoutMillis: 10_000 });
    client.on('error', () => undefined);
    await client.connect();
    try {
      const { rows } = await client.query<{ nspname: string }>(
        `SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg\\_%' AND nspname <> 'information_schema'`,
      );
      for (const r of rows) await client.query(`DROP SCHEMA ${pg.escapeIdentifier(r.nspname)} CASCADE`);
      await client.query('CREATE SCHEMA public');
    } finally {
      await client.end().catch(() => undefined);
    }
    const { dbname, env } = pgToolArgs(target.url);
    try {
      await run('pg_restore', ['--no-owner', '--no-privileges', '--exit-on-error', '--single-transaction', `--dbname=${dbname}`, file], { env, maxBuffer: 16 * 1024 * 1024 });
    } catch (err) {
      throw new BackupError(`pg_restore failed: ${firstLine((err as { stderr?: string }).stderr) ?? (err as Error).message}`);
    }
    return;
  }
  const dir = path.resolve(target.dir);
  const aside = `${dir}.replaced-by-restore`;
  rmSync(aside, { recursive: true, force: true });
  if (existsSync(dir)) renameSync(dir, aside);
  try {
    const blob = new Blob([readFileSync(file)]);
    const lite = await PGlite.create({ dataDir: dir, loadDataDir: blob });
    await lite.query('SELECT 1');
    await lite.close();
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    if (existsSync(aside)) renameSync(aside, dir);
    throw new BackupError(`cannot load the embedded backup ${path.basename(file)}: ${(err as Error).message}`);
  }
  // The replaced folder held data (and keys) the restore is meant to replace: not kept.
  rmSync(aside, { recursive: true, force: true });
}

function firstLine(text: string | undefined): string | undefined {
  return text?.split('\n').find((l) => l.trim() !== '')?.trim();
}
