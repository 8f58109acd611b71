import type { Config } from '../config/config.js';
import { createCore, openConfiguredKeystore } from '../bootstrap/core.js';
import { buildProcessServices, createModules } from '../bootstrap/modules.js';
import { startService } from '../bootstrap/service.js';
import { LOOP_STALL_EXIT_MS } from '../bootstrap/worker-heartbeat.js';
import { openDatabase } from '../storage/database.js';
import { acquireEmbeddedLock, readEmbeddedLock } from '../storage/embedded-lock.js';
import { migrateAll } from '../storage/migrator.js';
import { CliError } from './ops-client.js';

export async function runServer(config: Config, opts: { http: boolean; workers: boolean; port?: number; healthPort?: number; json: boolean }): Promise<void> {
  const core = await createCore(config, { command: opts.http ? 'mailbox-connector serve' : 'mailbox-connector worker' });
  const modules = await createModules(core, await buildProcessServices(core));
  const service = await startService(core, modules, {
    http: opts.http,
    workers: opts.workers,
    ...(opts.port !== undefined ? { port: opts.port } : {}),
    // A worker answers /healthz and /readyz too (container health checks, orchestrators).
    ...(opts.http ? {} : { healthServer: opts.healthPort !== undefined ? { port: opts.healthPort } : {} }),
  });
  if (service.port !== undefined) {
    const line = { listening: `http://127.0.0.1:${service.port}`, publicUrl: config.http.publicUrl, database: core.db.kind };
    process.stdout.write(opts.json ? `${JSON.stringify(line)}\n` : `mailbox-connector listening on ${line.listening} (database: ${line.database})\n`);
  }
  // Anything thrown outside a request or job (a connection's 'error' event nobody handles, a
  // promise nobody awaits) leaves the process in an unknown state: say so in one log line and exit
  // non-zero so the supervisor (Docker, systemd, Kubernetes) starts a fresh one — never run on
  // half-broken or sit idle.
  const fatal = (kind: string) => (err: unknown): void => {
    core.logger.fatal({ err, kind }, 'fatal error; exiting so the process is restarted');
    process.exit(1);
  };
  process.on('uncaughtException', fatal('uncaughtException'));
  process.on('unhandledRejection', fatal('unhandledRejection'));
  if (opts.workers) {
    // Watchdog: a job loop stuck for minutes (a database call that never returned) would leave the
    // process alive but idle; exit instead so a fresh one takes over its work.
    setInterval(() => {
      const stalled = core.jobs.stalledQueues(LOOP_STALL_EXIT_MS);
      if (stalled.length > 0) {
        core.logger.fatal({ queues: stalled }, 'job worker loop stalled; exiting so the process is restarted');
        process.exit(1);
      }
    }, 30_000).unref();
  }
  let exiting = false;
  const shutdown = (signal: string): void => {
    if (exiting) return;
    exiting = true;
    core.logger.info({ signal }, 'shutting down');
    void (async () => {
      try {
        await service.stop();
        await core.close();
        process.exit(0);
      } catch (err) {
        core.logger.error({ err }, 'shutdown failed');
        process.exit(1);
      }
    })();
  };
  process.once('SIGTERM', () => shutdown('SIGTERM'));
  process.once('SIGINT', () => shutdown('SIGINT'));
}

/** `mailbox-connector migrate`: the data database's and the key store's pending migrations (what every start applies). */
export async function runMigrate(config: Config): Promise<{ applied: string[]; alreadyApplied: number; keystore: { applied: string[]; alreadyApplied: number } }> {
  if (config.database.embedded) {
    const holder = readEmbeddedLock(config.database.dataDir);
    if (holder && holder.pid !== process.pid) {
      // The running service migrated the embedded database when it started.
      throw new CliError(`the embedded database is in use by "${holder.command}" (pid ${holder.pid}), which applied migrations at start`);
    }
  }
  const lock = config.database.embedded ? acquireEmbeddedLock(config.database.dataDir, 'mailbox-connector migrate') : undefined;
  const db = await openDatabase({ databaseUrl: config.database.url, dataDir: config.database.dataDir });
  try {
    const keystore = await openConfiguredKeystore(config);
    try {
      const { data, keystore: keys } = await migrateAll({ data: db, keystore });
      return { ...data, keystore: keys };
    } finally {
      await keystore.close();
    }
  } finally {
    await db.close();
    lock?.release();
  }
}
