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
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { createCore, type Core } from '../../src/bootstrap/core.js';
import type { ServiceModule } from '../../src/bootstrap/module.js';
import { buildProcessServices, createModules, type ProcessServices } from '../../src/bootstrap/modules.js';
import { startService, type RunningService } from '../../src/bootstrap/service.js';
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
  /** With `http: false`: run a worker's health server (/healthz, /readyz, /metrics) on this port. */
  healthPort?: number;
  /** Reuse an existing database instead of creating one (restarts, several processes). */
  databaseUrl?: string;
  dataDir?: string;
  encryptionKeys?: string;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      s.close(() => resolve(port));
    });
  });
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
  const port = await freePort();
  const config = loadConfig({
    NODE_ENV: 'test',
    LOG_LEVEL: 'debug',
    PORT: String(port),
    HOST: '127.0.0.1',
    PUBLIC_URL: `http://127.0.0.1:${port}`,
    ENCRYPTION_KEYS: opts.encryptionKeys ?? testEncryptionKeys(),
    ...(anchorDir ? { AUDIT_HMAC_KEYS: testEncryptionKeys(), AUDIT_ANCHOR_FILE: path.join(anchorDir, 'audit-anchors.jsonl') } : {}),
    WEBHOOK_ALLOWED_HOSTS: '127.0.0.1,localhost',
    ...(databaseUrl ? { DATABASE_URL: databaseUrl } : { DATA_DIR: dataDir! }),
    ...opts.env,
  });
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      logs.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      cb();
    },
  });
  const core = await createCore(config, { command: 'test', logDestination: sink, jobPollingSeconds: 0.5 });
  const services = await buildProcessServices(core);
  const modules = await (opts.modules ?? createModules)(core, services);
  const service = await startService(core, modules, {
    http: opts.http ?? true,
    workers: opts.workers ?? true,
    port,
    host: '127.0.0.1',
    ...(opts.healthPort !== undefined ? { healthServer: { port: opts.healthPort } } : {}),
  });
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
