import type { Server } from 'node:http';
import express from 'express';
import { createAbuseLimits } from '../http/abuse-limits.js';
import { createApp, createHealthApp, registerMetricsRoute, type MetricsAccess } from '../http/app.js';
import { createAuthenticator } from '../http/authenticator.js';
import { createConsoleRouter } from '../http/console/console.router.js';
import { ConsoleSessions } from '../http/console/console-session.js';
import { registerOpsRoutes } from '../http/routes/ops.route.js';
import { createRouteRegistry, type RouteRegistry } from '../http/route-registry.js';
import type { OpsCommand } from '../ops/ops-command.js';
import { AdminSessionRepository } from '../storage/admin-session.repository.js';
import { WorkerHeartbeatRepository } from '../storage/worker-heartbeat.repository.js';
import { SANDBOX_KEY_PREFIX } from '../tenancy/api-key.service.js';
import type { Config } from '../config/config.js';
import type { Core } from './core.js';
import type { ServiceModule } from './module.js';
import { LOOP_STALL_NOT_READY_MS, WorkerHeartbeat, workersReadiness } from './worker-heartbeat.js';

export const VERSION = '0.1.0';

export interface RunningService {
  /** Port the HTTP server listens on (when HTTP runs). */
  port: number | undefined;
  /** Port of a worker's health server (/healthz, /readyz, /metrics), when it runs. */
  healthPort: number | undefined;
  /** METRICS_PORT's listener (its real port when METRICS_PORT=0 is not allowed, so = METRICS_PORT). */
  metricsPort: number | undefined;
  routes: RouteRegistry;
  /** The ops commands this service runs (CLI, admin API, console). */
  ops: readonly OpsCommand[];
  /** Stops HTTP (finishing in-flight requests), then workers (finishing or releasing jobs), then modules. */
  stop(): Promise<void>;
}

/** The HTTP port cannot be opened; the message is one line a user can act on. */
export class ListenError extends Error {
  override readonly name = 'ListenError';
}

function listenError(err: Error, port: number, host: string, fromFlag: boolean, flag = '--port'): ListenError {
  const setting = fromFlag ? flag : 'PORT';
  switch ((err as NodeJS.ErrnoException).code) {
    case 'EADDRINUSE':
      return new ListenError(`port ${port} is already in use (${setting}): stop the process using it or choose another port`, { cause: err });
    case 'EACCES':
      return new ListenError(`port ${port} needs more privileges than this process has (${setting}): choose a port above 1023`, { cause: err });
    case 'EADDRNOTAVAIL':
    case 'ENOTFOUND':
      return new ListenError(`cannot listen on HOST ${host}: not an address of this machine`, { cause: err });
    default:
      return new ListenError(`cannot listen on ${host}:${port} (${setting}): ${(err as NodeJS.ErrnoException).code ?? err.message}`, { cause: err });
  }
}

/**
 * CSP form-action sources in production: our public origin and the providers' sign-in origins
 * (Google accounts, the configured Microsoft authority host). Undefined outside production: the
 * sandbox stand-ins listen on loopback.
 */
export function productionFormActionOrigins(config: Config): string[] | undefined {
  if (!config.production) return undefined;
  const origins = new Set<string>([new URL(config.http.publicUrl).origin, 'https://accounts.google.com', `https://${config.microsoft.authorityHost ?? 'login.microsoftonline.com'}`]);
  return [...origins];
}

export function collectOps(modules: ServiceModule[]): OpsCommand[] {
  return modules.flatMap((m) => m.ops ?? []);
}

export async function startService(
  core: Core,
  modules: ServiceModule[],
  opts: {
    http: boolean;
    workers: boolean;
    port?: number;
    host?: string;
    /**
     * Without `http` (a `worker`): serve /healthz, /readyz and /metrics on `port` (default PORT).
     * A default port already in use only costs the health server (logged); a given one is an error.
     */
    healthServer?: { port?: number };
  },
): Promise<RunningService> {
  const routes = createRouteRegistry();
  for (const m of modules) m.routes?.(routes);
  const ops = collectOps(modules);
  registerOpsRoutes(routes, ops, core.audit);
  const heartbeats = new WorkerHeartbeatRepository(core.prisma, core.db.sql);
  const heartbeat = opts.workers ? new WorkerHeartbeat(heartbeats, opts.http ? 'serve' : 'worker', core.logger, core.clock) : undefined;
  const readiness = [...modules.flatMap((m) => m.readiness ?? []), workersReadiness({
      repo: heartbeats,
      own: heartbeat,
      stalled: () => (opts.workers ? core.jobs.stalledQueues(LOOP_STALL_NOT_READY_MS) : []),
      clock: core.clock,
    }),];

  let server: Server | undefined;
  let metricsServer: Server | undefined;
  let port: number | undefined;
  let healthPort: number | undefined;
  let metricsPort: number | undefined;
  const metricsAccess: MetricsAccess = { token: core.config.metrics.token, served: core.config.metrics.port === undefined };
  if (core.config.metrics.port !== undefined && (opts.http || opts.healthServer)) {
    // METRICS_PORT: /metrics on its own listener (e.g. reachable only from the scraper's network).
    const metricsApp = express();
    metricsApp.disable('x-powered-by');
    registerMetricsRoute(metricsApp, { metrics: core.metrics, metricsAccess });
    const wanted = core.config.metrics.port;
    const host = opts.host ?? core.config.http.host;
    metricsServer = await new Promise<Server>((resolve, reject) => {
      const s = metricsApp.listen(wanted, host, (err?: Error) => (err ? reject(listenError(err, wanted, host, false, 'METRICS_PORT')) : resolve(s)));
    });
    const address = metricsServer.address();
    metricsPort = typeof address === 'object' && address ? address.port : undefined;
    core.logger.info({ port: metricsPort }, 'metrics listening');
  }
  if (opts.http) {
    const app = createApp({
      logger: core.logger,
      metrics: core.metrics,
      routes,
      authenticate: createAuthenticator({ apiKeys: core.apiKeys, localAdminToken: () => core.embeddedLock?.info.adminToken, refuseSandboxKeys: core.config.production }),
      readiness,
      bodyLimit: core.config.http.bodyLimit,
      version: VERSION,
      publicUrl: core.config.http.publicUrl,
      abuse: createAbuseLimits({ sql: core.db.sql, settings: core.config.abuse.limits, clock: core.clock }),
      trustProxy: core.config.abuse.trustProxy,
      formActionOrigins: productionFormActionOrigins(core.config),
      metricsAccess,
      pages: [
        createConsoleRouter({
          commands: ops,
          audit: core.audit,
          sessions: new ConsoleSessions({
            store: new AdminSessionRepository(core.prisma),
            async adminKeyActive(apiKeyId) {
              const key = await core.apiKeyRepo.find(apiKeyId);
              return !!key && key.scope === 'admin' && !key.revokedAt;
            },
            clock: core.clock,
          }),
          authenticateKey: (presented) => core.apiKeys.authenticate(presented),
          publicUrl: core.config.http.publicUrl,
          logger: core.logger.child({ room: 'console' }),
        }),
      ],
    });
    const listenPort = opts.port ?? core.config.http.port;
    const listenHost = opts.host ?? core.config.http.host;
    server = await new Promise<Server>((resolve, reject) => {
      // Express 5 hands a listen error (port in use, …) to this callback instead of throwing.
      const s = app.listen(listenPort, listenHost, (err?: Error) => (err ? reject(listenError(err, listenPort, listenHost, opts.port !== undefined)) : resolve(s)));
    });
    const address = server.address();
    port = typeof address === 'object' && address ? address.port : undefined;
    if (port !== undefined) core.embeddedLock?.setPort(port);
    // Idle keep-alive sockets live longer than a client's or load balancer's (commonly 60 s), so
    // the server is never the side that closes a socket a client is about to reuse (which
    // surfaces as "other side closed" on the client). headersTimeout must exceed it.
    server.keepAliveTimeout = 65_000;
    server.headersTimeout = 66_000;
    server.requestTimeout = 120_000;
    core.logger.info({ port }, 'http listening');
    if (core.config.production) {
      // Sandbox keys in a production database are refused at every request; say so once at start.
      const sandboxKeys = await core.apiKeyRepo.countActiveWithPrefix(SANDBOX_KEY_PREFIX);
      if (sandboxKeys > 0) {
        core.logger.warn({ sandboxKeys }, `${sandboxKeys} unrevoked sandbox API key(s) (${SANDBOX_KEY_PREFIX}…) exist; this production process refuses them with 401 sandbox_key_refused — issue live keys and revoke these`);
      }
    }
  } else if (opts.healthServer) {
    const wanted = opts.healthServer.port ?? core.config.http.port;
    const host = opts.host ?? core.config.http.host;
    const app = createHealthApp({ metrics: core.metrics, readiness, metricsAccess });
    try {
      server = await new Promise<Server>((resolve, reject) => {
        const s = app.listen(wanted, host, (err?: Error) => (err ? reject(listenError(err, wanted, host, opts.healthServer?.port !== undefined, '--health-port')) : resolve(s)));
      });
      const address = server.address();
      healthPort = typeof address === 'object' && address ? address.port : undefined;
      core.logger.info({ port: healthPort }, 'health server listening');
    } catch (err) {
      // Several workers on one host with the default PORT: the first one answers for the host.
      const inUse = ((err as Error).cause as NodeJS.ErrnoException | undefined)?.code === 'EADDRINUSE';
      if (opts.healthServer.port !== undefined || !inUse) throw err;
      core.logger.warn({ port: wanted }, 'health server not started: PORT is in use (give this worker its own with --health-port)');
    }
  }

  if (opts.workers) {
    for (const m of modules) m.jobs?.(core.jobs);
    for (const m of modules) for (const s of m.schedules ?? []) await core.jobs.schedule(s.name, s.cron);
    await core.jobs.startWorkers();
    await heartbeat?.start();
    core.logger.info('workers started');
  }

  // The audit head is anchored outside the database on a schedule (and once at stop), by the
  // processes that serve HTTP: they are the ones an operator runs next to the anchor file.
  const anchorAudit = () => core.audit.anchor().catch((err: unknown) => core.logger.warn({ err }, 'audit anchor not written'));
  const anchorTimer = opts.http ? setInterval(() => void anchorAudit(), core.config.audit.anchorIntervalSeconds * 1000) : undefined;
  anchorTimer?.unref();

  let stopping: Promise<void> | undefined;
  return {
    port,
    healthPort,
    metricsPort,
    routes,
    ops,
    stop() {
      stopping ??= (async () => {
        if (server) {
          const s = server;
          await new Promise<void>((resolve) => {
            s.close(() => resolve());
            s.closeIdleConnections();
            setTimeout(() => s.closeAllConnections(), 10_000).unref();
          });
        }
        if (anchorTimer) {
          clearInterval(anchorTimer);
          await anchorAudit();
        }
        if (metricsServer) {
          const m = metricsServer;
          await new Promise<void>((resolve) => {
            m.close(() => resolve());
            m.closeAllConnections();
          });
        }
        await core.jobs.stop();
        await heartbeat?.stop();
        for (const m of [...modules].reverse()) await m.stop?.().catch((err: unknown) => core.logger.warn({ err, module: m.name }, 'module stop failed'));
      })();
      return stopping;
    },
  };
}
