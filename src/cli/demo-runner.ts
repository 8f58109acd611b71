import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { mailAccess } from '../bootstrap/connect.module.js';
import { createCore } from '../bootstrap/core.js';
import { createModules } from '../bootstrap/modules.js';
import { startService } from '../bootstrap/service.js';
import { loadConfig, type Config } from '../config/config.js';
import { approveGoogleConsent } from '../sandbox/google/google-consent.client.js';
import { approveMicrosoftConsent } from '../sandbox/microsoft/approve-microsoft-consent.js';
import { CliError } from './ops-client.js';

/** How long the demo waits for the delivered messages to show up through the API. */
const WAIT_FOR_MAIL_MS = 45_000;

const DEMO_MAILBOXES = [
  { provider: 'google', email: 'support@demo-gmail.test' },
  { provider: 'microsoft', email: 'help@demo-outlook.test' },
] as const;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      s.close(() => resolve(typeof addr === 'object' && addr ? addr.port : 0));
    });
  });
}

function demoMessage(to: string, n: number): Buffer {
  return Buffer.from(
    [
      `From: Customer ${n} <customer${n}@example.org>`,
      `To: ${to}`,
      `Subject: Demo ticket #${n}: my order has not arrived`,
      `Date: ${new Date().toUTCString()}`,
      `Message-ID: <demo-${randomUUID()}@example.org>`,
      'MIME-Version: 1.0',
      'Content-Type: text/plain; charset=utf-8',
      '',
      `Hello, this is demo message ${n}. Where is my order?`,
      '',
    ].join('\r\n'),
  );
}

/**
 * `mailbox-connector demo`: the whole product on the local stand-ins, end to end. Starts the
 * service with SANDBOX=1 (embedded database in a temporary DATA_DIR unless DATABASE_URL is set),
 * creates a tenant, connects one Gmail and one Microsoft 365 mailbox through the real hosted
 * connect flow (consent approved by the stand-ins' consent helpers instead of a person), delivers
 * a few messages into the stand-in mailboxes and prints them as the connector stores them. It
 * shows exactly what happened — if sync is not running, it says that no mail arrived.
 */
export async function runDemo(base: Config, opts: { json: boolean }): Promise<void> {
  if (base.production) throw new CliError('demo refuses NODE_ENV=production: it runs on the sandbox providers');
  // PORT when the environment sets it (0 = any free port), else a free port so a running
  // `npm start` on 8080 is not in the way.
  const port = process.env.PORT?.trim() && base.http.port !== 0 ? base.http.port : await freePort();
  const dataDir = base.database.url ? undefined : mkdtempSync(path.join(tmpdir(), 'mbc-demo-'));
  const config = loadConfig({
    ...process.env,
    SANDBOX: '1',
    SANDBOX_GOOGLE_URL: '',
    SANDBOX_MICROSOFT_URL: '',
    PORT: String(port),
    HOST: '127.0.0.1',
    PUBLIC_URL: `http://127.0.0.1:${port}`,
    LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn',
    ...(dataDir ? { DATA_DIR: dataDir } : {}),
  });
  const say = (event: string, fields: Record<string, unknown>, text: string): void => {
    process.stdout.write(opts.json ? `${JSON.stringify({ event, ...fields })}\n` : `${text}\n`);
  };

  const core = await createCore(config, { command: 'mailbox-connector demo' });
  // Run in reverse at the end: the service stops, then the core closes, then its data goes.
  const cleanup: Array<() => Promise<void> | void> = [];
  if (dataDir) cleanup.push(() => rmSync(dataDir, { recursive: true, force: true }));
  cleanup.push(() => core.close());
  // Ctrl-C at any point stops the service and removes the temporary data folder.
  let interrupt: () => void = () => undefined;
  const interrupted = new Promise<void>((resolve) => {
    interrupt = resolve;
  });
  const onSignal = (): void => interrupt();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    for (const c of cleanup.reverse()) await Promise.resolve(c()).catch(() => undefined);
  };
  try {
    const modules = await createModules(core);
    const service = await startService(core, modules, { http: true, workers: true, port, host: '127.0.0.1' });
    cleanup.push(() => service.stop());
    const url = `http://127.0.0.1:${port}`;
    say('started', { url, database: core.db.kind, dataDir: dataDir ?? null }, `Connector running at ${url} on the sandbox providers (database: ${core.db.kind}${dataDir ? `, data in ${dataDir}` : ''}).`);

    const tenant = await core.tenantService.create({ name: 'Demo helpdesk' });
    const key = await core.apiKeys.issue({ tenantId: tenant.id, name: 'demo' });
    say('tenant', { tenantId: tenant.id, apiKey: key.key }, `Tenant ${tenant.id} created. API key (shown once): ${key.key}`);
    const api = async (method: string, p: string, body?: unknown): Promise<{ status: number; body: Record<string, unknown> }> => {
      const res = await fetch(`${url}${p}`, {
        method,
        headers: { authorization: `Bearer ${key.key}`, ...(body ? { 'content-type': 'application/json' } : {}) },
        ...(body ? { body: JSON.stringify(body) } : {}),
      });
      return { status: res.status, body: (await res.json().catch(() => ({}))) as Record<string, unknown> };
    };

    const access = await mailAccess(core);
    const connected: Array<{ id: string; provider: string; email: string }> = [];
    for (const m of DEMO_MAILBOXES) {
      const created = await api('POST', '/v1/connect-sessions', { provider: m.provider });
      if (created.status !== 201) throw new CliError(`creating a connect session failed with HTTP ${created.status}`);
      const hosted = String(created.body.url);
      say('connect_session', { provider: m.provider, url: hosted }, `\n${m.provider}: connect session ${String(created.body.id)} → hosted page ${hosted}`);
      const start = await fetch(`${hosted}/start?provider=${m.provider}`, { redirect: 'manual' });
      const cookie = (start.headers.get('set-cookie') ?? '').split(';')[0] ?? '';
      const authorizeUrl = start.headers.get('location');
      if (start.status !== 302 || !authorizeUrl) throw new CliError(`the hosted page did not redirect to ${m.provider} (HTTP ${start.status})`);
      const back = m.provider === 'google' ? await approveGoogleConsent(authorizeUrl, { email: m.email }) : await approveMicrosoftConsent(authorizeUrl, { email: m.email });
      say('consent', { provider: m.provider, email: m.email }, `  consent approved at the ${m.provider} stand-in for ${m.email}`);
      const cb = await fetch(back, { redirect: 'manual', headers: { cookie } });
      const page = await cb.text();
      const status = /data-status="([a-z_]+)"/.exec(page)?.[1] ?? `HTTP ${cb.status}`;
      const list = await api('GET', '/v1/mailboxes?limit=100');
      const mailbox = ((list.body.data as Array<{ id: string; address: string; provider: string; status: string }> | undefined) ?? []).find((x) => x.address === m.email && x.provider === m.provider);
      say('connected', { provider: m.provider, result: status, mailboxId: mailbox?.id ?? null, mailboxStatus: mailbox?.status ?? null }, `  callback result: ${status}${mailbox ? `; mailbox ${mailbox.id} is ${mailbox.status}` : ''}`);
      if (mailbox) connected.push({ id: mailbox.id, provider: m.provider, email: m.email });
    }

    const sb = access.settings.sandbox;
    let delivered = 0;
    for (const m of connected) {
      for (let n = 1; n <= 2; n++) {
        const raw = demoMessage(m.email, ++delivered);
        if (m.provider === 'google') sb.google?.deliver(m.email, raw);
        else await sb.microsoft?.deliver(m.email, raw);
      }
    }
    say('delivered', { count: delivered }, `\nDelivered ${delivered} messages into the stand-in mailboxes. Waiting for the connector to sync them…`);

    const seen = new Set<string>();
    const deadline = Date.now() + WAIT_FOR_MAIL_MS;
    let aborted = false;
    void interrupted.then(() => {
      aborted = true;
    });
    while (!aborted && Date.now() < deadline && seen.size < delivered) {
      for (const m of connected) {
        const res = await api('GET', `/v1/mailboxes/${m.id}/messages?limit=50`);
        for (const msg of (res.body.data as Array<{ id: string; subject?: string; from?: { address?: string } | null; receivedAt?: string }> | undefined) ?? []) {
          if (seen.has(msg.id)) continue;
          seen.add(msg.id);
          say('message', { mailboxId: m.id, messageId: msg.id, subject: msg.subject ?? null, from: msg.from?.address ?? null }, `  [${m.provider}] ${msg.id}  from ${msg.from?.address ?? '?'}  "${msg.subject ?? ''}"`);
        }
      }
      await Promise.race([new Promise((r) => setTimeout(r, 1000)), interrupted]);
    }
    say(
      'summary',
      { mailboxes: connected.length, delivered, stored: seen.size },
      seen.size === delivered
        ? `\nAll ${delivered} messages were stored. The API is at ${url} (API key above); press Ctrl-C to stop.`
        : `\n${seen.size} of ${delivered} messages were stored within ${WAIT_FOR_MAIL_MS / 1000} s${seen.size === 0 ? ' — mail sync did not store anything (is the sync worker part of this build?)' : ''}. The API is at ${url}; press Ctrl-C to stop.`,
    );
    await interrupted;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await stop();
  }
}
