import { existsSync, mkdirSync, readdirSync, renameSync, rmSync } from 'node:fs';
import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { describeThrown } from '../observability/thrown.js';
import { PGLITE_TYPE_OPTIONS } from './pglite-bytea.js';

/**
 * Opening an embedded database folder (the data database, `DATA_DIR/pgdata`, and the key store,
 * `DATA_DIR/keystore`) so that a first start interrupted part-way never leaves a folder that
 * every later start fails on.
 *
 * PGlite opens a folder that holds `PG_VERSION` and otherwise creates the cluster in it: initdb in
 * memory, then the files written into the folder one by one. Stopped during that (Ctrl-C a few
 * seconds into the first `npm start`), the folder keeps some of the files and no `PG_VERSION`, and
 * every later `PGlite.create` on it throws an Emscripten `ErrnoError` (EEXIST, no message) — the
 * start failed with "error: [object Object]" until the folder was removed by hand. So a new
 * folder is created beside its final name (`<folder>.creating`), opened and closed there, and
 * renamed into place only once complete: the final name only ever holds a complete cluster.
 *
 * A non-empty folder without `PG_VERSION` at the final name (left by an interrupted start before
 * this existed) cannot be opened by PGlite at all; it is moved aside to
 * `<folder>.incomplete-<time>`, never deleted, and `warn` names it.
 */
export class EmbeddedDatabaseOpenError extends Error {
  override readonly name = 'EmbeddedDatabaseOpenError';
}

/** `warn` is told when an unusable folder was moved aside (default: a process warning on stderr). */
export async function openPGliteFolder(dir: string, warn: (message: string) => void = defaultWarn): Promise<PGlite> {
  const folder = path.resolve(dir);
  try {
    if (!existsSync(path.join(folder, 'PG_VERSION'))) await createFolder(folder, warn);
    return await PGlite.create(folder, PGLITE_TYPE_OPTIONS);
  } catch (err) {
    throw new EmbeddedDatabaseOpenError(`the embedded database in ${folder} could not be opened (${describeThrown(err)})`, { cause: err });
  }
}

async function createFolder(folder: string, warn: (message: string) => void): Promise<void> {
  mkdirSync(path.dirname(folder), { recursive: true });
  if (existsSync(folder)) {
    if (readdirSync(folder).length === 0) rmSync(folder, { recursive: true });
    else {
      const aside = `${folder}.incomplete-${new Date().toISOString().replace(/[:.]/g, '-')}`;
      renameSync(folder, aside);
      warn(
        `the embedded database folder ${folder} was incomplete (no PG_VERSION: an earlier first start was interrupted) and could not be opened; ` +
          `it was moved to ${aside} and a new one created (delete the old one once you no longer need it)`,
      );
    }
  }
  // Our own half-made folder from an interrupted attempt: the caller holds the data folder's lock.
  const creating = `${folder}.creating`;
  rmSync(creating, { recursive: true, force: true });
  mkdirSync(creating);
  const lite = await PGlite.create(creating, PGLITE_TYPE_OPTIONS);
  await lite.close();
  renameSync(creating, folder);
}

function defaultWarn(message: string): void {
  process.emitWarning(message, 'MailboxConnectorWarning');
}
