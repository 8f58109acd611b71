import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';

/**
 * What the demo keeps of one delivered event: identifiers and verdicts only. Event bodies carry
 * mail content (subject, text, addresses) and the demo never prints or keeps that.
 */
export interface DemoWebhook {
  /** `webhook-id` = the event id, the same on every retry. */
  id: string;
  type: string;
  mailboxId: string | null;
  /** True: the Standard Webhooks signature (and timestamp) verified with the endpoint secret. */
  verified: true;
  messageId: string | null;
  attachments: Array<{ id: string; scanStatus: string }>;
  /** attachment.infected / attachment.scanned. */
  attachmentId: string | null;
  scanStatus: string | null;
  signature: string | null;
  /** message.sent. */
  outboundId: string | null;
  providerThreadId: string | null;
  status: string | null;
  /** mailbox.purged. */
  purgeId: string | null;
  revokeStatus: string | null;
  receivedAt: number;
}

export interface DemoWebhookReceiver {
  /** Where to register the endpoint: `http://127.0.0.1:<port>/webhooks`. */
  readonly url: string;
  /** The endpoint's `whsec_…` secret (known once the endpoint is registered); kept in memory only. */
  setSecret(secret: string): void;
  /** Verified events, first delivery of each id, in arrival order. */
  readonly events: readonly DemoWebhook[];
  /** Deliveries whose signature did not verify (answered 400). */
  readonly rejected: number;
  /** Deliveries of an id already seen (retries/replays; answered 200 and not kept twice). */
  readonly duplicates: number;
  /** Called for each newly verified event. */
  onEvent(listener: (event: DemoWebhook) => void): void;
  close(): Promise<void>;
}

const MAX_BODY_BYTES = 5 * 1024 * 1024;

function str(v: unknown): string | null {
  return typeof v === 'string' ? v : null;
}

function summarize(id: string, body: unknown, receivedAt: number): DemoWebhook {
  const e = (body ?? {}) as { type?: unknown; mailboxId?: unknown; data?: Record<string, unknown> };
  const d = e.data ?? {};
  const attachments = Array.isArray(d.attachments)
    ? (d.attachments as Array<Record<string, unknown>>).map((a) => ({ id: String(a.id), scanStatus: String(a.scanStatus) }))
    : [];
  return {
    id,
    type: String(e.type),
    mailboxId: str(e.mailboxId),
    verified: true,
    messageId: str(d.messageId),
    attachments,
    attachmentId: str(d.attachmentId),
    scanStatus: str(d.scanStatus),
    signature: str(d.signature),
    outboundId: str(d.outboundId),
    providerThreadId: str(d.providerThreadId),
    status: str(d.status),
    purgeId: str(d.purgeId),
    revokeStatus: str(d.revokeStatus),
    receivedAt,
  };
}

/**
 * The demo's stand-in for a helpdesk's webhook endpoint: a small HTTP server on loopback that
 * verifies every delivery with the `standardwebhooks` package — the library docs/webhooks.md
 * tells integrators to use — on the raw body bytes, exactly as a real receiver should.
 */
export async function startDemoWebhookReceiver(): Promise<DemoWebhookReceiver> {
  let verifier: Webhook | null = null;
  const events: DemoWebhook[] = [];
  const seen = new Set<string>();
  const listeners: Array<(e: DemoWebhook) => void> = [];
  let rejected = 0;
  let duplicates = 0;

  const handle = (req: IncomingMessage, res: ServerResponse, body: Buffer): void => {
    if (req.method !== 'POST' || req.url !== '/webhooks') {
      res.writeHead(404).end();
      return;
    }
    // Not ready yet (the endpoint secret arrives with the registration answer): the connector retries.
    if (!verifier) {
      res.writeHead(503).end();
      return;
    }
    const headers: Record<string, string> = {};
    for (const name of ['webhook-id', 'webhook-timestamp', 'webhook-signature']) {
      const v = req.headers[name];
      if (typeof v === 'string') headers[name] = v;
    }
    let payload: unknown;
    try {
      payload = verifier.verify(body, headers);
    } catch {
      rejected++;
      res.writeHead(400).end();
      return;
    }
    const id = headers['webhook-id']!;
    if (seen.has(id)) {
      duplicates++;
      res.writeHead(200).end();
      return;
    }
    seen.add(id);
    const event = summarize(id, payload, Date.now());
    events.push(event);
    res.writeHead(204).end();
    for (const l of listeners) l(event);
  };

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY_BYTES) {
        res.writeHead(413).end();
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => {
      if (!res.headersSent) handle(req, res, Buffer.concat(chunks));
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;

  return {
    url: `http://127.0.0.1:${port}/webhooks`,
    setSecret(secret) {
      verifier = new Webhook(secret);
    },
    events,
    get rejected() {
      return rejected;
    },
    get duplicates() {
      return duplicates;
    },
    onEvent(listener) {
      listeners.push(listener);
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
