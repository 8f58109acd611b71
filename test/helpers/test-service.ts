// A real service for integration tests: fresh database (a new Postgres database on the server
// named by DATABASE_URL when set — CI — else an embedded PGlite in a temp dir; both copied from
// the suite's migrated template when the global setup made one), real migrations,
// real job queue, real HTTP on a free port.
//
//   const svc = await startTestService();
//   const { apiKey, tenantId } = await svc.createTenant();
//   await fetch(`${svc.url}/v1/mailboxes`, { headers: { authorization: `Bearer ${apiKey}` } });
//   await svc.close();   // in afterAll
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { createCore, type Core } from '../../src/bootstrap/core.js';
import type { ServiceModule } from '../../src/bootstrap/module.js';
import { buildProcessServices, createModules, type ProcessServices } from '../../src/bootstrap/modules.js';
import { ListenError, startService, type RunningService } from '../../src/bootstrap/service.js';
import { loadConfig, type Config } from '../../src/config/config.js';
import { seedFromPgliteTemplate } from './pglite-template.js';
import { createTestDatabase } from './postgres.js';
import { postgresTemplateName } from './postgres-template.js';

export interface TestService {
  url: string;
  port: number;
  config: Config;
  core: Core;
  /** The process services the modules got (provider settings and sandbox stand-ins, token vault, scanner). */
  services: ProcessServices;
  service: RunningService;
  /** Every log line the service wrote (JSON strings), for assertions that nothing leaked. */
  logs: string[];
  createTenant(opts?: { name?: string; allowedReturnOrigins?: string[]; retentionDays?: number }): Promise<{ tenantId: string; apiKey: string; apiKeyId: string }>;
  /** fetch against the service with a bearer key; JSON in and out. */
  api(apiKey: string, method: string, pathname: string, body?: unknown, headers?: Record<string, string>): Promise<{ status: number; body: any; headers: Headers }>; // eslint-disable-line @typescript-eslint/no-explicit-any -- tests index into arbitrary JSON;
  close(): Promise<void>;
}

export interface TestServiceOptions {
  /** Extra environment (merged over the test defaults) — e.g. GOOGLE_CLIENT_ID, SANDBOX_GOOGLE_URL. */
  env?: Record<string, string>;
  /** Replace the module list (default: the real one from src/bootstrap/modules.ts). */
  modules?: (core: Core, services: ProcessServices) => Promise<ServiceModule[]>;
  workers?: boolean;
  http?: boolean;
  /** Try this port first (instead of one from freePort); taken, another is used as for any collision. */
  firstPort?: number;
  /** With `http: false`: run a worker's health server (/healthz, /readyz, /metrics) on this port. */
  healthPort?: number;
  /** Reuse an existing database instead of creating one (restarts, several processes). */
  databaseUrl?: string;
  dataDir?: string;
  encryptionKeys?: string;
}

/** Listens on `port` (0: any) on 127.0.0.1 and closes again: the port bound, or null when it is taken. */
function probePort(port: number): Promise<number | null> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', (err: NodeJS.ErrnoException) => (err.code === 'EADDRINUSE' || err.code === 'EACCES' ? resolve(null) : reject(err)));
    s.listen(port, '127.0.0.1', () => {
      const addr = s.address();
      const bound = typeof addr === 'object' && addr ? addr.port : 0;
      s.close(() => resolve(bound));
    });
  });
}

/** The kernel's range for outgoing connections' local ports (Linux), or null elsewhere. */
function ephemeralRange(): [number, number] | null {
  try {
    const [lo, hi] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    return lo && hi ? [lo, hi] : null;
  } catch {
    return null;
  }
}

/**
 * A port that was free a moment ago, for a listener the caller starts later. Drawn at random from
 * below the kernel's ephemeral range: a port the kernel hands out for `listen(0)` comes from the
 * range every outgoing connection on the machine also draws its local port from (the suite's
 * Postgres pools, HTTP clients), so one of them could take it before the caller listens — a CI
 * run failed that way (EADDRINUSE on a port from `listen(0)`). Tests that run at once may still
 * draw the same port (about one in 12,000 per pair); startTestService retries on that.
 */
export async function freePort(): Promise<number> {
  const range = ephemeralRange();
  const lo = 20_000;
  const hi = Math.min(range ? range[0] - 1 : 32_767, 32_767);
  if (hi > lo) {
    for (let i = 0; i < 50; i++) {
      const port = await probePort(lo + Math.floor(Math.random() * (hi - lo + 1)));
      if (port) return port;
    }
  }
  const port = await probePort(0);
  if (!port) throw new Error('no free port on 127.0.0.1');
  return port;
}

export function testEncryptionKeys(): string {
  return `1:${randomBytes(32).toString('base64')}`;
}

export async function startTestService(opts: TestServiceOptions = {}): Promise<TestService> {
  const cleanups: Array<() => Promise<void> | void> = [];
  let databaseUrl = opts.databaseUrl;
  let dataDir = opts.dataDir;
  if (!databaseUrl && !dataDir) {
    if (process.env.DATABASE_URL) {
      const db = await createTestDatabase({ template: postgresTemplateName() });
      databaseUrl = db.url;
      cleanups.push(() => db.drop());
    } else {
      dataDir = mkdtempSync(path.join(tmpdir(), 'mbc-test-'));
      const dir = dataDir;
      cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    }
  }
  if (!databaseUrl && dataDir) seedFromPgliteTemplate(dataDir);
  // A caller-given DATA_DIR is a place several processes of the test share (restarts, CLIs):
  // there the audit key is derived from ENCRYPTION_KEYS and the anchors are in DATA_DIR, as for
  // `npm start`.
  // Otherwise this service gets its own audit key and an anchor file of its own (not ./data).
  const sharedDataDir = opts.dataDir !== undefined || opts.env?.DATA_DIR !== undefined;
  const anchorDir = sharedDataDir ? undefined : mkdtempSync(path.join(tmpdir(), 'mbc-anchors-'));
  if (anchorDir) cleanups.push(() => rmSync(anchorDir, { recursive: true, force: true }));
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      logs.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      cb();
    },
  });
  const start = async (port: number) => {
    const config = loadConfig({
      NODE_ENV: 'test',
      LOG_LEVEL: 'debug',
      PORT: String(port),
      HOST: '127.0.0.1',
      PUBLIC_URL: `http://127.0.0.1:${port}`,
      ENCRYPTION_KEYS: encryptionKeys,
      ...(anchorDir ? { AUDIT_HMAC_KEYS: auditKeys, AUDIT_ANCHOR_FILE: path.join(anchorDir, 'audit-anchors.jsonl') } : {}),
      WEBHOOK_ALLOWED_HOSTS: '127.0.0.1,localhost',
      ...(databaseUrl ? { DATABASE_URL: databaseUrl } : { DATA_DIR: dataDir! }),
      ...opts.env,
    });
    const core = await createCore(config, { command: 'test', logDestination: sink, jobPollingSeconds: 0.5 });
    try {
      const services = await buildProcessServices(core);
      const modules = await (opts.modules ?? createModules)(core, services);
      const service = await startService(core, modules, {
        http: opts.http ?? true,
        workers: opts.workers ?? true,
        port,
        host: '127.0.0.1',
        ...(opts.healthPort !== undefined ? { healthServer: { port: opts.healthPort } } : {}),
      });
      return { config, core, services, service };
    } catch (err) {
      await core.close();
      throw err;
    }
  };
  const encryptionKeys = opts.encryptionKeys ?? testEncryptionKeys();
  const auditKeys = testEncryptionKeys();
  let port = opts.firstPort ?? (await freePort());
  let started: Awaited<ReturnType<typeof start>>;
  for (let attempt = 1; ; attempt++) {
    try {
      started = await start(port);
      break;
    } catch (err) {
      // Another test took the port between freePort() and the listen (see freePort): once more on
      // another. The service always listens on this port (startService's `port` wins over any env
      // PORT); a taken METRICS_PORT or health port is the caller's and fails as before.
      const cause = err instanceof ListenError ? (err.cause as NodeJS.ErrnoException & { port?: number }) : undefined;
      if (attempt >= 3 || cause?.code !== 'EADDRINUSE' || cause.port !== port) throw err;
      logs.length = 0;
      port = await freePort();
    }
  }
  const { config, core, services, service } = started;
  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    port,
    config,
    core,
    services,
    service,
    logs,
    async createTenant(o = {}) {
      const tenant = await core.tenantService.create({ name: o.name ?? 'test tenant', ...(o.allowedReturnOrigins ? { allowedReturnOrigins: o.allowedReturnOrigins } : {}), ...(o.retentionDays ? { retentionDays: o.retentionDays } : {}) });
      const issued = await core.apiKeys.issue({ tenantId: tenant.id });
      return { tenantId: tenant.id, apiKey: issued.key, apiKeyId: issued.record.id };
    },
    async api(apiKey, method, pathname, body, headers = {}) {
      const res = await fetch(`${url}${pathname}`, {
        method,
        headers: { authorization: `Bearer ${apiKey}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
        ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
      });
      const text = await res.text();
      let parsed: unknown = text;
      try {
        parsed = text ? JSON.parse(text) : undefined;
      } catch {
        // not JSON
      }
      return { status: res.status, body: parsed, headers: res.headers };
    },
    async close() {
      await service.stop();
      await core.close();
      for (const c of cleanups.reverse()) await c();
    },
  };
}
