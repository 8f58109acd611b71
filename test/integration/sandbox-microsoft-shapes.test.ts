import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMicrosoftSandbox, type MicrosoftSandbox } from '../../src/sandbox/microsoft/microsoft-sandbox.js';
import { corpusMissingReason, missing } from '../helpers/requirements.js';
import { corpusDir } from '../helpers/shared-dir.js';

/**
 * The stand-in must answer with the same fields as the real service. The recorded/documented
 * bodies are used in place from the shared corpus (never copied into the repo).
 */
const CORPUS = pathToFileURL(`${corpusDir()}/`);
const corpusFile = (p: string): URL => new URL(p, CORPUS);
const corpusMissing = corpusMissingReason('graph-mocks', 'graph-v1_0-mail-proxy-mocks.json');

interface Mock {
  request: { url: string; method?: string };
  response: { statusCode: number; body?: unknown };
}

function mocks(file: string): Mock[] {
  return (JSON.parse(readFileSync(corpusFile(file), 'utf8')) as { mocks: Mock[] }).mocks;
}

function mockBody(file: string, method: string, path: string): Record<string, unknown> {
  const url = `https://graph.microsoft.com/v1.0${path}`;
  const m = mocks(file).find((x) => (x.request.method ?? 'GET') === method && x.request.url === url);
  if (!m) throw new Error(`no mock for ${method} ${path}`);
  const body = typeof m.response.body === 'string' ? (JSON.parse(m.response.body) as unknown) : m.response.body;
  return body as Record<string, unknown>;
}

const json = (p: string): Record<string, unknown> => JSON.parse(readFileSync(corpusFile(p), 'utf8')) as Record<string, unknown>;
const keys = (o: unknown): string[] => Object.keys(o as Record<string, unknown>).sort();
/** OData control annotations the documentation samples often trim. */
const withoutContext = (o: unknown): string[] => keys(o).filter((k) => k !== '@odata.context');
const first = (o: Record<string, unknown>): Record<string, unknown> => (o.value as Array<Record<string, unknown>>)[0] ?? {};

let sb: MicrosoftSandbox;
let token = '';
let inboundId = '';
const notifications: Array<{ path: string; body: Record<string, unknown> }> = [];
let receiver: Server;
let receiverBase = '';
const EMAIL = 'megan@contoso.test';

async function graph(method: string, path: string, body?: unknown): Promise<Record<string, unknown>> {
  const res = await fetch(`${sb.graphBaseUrl}/v1.0${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!res.ok) throw new Error(`${method} ${path} → ${res.status}`);
  const text = await res.text();
  return text ? (JSON.parse(text) as Record<string, unknown>) : {};
}

beforeAll(async () => {
  sb = await startMicrosoftSandbox();
  sb.createUser(EMAIL, 'Megan Bowen');
  token = sb.issueAccessToken(EMAIL);
  inboundId = (await sb.deliver(EMAIL, Buffer.from('From: Desmond <desmond@fabrikam.test>\r\nTo: megan@contoso.test\r\nSubject: Attached is the requested info\r\nMessage-ID: <shape-1@fabrikam.test>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nSee attached.\r\n--b\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename="a.bin"\r\nContent-Transfer-Encoding: base64\r\n\r\nAAEC\r\n--b--\r\n'))).id;
  receiver = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const token = url.searchParams.get('validationToken');
    if (token !== null) {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(token);
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      notifications.push({ path: url.pathname, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown> });
      res.writeHead(202).end();
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', () => r()));
  receiverBase = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await sb?.close();
  receiver?.closeAllConnections();
  await new Promise((r) => receiver?.close(r));
});

async function waitFor(pred: () => boolean): Promise<void> {
  const end = Date.now() + 5000;
  while (!pred()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe.skipIf(missing('the recorded Graph bodies (shared corpus)', corpusMissing))('stand-in response shapes match recorded and documented Graph bodies', () => {
  const MOCKS = 'graph-mocks/graph-v1_0-mail-proxy-mocks.json';

  it('GET /me has the fields of the documented user response', async () => {
    expect(keys(await graph('GET', '/me'))).toEqual(keys(mockBody('graph-mocks/graph-sample-proxy-mocks-sandbox.json', 'GET', '/me')));
  });

  it('GET /me/messages/{id} has the fields of a message (the sample is an eventMessage: its two extra fields excluded)', async () => {
    const theirs = keys(mockBody(MOCKS, 'GET', '/me/messages/*')).filter((k) => k !== '@odata.type' && k !== 'meetingMessageType');
    const ours = keys(await graph('GET', `/me/messages/${encodeURIComponent(inboundId)}`));
    // `flag` is part of every v1.0 message resource; the 2017 sample predates it.
    expect(ours.filter((k) => k !== 'flag')).toEqual(theirs);
  });

  it('delta with $select=id matches the recorded delta page (item and page fields)', async () => {
    const recorded = json('graph-api-recorded/twentyhq-twenty/messages-delta.json');
    const ours = await graph('GET', '/me/mailFolders/inbox/messages/delta?$select=id');
    expect(keys(ours)).toEqual(keys(recorded));
    expect(keys(first(ours))).toEqual(keys(first(recorded)));
  });

  it('a delta page with nextLink and $select has the documented fields (plus id and etag Graph always adds)', async () => {
    await sb.deliver(EMAIL, Buffer.from('From: a@fabrikam.test\r\nSubject: second\r\n\r\nx\r\n'));
    const mock = mockBody(MOCKS, 'GET', '/me/mailFolders/*/messages/delta');
    const fields = keys(first(mock));
    const res = await fetch(`${sb.graphBaseUrl}/v1.0/me/mailFolders/inbox/messages/delta?$select=${fields.join(',')}`, { headers: { authorization: `Bearer ${token}`, prefer: 'odata.maxpagesize=1' } });
    const ours = (await res.json()) as Record<string, unknown>;
    expect(withoutContext(ours)).toEqual(keys(mock));
    expect(keys(first(ours))).toEqual([...fields, '@odata.etag', '@odata.type', 'id'].sort());
  });

  it('a folder message list with $select has the documented item fields', async () => {
    const mock = mockBody(MOCKS, 'GET', '/me/mailFolders/*/messages');
    const fields = keys(first(mock));
    const ours = await graph('GET', `/me/mailFolders/inbox/messages?$select=${fields.join(',')}`);
    expect(keys(first(ours)).filter((k) => k !== '@odata.etag' && k !== 'id')).toEqual(fields);
  });

  it('attachments, upload session and createReply answer with the documented fields', async () => {
    const list = await graph('GET', `/me/messages/${encodeURIComponent(inboundId)}/attachments`);
    expect(keys(first(list))).toEqual(keys(first(mockBody(MOCKS, 'GET', '/me/messages/*/attachments'))));
    expect(keys(first(list))).toEqual(withoutContext(mockBody(MOCKS, 'GET', '/me/messages/*/attachments/*')));

    const reply = await graph('POST', `/me/messages/${encodeURIComponent(inboundId)}/createReply`, { comment: 'ok' });
    for (const k of keys(mockBody(MOCKS, 'POST', '/me/messages/*/createReply'))) expect(keys(reply)).toContain(k);
    const session = await graph('POST', `/me/messages/${encodeURIComponent(String(reply.id))}/attachments/createUploadSession`, { AttachmentItem: { attachmentType: 'file', name: 'big.bin', size: 4 * 1024 * 1024 } });
    expect(keys(session)).toEqual(keys(mockBody(MOCKS, 'POST', '/me/messages/*/attachments/createUploadSession')));
  });

  it('subscription create, renew and list answer with the documented fields; notifications match the documented bodies', async () => {
    const created = await graph('POST', '/subscriptions', {
      changeType: 'created',
      notificationUrl: `${receiverBase}/notify`,
      lifecycleNotificationUrl: `${receiverBase}/lifecycle`,
      resource: "/me/mailfolders('inbox')/messages",
      expirationDateTime: new Date(Date.now() + 3600_000).toISOString(),
      clientState: 'secretClientValue',
    });
    for (const k of keys(mockBody(MOCKS, 'POST', '/subscriptions'))) expect(keys(created)).toContain(k);
    const renewed = await graph('PATCH', `/subscriptions/${String(created.id)}`, { expirationDateTime: new Date(Date.now() + 7200_000).toISOString() });
    expect(withoutContext(renewed)).toEqual(keys(mockBody(MOCKS, 'PATCH', '/subscriptions/*')));
    const list = await graph('GET', '/subscriptions');
    expect(keys(first(list))).toEqual(keys(first(mockBody(MOCKS, 'GET', '/subscriptions'))));

    await sb.deliver(EMAIL, Buffer.from('From: a@fabrikam.test\r\nSubject: third\r\n\r\nx\r\n'));
    await waitFor(() => notifications.some((n) => n.path === '/notify'));
    const documented = json('api-docs-samples/graph/change-notification-message-created.json');
    const change = first(notifications.find((n) => n.path === '/notify')?.body ?? {});
    expect(keys(change)).toEqual(keys(first(documented)));
    expect(keys(change.resourceData)).toEqual(keys(first(documented).resourceData));

    const samples = {
      reauthorizationRequired: 'api-docs-samples/graph/lifecycle-reauthorizationRequired.json',
      missed: 'api-docs-samples/graph/lifecycle-missed.DERIVED.json',
      subscriptionRemoved: 'api-docs-samples/graph/lifecycle-subscriptionRemoved.DERIVED.json',
    } as const;
    for (const event of Object.keys(samples) as Array<keyof typeof samples>) sb.sendLifecycleNotification(String(created.id), event);
    await waitFor(() => notifications.filter((n) => n.path === '/lifecycle').length === 3);
    for (const [event, file] of Object.entries(samples)) {
      const got = notifications.find((n) => n.path === '/lifecycle' && first(n.body).lifecycleEvent === event);
      expect(keys(first(got?.body ?? {}))).toEqual(keys(first(json(file))));
      expect(keys(got?.body)).toEqual(keys(json(file)));
    }
  });
});
