import { spawn } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_CONTENT_MARKERS, DEMO_REPLY_TEXT } from '../../src/cli/demo-mail.js';
import { clamdUnavailableReason, disposeClamd, startClamd, type ClamdHandle } from '../helpers/clamd.js';
import { missing } from '../helpers/requirements.js';
import { freePort } from '../helpers/test-service.js';

// Issue 16 item 3: `mailbox-connector demo` tells the whole story against the built-in
// stand-ins. The real CLI (bin/mailbox-connector.js) runs as a child process, on its default
// embedded database, and every step's outcome is read from what it prints.
const BIN = path.resolve('bin/mailbox-connector.js');
const EICAR_TAIL = 'EICAR-STANDARD-ANTIVIRUS-TEST-FILE';

interface DemoRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

function runDemo(args: string[], env: Record<string, string | undefined>): Promise<DemoRun> {
  const e: NodeJS.ProcessEnv = { ...process.env, NODE_ENV: 'development', LOG_LEVEL: 'info', ...env };
  // The demo's default: the embedded database in a temporary folder, a key generated there.
  delete e.DATABASE_URL;
  delete e.DATA_DIR;
  delete e.ENCRYPTION_KEYS;
  delete e.KEYSTORE_URL;
  for (const [k, v] of Object.entries(env)) if (v === undefined) delete e[k];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, 'demo', ...args], { env: e, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    // A hung demo is a failure, not a hung suite.
    const timer = setTimeout(() => child.kill('SIGKILL'), 150_000);
    child.once('error', reject);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** No mail content (subjects, bodies, the attachment's name and bytes, the reply), key or secret anywhere in the demo's output. */
function expectNoContent(run: DemoRun): void {
  const all = run.stdout + run.stderr;
  for (const marker of [...DEMO_CONTENT_MARKERS, DEMO_REPLY_TEXT, EICAR_TAIL]) expect(all, `output contains "${marker}"`).not.toContain(marker);
  expect(all).not.toMatch(/whsec_|mbc_(test|live)_/);
}

type Step = Record<string, unknown> & { event: string };

interface Summary {
  ok: boolean;
  durationMs: number;
  scanner: { status: string };
  mailboxes: Array<{ provider: string; mailboxId: string; connected: boolean }>;
  delivered: number;
  messagesReceived: number;
  webhooks: { verified: number; rejected: number; types: Record<string, number> };
  scan: { status: string; attachmentId: string | null; signature: string | null; infectedWebhook: boolean; contentHttpStatus: number | null; served: boolean };
  replies: Array<{ provider: string; status: string; sentWebhook: boolean; threadId: string; replyThreadId: string | null; sameThread: boolean; inReplyTo: boolean; references: boolean; threadMessages: number }>;
  purge: { provider: string; purgeId: string | null; status: string | null; revokeStatus: string | null; steps: string[]; purgedWebhook: boolean; mailboxStatus: string | null } | null;
  problems: string[];
}

describe.skipIf(missing('clamd', clamdUnavailableReason()))('mailbox-connector demo with clamd (--json)', () => {
  let clamd: ClamdHandle;
  let run: DemoRun;
  let steps: Step[];
  let summary: Summary;
  let expectedUrl: string;

  beforeAll(async () => {
    clamd = await startClamd();
    const port = await freePort();
    expectedUrl = `http://127.0.0.1:${port}`;
    run = await runDemo(['--json'], { CLAMD_SOCKET: clamd.socket, PORT: String(port) });
    // stdout is machine-readable: every line one JSON step (the service's logs go to stderr).
    steps = run.stdout
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Step);
    summary = steps.find((s) => s.event === 'summary') as unknown as Summary;
  }, 180_000);

  afterAll(async () => {
    if (clamd) await disposeClamd(clamd);
  });

  it('runs every step, exits 0, listens on PORT and ends with one summary', () => {
    expect(run.code, `${run.stdout}\n${run.stderr.slice(-3000)}`).toBe(0);
    expect(summary, run.stdout).toBeDefined();
    expect(summary.problems).toEqual([]);
    expect(summary.ok).toBe(true);
    const started = steps.find((s) => s.event === 'started')!;
    expect(started.url).toBe(expectedUrl);
    expect(started.database).toBe('embedded');
    // One object per step, each with its duration; the summary is the last line.
    for (const name of ['started', 'receiver', 'connected', 'delivered', 'webhook', 'received', 'scan', 'reply', 'purge', 'stopped']) {
      expect(steps.map((s) => s.event), name).toContain(name);
    }
    for (const s of steps.filter((x) => x.event !== 'summary' && x.event !== 'webhook')) expect(typeof s.ms, s.event).toBe('number');
    expect(steps.at(-1)!.event).toBe('summary');
    expect(steps.filter((s) => s.event === 'summary')).toHaveLength(1);
    for (const s of steps) expect(typeof s.event).toBe('string');
  });

  it('connects a Google and a Microsoft mailbox and every delivery to the bundled receiver verifies', () => {
    expect(summary.mailboxes.map((m) => [m.provider, m.connected])).toEqual([
      ['google', true],
      ['microsoft', true],
    ]);
    expect(summary.messagesReceived).toBe(summary.delivered);
    expect(summary.webhooks.rejected).toBe(0);
    expect(summary.webhooks.types['mailbox.connected']).toBe(2);
    expect(summary.webhooks.types['message.received']).toBe(summary.delivered);
    const webhooks = steps.filter((s) => s.event === 'webhook');
    expect(webhooks.length).toBe(summary.webhooks.verified);
    for (const w of webhooks) expect(w.verified).toBe(true);
  });

  it('the infected attachment is caught by clamd, announced, and never served', () => {
    expect(summary.scanner.status).toBe('ok');
    expect(summary.scan.status).toBe('infected');
    expect(summary.scan.signature).toMatch(/Eicar/i);
    expect(summary.scan.infectedWebhook).toBe(true);
    expect(summary.scan.served).toBe(false);
    expect(summary.scan.contentHttpStatus).toBe(409);
    const announced = steps.find((s) => s.event === 'webhook' && s.type === 'attachment.infected');
    expect(announced?.attachmentId).toBe(summary.scan.attachmentId);
  });

  it('each reply lands in the customer’s thread at the stand-in, naming the customer’s message', () => {
    expect(summary.replies.map((r) => r.provider).sort()).toEqual(['google', 'microsoft']);
    for (const r of summary.replies) {
      expect(r.status).toBe('sent');
      expect(r.sentWebhook).toBe(true);
      expect(r.sameThread).toBe(true);
      expect(r.replyThreadId).toBe(r.threadId);
      expect(r.inReplyTo).toBe(true);
      expect(r.references).toBe(true);
      expect(r.threadMessages).toBeGreaterThanOrEqual(2);
    }
  });

  it('disconnecting the Gmail mailbox shows a completed purge receipt with the grant revoked', () => {
    expect(summary.purge).toMatchObject({ provider: 'google', status: 'completed', revokeStatus: 'revoked', purgedWebhook: true, mailboxStatus: 'purged' });
    expect(summary.purge!.purgeId).toMatch(/^prg_/);
    expect(summary.purge!.steps.length).toBeGreaterThan(0);
  });

  it('prints no mail content, key or secret, in its output or its logs', () => {
    expectNoContent(run);
  });
});

describe('mailbox-connector demo without a scanner (text output)', () => {
  it('says the scan step is skipped and the attachment is never served, and still tells the rest of the story', async () => {
    const run = await runDemo([], { CLAMD_SOCKET: undefined, CLAMD_HOST: undefined, CLAMD_PORT: undefined, PORT: undefined });
    expect(run.code, `${run.stdout}\n${run.stderr.slice(-3000)}`).toBe(0);
    const lines = run.stdout.split('\n').filter(Boolean);
    expect(lines[0]).toMatch(/^\[\s*[\d.]+s\] Connector running at http:\/\/127\.0\.0\.1:\d+ .*no clamd configured.*\(\d+ ms\)$/);
    expect(run.stdout).toMatch(/Scan step skipped: no clamd configured .* stays pending and is never served \(GET \/v1\/attachments\/att_\w+\/content → HTTP 409\)/);
    expect(run.stdout).toMatch(/✓ webhook message\.received verified — message msg_\w+/);
    expect(run.stdout).toMatch(/Reply \S+ to \S+ sent; .* same Gmail thread/);
    expect(run.stdout).toMatch(/Reply \S+ to \S+ sent; .* same Graph conversation/);
    expect(run.stdout).toMatch(/purge prg_\w+ completed, grant revoked/);
    expect(run.stdout).toMatch(/The whole story in [\d.]+ s: 2 mailboxes connected/);
    expectNoContent(run);
  }, 180_000);
});
