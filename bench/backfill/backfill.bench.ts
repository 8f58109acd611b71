// Gmail backfill against the quota-enforcing Google stand-in (issue 12 target 6): the real sync
// engine, the real GmailAdapter and its GmailQuotaBudget, the real Gmail client over HTTP, full
// ingest into Postgres. The stand-in enforces a rolling per-user window exactly as configured and
// reports every charge, so the bench counts violations (429s) and the share of the quota used.
//   DATABASE_URL=postgresql://root@127.0.0.1:5432/postgres npm run bench -- backfill [messages=300] [unitsPerWindow=500] [windowMs=5000]
// Defaults keep Google's ratio (6,000 units/min = 100 units/s = 5 messages/s at 20 units each)
// with a 5 s window so the run spends many windows in steady state.
//
// Two phases on the same stand-in, one after the other: `before` (the budget as it was: 90% cap,
// spend forgotten a fixed margin after it was sent) and `after` (the current budget).
// quota_share = units the stand-in granted after the first window (the first window starts empty
// and is spent at once by any client, so it says nothing about steady state) ÷ (limit × elapsed
// windows). Also printed: messages/s over the whole run against the quota-bound rate.
// Ends with `RESULT {"quota_share":…, "violations":…}` (the `after` phase).
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createCore } from '../../src/bootstrap/core.js';
import { loadConfig } from '../../src/config/config.js';
import { GmailQuotaBudget, type GmailQuotaOptions } from '../../src/providers/google/gmail-quota.js';
import { GmailAdapter } from '../../src/providers/google/gmail.adapter.js';
import { sandboxGoogleEndpoints } from '../../src/providers/google/google-endpoints.js';
import { startGoogleSandbox } from '../../src/sandbox/google/google-sandbox.server.js';
import { connectGoogleSandboxUser } from '../../src/sandbox/google/google-sandbox-connect.client.js';
import type { QuotaCharge } from '../../src/sandbox/google/gmail-quota.meter.js';
import { MessageWriteRepository } from '../../src/storage/message-write.repository.js';
import { SyncLockRepository } from '../../src/storage/sync-lock.repository.js';
import { SyncStateRepository } from '../../src/storage/sync-state.repository.js';
import { MailboxSyncService } from '../../src/sync/mailbox-sync.service.js';
import type { SyncProviders } from '../../src/sync/sync-providers.port.js';
import { listCorpusMessages } from '../../test/corpus/corpus-files.js';
import { createTestDatabase } from '../../test/helpers/postgres.js';
import { ingestHarness, seedIngestMailbox } from '../../test/integration/ingest-harness.js';

const messageCount = Number(process.argv[2] ?? 300);
const quota = { unitsPerWindow: Number(process.argv[3] ?? 500), windowMs: Number(process.argv[4] ?? 5000) };
const GET_UNITS = 20;



/** The budget before issue 12: 90% of the limit, spend forgotten `margin` after it was sent. */
function budgetBefore(opts: GmailQuotaOptions): GmailQuotaBudget {
  const b = new GmailQuotaBudget({ ...opts, safetyFactor: 0.9 });
  const take = b.take.bind(b);
  b.take = (method) => take(method).then(() => ({ settle() {} }));
  return b;
}

interface PhaseResult {
  stored: number;
  seconds: number;
  share: number;
  violations: number;
  wholeRunShare: number;
  cpuMsPerMsg: number;
}

const loadavg = (): string => readFileSync('/proc/loadavg', 'utf8').trim();

const db = await createTestDatabase();
const config = loadConfig({ NODE_ENV: 'test', LOG_LEVEL: 'silent', DATABASE_URL: db.url, ENCRYPTION_KEYS: `1:${randomBytes(32).toString('base64')}` });
const core = await createCore(config, { command: 'bench' });
const sandbox = await startGoogleSandbox({ quota });
const corpus = listCorpusMessages().messages.filter((m) => m.bytes.length < 256 * 1024);
try {
  console.log(`node ${process.version}; load ${loadavg()}; ${messageCount} messages per phase; quota ${quota.unitsPerWindow} units / ${quota.windowMs} ms`);
  const bound = quota.unitsPerWindow / (quota.windowMs / 1000) / (GET_UNITS + 5 / 100);
  console.log(`quota-bound rate: ${bound.toFixed(2)} msgs/s (messages.get ${GET_UNITS} units, messages.list 5 per 100 ids)`);

  const phase = async (name: string, budget: GmailQuotaBudget, n: number): Promise<PhaseResult> => {
    const email = `backfill-${name}@bench.example`;
    sandbox.createUser(email);
    for (let i = 0; i < n; i++) {
      const m = corpus[(i * 7) % corpus.length]!;
      sandbox.deliver(email, m.bytes, { internalDate: Date.now() - 3_600_000 + i });
    }
    const user = await connectGoogleSandboxUser(sandbox.endpoints, { email, scopes: ['openid', 'email', 'https://www.googleapis.com/auth/gmail.modify'] });
    const adapter = new GmailAdapter({ endpoints: sandboxGoogleEndpoints(sandbox.url), accessToken: async () => user.accessToken, quota: budget });
    const providers: SyncProviders = {
      forMailbox: () => adapter,
      gmailWatch: () => ({ watch: () => Promise.reject(new Error('no watch in the bench')) }),
      graphSubscriptions: () => {
        throw new Error('not used');
      },
    };
    const mailbox = await seedIngestMailbox(core, email);
    const sync = new MailboxSyncService({
      providers,
      state: new SyncStateRepository(core.prisma),
      locks: new SyncLockRepository(core.db),
      messages: new MessageWriteRepository(core.prisma, core.db),
      ingest: ingestHarness(core).ingest,
      watches: { ensure: async () => undefined },
      settings: { backfillDays: 7 },
      clock: () => new Date(),
      logger: core.logger,
    });
    const charges: QuotaCharge[] = [];
    const stop = sandbox.observeQuota((c) => {
      if (c.user === email) charges.push(c);
    });
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const outcome = await sync.run({ mailboxId: mailbox.id, reason: 'connect' });
    const seconds = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    stop();
    const stored = await core.prisma.message.count({ where: { mailboxId: mailbox.id } });
    const granted = charges.filter((c) => c.ok);
    const violations = charges.length - granted.length;
    const first = granted[0]!.at;
    const last = granted.at(-1)!.at;
    const from = first + quota.windowMs;
    const steadyUnits = granted.filter((c) => c.at >= from).reduce((s, c) => s + c.units, 0);
    const share = last > from ? steadyUnits / ((quota.unitsPerWindow * (last - from)) / quota.windowMs) : Number.NaN;
    const wholeRunShare = stored / seconds / bound;
    console.log(
      `${name.padEnd(7)} ${stored}/${n} stored (${outcome.status}) in ${seconds.toFixed(1)} s = ${(stored / seconds).toFixed(2)} msgs/s = ${(wholeRunShare * 100).toFixed(1)}% of the bound over the whole run; ` +
        `steady state (after the first window, ${((last - from) / 1000).toFixed(1)} s): ${(share * 100).toFixed(1)}% of the quota; ${violations} violations (429); ` +
        `${((cpu.user + cpu.system) / 1000 / Math.max(1, stored)).toFixed(1)} ms CPU/msg (bench process)`,
    );
    return { stored, seconds, share, violations, wholeRunShare, cpuMsPerMsg: (cpu.user + cpu.system) / 1000 / Math.max(1, stored) };
  };

  const before = await phase('before', budgetBefore(quota), messageCount);
  // A fresh user so the second phase starts with an empty window too.
  const after = await phase('after', new GmailQuotaBudget(quota), messageCount);
  console.log(`same-run ratio after/before (steady-state share): ${(after.share / before.share).toFixed(3)}; load ${loadavg()}`);
  console.log(
    `RESULT ${JSON.stringify({
      quota_share: Number(after.share.toFixed(4)),
      violations: after.violations,
      whole_run_share: Number(after.wholeRunShare.toFixed(4)),
      before_quota_share: Number(before.share.toFixed(4)),
      before_violations: before.violations,
    })}`,
  );
  if (after.stored !== messageCount || before.stored !== messageCount) process.exitCode = 1;
} finally {
  await sandbox.close();
  await core.close();
  await db.drop();
}
