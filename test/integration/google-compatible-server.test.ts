// The whole connector (real modules, pg-boss workers, HTTP) pointed at a Google-compatible server
// that is NOT the built-in stand-in: a small one built here from what google-auth-library and
// @googleapis/gmail send, with its own layout — the OpenID issuer under /idp/acme, keys at
// /certs/jwks.json, the Gmail REST API on an origin of its own (as gmail.googleapis.com is apart
// from accounts.google.com) — found only through GOOGLE_ISSUER_URL (discovery) and GMAIL_API_URL,
// with SANDBOX unset. Connect (authorize + PKCE, token exchange,
// ID token verified against the discovered jwks_uri), sync (watch, backfill with messages.list and
// messages.get format=raw, then history.list on a resync), a threaded reply (messages.send with
// the thread id) and disconnect (users.stop, revoke) run through the real code paths.
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey } from 'jose';
import { simpleParser } from 'mailparser';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestService, type TestService } from '../helpers/test-service.js';
import { startReceiver, type ReceivedRequest } from './webhooks-seed.js';

const CLIENT = { id: 'connector-client.acme-idp.example', secret: 'acme-idp-secret' };
const MAILBOX = 'help@acme-idp.example';
const TOPIC = 'projects/acme-idp/topics/gmail';
const PUSH = { audience: 'https://connector.acme-idp.example/push/google', serviceAccount: 'gmail-push@acme-idp.example' };

interface Answer {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

interface StoredMessage {
  id: string;
  threadId: string;
  labelIds: string[];
  raw: Buffer;
  internalDate: number;
}

/**
 * The Google-compatible server: one mailbox, state in memory. Every request is recorded as
 * `METHOD /path` so the test can prove which endpoints were used, and anything unexpected is a
 * 404 the connector would surface.
 */
class GoogleCompatibleServer {
  readonly calls: string[] = [];
  readonly sent: Array<{ threadId: string | undefined; raw: Buffer }> = [];
  readonly revoked: string[] = [];
  readonly messages: StoredMessage[] = [];
  readonly history: Array<{ id: number; messageId: string }> = [];
  historyId = 1000;
  watchedTopic: string | undefined;
  stopped = false;
  private servers: Server[] = [];
  private origin = '';
  private gmailOrigin = '';
  private key!: CryptoKey;
  private jwk!: Record<string, unknown>;
  private readonly codes = new Map<string, { challenge: string; redirectUri: string; scope: string }>();
  private readonly accessTokens = new Set<string>();
  private readonly refreshTokens = new Set<string>();
  private waiters: Array<{ check: () => boolean; resolve: () => void }> = [];

  get issuer(): string {
    return `${this.origin}/idp/acme`;
  }

  get gmailApiUrl(): string {
    return `${this.gmailOrigin}/`;
  }

  async start(): Promise<void> {
    const pair = await generateKeyPair('RS256');
    this.key = pair.privateKey;
    this.jwk = { ...(await exportJWK(pair.publicKey)), kid: 'acme-1', alg: 'RS256', use: 'sig' };
    const listen = async (handle: (req: IncomingMessage) => Promise<Answer>): Promise<string> => {
      const server = createServer((req, res) => {
        handle(req)
          .then(({ status, body, headers }) => {
            res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(body === undefined ? '' : JSON.stringify(body));
          })
          .catch((err: unknown) => res.writeHead(500, { 'content-type': 'application/json' }).end(JSON.stringify({ error: String(err) })))
          .finally(() => this.notify());
      });
      this.servers.push(server);
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    };
    this.origin = await listen((req) => this.identity(req));
    this.gmailOrigin = await listen((req) => this.gmail(req));
  }

  async close(): Promise<void> {
    for (const server of this.servers) {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  }

  /** Resolves once `check` holds after some request was answered (a signal, not a sleep). */
  until(what: string, check: () => boolean, timeoutMs = 60_000): Promise<void> {
    if (check()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}; calls: ${this.calls.join(', ')}`)), timeoutMs);
      this.waiters.push({ check, resolve: () => (clearTimeout(timer), resolve()) });
    });
  }

  private notify(): void {
    const ready = this.waiters.filter((w) => w.check());
    this.waiters = this.waiters.filter((w) => !ready.includes(w));
    for (const w of ready) w.resolve();
  }

  /** New inbound mail, as Gmail records it: a message in INBOX and a messageAdded history record. */
  deliver(raw: Buffer, threadId?: string): StoredMessage {
    const id = randomBytes(8).toString('hex');
    const m: StoredMessage = { id, threadId: threadId ?? id, labelIds: ['INBOX', 'UNREAD'], raw, internalDate: Date.now() - 60_000 };
    this.messages.push(m);
    this.history.push({ id: ++this.historyId, messageId: id });
    return m;
  }

  private async body(req: IncomingMessage): Promise<Buffer> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    return Buffer.concat(chunks);
  }

  /**
   * What Pub/Sub would send for a push subscription with OIDC authentication, signed by this
   * issuer's own key (published at its jwks_uri): `email` is the push service account.
   */
  async pushToken(claims: { audience: string; email: string; key?: CryptoKey }): Promise<string> {
    return new SignJWT({ email: claims.email, email_verified: true })
      .setProtectedHeader({ alg: 'RS256', kid: 'acme-1', typ: 'JWT' })
      .setIssuer(this.issuer)
      .setAudience(claims.audience)
      .setSubject('112233445566778899000')
      .setIssuedAt()
      .setExpirationTime('1h')
      .sign(claims.key ?? this.key);
  }

  private async idToken(): Promise<string> {
    return new SignJWT({ email: MAILBOX, email_verified: true })
      .setProtectedHeader({ alg: 'RS256', kid: 'acme-1', typ: 'JWT' })
      .setIssuer(this.issuer)
      .setAudience(CLIENT.id)
      .setSubject('acme-user-1')
      .setIssuedAt()
      .setExpirationTime('1h')
      .sign(this.key);
  }

  private issueAccessToken(): string {
    const t = `acme-at-${randomBytes(8).toString('hex')}`;
    this.accessTokens.add(t);
    return t;
  }

  /** The OpenID provider (OpenID Connect Discovery 1.0 §4; RFC 6749; RFC 7636; RFC 7009). */
  private async identity(req: IncomingMessage): Promise<Answer> {
    const url = new URL(req.url ?? '/', this.origin);
    const p = url.pathname;
    this.calls.push(`idp ${req.method} ${p}`);
    const error = (status: number, code: string) => ({ status, body: { error: code } });

    if (p === '/idp/acme/.well-known/openid-configuration') {
      return {
        status: 200,
        body: {
          issuer: this.issuer,
          authorization_endpoint: `${this.origin}/idp/acme/authorize`,
          token_endpoint: `${this.origin}/idp/acme/oauth/token`,
          revocation_endpoint: `${this.origin}/idp/acme/oauth/revoke`,
          jwks_uri: `${this.origin}/certs/jwks.json`,
          response_types_supported: ['code'],
          subject_types_supported: ['public'],
          id_token_signing_alg_values_supported: ['RS256'],
          code_challenge_methods_supported: ['S256'],
        },
      };
    }
    if (p === '/certs/jwks.json') return { status: 200, body: { keys: [this.jwk] }, headers: { 'cache-control': 'public, max-age=3600' } };
    if (p === '/idp/acme/authorize' && req.method === 'GET') {
      // The consent screen: approve at once and send the browser back with a code.
      const q = url.searchParams;
      if (q.get('client_id') !== CLIENT.id || q.get('response_type') !== 'code' || q.get('code_challenge_method') !== 'S256' || !q.get('code_challenge')) return error(400, 'invalid_request');
      const redirectUri = q.get('redirect_uri') ?? '';
      const code = `acme-code-${randomBytes(8).toString('hex')}`;
      this.codes.set(code, { challenge: q.get('code_challenge')!, redirectUri, scope: q.get('scope') ?? '' });
      const back = new URL(redirectUri);
      back.searchParams.set('code', code);
      back.searchParams.set('state', q.get('state') ?? '');
      back.searchParams.set('scope', q.get('scope') ?? '');
      return { status: 302, headers: { location: back.toString() } };
    }
    if (p === '/idp/acme/oauth/token' && req.method === 'POST') {
      const f = new URLSearchParams((await this.body(req)).toString('utf8'));
      if (f.get('client_id') !== CLIENT.id || f.get('client_secret') !== CLIENT.secret) return error(401, 'invalid_client');
      if (f.get('grant_type') === 'authorization_code') {
        const grant = this.codes.get(f.get('code') ?? '');
        this.codes.delete(f.get('code') ?? '');
        const verifier = f.get('code_verifier') ?? '';
        if (!grant || grant.redirectUri !== f.get('redirect_uri') || createHash('sha256').update(verifier).digest('base64url') !== grant.challenge) return error(400, 'invalid_grant');
        const refresh = `acme-rt-${randomBytes(8).toString('hex')}`;
        this.refreshTokens.add(refresh);
        return { status: 200, body: { access_token: this.issueAccessToken(), refresh_token: refresh, expires_in: 3599, scope: grant.scope, token_type: 'Bearer', id_token: await this.idToken() } };
      }
      if (f.get('grant_type') === 'refresh_token' && this.refreshTokens.has(f.get('refresh_token') ?? '')) {
        return { status: 200, body: { access_token: this.issueAccessToken(), expires_in: 3599, token_type: 'Bearer' } };
      }
      return error(400, 'invalid_grant');
    }
    if (p === '/idp/acme/oauth/revoke' && req.method === 'POST') {
      const token = url.searchParams.get('token') ?? new URLSearchParams((await this.body(req)).toString('utf8')).get('token') ?? '';
      if (!this.refreshTokens.delete(token) && !this.accessTokens.delete(token)) return error(400, 'invalid_token');
      this.revoked.push(token);
      this.accessTokens.clear();
      this.refreshTokens.clear();
      return { status: 200, body: {} };
    }
    return error(404, 'not_found');
  }

  /** The Gmail REST API v1 methods the connector uses (https://developers.google.com/gmail/api/reference/rest). */
  private async gmail(req: IncomingMessage): Promise<Answer> {
    const url = new URL(req.url ?? '/', this.gmailOrigin);
    const p = url.pathname;
    this.calls.push(`gmail ${req.method} ${p}`);
    const gmailError = (status: number, message: string) => ({ status, body: { error: { code: status, message, errors: [{ reason: 'notFound', message }] } } });
    const gmail = /^\/(upload\/)?gmail\/v1\/users\/me\/(.*)$/.exec(p);
    if (!gmail) return gmailError(404, 'Not Found');
    const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    if (!bearer || !this.accessTokens.has(bearer)) return { status: 401, body: { error: { code: 401, message: 'Request had invalid authentication credentials.', status: 'UNAUTHENTICATED' } } };
    const [, upload, rest] = gmail;
    const q = url.searchParams;
    if (rest === 'profile' && req.method === 'GET') {
      return { status: 200, body: { emailAddress: MAILBOX, messagesTotal: this.messages.length, threadsTotal: this.messages.length, historyId: String(this.historyId) } };
    }
    if (rest === 'watch' && req.method === 'POST') {
      const body = JSON.parse((await this.body(req)).toString('utf8')) as { topicName?: string; labelIds?: string[] };
      this.watchedTopic = body.topicName;
      return { status: 200, body: { historyId: String(this.historyId), expiration: String(Date.now() + 7 * 86_400_000) } };
    }
    if (rest === 'stop' && req.method === 'POST') {
      this.stopped = true;
      return { status: 204 };
    }
    if (rest === 'history' && req.method === 'GET') {
      const start = Number(q.get('startHistoryId'));
      const records = this.history.filter((h) => h.id > start).map((h) => {
        const m = this.messages.find((x) => x.id === h.messageId)!;
        const ref = { id: m.id, threadId: m.threadId, labelIds: m.labelIds };
        return { id: String(h.id), messages: [ref], messagesAdded: [{ message: ref }] };
      });
      return { status: 200, body: { ...(records.length ? { history: records } : {}), historyId: String(this.historyId) } };
    }
    if (rest === 'messages' && req.method === 'GET') {
      const query = q.get('q') ?? '';
      const label = q.getAll('labelIds');
      const after = /after:(\d+)/.exec(query)?.[1];
      const msgId = /rfc822msgid:(\S+)/.exec(query)?.[1];
      const found = this.messages.filter(
        (m) =>
          label.every((l) => m.labelIds.includes(l)) &&
          (after === undefined || m.internalDate >= Number(after) * 1000) &&
          (msgId === undefined || m.raw.toString('utf8').includes(`<${msgId}>`)),
      );
      return { status: 200, body: { ...(found.length ? { messages: found.map((m) => ({ id: m.id, threadId: m.threadId })) } : {}), resultSizeEstimate: found.length } };
    }
    if (rest === 'messages/send' && req.method === 'POST' && !upload) {
      const body = JSON.parse((await this.body(req)).toString('utf8')) as { raw?: string; threadId?: string };
      if (!body.raw) return gmailError(400, "'raw' RFC822 payload message string or uploading message via /upload/* URL required");
      const raw = Buffer.from(body.raw, 'base64url');
      const id = randomBytes(8).toString('hex');
      const threadId = body.threadId && this.messages.some((m) => m.threadId === body.threadId) ? body.threadId : id;
      this.sent.push({ threadId: body.threadId, raw });
      this.messages.push({ id, threadId, labelIds: ['SENT'], raw, internalDate: Date.now() });
      return { status: 200, body: { id, threadId, labelIds: ['SENT'] } };
    }
    const get = /^messages\/([^/]+)$/.exec(rest ?? '');
    if (get && req.method === 'GET') {
      const m = this.messages.find((x) => x.id === get[1]);
      if (!m) return gmailError(404, 'Requested entity was not found.');
      const meta = { id: m.id, threadId: m.threadId, labelIds: m.labelIds, snippet: '', sizeEstimate: m.raw.length, historyId: String(this.historyId), internalDate: String(m.internalDate) };
      return { status: 200, body: q.get('format') === 'raw' ? { ...meta, raw: m.raw.toString('base64url') } : meta };
    }
    return gmailError(404, `no such method: ${req.method} ${rest}`);
  }
}

const google = new GoogleCompatibleServer();
let svc: TestService;
let rx: Awaited<ReturnType<typeof startReceiver>>;
let tenant: { tenantId: string; apiKey: string };
let hook: Webhook;

beforeAll(async () => {
  await google.start();
  rx = await startReceiver();
  svc = await startTestService({
    env: {
      GOOGLE_CLIENT_ID: CLIENT.id,
      GOOGLE_CLIENT_SECRET: CLIENT.secret,
      GOOGLE_ISSUER_URL: google.issuer,
      GMAIL_API_URL: google.gmailApiUrl,
      GOOGLE_PUBSUB_TOPIC: TOPIC,
      GOOGLE_PUBSUB_AUDIENCE: PUSH.audience,
      GOOGLE_PUBSUB_SERVICE_ACCOUNT: PUSH.serviceAccount,
    },
  });
  tenant = await svc.createTenant({ name: 'Acme on a Google-compatible server' });
  const endpoint = await svc.api(tenant.apiKey, 'POST', '/v1/webhook-endpoints', { url: rx.url });
  expect(endpoint.status, JSON.stringify(endpoint.body)).toBe(201);
  hook = new Webhook(endpoint.body.secret as string);
}, 120_000);

afterAll(async () => {
  await svc?.close();
  await rx?.close();
  await google.close();
});

type Delivered = { type: string; mailboxId: string; data: Record<string, unknown> };

function delivered(): Delivered[] {
  return rx.received.map((r: ReceivedRequest) => hook.verify(r.body, r.headers) as Delivered);
}

/** Polls the webhook receiver (every 100 ms) for a delivered event. */
async function event(what: string, match: (e: Delivered) => boolean, timeoutMs = 60_000): Promise<Delivered> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const e = delivered().find(match);
    if (e) return e;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; delivered: ${delivered().map((d) => d.type).join(', ')}; calls: ${google.calls.join(', ')}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function mime(subject: string, messageId: string, body: string): Buffer {
  return Buffer.from(
    [`From: Ada Customer <ada@customer.example>`, `To: ${MAILBOX}`, `Subject: ${subject}`, `Message-ID: <${messageId}>`, `Date: ${new Date(Date.now() - 60_000).toUTCString()}`, 'MIME-Version: 1.0', 'Content-Type: text/plain; charset=utf-8', '', body, ''].join('\r\n'),
  );
}

// Each step waits up to a minute for the service's jobs on a loaded machine.
describe('the connector against a Google-compatible server that is not the stand-in', { timeout: 90_000 }, () => {
  let mailboxId: string;
  let firstMessageId: string;
  const first = google.deliver(mime('Order 1042 arrived damaged', 'order-1042@customer.example', 'The box was crushed.'));

  it('connects through the discovered endpoints: authorize with PKCE, code exchange, ID token verified with the discovered keys, watch', async () => {
    const session = await svc.api(tenant.apiKey, 'POST', '/v1/connect-sessions', { provider: 'google' });
    expect(session.status, JSON.stringify(session.body)).toBe(201);
    const start = await fetch(`${session.body.url as string}/start?provider=google`, { redirect: 'manual' });
    expect(start.status).toBe(302);
    const cookie = (start.headers.get('set-cookie') ?? '').split(';')[0]!;
    const authorize = new URL(start.headers.get('location')!);
    expect(`${authorize.origin}${authorize.pathname}`).toBe(`${google.issuer}/authorize`);
    const consent = await fetch(authorize, { redirect: 'manual' });
    expect(consent.status).toBe(302);
    const callback = await fetch(consent.headers.get('location')!, { redirect: 'manual', headers: { cookie } });
    expect(callback.status, await callback.clone().text()).toBeLessThan(400);

    const connected = await event('mailbox.connected', (e) => e.type === 'mailbox.connected');
    mailboxId = connected.mailboxId;
    const mailbox = await svc.api(tenant.apiKey, 'GET', `/v1/mailboxes/${mailboxId}`);
    expect(mailbox.body).toMatchObject({ provider: 'google', address: MAILBOX, status: 'active' });
    await google.until('users.watch', () => google.watchedTopic !== undefined);
    expect(google.watchedTopic).toBe(TOPIC);
    // Only the discovered layout was used: nothing at Google's or the stand-in's paths.
    expect(google.calls).toContain('idp GET /idp/acme/.well-known/openid-configuration');
    expect(google.calls).toContain('idp POST /idp/acme/oauth/token');
    expect(google.calls).toContain('idp GET /certs/jwks.json');
    expect(google.calls.filter((c) => !/^idp \w+ \/(idp\/acme|certs)\/|^gmail \w+ \/gmail\/v1\//.test(c))).toEqual([]);
  });

  it('syncs: the backfill reads the message as raw MIME, stores it and delivers message.received; a resync reads history.list', async () => {
    const received = await event('message.received', (e) => e.type === 'message.received' && e.data.subject === 'Order 1042 arrived damaged');
    expect(received.mailboxId).toBe(mailboxId);
    expect(String(received.data.internetMessageId)).toContain('order-1042@customer.example');
    expect(received.data).toMatchObject({ subject: 'Order 1042 arrived damaged', providerThreadId: first.threadId, from: { address: 'ada@customer.example' } });
    firstMessageId = received.data.messageId as string;
    const stored = await svc.api(tenant.apiKey, 'GET', `/v1/messages/${firstMessageId}`);
    expect(stored.status).toBe(200);
    expect(stored.body.text).toContain('The box was crushed.');
    expect(google.calls).toContain(`gmail GET /gmail/v1/users/me/messages/${first.id}`);

    const second = google.deliver(mime('Photos of the box', 'order-1042-photos@customer.example', 'Photos attached soon.'), first.threadId);
    const resync = await svc.api(tenant.apiKey, 'POST', `/v1/mailboxes/${mailboxId}/resync`);
    expect(resync.status, JSON.stringify(resync.body)).toBeLessThan(300);
    const next = await event('the second message.received', (e) => e.type === 'message.received' && e.data.subject === 'Photos of the box');
    expect(next.data).toMatchObject({ subject: 'Photos of the box', providerThreadId: first.threadId, threadKey: received.data.threadKey });
    expect(google.calls).toContain('gmail GET /gmail/v1/users/me/history');
    expect(google.calls).toContain(`gmail GET /gmail/v1/users/me/messages/${second.id}`);
    // Stored once each, however often the message was listed.
    expect(delivered().filter((e) => e.type === 'message.received')).toHaveLength(2);
  });

  it('sends a reply: the MIME reaches the server in the same Gmail thread, threaded by In-Reply-To/References', async () => {
    const reply = await svc.api(tenant.apiKey, 'POST', `/v1/messages/${firstMessageId}/reply`, { text: 'A replacement is on its way.' }, { 'idempotency-key': 'acme-reply-1' });
    expect(reply.status, JSON.stringify(reply.body)).toBe(202);
    const sentEvent = await event('message.sent', (e) => e.type === 'message.sent');
    expect((await svc.api(tenant.apiKey, 'GET', `/v1/outbound/${reply.body.outboundId as string}`)).body).toMatchObject({ status: 'sent' });
    expect(sentEvent.mailboxId).toBe(mailboxId);
    expect(google.sent).toHaveLength(1);
    expect(google.sent[0]!.threadId).toBe(first.threadId);
    const parsed = await simpleParser(google.sent[0]!.raw);
    expect(parsed.inReplyTo).toBe('<order-1042@customer.example>');
    expect([parsed.references ?? []].flat()).toContain('<order-1042@customer.example>');
    expect(parsed.subject).toBe('Re: Order 1042 arrived damaged');
    expect(parsed.from?.value[0]?.address).toBe(MAILBOX);
    expect(parsed.text).toContain('A replacement is on its way.');
  });

  it('a Pub/Sub push signed with the issuer’s own key (its jwks_uri) is accepted and syncs the new message; a forged one is refused', async () => {
    const third = google.deliver(mime('Is there an update?', 'order-1042-update@customer.example', 'Any news on the replacement?'), first.threadId);
    const envelope = {
      message: { data: Buffer.from(JSON.stringify({ emailAddress: MAILBOX, historyId: String(google.historyId) })).toString('base64'), messageId: '9001' },
      subscription: 'projects/acme-idp/subscriptions/gmail-push',
    };
    const push = (token: string) => fetch(`${svc.url}/push/google`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(envelope) });
    // Signed by another key with the same kid, or for another audience or service account: refused, nothing synced.
    const stranger = (await generateKeyPair('RS256')).privateKey;
    expect((await push(await google.pushToken({ ...PUSH, email: PUSH.serviceAccount, key: stranger }))).status).toBe(401);
    expect((await push(await google.pushToken({ audience: 'https://elsewhere.example/push', email: PUSH.serviceAccount }))).status).toBe(401);
    expect((await push(await google.pushToken({ audience: PUSH.audience, email: 'someone@acme-idp.example' }))).status).toBe(401);
    const accepted = await push(await google.pushToken({ audience: PUSH.audience, email: PUSH.serviceAccount }));
    expect(accepted.status, await accepted.clone().text()).toBe(204);
    const received = await event('the pushed message.received', (e) => e.type === 'message.received' && e.data.subject === 'Is there an update?');
    expect(received.mailboxId).toBe(mailboxId);
    expect(google.calls).toContain(`gmail GET /gmail/v1/users/me/messages/${third.id}`);
  });

  it('disconnects: the watch is stopped and the grant revoked at the discovered revocation endpoint', async () => {
    const del = await svc.api(tenant.apiKey, 'DELETE', `/v1/mailboxes/${mailboxId}`);
    expect(del.status, JSON.stringify(del.body)).toBe(202);
    await event('mailbox.purged', (e) => e.type === 'mailbox.purged');
    expect(google.revoked).toHaveLength(1);
    expect(google.calls).toContain('idp POST /idp/acme/oauth/revoke');
    expect(google.stopped).toBe(true);
  });
});
