// Peak RSS growth of the process that fetches and ingests one large message (issue 12 target 4):
// a 100 MiB attachment through Graph (`$value`) and a 35 MiB message through Gmail
// (`messages.get?format=raw`), each through the real adapter, the real client library over real
// HTTP, and the full ingest (parse, encrypt, chunked blob store in Postgres; scanner off).
//   DATABASE_URL=postgresql://root@127.0.0.1:5432/postgres npm run bench -- attachment
// The stand-ins and the database set-up run in this (parent) process; each case runs in a fresh
// child process that samples its own RSS every 100 ms, so only the connector side is measured.
// Ends with `RESULT {"rss_growth_mib": <the larger of the two>, ...}`. BENCH_DEBUG=1 also prints the
// heap / external / arrayBuffers split at the peak (stderr).
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { loadavg } from 'node:os';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { gmail } from '@googleapis/gmail';
import { createCore } from '../../src/bootstrap/core.js';
import { loadConfig } from '../../src/config/config.js';
import { MimeParsePool } from '../../src/ingest/parse-pool.js';
import type { MailProvider } from '../../src/providers/mail-provider.port.js';
import { GmailAdapter } from '../../src/providers/google/gmail.adapter.js';
import { sandboxGoogleEndpoints } from '../../src/providers/google/google-endpoints.js';
import { GraphAdapter } from '../../src/providers/microsoft/graph.adapter.js';
import type { MicrosoftEndpoints } from '../../src/providers/microsoft/microsoft-endpoints.js';
import { sandboxMicrosoftEndpoints } from '../../src/providers/microsoft/microsoft-endpoints.js';
import { startGoogleSandbox } from '../../src/sandbox/google/google-sandbox.server.js';
import { connectGoogleSandboxUser } from '../../src/sandbox/google/google-sandbox-connect.client.js';
import { startMicrosoftSandbox } from '../../src/sandbox/microsoft/microsoft-sandbox.js';
import { BlobStore } from '../../src/storage/blob.store.js';
import { createTestDatabase } from '../../test/helpers/postgres.js';
import { ingestHarness, seedIngestMailbox } from '../../test/integration/ingest-harness.js';

const MIB = 2 ** 20;
const GRAPH_ATTACHMENT_BYTES = 100 * MIB;
const GMAIL_MESSAGE_BYTES = 35 * MIB;

interface ChildTask {
  /** `gmail-buffered`: the pre-streaming fetch (whole JSON, then the decoded copy), for a same-run before/after. */
  kind: 'graph' | 'gmail' | 'gmail-buffered';
  /** `prisma`: chunk statements through Prisma's raw path, as before issue 12 (same-run before/after). */
  blobsVia?: 'pg' | 'prisma';
  databaseUrl: string;
  encryptionKeys: string;
  mailbox: { id: string; tenantId: string };
  providerMessageId: string;
  token: string;
  graphEndpoints?: MicrosoftEndpoints;
  gmailBaseUrl?: string;
}

interface ChildResult {
  kind: string;
  baselineMib: number;
  peakMib: number;
  growthMib: number;
  seconds: number;
  cpuMs: number;
  status: string;
  attachmentSha256: string[];
  messageBytes: number;
}

function config(databaseUrl: string, encryptionKeys: string) {
  return loadConfig({ NODE_ENV: 'test', LOG_LEVEL: 'silent', DATABASE_URL: databaseUrl, ENCRYPTION_KEYS: encryptionKeys, MAX_MESSAGE_BYTES: String(200 * MIB) });
}


/** A message with one attachment of `attachmentBytes` random bytes, base64 in 76-char lines. */
function bigMessage(attachmentBytes: number, tag: string): { mime: Buffer; sha256: string } {
  const content = randomBytes(attachmentBytes);
  const sha256 = createHash('sha256').update(content).digest('hex');
  const b64 = content.toString('base64').replace(/.{76}/g, '$&\r\n');
  const head = [
    'From: Customer <customer@fabrikam.test>',
    'To: support@contoso.test',
    `Subject: large attachment ${tag}`,
    `Message-ID: <${tag}.${randomBytes(6).toString('hex')}@fabrikam.test>`,
    'Date: Mon, 2 Mar 2026 09:00:00 +0000',
    'MIME-Version: 1.0',
    'Content-Type: multipart/mixed; boundary="b1"',
    '',
    '--b1',
    'Content-Type: text/plain; charset=utf-8',
    '',
    'The file is attached.',
    '--b1',
    'Content-Type: application/octet-stream',
    'Content-Disposition: attachment; filename="disk.img"',
    'Content-Transfer-Encoding: base64',
    '',
    '',
  ].join('\r\n');
  return { mime: Buffer.concat([Buffer.from(head), Buffer.from(b64), Buffer.from('\r\n--b1--\r\n')]), sha256 };
}

/** Attachment bytes for a message whose whole MIME is about `messageBytes` long. */
const attachmentBytesFor = (messageBytes: number): number => Math.floor(((messageBytes - 1024) * 3) / 4 / (78 / 76));

async function child(task: ChildTask): Promise<ChildResult> {
  const core = await createCore(config(task.databaseUrl, task.encryptionKeys), { command: 'bench' });
  const parsePool = new MimeParsePool();
  try {
    // As src/bootstrap/sync.module.ts builds it on Postgres.
    const blobs = new BlobStore(core.prisma, core.dataKeys, task.blobsVia === 'prisma' ? {} : { sql: core.db.sql });
    // MIME parsing in worker threads, as src/bootstrap/sync.module.ts runs it.
    const { ingest } = ingestHarness(core, { blobs, parse: parsePool.parse });
    const provider: MailProvider =
      task.kind === 'graph'
        ? new GraphAdapter({ endpoints: task.graphEndpoints!, accessToken: async () => task.token })
        : new GmailAdapter({ endpoints: sandboxGoogleEndpoints(task.gmailBaseUrl!), accessToken: async () => task.token });
    if (task.kind === 'gmail-buffered') {
      // The adapter's fetchRaw before issue 12: the JSON body parsed whole, then `raw` decoded in one go.
      const client = gmail({ version: 'v1', rootUrl: sandboxGoogleEndpoints(task.gmailBaseUrl!).gmailRootUrl, retry: false });
      provider.fetchRaw = async (id) => {
        const { data } = await client.users.messages.get({ userId: 'me', id, format: 'raw' }, { headers: { Authorization: `Bearer ${task.token}` } });
        return { providerMessageId: data.id!, providerThreadId: data.threadId ?? undefined, raw: Readable.from([Buffer.from(data.raw!, 'base64url')]), sizeEstimate: data.sizeEstimate ?? undefined, receivedAt: new Date(Number(data.internalDate)), labelIds: [] };
      };
    }
    // Warm the code paths, the parse worker and the connection pool on a tiny message, then settle.
    await provider.getAddress().catch(() => undefined);
    const mailbox = { id: task.mailbox.id, tenantId: task.mailbox.tenantId, provider: task.kind === 'graph' ? ('microsoft' as const) : ('google' as const) };
    const tiny = Buffer.from('From: a@fabrikam.test\r\nTo: b@contoso.test\r\nSubject: warm-up\r\nMessage-ID: <warm@fabrikam.test>\r\n\r\nhi\r\n');
    await ingest.ingest(mailbox, { providerMessageId: 'warm-up', providerThreadId: undefined, raw: Readable.from([tiny]), receivedAt: new Date() });
    (globalThis as { gc?: () => void }).gc?.();
    await new Promise((r) => setTimeout(r, 300));
    const baseline = process.memoryUsage().rss;
    let peak = baseline;
    let atPeak = process.memoryUsage();
    const sampler = setInterval(() => {
      const m = process.memoryUsage();
      if (m.rss > peak) {
        peak = m.rss;
        atPeak = m;
      }
    }, 100);
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const raw = await provider.fetchRaw(task.providerMessageId);
    const result = await ingest.ingest(
      mailbox,
      { providerMessageId: raw.providerMessageId, providerThreadId: raw.providerThreadId, raw: raw.raw, receivedAt: raw.receivedAt },
    );
    const seconds = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    clearInterval(sampler);
    peak = Math.max(peak, process.memoryUsage().rss);
    // Verification after the measurement: the stored attachment, decrypted, hashed as a stream.
    const hashes: string[] = [];
    let messageBytes = 0;
    if (result.status === 'stored') {
      const msg = await core.prisma.message.findUnique({ where: { id: result.messageId }, include: { attachments: true } });
      messageBytes = Number(msg?.sizeBytes ?? 0);
      for (const a of msg?.attachments ?? []) {
        if (!a.blobId) continue;
        const h = createHash('sha256');
        for await (const part of blobs.read(a.blobId)) h.update(part as Buffer);
        hashes.push(h.digest('hex'));
      }
    }
    const base = process.memoryUsage();
    if (process.env.BENCH_DEBUG) console.error(task.kind, 'at peak MiB', Object.fromEntries(Object.entries(atPeak).map(([k, v]) => [k, Math.round(v / MIB)])), 'now', Object.fromEntries(Object.entries(base).map(([k, v]) => [k, Math.round(v / MIB)])));
    return {
      kind: task.kind,
      baselineMib: baseline / MIB,
      peakMib: peak / MIB,
      growthMib: (peak - baseline) / MIB,
      seconds,
      cpuMs: (cpu.user + cpu.system) / 1000,
      status: result.status,
      attachmentSha256: hashes,
      messageBytes,
    };
  } finally {
    await parsePool.close();
    await core.close();
  }
}

function runChild(task: ChildTask): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), 'child'], { stdio: ['pipe', 'pipe', 'inherit'] });
    let out = '';
    proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
    proc.on('error', reject);
    proc.on('close', (code) => {
      const line = out.split('\n').find((l) => l.startsWith('CHILD '));
      if (code !== 0 || !line) return reject(new Error(`child ${task.kind} exited ${code}: ${out.slice(-2000)}`));
      resolve(JSON.parse(line.slice(6)) as ChildResult);
    });
    proc.stdin.end(JSON.stringify(task));
  });
}


async function parent(): Promise<void> {
  if (!process.env.DATABASE_URL) throw new Error('set DATABASE_URL');
  const db = await createTestDatabase();
  const encryptionKeys = `1:${randomBytes(32).toString('base64')}`;
  const core = await createCore(config(db.url, encryptionKeys), { command: 'bench' });
  const ms = await startMicrosoftSandbox();
  const google = await startGoogleSandbox();
  try {
    console.log(`node ${process.version}; load average ${loadavg().map((l) => l.toFixed(2)).join(' ')} (${(await import('node:fs')).readFileSync('/proc/loadavg', 'utf8').trim()})`);
    const msEmail = 'large@contoso.test';
    ms.createUser(msEmail);
    const graphMsg = bigMessage(GRAPH_ATTACHMENT_BYTES, 'graph');
    const delivered = await ms.deliver(msEmail, graphMsg.mime);
    const gEmail = 'large@bench.example';
    google.createUser(gEmail);
    const gmailMsg = bigMessage(attachmentBytesFor(GMAIL_MESSAGE_BYTES), 'gmail');
    const gStored = google.deliver(gEmail, gmailMsg.mime, { internalDate: Date.now() - 60_000 });
    const gUser = await connectGoogleSandboxUser(google.endpoints, { email: gEmail, scopes: ['openid', 'email', 'https://www.googleapis.com/auth/gmail.modify'] });

    const base = { databaseUrl: db.url, encryptionKeys };
    const results: Array<ChildResult & { expected: string; mimeBytes: number }> = [];
    const graph = await runChild({
      ...base,
      kind: 'graph',
      mailbox: await seedIngestMailbox(core, msEmail, 'microsoft'),
      providerMessageId: delivered.id,
      token: ms.issueAccessToken(msEmail),
      graphEndpoints: sandboxMicrosoftEndpoints(ms),
    });
    results.push({ ...graph, expected: graphMsg.sha256, mimeBytes: graphMsg.mime.length });
    const graphBefore = await runChild({
      ...base,
      kind: 'graph',
      blobsVia: 'prisma',
      mailbox: await seedIngestMailbox(core, msEmail, 'microsoft'),
      providerMessageId: delivered.id,
      token: ms.issueAccessToken(msEmail),
      graphEndpoints: sandboxMicrosoftEndpoints(ms),
    });
    results.push({ ...graphBefore, kind: 'graph-prisma', expected: graphMsg.sha256, mimeBytes: graphMsg.mime.length });
    const gmail = await runChild({
      ...base,
      kind: 'gmail',
      mailbox: await seedIngestMailbox(core, gEmail, 'google'),
      providerMessageId: gStored.id,
      token: gUser.accessToken,
      gmailBaseUrl: google.url,
    });
    results.push({ ...gmail, expected: gmailMsg.sha256, mimeBytes: gmailMsg.mime.length });
    const gmailBefore = await runChild({
      ...base,
      kind: 'gmail-buffered',
      mailbox: await seedIngestMailbox(core, gEmail, 'google'),
      providerMessageId: gStored.id,
      token: gUser.accessToken,
      gmailBaseUrl: google.url,
    });
    results.push({ ...gmailBefore, expected: gmailMsg.sha256, mimeBytes: gmailMsg.mime.length });

    let ok = true;
    for (const r of results) {
      const identical = r.status === 'stored' && r.attachmentSha256.length === 1 && r.attachmentSha256[0] === r.expected;
      ok &&= identical;
      console.log(
        `${r.kind.padEnd(14)} message ${(r.mimeBytes / MIB).toFixed(1)} MiB: RSS ${r.baselineMib.toFixed(0)} → peak ${r.peakMib.toFixed(0)} MiB, growth ${r.growthMib.toFixed(1)} MiB; ` +
          `${r.seconds.toFixed(1)} s, ${r.cpuMs.toFixed(0)} ms CPU (${(r.cpuMs / (r.mimeBytes / MIB)).toFixed(1)} ms/MiB); stored ${r.status}, attachment ${identical ? 'byte-identical' : 'MISMATCH'}`,
      );
    }
    console.log(`load average after: ${(await import('node:fs')).readFileSync('/proc/loadavg', 'utf8').trim()}`);
    const growth = Math.max(graph.growthMib, gmail.growthMib);
    console.log(
      `RESULT ${JSON.stringify({ rss_growth_mib: Number(growth.toFixed(1)), graph_rss_growth_mib: Number(graph.growthMib.toFixed(1)), gmail_rss_growth_mib: Number(gmail.growthMib.toFixed(1)), gmail_buffered_rss_growth_mib: Number(gmailBefore.growthMib.toFixed(1)), graph_prisma_blobs_rss_growth_mib: Number(graphBefore.growthMib.toFixed(1)), byte_identical: ok })}`,
    );
    if (!ok) process.exitCode = 1;
  } finally {
    await ms.close();
    await google.close();
    await core.close();
    await db.drop();
  }
}

if (process.argv[2] === 'child') {
  let input = '';
  for await (const chunk of process.stdin) input += String(chunk);
  const result = await child(JSON.parse(input) as ChildTask);
  console.log(`CHILD ${JSON.stringify(result)}`);
} else {
  await parent();
}
