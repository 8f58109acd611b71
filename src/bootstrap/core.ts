import type { DestinationStream } from 'pino';
import { AuditAnchorFile } from '../audit/audit-anchor.js';
import { AuditService } from '../audit/audit.service.js';
import { syncConcurrency, type Config } from '../config/config.js';
import { BlindIndex } from '../crypto/blind-index.js';
import { SYSTEM_BLIND_INDEX_OWNER } from '../crypto/data-key.port.js';
import { DataKeyService } from '../crypto/data-key.service.js';
import { deriveKeyring, parseKeyring, resolveKeyring, type Keyring } from '../crypto/keyring.js';
import { OutboxService } from '../events/outbox.service.js';
import { createJobQueue, type JobQueue } from '../jobs/job-queue.js';
import { createLogger, type Logger } from '../observability/logger.js';
import { createMetrics, type Metrics } from '../observability/metrics.js';
import { ApiKeyRepository } from '../storage/api-key.repository.js';
import { AuditRepository } from '../storage/audit.repository.js';
import { DataKeyRepository } from '../storage/data-key.repository.js';
import { openDatabase, type Database, type PrismaClient } from '../storage/database.js';
import { acquireEmbeddedLock, type EmbeddedLock } from '../storage/embedded-lock.js';
import { MailboxRepository } from '../storage/mailbox.repository.js';
import { OutboxRepository } from '../storage/outbox.repository.js';
import { openKeystore, type KeystoreDatabase } from '../storage/keystore.js';
import { LegacyDataKeysRepository } from '../storage/legacy-data-keys.repository.js';
import { migrateAll } from '../storage/migrator.js';
import { assertNoRestorePending } from '../storage/restore-marker.js';
import { TenantRepository } from '../storage/tenant.repository.js';
import { ApiKeyService } from '../tenancy/api-key.service.js';
import { TenantService } from '../tenancy/tenant.service.js';

/**
 * Everything every room shares, created once per process. Rooms take only the parts they use
 * (STYLE: no giant dependency bag is passed *into* services; modules pick from here).
 */
export interface Core {
  config: Config;
  logger: Logger;
  metrics: Metrics;
  clock: () => Date;
  db: Database;
  prisma: PrismaClient;
  keyring: Keyring;
  /** The key store's database (data keys, shred ledger): not the data database. */
  keystore: KeystoreDatabase;
  keyStore: DataKeyRepository;
  dataKeys: DataKeyService;
  blindIndex: BlindIndex;
  audit: AuditService;
  jobs: JobQueue;
  tenants: TenantRepository;
  /** Use this (not `tenants.create`) to create a tenant: it also creates the tenant's data key. */
  tenantService: TenantService;
  apiKeyRepo: ApiKeyRepository;
  apiKeys: ApiKeyService;
  mailboxes: MailboxRepository;
  /** The transactional outbox every room appends its webhook events to (one per process). */
  outbox: OutboxService;
  /** Set when this process holds the embedded database. */
  embeddedLock: EmbeddedLock | undefined;
  /**
   * Something built on the core that must stop before it closes (e.g. the in-process sandbox
   * stand-ins): closed by `close()` first, last registered first.
   */
  onClose(close: () => Promise<void>): void;
  /** Registered closers (last first), then the job queue, the data database, the key store, the lock. */
  close(): Promise<void>;
}

export interface CoreOptions {
  /** Name of the command holding the embedded database (shown to a second process). */
  command: string;
  logDestination?: DestinationStream;
  logger?: Logger;
  /** Job polling interval; tests use a short one. */
  jobPollingSeconds?: number;
  /** Only `mailbox-connector restore`, which finishes the restore the marker stands for. */
  allowRestorePending?: boolean;
}

export async function createCore(config: Config, opts: CoreOptions): Promise<Core> {
  const logger = opts.logger ?? createLogger({ level: config.logLevel, ...(opts.logDestination ? { destination: opts.logDestination } : {}) });
  const metrics = createMetrics();
  const embeddedLock = config.database.embedded ? acquireEmbeddedLock(config.database.dataDir, opts.command) : undefined;
  let db: Database | undefined;
  let keystore: KeystoreDatabase | undefined;
  try {
    // An interrupted restore may have brought back keys of purged mailboxes: never serve then.
    if (!opts.allowRestorePending) assertNoRestorePending(config.database.dataDir);
    // Every running sync holds one pooled connection for its advisory lock (SyncLockRepository) and
    // needs another for its ingest transactions: the pool grows with the sync slots.
    const warn = (message: string): void => logger.warn(message);
    db = await openDatabase({ databaseUrl: config.database.url, dataDir: config.database.dataDir, poolSize: Math.max(10, syncConcurrency(config, !config.database.url) + 6), warn });
    keystore = await openConfiguredKeystore(config, warn);
    const migrated = await migrateAll({ data: db, keystore });
    if (migrated.data.applied.length) logger.info({ applied: migrated.data.applied }, 'database migrated');
    if (migrated.keystore.applied.length) logger.info({ applied: migrated.keystore.applied }, 'key store migrated');
    await assertKeysInKeystore(db, keystore, config);
    const keyring = resolveKeyring({
      encryptionKeys: config.encryptionKeys,
      nodeEnv: config.env,
      dataDir: config.database.dataDir,
      warn: (message) => logger.warn(message),
    });
    // Production requires AUDIT_HMAC_KEYS (config). Elsewhere an unset one is derived from the
    // data key ring, version by version (HKDF): no second key file, and every process that shares
    // ENCRYPTION_KEYS (or the development ring in DATA_DIR) seals and verifies alike.
    const auditKeyring = config.audit.hmacKeys ? parseKeyring(config.audit.hmacKeys, 'AUDIT_HMAC_KEYS') : deriveKeyring(keyring, 'mailbox-connector audit chain v1');
    const auditKeys = {
      activeVersion: auditKeyring.activeVersion,
      activeKey: auditKeyring.activeKey,
      key: (version: number) => (auditKeyring.has(version) ? auditKeyring.get(version) : undefined),
    };
    const audit = new AuditService(new AuditRepository(db.prisma, db), () => new Date(), {
      keys: auditKeys,
      anchors: new AuditAnchorFile(config.audit.anchorFile, auditKeys),
    });
    await audit.prepare();
    const keyStore = new DataKeyRepository(keystore);
    const dataKeys = new DataKeyService(keyring, keyStore);
    const blindIndex = new BlindIndex((await dataKeys.getOrCreate(SYSTEM_BLIND_INDEX_OWNER)).key);
    const jobs = await createJobQueue({
      connection: db.jobQueueConnection,
      logger,
      metrics,
      timings: { expireSeconds: config.jobs.expireSeconds, expireCheckSeconds: config.jobs.expireCheckSeconds },
      ...(opts.jobPollingSeconds !== undefined ? { pollingIntervalSeconds: opts.jobPollingSeconds } : {}),
    });
    const apiKeyRepo = new ApiKeyRepository(db.prisma);
    const tenants = new TenantRepository(db.prisma);
    const openDb = db;
    const openKeystoreDb = keystore;
    const closers: Array<() => Promise<void>> = [];
    return {
      config,
      logger,
      metrics,
      clock: () => new Date(),
      db,
      prisma: db.prisma,
      keyring,
      keystore,
      keyStore,
      dataKeys,
      blindIndex,
      audit,
      jobs,
      tenants,
      tenantService: new TenantService(tenants, dataKeys),
      apiKeyRepo,
      apiKeys: new ApiKeyService(apiKeyRepo, () => new Date(), { sandbox: config.sandbox.enabled }),
      mailboxes: new MailboxRepository(db.prisma),
      outbox: new OutboxService({ repo: new OutboxRepository(db.prisma), dataKeys, clock: () => new Date() }),
      embeddedLock,
      onClose(close) {
        closers.push(close);
      },
      async close() {
        for (const close of closers.splice(0).reverse()) await close().catch((err: unknown) => logger.warn({ err }, 'closing a core resource failed'));
        await jobs.stop().catch((err: unknown) => logger.warn({ err }, 'job queue stop failed'));
        await openDb.close();
        await openKeystoreDb.close();
        embeddedLock?.release();
      },
    };
  } catch (err) {
    await db?.close().catch(() => undefined);
    await keystore?.close().catch(() => undefined);
    embeddedLock?.release();
    throw err;
  }
}

/** Opens the configured key store, creating the derived `<db>_keystore` database if needed (not migrated: see `migrateAll`). */
export function openConfiguredKeystore(config: Config, warn?: (message: string) => void): Promise<KeystoreDatabase> {
  return openKeystore({
    url: config.keystore.url,
    dataDir: config.database.dataDir,
    createThrough: config.keystore.derived ? config.database.url : undefined,
    warn,
  });
}

export class KeystoreMismatchError extends Error {
  override readonly name = 'KeystoreMismatchError';
}

/**
 * Refuses to start when the keys are not where the data expects them: still in the data database
 * (an install from before the key store), or a key store without any key next to data that has
 * tenants (a wrong KEYSTORE_URL, a data restore without its key store). Starting anyway would
 * mint a new blind-index key and make every stored lookup miss.
 */
async function assertKeysInKeystore(db: Database, keystore: KeystoreDatabase, config: Config): Promise<void> {
  const legacy = await new LegacyDataKeysRepository(db.sql).count();
  if (legacy > 0) {
    throw new KeystoreMismatchError(
      `the data database still holds ${legacy} data key(s) from before the key store: run "mailbox-connector keystore migrate" ` +
        `once to move them to the key store (${describeKeystore(config)}), then start again (docs/operations.md)`,
    );
  }
  const keys = await new DataKeyRepository(keystore).countKeys();
  if (keys > 0) return;
  const { rows } = await db.sql.query<{ n: number }>('SELECT count(*)::int AS n FROM "tenants"');
  const tenants = rows[0]?.n ?? 0;
  if (tenants > 0) {
    throw new KeystoreMismatchError(
      `the key store (${describeKeystore(config)}) holds no data keys but the data database has ${tenants} tenant(s): ` +
        'check KEYSTORE_URL, or restore the key store together with the data (mailbox-connector restore)',
    );
  }
}

export function describeKeystore(config: Config): string {
  if (!config.keystore.url) return `embedded, in ${config.database.dataDir}/keystore`;
  const u = new URL(config.keystore.url);
  return `database ${decodeURIComponent(u.pathname.replace(/^\//, ''))} on ${u.hostname}${config.keystore.derived ? ', KEYSTORE_URL unset' : ''}`;
}
