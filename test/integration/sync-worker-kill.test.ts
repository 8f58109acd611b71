// A real `mailbox-connector worker` process is SIGKILLed in the middle of a backfill, or in the
// middle of a send, and a new one started: the dead worker's job is picked up on its own (job
// expiry + heartbeats, the send lease), nothing is lost, nothing is stored or sent twice. The
// HTTP side (connect, send API) runs in this process; the Google stand-in runs here too and both
// reach it over HTTP. Timings are shortened (expiry 6 s, checked every 2 s; send lease 8 s) so the
// test takes seconds; the defaults' arithmetic (≤ 2 minutes) is checked in job-queue.test.ts.
import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGoogleSandbox, type GoogleSandbox } from '../../src/sandbox/google/google-sandbox.server.js';
import { deadWorkerRecoverySeconds } from '../../src/jobs/job-queue.js';
import { jobsSettled } from '../helpers/settled.js';
import { startTestService, testEncryptionKeys, type TestService } from '../helpers/test-service.js';
import { embeddedRun } from '../helpers/requirements.js';
import { connectMailbox } from './connect-helpers.js';

const BIN = fileURLToPath(new URL('../../bin/mailbox-connector.js', import.meta.url));

let gs: GoogleSandbox;
/** The workers reach the stand-in through this pass-through, which notes every request as it arrives. */
let proxy: Awaited<ReturnType<typeof startRecordingProxy>>;
let svc: TestService;
const keys = testEncryptionKeys();
const children: ChildProcess[] = [];
const TIMINGS = { JOB_EXPIRE_SECONDS: '6', JOB_EXPIRE_CHECK_SECONDS: '2', SEND_LEASE_SECONDS: '8' };
/** With TIMINGS: 6 s expiry + 2 s check + ≤ 10 s retry delay + 2 s poll = 20 s, plus a new process's start and the work itself. */
const RECOVERY_BUDGET_MS = (deadWorkerRecoverySeconds({ expireSeconds: 6, expireCheckSeconds: 2, pollingIntervalSeconds: 2 }) + 25) * 1000;

function startWorker(): ChildProcess {
  const child = spawn(process.execPath, [BIN, 'worker'], {
    env: {
      ...process.env,
      NODE_ENV: 'test',
      LOG_LEVEL: 'warn',
      DATABASE_URL: svc.config.database.url!,
      ENCRYPTION_KEYS: keys,
      SANDBOX: '1',
      SANDBOX_GOOGLE_URL: proxy.url,
      PUBLIC_URL: svc.url,
      BACKFILL_DAYS: '7',
      ...TIMINGS,
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

/**
 * An HTTP pass-through to `target` that records each request when it arrives (before the stand-in
 * answers). A request whose client dies is still forwarded in full: the provider got it.
 */
async function startRecordingProxy(target: string) {
  const upstream = new URL(target);
  const arrived: Array<{ method: string; path: string }> = [];
  const server = http.createServer((req, res) => {
    arrived.push({ method: req.method ?? '', path: req.url ?? '' });
    const up = http.request({ host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: { ...req.headers, host: upstream.host } }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    arrived,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

async function kill(child: ChildProcess): Promise<void> {
  child.kill('SIGKILL');
  if (child.exitCode === null && child.signalCode === null) await new Promise((r) => child.once('exit', r));
}

describe.skipIf(embeddedRun('worker killed mid-sync or mid-send'))('worker killed mid-sync or mid-send', () => {
  beforeAll(async () => {
    gs = await startGoogleSandbox();
    proxy = await startRecordingProxy(gs.url);
    svc = await startTestService({ env: { SANDBOX: '1', SANDBOX_GOOGLE_URL: gs.url, BACKFILL_DAYS: '7', ...TIMINGS }, workers: false, encryptionKeys: keys });
  }, 60_000);
  afterAll(async () => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    await svc?.close();
    await proxy?.close();
    await gs?.close();
  });

  it('SIGKILL during the backfill, then a new worker: the sync resumes on its own, every message stored exactly once, each announced once', async () => {
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
    await kill(first);
    const killedAt = Date.now();
    const partial = await count();
    expect(partial).toBeLessThan(60);
    expect((await svc.core.prisma.mailbox.findUniqueOrThrow({ where: { id: mailbox.id } })).backfillCompletedAt).toBeNull();

    gs.setLatency(0);
    startWorker();
    // No resync request: the dead worker's job expires (no heartbeat) and the new worker retries it.
    await until('all stored', count, (c) => c === 60, 90_000);
    expect(Date.now() - killedAt).toBeLessThan(RECOVERY_BUDGET_MS);
    await until('backfill complete', () => svc.core.prisma.mailbox.findUniqueOrThrow({ where: { id: mailbox.id } }), (m) => m.backfillCompletedAt !== null && m.syncState === 'idle');
    const rows = await svc.core.prisma.message.findMany({ where: { mailboxId: mailbox.id }, select: { providerMessageId: true } });
    expect(rows.map((r) => r.providerMessageId).sort()).toEqual([...ids].sort());
    expect(await svc.core.prisma.outboxEvent.count({ where: { mailboxId: mailbox.id, type: 'message.received' } })).toBe(60);
    // The dead worker's half-written attachments/blobs: none (these messages have none) and no orphan rows.
    expect(await svc.core.prisma.blob.count({ where: { mailboxId: mailbox.id } })).toBe(0);
  }, 180_000);

  it('SIGKILL while the provider is accepting a send: another worker records it sent within the recovery time, and it is sent once', async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) await kill(c); // the previous test's workers
    const email = 'sender-killed@acme.test';
    gs.createUser(email);
    const { apiKey } = await svc.createTenant();
    await connectMailbox(svc, apiKey, 'google', email);
    const mailbox = (await svc.core.prisma.mailbox.findMany({ where: { provider: 'google' } })).find((m) => m.addressIndex === svc.core.blindIndex.emailIndex(email))!;
    const first = startWorker();
    await until('first sync done', () => svc.core.prisma.mailbox.findUniqueOrThrow({ where: { id: mailbox.id } }), (m) => m.backfillCompletedAt !== null);

    gs.setLatency(3_000); // the send request is in flight at the provider when the worker dies
    const res = await svc.api(apiKey, 'POST', `/v1/mailboxes/${mailbox.id}/send`, { to: 'dan@customer.example', subject: 'Kill me', text: 'Sent exactly once.' }, { 'idempotency-key': 'kill-mid-send' });
    expect(res.status).toBe(202);
    const outboundId = res.body.outboundId as string;
    const row = () => svc.core.prisma.outboundMessage.findUniqueOrThrow({ where: { id: outboundId } });
    const sends = () => proxy.arrived.filter((r) => r.method === 'POST' && /\/messages\/send(\?|$)/.test(r.path)).length;
    await until('send in progress', row, (r) => r.status === 'sending');
    await until('the send request at the provider', async () => sends(), (n) => n === 1);
    await kill(first);
    const killedAt = Date.now();
    expect((await row()).status).toBe('sending');
    gs.setLatency(0);

    startWorker();
    await until('recorded sent', row, (r) => r.status === 'sent', 90_000);
    expect(Date.now() - killedAt).toBeLessThan(RECOVERY_BUDGET_MS);
    // The provider accepted the dead worker's request; the new attempt found it instead of sending
    // again: once no send job is left (running, due or deferred), one send request ever arrived.
    await jobsSettled(svc.core, { names: ['send.outbound'], deferred: true, timeoutMs: 30_000 });
    expect(sends()).toBe(1);
    expect(gs.sent(email)).toHaveLength(1);
    const done = await row();
    expect(done.attempts).toBe(2);
    expect(done.providerMessageId).toBe(gs.sent(email)[0]!.id);
    expect(await svc.core.prisma.outboxEvent.count({ where: { mailboxId: mailbox.id, type: 'message.sent' } })).toBe(1);
  }, 180_000);
});
