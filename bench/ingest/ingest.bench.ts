// Full ingest throughput on the corpus, next to bare mailparser, plus Gmail backfill throughput
// against a quota-enforcing stand-in. Needs Postgres (DATABASE_URL, default the local server);
// the "scanner on" row needs clamd (a private one is started from test/helpers/clamd.ts).
//   DATABASE_URL=postgresql://root@127.0.0.1:5432/postgres npx tsx bench/ingest/ingest.bench.ts [sample=600] [backfill=120]
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { MailParser } from 'mailparser';
import type { AttachmentStream, MessageText } from 'mailparser';
import { createCore, type Core } from '../../src/bootstrap/core.js';
import { loadConfig } from '../../src/config/config.js';
import { OutboxService } from '../../src/events/outbox.service.js';
import { IngestService } from '../../src/ingest/ingest.service.js';
import { MAILBOX_ADDRESS_AAD } from '../../src/mailboxes/message-content.js';
import { GmailQuotaBudget } from '../../src/providers/google/gmail-quota.js';
import { GmailAdapter } from '../../src/providers/google/gmail.adapter.js';
import { sandboxGoogleEndpoints } from '../../src/providers/google/google-endpoints.js';
import { startGoogleSandbox } from '../../src/sandbox/google/google-sandbox.server.js';
import { connectGoogleSandboxUser } from '../../src/sandbox/google/google-sandbox-connect.client.js';
import { ClamdScanner } from '../../src/scan/clamd.scanner.js';
import { NullScanner } from '../../src/scan/null.scanner.js';
import type { Scanner } from '../../src/scan/scanner.port.js';
import { BlobStore } from '../../src/storage/blob.store.js';
import { newId } from '../../src/storage/ids.js';
import { MessageWriteRepository } from '../../src/storage/message-write.repository.js';
import { OutboxRepository } from '../../src/storage/outbox.repository.js';
import { SyncLockRepository } from '../../src/storage/sync-lock.repository.js';
import { SyncStateRepository } from '../../src/storage/sync-state.repository.js';
import { MailboxSyncService } from '../../src/sync/mailbox-sync.service.js';
import type { SyncProviders } from '../../src/sync/sync-providers.port.js';
import { listCorpusMessages } from '../../test/corpus/corpus-files.js';
import { clamdUnavailableReason, disposeClamd, startClamd } from '../../test/helpers/clamd.js';
import { createTestDatabase } from '../../test/helpers/postgres.js';

process.env.DATABASE_URL ??= 'postgresql://root@127.0.0.1:5432/postgres';
const sampleSize = Number(process.argv[2] ?? 600);
const backfillCount = Number(process.argv[3] ?? 120);
const all = listCorpusMessages().messages;
// An even spread over the corpus (every k-th message), so every source folder is represented.
const step = Math.max(1, Math.floor(all.length / sampleSize));
const sample = all.filter((_, i) => i % step === 0).slice(0, sampleSize);
const sampleBytes = sample.reduce((s, m) => s + m.bytes.length, 0);

function source(bytes: Buffer): Readable {
  return Readable.from(
    (function* () {
      for (let i = 0; i < bytes.length; i += 64 * 1024) yield bytes.subarray(i, i + 64 * 1024);
    })(),
  );
}

async function bareMailparser(bytes: Buffer): Promise<void> {
  const parser = new MailParser({ checksumAlgo: 'sha256', skipTextToHtml: true, skipTextLinks: true, skipImageLinks: true, maxHtmlLengthToParse: 4 * 1024 * 1024 });
  source(bytes).pipe(parser);
  for await (const item of parser as AsyncIterable<AttachmentStream | MessageText>) {
    if (item.type === 'attachment') {
      item.content.resume();
      await new Promise((resolve) => item.content.once('end', resolve));
      item.release?.();
    }
  }
}

async function seedMailbox(core: Core, provider: 'google' | 'microsoft', address: string): Promise<{ id: string; tenantId: string }> {
  const tenant = await core.tenants.create({ name: 'bench' });
  const id = newId('mailbox');
  await core.prisma.mailbox.create({
    data: {
      id,
      tenantId: tenant.id,
      provider,
      addressEnc: new Uint8Array(await core.dataKeys.encryptFor({ type: 'mailbox', id }, address, MAILBOX_ADDRESS_AAD(id))),
      addressIndex: core.blindIndex.emailIndex(address),
    },
  });
  return { id, tenantId: tenant.id };
}

function ingestService(core: Core, scanner: Scanner | null): IngestService {
  return new IngestService({
    messages: new MessageWriteRepository(core.prisma),
    blobs: new BlobStore(core.prisma, core.dataKeys),
    dataKeys: core.dataKeys,
    blindIndex: core.blindIndex,
    outbox: new OutboxService({ repo: new OutboxRepository(core.prisma), dataKeys: core.dataKeys, clock: core.clock }),
    jobs: null,
    scanner: scanner ? { scanner, configured: true } : { scanner: new NullScanner(), configured: false },
    maxMessageBytes: core.config.sync.maxMessageBytes,
    clock: core.clock,
    logger: core.logger,
  });
}

function line(name: string, count: number, seconds: number, bytes: number, extra = ''): number {
  const rate = count / seconds;
  console.log(`${name.padEnd(40)} ${rate.toFixed(1).padStart(8)} msgs/s ${(bytes / seconds / 2 ** 20).toFixed(2).padStart(7)} MB/s  (${count} msgs in ${seconds.toFixed(1)} s${extra})`);
  return rate;
}

const db = await createTestDatabase();
const config = loadConfig({ NODE_ENV: 'test', LOG_LEVEL: 'silent', DATABASE_URL: db.url, ENCRYPTION_KEYS: `1:${randomBytes(32).toString('base64')}` });
const core = await createCore(config, { command: 'bench' });
try {
  console.log(`sample: ${sample.length} of ${all.length} corpus messages, ${(sampleBytes / 2 ** 20).toFixed(1)} MB; node ${process.version}; load ${(await import('node:os')).loadavg()[0]!.toFixed(1)}`);
  for (const m of sample.slice(0, 100)) await bareMailparser(m.bytes).catch(() => undefined); // warm-up
  let t = performance.now();
  for (const m of sample) await bareMailparser(m.bytes).catch(() => undefined);
  const parseRate = line('mailparser only', sample.length, (performance.now() - t) / 1000, sampleBytes);

  const runIngest = async (name: string, scanner: Scanner | null): Promise<number> => {
    const mailbox = await seedMailbox(core, 'google', `${name.replace(/\W/g, '')}@bench.example`);
    const svc = ingestService(core, scanner);
    let failed = 0;
    t = performance.now();
    for (const m of sample) {
      // Sequential, as one mailbox's sync job runs.
      await svc.ingest({ ...mailbox, provider: 'google' }, { providerMessageId: m.id, providerThreadId: undefined, raw: source(m.bytes), receivedAt: new Date() }).catch(() => failed++);
    }
    return line(name, sample.length, (performance.now() - t) / 1000, sampleBytes, failed ? `, ${failed} failed` : '');
  };
  const off = await runIngest('full ingest, scanner off', null);
  let on: number | null = null;
  const why = clamdUnavailableReason();
  if (why) console.log(`full ingest, scanner on: skipped (${why})`);
  else {
    const clamd = await startClamd({ streamMaxLength: '100M' });
    try {
      on = await runIngest('full ingest, scanner on (clamd)', new ClamdScanner({ socket: clamd.socket }));
    } finally {
      await disposeClamd(clamd);
    }
  }
  console.log(`ratio full/mailparser: scanner off ${(off / parseRate).toFixed(3)}${on !== null ? `, scanner on ${(on / parseRate).toFixed(3)}` : ''}`);

  // Backfill through the real sync engine and Gmail adapter against a quota-enforcing stand-in.
  // A short quota window keeps the run short; the bound is the same ratio as 6,000 units/min.
  const quota = { unitsPerWindow: 1200, windowMs: 4000 };
  const sandbox = await startGoogleSandbox({ quota });
  try {
    const email = 'backfill@bench.example';
    sandbox.createUser(email);
    for (let i = 0; i < backfillCount; i++) {
      const m = sample[i % sample.length]!;
      sandbox.deliver(email, m.bytes.length < 512 * 1024 ? m.bytes : Buffer.from(`Subject: big ${i}\r\nMessage-ID: <b${i}@x>\r\n\r\nbody\r\n`), { internalDate: Date.now() - 3_600_000 });
    }
    const user = await connectGoogleSandboxUser(sandbox.endpoints, { email, scopes: ['openid', 'email', 'https://www.googleapis.com/auth/gmail.modify'] });
    const budget = new GmailQuotaBudget(quota);
    const adapter = new GmailAdapter({ endpoints: sandboxGoogleEndpoints(sandbox.url), accessToken: async () => user.accessToken, quota: budget });
    const providers: SyncProviders = {
      forMailbox: () => adapter,
      gmailWatch: () => ({ watch: () => Promise.reject(new Error('no watch in the bench')) }),
      graphSubscriptions: () => {
        throw new Error('not used');
      },
    };
    const mailbox = await seedMailbox(core, 'google', email);
    const state = new SyncStateRepository(core.prisma);
    const sync = new MailboxSyncService({
      providers,
      state,
      locks: new SyncLockRepository(core.db),
      messages: new MessageWriteRepository(core.prisma),
      ingest: ingestService(core, null),
      watches: { ensure: async () => undefined },
      settings: { backfillDays: 7 },
      clock: () => new Date(),
      logger: core.logger,
    });
    t = performance.now();
    const outcome = await sync.run({ mailboxId: mailbox.id, reason: 'connect' });
    const seconds = (performance.now() - t) / 1000;
    const storedCount = await core.prisma.message.count({ where: { mailboxId: mailbox.id } });
    const rate = line('gmail backfill (quota-enforced)', storedCount, seconds, 0, `, outcome ${outcome.status}, ${sandbox.quotaUsed(email)} units used`);
    // Per message: one messages.get (20 units); plus one messages.list (5) per 100 and a getProfile.
    const unitsPerMessage = 20 + 5 / 100;
    const bound = quota.unitsPerWindow / (quota.windowMs / 1000) / unitsPerMessage;
    console.log(`quota-bound maximum ${bound.toFixed(1)} msgs/s (${quota.unitsPerWindow} units / ${quota.windowMs / 1000} s, ${unitsPerMessage} units/msg); achieved ${((rate / bound) * 100).toFixed(0)}% of it (the adapter keeps a 10% safety margin)`);
  } finally {
    await sandbox.close();
  }
} finally {
  await core.close();
  await db.drop();
}
