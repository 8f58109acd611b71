import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { simpleParser } from 'mailparser';
import { createCore } from '../bootstrap/core.js';
import { buildProcessServices, createModules } from '../bootstrap/modules.js';
import { startService } from '../bootstrap/service.js';
import { loadConfig, type Config } from '../config/config.js';
import type { GoogleSandbox } from '../sandbox/google/google-sandbox.server.js';
import { approveGoogleConsent } from '../sandbox/google/google-consent.client.js';
import { approveMicrosoftConsent } from '../sandbox/microsoft/approve-microsoft-consent.js';
import type { MicrosoftSandbox } from '../sandbox/microsoft/microsoft-sandbox.js';
import { composeDemoMessage, DEMO_REPLY_TEXT, type DemoMessage } from './demo-mail.js';
import { startDemoWebhookReceiver, type DemoWebhook, type DemoWebhookReceiver } from './demo-webhook-receiver.js';
import { CliError } from './ops-client.js';

/** Longest wait for one step (mail to arrive, a reply to be sent, a purge to finish). */
const STEP_TIMEOUT_MS = 30_000;

type Provider = 'google' | 'microsoft';

const DEMO_MAILBOXES: ReadonlyArray<{ provider: Provider; email: string; label: string }> = [
  { provider: 'google', email: 'support@demo-gmail.test', label: 'Gmail' },
  { provider: 'microsoft', email: 'help@demo-outlook.test', label: 'Microsoft 365' },
];
/** The mailbox disconnected at the end: Google, whose receipt shows the grant revoked at the provider. */
const DISCONNECT: Provider = 'google';

interface ConnectedMailbox {
  provider: Provider;
  label: string;
  email: string;
  id: string;
}

interface Delivered {
  mailbox: ConnectedMailbox;
  mail: DemoMessage;
  /** Gmail threadId / Graph conversationId the stand-in gave the customer's message. */
  providerThreadId: string;
  /** The connector's message id, once its message.received webhook arrived. */
  messageId: string | null;
}

export interface DemoReplyResult {
  provider: Provider;
  mailboxId: string;
  messageId: string;
  outboundId: string | null;
  status: string;
  /** message.sent arrived at the receiver (verified). */
  sentWebhook: boolean;
  /** The stand-in's thread (Gmail threadId / Graph conversationId) of the customer's message and of the reply. */
  threadId: string;
  replyThreadId: string | null;
  sameThread: boolean;
  inReplyTo: boolean;
  references: boolean;
  /** Messages in that thread at the stand-in after the reply. */
  threadMessages: number;
}

export interface DemoSummary {
  ok: boolean;
  durationMs: number;
  loadAverage: number[];
  url: string;
  database: string;
  scanner: { status: string; detail: string | null };
  mailboxes: Array<{ provider: Provider; mailboxId: string; connected: boolean }>;
  delivered: number;
  webhooks: { verified: number; rejected: number; duplicates: number; types: Record<string, number> };
  messagesReceived: number;
  scan: {
    status: 'infected' | 'skipped' | 'pending' | 'not_received' | string;
    attachmentId: string | null;
    signature: string | null;
    infectedWebhook: boolean;
    /** GET /v1/attachments/:id/content answer: the attachment must never be served. */
    contentHttpStatus: number | null;
    served: boolean;
  };
  replies: DemoReplyResult[];
  purge: {
    provider: Provider;
    mailboxId: string;
    purgeId: string | null;
    status: string | null;
    revokeStatus: string | null;
    steps: string[];
    counts: Record<string, number | string>;
    purgedWebhook: boolean;
    mailboxStatus: string | null;
  } | null;
  problems: string[];
}

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

class Interrupted extends Error {}

function bare(id: string | undefined | null): string {
  return (id ?? '').trim().replace(/^<|>$/g, '');
}

/**
 * `mailbox-connector demo`: the whole story on the local stand-ins, end to end, then stops.
 * 1. starts the service with SANDBOX=1 (embedded database in a temporary DATA_DIR unless
 *    DATABASE_URL is set) and a bundled webhook receiver that verifies every delivery with the
 *    `standardwebhooks` package, registered as the demo tenant's endpoint;
 * 2. connects a Gmail and a Microsoft 365 mailbox through the real hosted connect flow (consent
 *    approved by the stand-ins' consent helpers instead of a person);
 * 3. delivers mail into both, one message with the EICAR test file attached;
 * 4. shows the verified webhooks arriving, with the attachment's scan verdict — or says that no
 *    clamd is reachable and the attachment stays pending (never served) instead of pretending;
 * 5. replies to each customer through the API and reads the stand-in mailbox back: same
 *    threadId / conversationId, In-Reply-To and References naming the customer's message;
 * 6. disconnects the Gmail mailbox and shows the purge receipt;
 * 7. stops everything. One line per step with timings; `--json`: one object per step and a
 *    final `summary` (docs/sandbox.md). It prints ids and verdicts, never mail content.
 */
export async function runDemo(base: Config, opts: { json: boolean; keepRunning?: boolean }): Promise<void> {
  if (base.production) throw new CliError('demo refuses NODE_ENV=production: it runs on the sandbox providers');
  const t0 = Date.now();
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
    // The bundled receiver listens on loopback; an inherited WEBHOOK_ALLOWED_HOSTS must not refuse it.
    WEBHOOK_ALLOWED_HOSTS: '127.0.0.1',
    LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn',
    ...(dataDir ? { DATA_DIR: dataDir } : {}),
  });

  // One line per step with its duration (time since the previous step ended); webhook lines
  // are shown as they arrive, with the time since the start only.
  let stepStart = Date.now();
  const emit = (event: string, fields: Record<string, unknown>, text: string, timed: boolean): void => {
    const now = Date.now();
    const ms = now - stepStart;
    if (timed) stepStart = now;
    const at = `[${((now - t0) / 1000).toFixed(1).padStart(5)}s]`;
    process.stdout.write(
      opts.json ? `${JSON.stringify({ event, ...fields, ...(timed ? { ms } : {}), atMs: now - t0 })}\n` : `${at} ${text}${timed ? ` (${ms} ms)` : ''}\n`,
    );
  };
  // Ctrl-C during the story stops it at the next step (waits notice it at once).
  let storyDone = false;
  const say = (event: string, fields: Record<string, unknown>, text: string): void => {
    emit(event, fields, text, true);
    if (aborted && !storyDone) throw new Interrupted('interrupted');
  };
  const show = (event: string, fields: Record<string, unknown>, text: string): void => emit(event, fields, text, false);
  const note = (text: string): void => {
    if (!opts.json) process.stdout.write(`          ${text}\n`);
  };

  // Ctrl-C at any point stops the service and removes the temporary data folder.
  let interrupt: () => void = () => undefined;
  const interrupted = new Promise<void>((resolve) => {
    interrupt = resolve;
  });
  let aborted = false;
  void interrupted.then(() => {
    aborted = true;
  });
  const onSignal = (): void => interrupt();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  /** Polls `probe` every 200 ms until it returns a value, the step times out (undefined) or Ctrl-C. */
  const waitFor = async <T>(probe: () => T | undefined | Promise<T | undefined>, timeoutMs = STEP_TIMEOUT_MS): Promise<T | undefined> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (aborted) throw new Interrupted('interrupted');
      const v = await probe();
      if (v !== undefined) return v;
      if (Date.now() >= deadline) return undefined;
      await Promise.race([new Promise((r) => setTimeout(r, 200)), interrupted]);
    }
  };

  // The service's log lines go to stderr: stdout is the story (and with --json, only JSON steps).
  const core = await createCore(config, { command: 'mailbox-connector demo', logDestination: process.stderr }).catch((err: unknown) => {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
    throw err;
  });
  // Run in reverse at the end: the receiver and the service stop, then the core closes, then its data goes.
  const cleanup: Array<() => Promise<void> | void> = [];
  if (dataDir) cleanup.push(() => rmSync(dataDir, { recursive: true, force: true }));
  cleanup.push(() => core.close());
  const stop = async (): Promise<void> => {
    for (const c of cleanup.splice(0).reverse()) await Promise.resolve(c()).catch(() => undefined);
  };

  const url = `http://127.0.0.1:${port}`;
  const problems: string[] = [];
  const summary: DemoSummary = {
    ok: false,
    durationMs: 0,
    loadAverage: [],
    url,
    database: core.db.kind,
    scanner: { status: 'unknown', detail: null },
    mailboxes: [],
    delivered: 0,
    webhooks: { verified: 0, rejected: 0, duplicates: 0, types: {} },
    messagesReceived: 0,
    scan: { status: 'not_received', attachmentId: null, signature: null, infectedWebhook: false, contentHttpStatus: null, served: false },
    replies: [],
    purge: null,
    problems,
  };
  let receiver: DemoWebhookReceiver | undefined;
  let failure: unknown;
  try {
    const services = await buildProcessServices(core);
    const modules = await createModules(core, services);
    const service = await startService(core, modules, { http: true, workers: true, port, host: '127.0.0.1' });
    cleanup.push(() => service.stop());
    const ready = (await fetch(`${url}/readyz`)
      .then((r) => r.json())
      .catch(() => ({}))) as { checks?: Record<string, { status: string; detail?: string }> };
    const scanner = ready.checks?.scanner ?? { status: 'unknown' };
    summary.scanner = { status: scanner.status, detail: scanner.detail ?? null };
    const scannerText =
      scanner.status === 'ok' ? 'clamd answers' : scanner.status === 'not_configured' ? 'no clamd configured (CLAMD_SOCKET / CLAMD_HOST unset)' : `clamd not reachable (${scanner.detail ?? scanner.status})`;
    say(
      'started',
      { url, database: core.db.kind, dataDir: dataDir ?? null, scanner: summary.scanner },
      `Connector running at ${url} on the sandbox stand-ins (database: ${core.db.kind}${dataDir ? ', temporary' : ''}; scanner: ${scannerText})`,
    );

    // --- the bundled receiver, registered as the tenant's endpoint
    const rx = await startDemoWebhookReceiver();
    receiver = rx;
    cleanup.push(() => rx.close());
    const tenant = await core.tenantService.create({ name: 'Demo helpdesk' });
    const key = await core.apiKeys.issue({ tenantId: tenant.id, name: 'demo' });
    const api = async (method: string, p: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: Record<string, unknown> }> => {
      const res = await fetch(`${url}${p}`, {
        method,
        headers: { authorization: `Bearer ${key.key}`, ...(body ? { 'content-type': 'application/json' } : {}), ...headers },
        ...(body ? { body: JSON.stringify(body) } : {}),
      });
      return { status: res.status, body: (await res.json().catch(() => ({}))) as Record<string, unknown> };
    };
    const endpoint = await api('POST', '/v1/webhook-endpoints', { url: rx.url, description: 'mailbox-connector demo receiver' });
    if (endpoint.status !== 201) throw new CliError(`registering the demo webhook receiver failed with HTTP ${endpoint.status} (${String((endpoint.body.error as { code?: string } | undefined)?.code ?? '')})`);
    rx.setSecret(String(endpoint.body.secret));
    say(
      'receiver',
      { tenantId: tenant.id, receiverUrl: rx.url, endpointId: endpoint.body.id },
      `Tenant ${tenant.id}; webhook receiver at ${rx.url} registered as endpoint ${String(endpoint.body.id)} (verifies with standardwebhooks)`,
    );
    rx.onEvent((e) => {
      const about = [
        e.messageId ? `message ${e.messageId}` : e.attachmentId ? `attachment ${e.attachmentId}` : e.outboundId ? `reply ${e.outboundId}` : e.purgeId ? `purge ${e.purgeId}` : `mailbox ${e.mailboxId ?? '?'}`,
        e.scanStatus ? `scan ${e.scanStatus}` : '',
        e.signature ? `signature ${e.signature}` : '',
        e.attachments.length ? `attachments: ${e.attachments.map((a) => `${a.id} ${a.scanStatus}`).join(', ')}` : '',
      ].filter(Boolean);
      show(
        'webhook',
        { type: e.type, eventId: e.id, mailboxId: e.mailboxId, messageId: e.messageId, outboundId: e.outboundId, attachmentId: e.attachmentId, attachments: e.attachments, scanStatus: e.scanStatus, signature: e.signature, verified: true },
        `  ✓ webhook ${e.type} verified — ${about.join('; ')}`,
      );
    });

    // --- connect both mailboxes through the hosted flow and the stand-ins' consent
    const sb = services.access.settings.sandbox;
    const connected: ConnectedMailbox[] = [];
    for (const m of DEMO_MAILBOXES) {
      const created = await api('POST', '/v1/connect-sessions', { provider: m.provider });
      if (created.status !== 201) throw new CliError(`creating a ${m.provider} connect session failed with HTTP ${created.status}`);
      const hosted = String(created.body.url);
      const start = await fetch(`${hosted}/start?provider=${m.provider}`, { redirect: 'manual' });
      const cookie = (start.headers.get('set-cookie') ?? '').split(';')[0] ?? '';
      const authorizeUrl = start.headers.get('location');
      if (start.status !== 302 || !authorizeUrl) throw new CliError(`the hosted page did not redirect to ${m.provider} (HTTP ${start.status})`);
      const back = m.provider === 'google' ? await approveGoogleConsent(authorizeUrl, { email: m.email }) : await approveMicrosoftConsent(authorizeUrl, { email: m.email });
      const cb = await fetch(back, { redirect: 'manual', headers: { cookie } });
      const page = await cb.text();
      const result = /data-status="([a-z_]+)"/.exec(page)?.[1] ?? `HTTP ${cb.status}`;
      const list = await api('GET', '/v1/mailboxes?limit=100');
      const mailbox = ((list.body.data as Array<{ id: string; address: string; provider: string; status: string }> | undefined) ?? []).find((x) => x.address === m.email && x.provider === m.provider);
      summary.mailboxes.push({ provider: m.provider, mailboxId: mailbox?.id ?? '', connected: mailbox?.status === 'active' });
      say(
        'connected',
        { provider: m.provider, connectSessionId: created.body.id, result, mailboxId: mailbox?.id ?? null, mailboxStatus: mailbox?.status ?? null },
        mailbox?.status === 'active'
          ? `${m.label} mailbox connected through the hosted page and the stand-in's consent: ${mailbox.id} (${mailbox.status})`
          : `${m.label} mailbox did NOT connect (callback result: ${result})`,
      );
      if (mailbox?.status === 'active') connected.push({ provider: m.provider, label: m.label, email: m.email, id: mailbox.id });
      else problems.push(`${m.provider} mailbox did not connect (${result})`);
    }

    // --- deliver mail: a ticket to each mailbox, and one with the EICAR test file to Microsoft
    const delivered: Delivered[] = [];
    let n = 0;
    for (const mb of connected) {
      const mails = [await composeDemoMessage(mb.email, ++n), ...(mb.provider === 'microsoft' ? [await composeDemoMessage(mb.email, ++n, { infected: true })] : [])];
      for (const mail of mails) {
        const providerThreadId = mb.provider === 'google' ? requireSandbox(sb.google, 'google').deliver(mb.email, mail.raw).threadId : (await requireSandbox(sb.microsoft, 'microsoft').deliver(mb.email, mail.raw)).conversationId;
        delivered.push({ mailbox: mb, mail, providerThreadId, messageId: null });
      }
      const infected = mails.filter((m) => m.infected).length;
      say(
        'delivered',
        { provider: mb.provider, mailboxId: mb.id, count: mails.length, infected },
        `Delivered ${mails.length} message${mails.length === 1 ? '' : 's'} into the ${mb.label} stand-in mailbox${infected ? ` (${infected} with the EICAR test file attached)` : ''}`,
      );
    }
    summary.delivered = delivered.length;

    // --- the webhooks arrive: one message.received per delivered message
    const receivedFor = (mb: ConnectedMailbox): DemoWebhook[] => rx.events.filter((e) => e.type === 'message.received' && e.mailboxId === mb.id);
    await waitFor(() => (connected.every((mb) => receivedFor(mb).length >= delivered.filter((d) => d.mailbox === mb).length) ? true : undefined));
    for (const mb of connected) {
      // The stand-ins deliver in order and the connector stores in order per mailbox; pair them by
      // the attachment (the infected message is the only one that has one).
      const events = receivedFor(mb);
      for (const d of delivered.filter((x) => x.mailbox === mb)) {
        const match = events.find((e) => (e.attachments.length > 0) === d.mail.infected && !delivered.some((o) => o.messageId === e.messageId));
        d.messageId = match?.messageId ?? null;
      }
    }
    summary.messagesReceived = delivered.filter((d) => d.messageId).length;
    say(
      'received',
      { expected: delivered.length, received: summary.messagesReceived },
      summary.messagesReceived === delivered.length
        ? `All ${delivered.length} messages synced, stored and announced by a verified message.received webhook`
        : `${summary.messagesReceived} of ${delivered.length} messages announced within ${STEP_TIMEOUT_MS / 1000} s`,
    );
    if (summary.messagesReceived < delivered.length) problems.push(`only ${summary.messagesReceived} of ${delivered.length} messages arrived as message.received`);

    // --- the infected attachment: its verdict, and it is never served
    const infectedMail = delivered.find((d) => d.mail.infected);
    if (infectedMail?.messageId) {
      const received = rx.events.find((e) => e.type === 'message.received' && e.messageId === infectedMail.messageId);
      const attachmentId = received?.attachments[0]?.id ?? null;
      summary.scan.attachmentId = attachmentId;
      let status = received?.attachments[0]?.scanStatus ?? 'unknown';
      if (scanner.status === 'ok') {
        // The verdict is normally in message.received; attachment.infected follows it.
        const infectedEvent = await waitFor(() => rx.events.find((e) => e.type === 'attachment.infected' && e.attachmentId === attachmentId), 15_000);
        summary.scan.infectedWebhook = Boolean(infectedEvent);
        if (infectedEvent) {
          status = 'infected';
          summary.scan.signature = infectedEvent.signature;
        }
      }
      const content = attachmentId ? await fetch(`${url}/v1/attachments/${attachmentId}/content`, { headers: { authorization: `Bearer ${key.key}` } }) : null;
      if (content) await content.arrayBuffer();
      summary.scan.contentHttpStatus = content?.status ?? null;
      summary.scan.served = content?.status === 200;
      // `skipped`: no scanner configured; a configured but unreachable clamd leaves it `pending` (retried).
      summary.scan.status = scanner.status === 'not_configured' && status === 'pending' ? 'skipped' : status;
      const refused = `GET /v1/attachments/${attachmentId ?? '?'}/content → HTTP ${content?.status ?? '-'}`;
      say(
        'scan',
        { ...summary.scan, scanner: summary.scanner.status },
        scanner.status === 'ok'
          ? status === 'infected'
            ? `Scan: attachment ${attachmentId ?? '?'} is infected (${summary.scan.signature ?? 'signature not reported'}), attachment.infected webhook verified; ${refused}, never served`
            : `Scan: clamd answered but the attachment's verdict is ${status}; ${refused}`
          : `Scan step skipped: ${scannerText}. The attachment stays ${status} and is never served (${refused}); set CLAMD_SOCKET to see it caught`,
      );
      if (summary.scan.served) problems.push('the infected attachment was served');
      if (scanner.status === 'ok' && status !== 'infected') problems.push(`clamd is reachable but the attachment's verdict is ${status}`);
      if (scanner.status === 'ok' && !summary.scan.infectedWebhook) problems.push('no attachment.infected webhook arrived');
    } else if (infectedMail) {
      problems.push('the message with the infected attachment did not arrive');
    }

    // --- threaded replies through the API, read back at the stand-in
    for (const d of delivered.filter((x) => !x.mail.infected && x.messageId)) {
      const reply = await sendReply(d, { api, waitFor, rx, sb, problems });
      summary.replies.push(reply);
      const where = d.mailbox.provider === 'google' ? 'Gmail thread' : 'Graph conversation';
      say(
        'reply',
        { ...reply },
        reply.sameThread && reply.inReplyTo && reply.references
          ? `Reply ${reply.outboundId ?? '?'} to ${d.messageId ?? '?'} ${reply.status}; message.sent ${reply.sentWebhook ? 'verified ✓' : 'not seen'}; the ${d.mailbox.label} stand-in shows it in the same ${where} (${reply.threadId}, ${reply.threadMessages} messages) with In-Reply-To and References`
          : `Reply ${reply.outboundId ?? '?'} to ${d.messageId ?? '?'} ${reply.status}; same ${where}: ${reply.sameThread ? 'yes' : 'NO'}, In-Reply-To: ${reply.inReplyTo ? 'yes' : 'NO'}, References: ${reply.references ? 'yes' : 'NO'}`,
      );
    }

    // --- disconnect one mailbox: the purge and its receipt
    const gone = connected.find((c) => c.provider === DISCONNECT);
    if (gone) {
      const del = await api('DELETE', `/v1/mailboxes/${gone.id}`);
      const purgeId = typeof del.body.purgeId === 'string' ? del.body.purgeId : null;
      const receipt = purgeId
        ? await waitFor(async () => {
            const r = await api('GET', `/v1/purges/${purgeId}`);
            return r.body.status === 'completed' ? r.body : undefined;
          })
        : undefined;
      const purgedEvent = purgeId ? await waitFor(() => rx.events.find((e) => e.type === 'mailbox.purged' && e.purgeId === purgeId), 10_000) : undefined;
      const after = await api('GET', `/v1/mailboxes/${gone.id}`);
      const revoke = (receipt?.revoke as { status?: string } | undefined)?.status ?? null;
      const counts = (receipt?.counts as Record<string, number | string> | undefined) ?? {};
      summary.purge = {
        provider: gone.provider,
        mailboxId: gone.id,
        purgeId,
        status: typeof receipt?.status === 'string' ? receipt.status : null,
        revokeStatus: revoke,
        steps: Array.isArray(receipt?.steps) ? (receipt.steps as string[]) : [],
        counts,
        purgedWebhook: Boolean(purgedEvent),
        mailboxStatus: typeof after.body.status === 'string' ? after.body.status : null,
      };
      say(
        'purge',
        { ...summary.purge },
        receipt
          ? `Disconnected the ${gone.label} mailbox: purge ${purgeId ?? '?'} completed, grant ${revoke ?? '?'} at the provider, mailbox now ${summary.purge.mailboxStatus ?? '?'}; mailbox.purged webhook ${purgedEvent ? 'verified ✓' : 'not seen'}`
          : `Disconnected the ${gone.label} mailbox (HTTP ${del.status}) but purge ${purgeId ?? '?'} did not complete within ${STEP_TIMEOUT_MS / 1000} s`,
      );
      if (receipt) note(`receipt: steps ${summary.purge.steps.join(' → ')}; counts ${Object.entries(counts).map(([k, v]) => `${k} ${v}`).join(', ')}`);
      if (!receipt) problems.push('the purge did not complete');
      else if (!purgedEvent) problems.push('no mailbox.purged webhook arrived');
    }

    storyDone = true;
    if (opts.keepRunning) {
      say('running', { url, apiKey: key.key }, `Still serving at ${url}. API key (shown once): ${key.key} — press Ctrl-C to stop`);
      await interrupted;
    }
  } catch (err) {
    failure = err;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    if (receiver) {
      summary.webhooks = {
        verified: receiver.events.length,
        rejected: receiver.rejected,
        duplicates: receiver.duplicates,
        types: receiver.events.reduce<Record<string, number>>((acc, e) => ({ ...acc, [e.type]: (acc[e.type] ?? 0) + 1 }), {}),
      };
      if (receiver.rejected > 0) problems.push(`${receiver.rejected} webhook deliveries failed verification`);
    }
    await stop();
  }
  if (failure instanceof Interrupted) throw new CliError('demo interrupted; everything it started is stopped');
  if (failure) problems.push(failure instanceof CliError ? failure.message : 'the demo stopped on an unexpected error');
  summary.durationMs = Date.now() - t0;
  summary.loadAverage = loadavg().map((l) => Math.round(l * 100) / 100);
  summary.ok = problems.length === 0;
  say('stopped', {}, 'Stopped the service, the stand-ins and the receiver' + (dataDir ? '; removed the temporary data' : ''));
  if (opts.json) process.stdout.write(`${JSON.stringify({ event: 'summary', ...summary })}\n`);
  else {
    process.stdout.write(
      summary.ok
        ? `\nThe whole story in ${(summary.durationMs / 1000).toFixed(1)} s: ${connected(summary)} mailboxes connected, ${summary.webhooks.verified} webhooks verified (${summary.webhooks.rejected} rejected), infected attachment ${summary.scan.status === 'infected' ? 'caught' : `not scanned (${summary.scan.status}) and not served`}, ${summary.replies.filter((r) => r.sameThread).length} replies in their threads, 1 mailbox purged.\n`
        : `\nThe demo did not complete (${(summary.durationMs / 1000).toFixed(1)} s):\n${problems.map((p) => `  - ${p}`).join('\n')}\n`,
    );
  }
  if (failure && !(failure instanceof CliError)) throw failure;
  if (!summary.ok) throw new CliError(`demo incomplete: ${problems.join('; ')}`);
}

function connected(s: DemoSummary): number {
  return s.mailboxes.filter((m) => m.connected).length;
}

function requireSandbox<T>(sandbox: T | undefined, provider: Provider): T {
  if (!sandbox) throw new CliError(`the ${provider} stand-in is not running in this process`);
  return sandbox;
}

/**
 * Replies to the customer's message through the API, waits for `message.sent` at the receiver
 * (or the outbound status), then reads the stand-in mailbox back: the sent message must be in
 * the customer's Gmail thread / Graph conversation and name its Message-ID in In-Reply-To and
 * References.
 */
async function sendReply(
  d: Delivered,
  ctx: {
    api: (method: string, p: string, body?: unknown, headers?: Record<string, string>) => Promise<{ status: number; body: Record<string, unknown> }>;
    waitFor: <T>(probe: () => T | undefined | Promise<T | undefined>, timeoutMs?: number) => Promise<T | undefined>;
    rx: DemoWebhookReceiver;
    sb: { google: GoogleSandbox | undefined; microsoft: MicrosoftSandbox | undefined };
    problems: string[];
  },
): Promise<DemoReplyResult> {
  const res = await ctx.api('POST', `/v1/messages/${d.messageId}/reply`, { text: DEMO_REPLY_TEXT }, { 'idempotency-key': randomUUID() });
  const outboundId = typeof res.body.outboundId === 'string' ? res.body.outboundId : null;
  const result: DemoReplyResult = {
    provider: d.mailbox.provider,
    mailboxId: d.mailbox.id,
    messageId: d.messageId ?? '',
    outboundId,
    status: res.status === 202 ? String(res.body.status) : `HTTP ${res.status}`,
    sentWebhook: false,
    threadId: d.providerThreadId,
    replyThreadId: null,
    sameThread: false,
    inReplyTo: false,
    references: false,
    threadMessages: 0,
  };
  if (!outboundId) {
    ctx.problems.push(`the reply to ${d.messageId ?? '?'} was refused (HTTP ${res.status})`);
    return result;
  }
  const done = await ctx.waitFor(() => ctx.rx.events.find((e) => (e.type === 'message.sent' || e.type === 'message.send_failed') && e.outboundId === outboundId));
  result.sentWebhook = done?.type === 'message.sent';
  const outbound = await ctx.api('GET', `/v1/outbound/${outboundId}`);
  result.status = typeof outbound.body.status === 'string' ? outbound.body.status : result.status;
  if (result.status !== 'sent') {
    ctx.problems.push(`the reply to ${d.messageId ?? '?'} is ${result.status}`);
    return result;
  }
  if (!result.sentWebhook) ctx.problems.push(`no message.sent webhook for the reply ${outboundId}`);

  // Read the stand-in back: the sent copy, its thread, its headers.
  const original = d.mail.messageId;
  const names = async (mime: Buffer): Promise<{ inReplyTo: boolean; references: boolean }> => {
    const parsed = await simpleParser(mime, { skipHtmlToText: true, skipTextToHtml: true, skipTextLinks: true, skipImageLinks: true });
    const refs = (Array.isArray(parsed.references) ? parsed.references : parsed.references ? [parsed.references] : []).flatMap((r) => r.split(/\s+/)).map(bare);
    return { inReplyTo: bare(parsed.inReplyTo) === original, references: refs.includes(original) };
  };
  if (d.mailbox.provider === 'google') {
    const google = requireSandbox(ctx.sb.google, 'google');
    for (const s of google.sent(d.mailbox.email)) {
      const h = await names(s.raw);
      if (!h.inReplyTo) continue;
      Object.assign(result, h, { replyThreadId: s.threadId });
      break;
    }
    result.threadMessages = [...(google.mailbox(d.mailbox.email)?.messages.values() ?? [])].filter((m) => m.threadId === d.providerThreadId).length;
  } else {
    const ms = requireSandbox(ctx.sb.microsoft, 'microsoft');
    for (const s of ms.sentMessages(d.mailbox.email)) {
      const h = await names(s.mime);
      const inReplyTo = h.inReplyTo || bare(s.inReplyTo) === original;
      if (!inReplyTo) continue;
      Object.assign(result, { inReplyTo, references: h.references, replyThreadId: s.conversationId });
      break;
    }
    result.threadMessages = ms.mailbox(d.mailbox.email).filter((m) => m.conversationId === d.providerThreadId).length;
  }
  result.sameThread = result.replyThreadId === d.providerThreadId;
  if (!result.sameThread) ctx.problems.push(`the reply ${outboundId} is not in the customer's thread at the stand-in`);
  if (!result.inReplyTo || !result.references) ctx.problems.push(`the reply ${outboundId} does not name the customer's message in In-Reply-To and References`);
  return result;
}
