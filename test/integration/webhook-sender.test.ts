import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Webhook } from 'standardwebhooks';
import { checkWebhookUrl, type HostResolver } from '../../src/webhooks/egress-guard.js';
import { createWebhookSender } from '../../src/webhooks/webhook-sender.js';
import { signWebhook } from '../../src/webhooks/webhook-signer.js';
import { generateWebhookSecret } from '../../src/webhooks/webhook-secret.js';

interface Received {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
  servername?: string | false | null;
}

type Handler = (req: http.IncomingMessage, res: http.ServerResponse, body: string) => void;

async function listen(server: http.Server, host: string, port = 0): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return (server.address() as AddressInfo).port;
}

function receiver(handler: Handler, options?: https.ServerOptions) {
  const received: Received[] = [];
  const onRequest = (req: http.IncomingMessage, res: http.ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      received.push({
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body,
        servername: (req.socket as TLSSocket).servername,
      });
      handler(req, res, body);
    });
  };
  const server = options ? https.createServer(options, onRequest) : http.createServer(onRequest);
  return { server, received };
}

const servers: http.Server[] = [];
afterAll(async () => {
  await Promise.all(
    servers.map((s) => new Promise<void>((r) => (s.closeAllConnections(), s.close(() => r())))),
  );
});

async function start(handler: Handler, host = '127.0.0.1', options?: https.ServerOptions, port = 0) {
  const r = receiver(handler, options);
  servers.push(r.server);
  const boundPort = await listen(r.server, host, port);
  return { ...r, port: boundPort };
}

const sender = createWebhookSender({ version: '9.9.9-test' });
const devPolicy = { production: false, allowHosts: ['127.0.0.1', '*.internal.test'] };
const event = JSON.stringify({
  id: 'evt_01',
  type: 'message.received',
  createdAt: '2026-01-01T00:00:00.000Z',
  tenantId: 't_1',
  mailboxId: 'mb_1',
  data: { subject: 'Grüße' },
});

describe('webhook sender against a real local receiver', () => {
  it('delivers a request that the standardwebhooks library verifies', async () => {
    const secret = generateWebhookSecret();
    let verified: unknown;
    const rx = await start((req, res, body) => {
      try {
        verified = new Webhook(secret).verify(body, req.headers as Record<string, string>);
        res.writeHead(200, { 'content-type': 'text/plain' }).end('thanks');
      } catch {
        res.writeHead(400).end('bad signature');
      }
    });
    const target = await checkWebhookUrl(`http://127.0.0.1:${rx.port}/hooks/in?src=mc`, devPolicy);
    const headers = signWebhook({ msgId: 'evt_01', timestamp: new Date(), body: event, secrets: [secret] });
    const result = await sender({ target, headers, body: event, timeoutMs: 5000 });

    expect(result).toMatchObject({ ok: true, status: 200, responseSnippet: 'thanks', abortMessage: false });
    expect(result.error).toBeUndefined();
    expect(result.latencyMs).toBeGreaterThanOrEqual(0);
    expect(verified).toEqual(JSON.parse(event));
    const [got] = rx.received;
    expect(got?.method).toBe('POST');
    expect(got?.url).toBe('/hooks/in?src=mc');
    expect(got?.headers['user-agent']).toBe('mailbox-connector-webhooks/9.9.9-test');
    expect(got?.headers['content-type']).toBe('application/json');
    expect(got?.headers['webhook-id']).toBe('evt_01');
  });

  it('does not follow a redirect and reports it as a failure', async () => {
    const elsewhere = await start((_req, res) => res.writeHead(200).end('should not be reached'));
    const rx = await start((_req, res) =>
      res.writeHead(307, { location: `http://127.0.0.1:${elsewhere.port}/internal` }).end(),
    );
    const target = await checkWebhookUrl(`http://127.0.0.1:${rx.port}/`, devPolicy);
    const result = await sender({ target, headers: {}, body: event });
    expect(result).toMatchObject({ ok: false, status: 307, error: 'redirect' });
    expect(rx.received).toHaveLength(1);
    expect(elsewhere.received).toHaveLength(0);
  });

  it('connects only to the checked address even when DNS would now answer differently (rebinding)', async () => {
    const checked = await start((_req, res) => res.writeHead(204).end());
    // Same port on another loopback address: where a second DNS answer would send us.
    const rebound = await start((_req, res) => res.writeHead(200).end('rebound'), '127.0.0.2', undefined, checked.port);
    let calls = 0;
    const rebinding: HostResolver = async () => {
      calls += 1;
      return [{ address: calls === 1 ? '127.0.0.1' : '127.0.0.2', family: 4 }];
    };
    const target = await checkWebhookUrl(`http://hooks.internal.test:${checked.port}/h`, {
      ...devPolicy,
      resolver: rebinding,
    });
    expect(target.addresses).toEqual([{ address: '127.0.0.1', family: 4 }]);

    // Also: 'hooks.internal.test' does not exist in real DNS, so reaching the receiver at all
    // proves the connection used the pinned answer rather than a fresh lookup.
    const first = await sender({ target, headers: {}, body: event });
    const second = await sender({ target, headers: {}, body: event });
    expect(first).toMatchObject({ ok: true, status: 204 });
    expect(second).toMatchObject({ ok: true, status: 204 });
    expect(calls).toBe(1);
    expect(checked.received).toHaveLength(2);
    expect(checked.received[0]?.headers.host).toBe(`hooks.internal.test:${checked.port}`);
    expect(rebound.received).toHaveLength(0);
  });

  it('tries every pinned address (IPv6 and IPv4) and nothing else', async () => {
    // Receiver only on IPv4; the name is pinned to [::1, 127.0.0.1]. Happy Eyeballs asks the
    // lookup for all addresses and falls back from ::1 (refused) to 127.0.0.1.
    const v4only = await start((_req, res) => res.writeHead(200).end('v4'));
    const target = await checkWebhookUrl(`http://dual.internal.test:${v4only.port}/`, {
      ...devPolicy,
      resolver: async () => [
        { address: '::1', family: 6 },
        { address: '127.0.0.1', family: 4 },
      ],
    });
    const result = await sender({ target, headers: {}, body: event });
    expect(result).toMatchObject({ ok: true, status: 200, responseSnippet: 'v4' });

    const v6Only = await checkWebhookUrl(`http://dual.internal.test:${v4only.port}/`, {
      ...devPolicy,
      resolver: async () => [{ address: '::1', family: 6 }],
    });
    expect(await sender({ target: v6Only, headers: {}, body: event })).toMatchObject({ ok: false, error: 'connect' });
    expect(v4only.received).toHaveLength(1);
  });

  it('gives up after the timeout when the receiver never answers', async () => {
    const rx = await start(() => {
      /* hold the request open */
    });
    const target = await checkWebhookUrl(`http://127.0.0.1:${rx.port}/slow`, devPolicy);
    const t0 = Date.now();
    const result = await sender({ target, headers: {}, body: event, timeoutMs: 150 });
    expect(result).toMatchObject({ ok: false, error: 'timeout' });
    expect(result.status).toBeUndefined();
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(result.latencyMs).toBeGreaterThanOrEqual(140);
  });

  it('reports throttling hints and the abort-message header', async () => {
    const rx = await start((_req, res) =>
      res.writeHead(429, { 'retry-after': '120', 'webhook-delivery': 'abort-message' }).end('slow down'),
    );
    const target = await checkWebhookUrl(`http://127.0.0.1:${rx.port}/`, devPolicy);
    const result = await sender({ target, headers: {}, body: event });
    expect(result).toMatchObject({
      ok: false,
      status: 429,
      error: 'http_status',
      retryAfterMs: 120_000,
      abortMessage: true,
      responseSnippet: 'slow down',
    });
  });

  it('understands an HTTP-date Retry-After', async () => {
    const now = new Date('2026-03-01T12:00:00Z');
    const dated = createWebhookSender({ version: 't', now: () => now });
    const rx = await start((_req, res) =>
      res.writeHead(503, { 'retry-after': 'Sun, 01 Mar 2026 12:05:00 GMT' }).end(),
    );
    const target = await checkWebhookUrl(`http://127.0.0.1:${rx.port}/`, devPolicy);
    expect((await dated({ target, headers: {}, body: event })).retryAfterMs).toBe(300_000);
  });

  it('keeps only a 1 KB text snippet of a huge response and does not wait for the rest', async () => {
    const rx = await start((_req, res) => {
      res.writeHead(500, { 'content-type': 'text/plain' });
      const block = 'x'.repeat(64 * 1024);
      let sent = 0;
      const pump = () => {
        while (sent < 200 && res.write(block)) sent += 1;
        if (sent < 200) res.once('drain', pump);
        else res.end();
      };
      pump();
    });
    const target = await checkWebhookUrl(`http://127.0.0.1:${rx.port}/`, devPolicy);
    const result = await sender({ target, headers: {}, body: event, timeoutMs: 5000 });
    expect(result).toMatchObject({ ok: false, status: 500, error: 'http_status' });
    expect(result.responseSnippet.length).toBeLessThanOrEqual(1024);
    expect(result.responseSnippet.length).toBeGreaterThan(0);
  });

  it('reports a refused connection as connect', async () => {
    const probe = http.createServer();
    const port = await listen(probe, '127.0.0.1');
    await new Promise<void>((r) => probe.close(() => r()));
    const target = await checkWebhookUrl(`http://127.0.0.1:${port}/`, devPolicy);
    const result = await sender({ target, headers: {}, body: event });
    expect(result).toMatchObject({ ok: false, error: 'connect', errorCode: 'ECONNREFUSED' });
  });

  it('ignores caller attempts to override framing headers', async () => {
    const rx = await start((_req, res) => res.writeHead(200).end());
    const target = await checkWebhookUrl(`http://127.0.0.1:${rx.port}/`, devPolicy);
    const result = await sender({
      target,
      headers: { Host: 'metadata.internal', 'Content-Length': '1', 'Transfer-Encoding': 'chunked', 'x-extra': 'kept' },
      body: event,
    });
    expect(result.ok).toBe(true);
    expect(rx.received[0]?.headers.host).toBe(`127.0.0.1:${rx.port}`);
    expect(rx.received[0]?.body).toBe(event);
    expect(rx.received[0]?.headers['x-extra']).toBe('kept');
  });
});

describe('webhook sender over TLS', () => {
  let dir: string;
  let cert: Buffer;
  let key: Buffer;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'webhook-tls-'));
    execFileSync(
      'openssl',
      [
        'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
        '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '1',
        '-subj', '/CN=hooks.internal.test', '-addext', 'subjectAltName=DNS:hooks.internal.test',
      ],
      { stdio: 'ignore' },
    );
    cert = readFileSync(join(dir, 'cert.pem'));
    key = readFileSync(join(dir, 'key.pem'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const pinnedTo127: HostResolver = async () => [{ address: '127.0.0.1', family: 4 }];

  it('sends SNI for the host name and verifies the certificate against it', async () => {
    const rx = await start((_req, res) => res.writeHead(202).end('queued'), '127.0.0.1', { cert, key });
    const target = await checkWebhookUrl(`https://hooks.internal.test:${rx.port}/tls`, {
      production: true,
      allowHosts: ['*.internal.test'],
      resolver: pinnedTo127,
    });
    const trusting = createWebhookSender({ version: 't', ca: cert });
    const result = await trusting({ target, headers: {}, body: event });
    expect(result).toMatchObject({ ok: true, status: 202, responseSnippet: 'queued' });
    expect(rx.received[0]?.servername).toBe('hooks.internal.test');
  });

  it('fails with tls when the certificate is not trusted or does not match the name', async () => {
    const rx = await start((_req, res) => res.writeHead(200).end(), '127.0.0.1', { cert, key });
    const target = await checkWebhookUrl(`https://hooks.internal.test:${rx.port}/`, {
      production: true,
      allowHosts: ['*.internal.test'],
      resolver: pinnedTo127,
    });
    const untrusting = await sender({ target, headers: {}, body: event });
    expect(untrusting).toMatchObject({ ok: false, error: 'tls' });
    expect(untrusting.errorCode).toMatch(/CERT|SIGNED/);

    const wrongName = await checkWebhookUrl(`https://other.internal.test:${rx.port}/`, {
      production: true,
      allowHosts: ['*.internal.test'],
      resolver: pinnedTo127,
    });
    const mismatch = await createWebhookSender({ version: 't', ca: cert })({ target: wrongName, headers: {}, body: event });
    expect(mismatch).toMatchObject({ ok: false, error: 'tls', errorCode: 'ERR_TLS_CERT_ALTNAME_INVALID' });
    expect(rx.received).toHaveLength(0);
  });
});
