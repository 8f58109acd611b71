import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { createCore, describeKeystore, openConfiguredKeystore } from '../bootstrap/core.js';
import type { Config } from '../config/config.js';
import { RestoreService, type LedgerEntry, type RestoreOutcome } from '../lifecycle/restore.service.js';
import { dumpDatabase, restoreDatabase, type DumpTarget } from '../storage/backup.js';
import { DataKeyRepository } from '../storage/data-key.repository.js';
import { openDatabase } from '../storage/database.js';
import { acquireEmbeddedLock, readEmbeddedLock, type EmbeddedLock } from '../storage/embedded-lock.js';
import { embeddedKeystoreDir, ensureDatabase, openKeystore } from '../storage/keystore.js';
import { countLegacyDataKeys, LegacyDataKeysRepository } from '../storage/legacy-data-keys.repository.js';
import { migrateAll } from '../storage/migrator.js';
import { PurgeRepository } from '../storage/purge.repository.js';
import { RestoreRepository } from '../storage/restore.repository.js';
import { clearRestoreMarker, readRestoreMarker, writeRestoreMarker } from '../storage/restore-marker.js';
import { CliError } from './ops-client.js';

/**
 * The retention each file needs (docs/operations.md). The privacy policy purges active data within
 * 30 days of a disconnect and keeps backups at most a year: data backups hold only ciphertext of a
 * purged mailbox, which is unreadable once no key-store backup older than the purge remains.
 */
export const DATA_BACKUP_MAX_DAYS = 365;
export const KEYSTORE_BACKUP_MAX_DAYS = 30;

const MANIFEST = 'manifest.json';

const manifestSchema = z.object({
  format: z.literal('mailbox-connector-backup/1'),
  createdAt: z.string(),
  database: z.enum(['postgres', 'embedded']),
  files: z.object({ data: z.string().regex(/^[\w.-]+$/), keystore: z.string().regex(/^[\w.-]+$/) }),
});
type Manifest = z.infer<typeof manifestSchema>;

export interface BackupResult {
  out: string;
  database: 'postgres' | 'embedded';
  createdAt: string;
  data: { file: string; keepAtMostDays: number; deleteBy: string };
  keystore: { file: string; keepAtMostDays: number; deleteBy: string };
  retention: string;
}

function dataTarget(config: Config): DumpTarget {
  return config.database.url ? { kind: 'postgres', url: config.database.url } : { kind: 'embedded', dir: path.resolve(config.database.dataDir, 'pgdata') };
}

function keystoreTarget(config: Config): DumpTarget {
  return config.keystore.url ? { kind: 'postgres', url: config.keystore.url } : { kind: 'embedded', dir: embeddedKeystoreDir(config.database.dataDir) };
}

/** The embedded database admits one process: backup and restore need the service stopped. */
function holdEmbedded(config: Config, command: string): EmbeddedLock | undefined {
  if (!config.database.embedded) return undefined;
  const holder = readEmbeddedLock(config.database.dataDir);
  if (holder && holder.pid !== process.pid) {
    throw new CliError(`the embedded database is in use by "${holder.command}" (pid ${holder.pid}): stop it first, then run ${command} again`);
  }
  return acquireEmbeddedLock(config.database.dataDir, `mailbox-connector ${command}`);
}

const addDays = (iso: string, days: number): string => new Date(Date.parse(iso) + days * 86_400_000).toISOString();

/** `mailbox-connector backup --out DIR`: the data and the key store, as two files, and what to keep how long. */
export async function runBackup(config: Config, outDir: string): Promise<BackupResult> {
  const out = path.resolve(outDir);
  if (existsSync(path.join(out, MANIFEST))) throw new CliError(`${out} already holds a backup: give an empty or new folder`);
  const lock = holdEmbedded(config, 'backup');
  try {
    if (config.database.url) await refuseLegacyKeys(config.database.url);
    mkdirSync(out, { recursive: true, mode: 0o700 });
    const createdAt = new Date().toISOString();
    const ext = config.database.url ? 'pgdump' : 'tar.gz';
    const files = { data: `data.${ext}`, keystore: `keystore.${ext}` };
    // Data first, then keys: every owner in the data dump got its key before its rows, so the
    // later key-store dump holds it unless it was purged in between — and then the restore finds
    // the mailbox without a key and deletes it. A key without data (created in between) is an
    // orphan the purge sweep removes.
    await dumpDatabase(dataTarget(config), path.join(out, files.data));
    await dumpDatabase(keystoreTarget(config), path.join(out, files.keystore));
    const manifest: Manifest = { format: 'mailbox-connector-backup/1', createdAt, database: config.database.url ? 'postgres' : 'embedded', files };
    writeFileSync(path.join(out, MANIFEST), `${JSON.stringify(manifest, null, 2)}\n`, { mode: 0o600 });
    return {
      out,
      database: manifest.database,
      createdAt,
      data: { file: path.join(out, files.data), keepAtMostDays: DATA_BACKUP_MAX_DAYS, deleteBy: addDays(createdAt, DATA_BACKUP_MAX_DAYS) },
      keystore: { file: path.join(out, files.keystore), keepAtMostDays: KEYSTORE_BACKUP_MAX_DAYS, deleteBy: addDays(createdAt, KEYSTORE_BACKUP_MAX_DAYS) },
      retention:
        `store the two files apart: ${files.data} may be kept up to ${DATA_BACKUP_MAX_DAYS} days; ${files.keystore} (the data keys) MUST be deleted ` +
        `within ${KEYSTORE_BACKUP_MAX_DAYS} days, or purged mailboxes stay decryptable from the backups (docs/operations.md)`,
    };
  } finally {
    lock?.release();
  }
}

async function refuseLegacyKeys(url: string): Promise<void> {
  const n = await countLegacyDataKeys(url);
  if (n > 0) throw new CliError(`the data database still holds ${n} data key(s): run "mailbox-connector keystore migrate" first, or the data backup would contain them`);
}

export interface RestoreResult extends RestoreOutcome {
  from: string;
  backupCreatedAt: string;
  /** Ledger entries carried over from the key store the restore replaced. */
  replacedLedgerEntries: number;
  next: string;
}

/**
 * `mailbox-connector restore --from DIR`: replaces the data and the key store with the backup, then
 * — before anything can serve it — destroys again every key the replaced key store's shred ledger
 * (newer than the backup) names, deletes restored mailboxes left without a key, and holds
 * undelivered webhooks (RestoreService). A marker file keeps the service from starting until this
 * has finished; running the command again resumes.
 */
export async function runRestore(config: Config, fromDir: string, opts: { acceptMissingLedger?: boolean; actorId?: string } = {}): Promise<RestoreResult> {
  const from = path.resolve(fromDir);
  const manifest = readManifest(from);
  const expected = config.database.url ? 'postgres' : 'embedded';
  if (manifest.database !== expected) throw new CliError(`the backup in ${from} is of a ${manifest.database} database; this configuration uses ${expected === 'embedded' ? 'the embedded database' : 'Postgres'}`);
  const lock = holdEmbedded(config, 'restore');
  try {
    // 1. The ledger of the key store about to be replaced (and of an interrupted earlier run).
    const earlier = readRestoreMarker(config.database.dataDir);
    const carried = new Map<string, { ownerType: LedgerEntry['ownerType']; ownerId: string; shreddedAt: string }>();
    if (earlier && earlier !== 'unreadable') for (const e of earlier.ledger) carried.set(`${e.ownerType}:${e.ownerId}`, e);
    const current = await readCurrentLedger(config);
    if (current === undefined && !earlier && !opts.acceptMissingLedger) {
      throw new CliError(
        `cannot read the shred ledger of the current key store (${describeKeystore(config)}): it records mailboxes purged since the backup. ` +
          'Fix the connection, or run again with --accept-missing-ledger if that key store is lost (see docs/operations.md)',
      );
    }
    for (const e of current ?? []) carried.set(`${e.ownerType}:${e.ownerId}`, { ownerType: e.ownerType, ownerId: e.ownerId, shreddedAt: e.shreddedAt.toISOString() });
    writeRestoreMarker(config.database.dataDir, { startedAt: new Date().toISOString(), from, ledger: [...carried.values()] });

    // 2. Replace both databases.
    await restoreDatabase(dataTarget(config), path.join(from, manifest.files.data));
    // A new server (disaster recovery): the derived key store database may not exist yet.
    if (config.keystore.derived && config.keystore.url && config.database.url) await ensureDatabase(config.keystore.url, config.database.url);
    await restoreDatabase(keystoreTarget(config), path.join(from, manifest.files.keystore));

    // 3. Make it safe before anything serves it (migrations of this release run here too).
    const core = await createCore(config, { command: 'mailbox-connector restore', logDestination: process.stderr, allowRestorePending: true });
    let outcome: RestoreOutcome;
    try {
      outcome = await new RestoreService({
        keys: core.keyStore,
        restore: new RestoreRepository(core.prisma),
        purge: new PurgeRepository(core.prisma, core.keyStore),
        audit: core.audit,
        clock: core.clock,
      }).reshredAndHold({
        replacedLedger: [...carried.values()].map((e) => ({ ownerType: e.ownerType, ownerId: e.ownerId, shreddedAt: new Date(e.shreddedAt) })),
        backupCreatedAt: manifest.createdAt,
        actorId: opts.actorId ?? `ops:cli:${process.env.USER ?? 'unknown'}`,
      });
      // The restored audit log ends before heads anchored since the backup: say so, signed.
      await core.audit.markRestored();
    } finally {
      await core.close();
    }
    clearRestoreMarker(config.database.dataDir);
    return {
      from,
      backupCreatedAt: manifest.createdAt,
      replacedLedgerEntries: carried.size,
      ...outcome,
      next:
        outcome.deliveriesHeld > 0
          ? `${outcome.deliveriesHeld} webhook deliveries from before the backup are held: after checking, run "mailbox-connector events release-held" (send them) or "events release-held --discard"`
          : 'nothing held; start the service',
    };
  } finally {
    lock?.release();
  }
}

function readManifest(dir: string): Manifest {
  let raw: string;
  try {
    raw = readFileSync(path.join(dir, MANIFEST), 'utf8');
  } catch {
    throw new CliError(`${dir} holds no backup (${MANIFEST} missing)`);
  }
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch {
    throw new CliError(`${path.join(dir, MANIFEST)} is not valid JSON`);
  }
  const parsed = manifestSchema.safeParse(json);
  if (!parsed.success) throw new CliError(`${path.join(dir, MANIFEST)} is not a mailbox-connector backup manifest`);
  return parsed.data;
}

/** The current key store's ledger; undefined when it cannot be read (missing, unreachable, never migrated). */
async function readCurrentLedger(config: Config): Promise<LedgerEntry[] | undefined> {
  if (!config.keystore.url && !existsSync(embeddedKeystoreDir(config.database.dataDir))) return undefined;
  try {
    const keystore = await openKeystore({ url: config.keystore.url, dataDir: config.database.dataDir });
    try {
      return await new DataKeyRepository(keystore).ledger();
    } finally {
      await keystore.close();
    }
  } catch {
    return undefined;
  }
}

/**
 * `mailbox-connector keystore migrate`: moves the data keys of an install from before the key
 * store out of the data database (copy, check every key arrived byte for byte, drop the table).
 * Safe to run again after an interruption.
 */
export async function runKeystoreMigrate(config: Config): Promise<{ moved: number; alreadyInKeystore: number; keystore: string; warning?: string }> {
  const lock = holdEmbedded(config, 'keystore migrate');
  const db = await openDatabase({ databaseUrl: config.database.url, dataDir: config.database.dataDir });
  try {
    const keystore = await openConfiguredKeystore(config);
    try {
      await migrateAll({ data: db, keystore });
      const legacy = new LegacyDataKeysRepository(db.sql);
      const rows = await legacy.readAll().catch(() => []);
      const store = new DataKeyRepository(keystore);
      const moved = await store.importKeys(rows);
      for (const row of rows) {
        const there = await store.find(row.owner);
        const same = there && there.kekVersion === row.kekVersion && there.dekVersion === row.dekVersion && Buffer.from(there.wrappedKey).equals(Buffer.from(row.wrappedKey));
        if (!same && !(await store.isShredded(row.owner))) {
          throw new CliError(`the key store already holds a different key for ${row.owner.type} ${row.owner.id}: nothing was dropped; check KEYSTORE_URL`);
        }
      }
      await legacy.drop();
      return {
        moved,
        alreadyInKeystore: rows.length - moved,
        keystore: describeKeystore(config),
        ...(rows.length > 0
          ? { warning: `backups of the data database taken before now contain the data keys: delete them within ${KEYSTORE_BACKUP_MAX_DAYS} days (treat them as key-store backups)` }
          : {}),
      };
    } finally {
      await keystore.close();
    }
  } finally {
    await db.close();
    lock?.release();
  }
}
