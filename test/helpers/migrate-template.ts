// What both test templates (embedded and Postgres) hold: every data and key-store migration applied
// by the project's own migrator, and pg-boss's schema with the connector's queues.
import { createJobQueue } from '../../src/jobs/job-queue.js';
import { createLogger } from '../../src/observability/logger.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { openDatabase } from '../../src/storage/database.js';
import { openKeystore } from '../../src/storage/keystore.js';
import { migrateAll } from '../../src/storage/migrator.js';

/**
 * Migrates the data database and the key store named by the arguments (URLs for Postgres, or
 * undefined with `dataDir` for the embedded pair) with the service's own `migrateAll`, and installs
 * pg-boss's schema and queues, as the first `createCore` on a database makes them (every later
 * start finds them and only updates the queue settings).
 */
export async function migrateTemplate(target: { databaseUrl: string | undefined; keystoreUrl: string | undefined; dataDir: string }): Promise<void> {
  const db = await openDatabase({ databaseUrl: target.databaseUrl, dataDir: target.dataDir, guardTransactions: false });
  try {
    const keystore = await openKeystore({ url: target.keystoreUrl, dataDir: target.dataDir });
    try {
      await migrateAll({ data: db, keystore });
    } finally {
      await keystore.close();
    }
    const jobs = await createJobQueue({ connection: db.jobQueueConnection, logger: createLogger({ level: 'silent' }), metrics: createMetrics() });
    await jobs.stop();
  } finally {
    await db.close();
  }
}
