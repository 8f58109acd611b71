// A real `mailbox-connector worker` process is SIGKILLed in the middle of a backfill and a new
// one started: nothing is lost and nothing is stored twice. The HTTP side (connect, resync API)
// runs in this process; the Google stand-in runs here too and both reach it over HTTP.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGoogleSandbox, type GoogleSandbox } from '../../src/sandbox/google/google-sandbox.server.js';
import { startTestService, testEncryptionKeys, type TestService } from '../helpers/test-service.js';
import { embeddedRun } from '../helpers/requirements.js';
import { connectMailbox } from './connect-helpers.js';

const BIN = fileURLToPath(new URL('../../bin/mailbox-connector.js', import.meta.url));

let gs: GoogleSandbox;
let svc: TestService;
const keys = testEncryptionKeys();
const children: ChildProcess[] = [];

function startWorker(): ChildProcess {
  const child = spawn(process.execPath, [BIN, 'worker'], {
    env: {
      ...process.env,
      NODE_ENV: 'test',
      LOG_LEVEL: 'warn',
      DATABASE_URL: svc.config.database.url!,
      ENCRYPTION_KEYS: keys,
      SANDBOX: '1',
      SANDBOX_GOOGLE_URL: gs.url,
      PUBLIC_URL: svc.url,
      BACKFILL_DAYS: '7',
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  children.push(child);
  return child;
}

async function until<T>(what: string, fn: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last = await fn();
  while (!ok(last)) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, 100));
    last = await fn();
  }
  return last;
}

describe.skipIf(embeddedRun('worker killed mid-sync'))('worker killed mid-sync', () => {
  beforeAll(async () => {
    gs = await startGoogleSandbox();
    svc = await startTestService({ env: { SANDBOX: '1', SANDBOX_GOOGLE_URL: gs.url, BACKFILL_DAYS: '7' }, workers: false, encryptionKeys: keys });
  }, 60_000);
  afterAll(async () => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    await svc?.close();
    await gs?.close();
  });

  it('SIGKILL during the backfill, then a new worker: every message stored exactly once, each announced once', async () => {
    const email = 'killed@acme.test';
    gs.createUser(email);
    const ids: string[] = [];
    for (let i = 0; i < 60; i++) {
      ids.push(gs.deliver(email, Buffer.from(`From: c${i}@example.org\r\nTo: ${email}\r\nSubject: kill ${i}\r\nMessage-ID: <kill${i}.${Date.now()}@example.org>\r\n\r\nbody ${i}\r\n`), { internalDate: Date.now() - 3_600_000 }).id);
    }
    gs.setLatency(40); // slow enough that the kill lands mid-backfill
    const { apiKey } = await svc.createTenant();
    await connectMailbox(svc, apiKey, 'google', email);
    const mailbox = (await svc.core.prisma.mailbox.findMany({ where: { provider: 'google' } })).find((m) => m.addressIndex === svc.core.blindIndex.emailIndex(email))!;
    const count = () => svc.core.prisma.message.count({ where: { mailboxId: mailbox.id } });

    const first = startWorker();
    await until('some messages stored', count, (c) => c >= 5);
    first.kill('SIGKILL');
    await new Promise((r) => first.once('exit', r));
    const partial = await count();
    expect(partial).toBeLessThan(60);
    expect((await svc.core.prisma.mailbox.findUniqueOrThrow({ where: { id: mailbox.id } })).backfillCompletedAt).toBeNull();

    gs.setLatency(0);
    startWorker();
    expect((await svc.api(apiKey, 'POST', `/v1/mailboxes/${mailbox.id}/resync`)).status).toBe(202);
    await until('all stored', count, (c) => c === 60, 90_000);
    await until('backfill complete', () => svc.core.prisma.mailbox.findUniqueOrThrow({ where: { id: mailbox.id } }), (m) => m.backfillCompletedAt !== null && m.syncState === 'idle');
    const rows = await svc.core.prisma.message.findMany({ where: { mailboxId: mailbox.id }, select: { providerMessageId: true } });
    expect(rows.map((r) => r.providerMessageId).sort()).toEqual([...ids].sort());
    expect(await svc.core.prisma.outboxEvent.count({ where: { mailboxId: mailbox.id, type: 'message.received' } })).toBe(60);
    // The dead worker's half-written attachments/blobs: none (these messages have none) and no orphan rows.
    expect(await svc.core.prisma.blob.count({ where: { mailboxId: mailbox.id } })).toBe(0);
  }, 180_000);
});
