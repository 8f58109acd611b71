// Every unexpected 2xx body from Gmail or Graph becomes a ProviderError with reason
// `unexpected_response` (retryable: kind `transient`), never a raw ZodError, and never echoes the
// body. The bodies are served over real HTTP by a small server of this test (the stand-ins answer
// only well-formed shapes) and read through the real client libraries.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ZodError } from 'zod';
import { GmailAdapter } from '../../src/providers/google/gmail.adapter.js';
import { GmailWatchAdapter } from '../../src/providers/google/gmail-watch.adapter.js';
import { sandboxGoogleEndpoints } from '../../src/providers/google/google-endpoints.js';
import { GraphSubscriptionsAdapter } from '../../src/providers/microsoft/graph-subscriptions.adapter.js';
import { GraphAdapter } from '../../src/providers/microsoft/graph.adapter.js';
import { sandboxMicrosoftEndpoints } from '../../src/providers/microsoft/microsoft-endpoints.js';
import { isProviderError, type ProviderError } from '../../src/providers/provider-error.js';

const SECRET = 'Subject: quarterly numbers';
let answer: (req: IncomingMessage) => { status: number; body: unknown };
let server: Server;
let base: string;

beforeAll(async () => {
  server = createServer((req: IncomingMessage, res: ServerResponse) => {
    req.resume();
    req.on('end', () => {
      const a = answer(req);
      res.writeHead(a.status, { 'content-type': 'application/json' });
      res.end(a.body === undefined ? '' : JSON.stringify(a.body));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise((r) => server.close(r));
});

async function failure(p: Promise<unknown>): Promise<ProviderError> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  expect(err).not.toBeInstanceOf(ZodError);
  if (!isProviderError(err)) throw new Error(`expected a ProviderError, got ${String(err)}`);
  expect(err).toMatchObject({ kind: 'transient', reason: 'unexpected_response' });
  expect(err.message).not.toContain('quarterly');
  return err;
}

function graph(): GraphAdapter {
  const endpoints = sandboxMicrosoftEndpoints({ authority: 'https://127.0.0.1:1/t', graphBaseUrl: base, caCertPem: '', msal: { knownAuthorities: [], cloudDiscoveryMetadata: '{}' } });
  return new GraphAdapter({ endpoints, accessToken: async () => 'token', runner: { maxRetries: 0 } });
}

describe('Graph: unexpected response shapes are provider errors', () => {
  it('/me with a number for mail, a delta page with neither link, a list without value', async () => {
    answer = () => ({ status: 200, body: { mail: 5, displayName: SECRET } });
    expect((await failure(graph().getAddress())).message).toContain('mail');
    answer = () => ({ status: 200, body: { value: [{ id: 'x', subject: SECRET }] } });
    expect((await failure(graph().currentCursor())).message).toContain('@odata.deltaLink');
    answer = () => ({ status: 200, body: { items: [] } });
    expect((await failure(graph().listWindow(new Date(0)))).message).toContain('value');
  });

  it('a message search with an item lacking its id is an error, not "not sent" (which would send twice)', async () => {
    answer = () => ({ status: 200, body: { value: [{ subject: SECRET }] } });
    await failure(graph().findByInternetMessageId('<a@b>'));
  });

  it('a subscription created without expirationDateTime', async () => {
    answer = () => ({ status: 201, body: { id: 'sub', resource: SECRET } });
    const endpoints = sandboxMicrosoftEndpoints({ authority: 'https://127.0.0.1:1/t', graphBaseUrl: base, caCertPem: '', msal: { knownAuthorities: [], cloudDiscoveryMetadata: '{}' } });
    const subs = new GraphSubscriptionsAdapter({ endpoints, accessToken: async () => 'token' });
    await failure(
      subs.create({ notificationUrl: 'https://x.example/push', lifecycleNotificationUrl: 'https://x.example/life', clientState: 's', expiresAt: new Date(Date.now() + 3_600_000) }),
    );
  });
});

describe('Gmail: unexpected response shapes are provider errors', () => {
  it('getProfile without emailAddress, send with a non-string id, watch without expiration', async () => {
    const endpoints = sandboxGoogleEndpoints(base);
    const gmail = new GmailAdapter({ endpoints, accessToken: async () => 'token' });
    answer = () => ({ status: 200, body: { messagesTotal: 3, snippet: SECRET } });
    expect((await failure(gmail.getAddress())).message).toContain('emailAddress');
    answer = () => ({ status: 200, body: { id: 5, threadId: 't', snippet: SECRET } });
    expect((await failure(gmail.send({ mime: Buffer.from('x'), internetMessageId: '<a@b>' }))).message).toContain('messages.send');
    answer = () => ({ status: 200, body: { historyId: '5' } });
    const watch = new GmailWatchAdapter({ endpoints, accessToken: async () => 'token' });
    expect((await failure(watch.watch('projects/p/topics/t'))).message).toContain('expiration');
  });
});
