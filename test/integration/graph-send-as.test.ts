// Microsoft 365 send-as (issue 15 item 4), through the real Graph client (and MSAL for sign-in)
// against the Graph stand-in: a user mailbox's SMTP aliases (proxyAddresses), Exchange's Send As /
// Send on Behalf of a shared mailbox (`from` / `sender`), ErrorSendAsDenied; then end to end over
// HTTP → send request → outbound record → `send.outbound` worker → the stand-in, on a real database.
import { randomUUID } from 'node:crypto';
import { ConfidentialClientApplication } from '@azure/msal-node';
import { simpleParser, type AddressObject } from 'mailparser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sendModule } from '../../src/bootstrap/send.module.js';
import { tenancyModule } from '../../src/bootstrap/tenancy.module.js';
import { MAILBOX_ADDRESS_AAD, MESSAGE_CONTENT_AAD, encodeMessageContent, type MessageContent } from '../../src/mailboxes/message-content.js';
import type { MailProvider } from '../../src/providers/mail-provider.port.js';
import { SEND_AS_DENIED } from '../../src/providers/microsoft/graph-send-as.js';
import { GraphAdapter } from '../../src/providers/microsoft/graph.adapter.js';
import { sandboxMicrosoftEndpoints } from '../../src/providers/microsoft/microsoft-endpoints.js';
import { buildMsalConfiguration } from '../../src/providers/microsoft/msal-config.js';
import { isProviderError } from '../../src/providers/provider-error.js';
import { startMicrosoftSandbox, type MicrosoftSandbox } from '../../src/sandbox/microsoft/microsoft-sandbox.js';
import { newId } from '../../src/storage/ids.js';
import { startTestService, type TestService } from '../helpers/test-service.js';
import { waitUntil } from '../helpers/wait.js';
import { cleanScanner, outboundSettled } from '../helpers/outbound.js';
import { msalSignIn } from '../helpers/msal-sign-in.js';

const REDIRECT = 'http://127.0.0.1:7777/connect/microsoft/callback';
const GRAPH = 'https://graph.microsoft.com';
// What the connector asks a user for (scope-policy.ts), and a shared-mailbox member in addition.
const OWN = [`${GRAPH}/Mail.Read`, `${GRAPH}/Mail.Send`, `${GRAPH}/User.Read`];
const SHARED = [...OWN, `${GRAPH}/Mail.Read.Shared`, `${GRAPH}/Mail.Send.Shared`];
const SUPPORT = 'support@contoso.test';

let sb: MicrosoftSandbox;
let svc: TestService;
let tenant: { tenantId: string; apiKey: string };
const tokens = new Map<string, string>();

function adapter(token: string): GraphAdapter {
  return new GraphAdapter({ endpoints: sandboxMicrosoftEndpoints(sb), accessToken: async () => token, runner: { maxRetries: 0 } });
}

async function providerFor(mailbox: { id: string; provider: 'google' | 'microsoft' }): Promise<MailProvider> {
  const token = tokens.get(mailbox.id);
  if (!token || mailbox.provider !== 'microsoft') throw new Error(`no sandbox token for ${mailbox.id}`);
  return adapter(token);
}

beforeAll(async () => {
  sb = await startMicrosoftSandbox({ clients: [{ clientId: 'app-1', clientSecret: 's3cret', redirectUris: [REDIRECT] }] });
  sb.createSharedMailbox(SUPPORT, 'Contoso Support');
  svc = await startTestService({
    modules: async (core, services) => [
      tenancyModule(core),
      sendModule(core, services, { providers: providerFor, scanner: cleanScanner, sender: { baseDelayMs: 50, maxDelayMs: 500 }, sendAs: { missRefreshMs: 0 } }),
    ],
  });
  tenant = await svc.createTenant({ name: 'Contoso helpdesk' });
}, 120_000);

afterAll(async () => {
  await svc?.close();
  await sb?.close();
});

/** Signs in through the consent page with the real MSAL confidential client; returns the access token. */
const signIn = (email: string, scopes: string[]): Promise<string> => msalSignIn(sb, { clientId: 'app-1', clientSecret: 's3cret', redirectUri: REDIRECT }, email, scopes);

function mime(from: string, id: string, extra: string[] = []): Buffer {
  return Buffer.from([`From: ${from}`, 'To: carla@customer.example', 'Subject: Re: Order #1234', `Message-ID: ${id}`, ...extra, '', 'A replacement is on its way.', ''].join('\r\n'));
}

async function headersOf(raw: Buffer): Promise<{ from: string | undefined; sender: string | undefined; inReplyTo: string | undefined }> {
  const parsed = await simpleParser(raw);
  const sender = parsed.headers.get('sender') as AddressObject | undefined;
  return { from: (parsed.from as AddressObject | undefined)?.value[0]?.address, sender: sender?.value[0]?.address, inReplyTo: parsed.inReplyTo };
}

async function refusal(p: Promise<unknown>) {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!isProviderError(err)) throw new Error(`expected a ProviderError, got ${String(err)}`);
  return err;
}

describe('Graph stand-in and adapter: aliases, Send As, Send on Behalf', () => {
  it('lists a user mailbox’s SMTP proxy addresses with the connector’s own scopes (User.Read); a shared mailbox lists none', async () => {
    sb.createUser('alice@contoso.test', 'Alice Agent');
    sb.setAliases('alice@contoso.test', ['sales@contoso.test', 'Orders@Contoso.test']);
    const graph = adapter(await signIn('alice@contoso.test', OWN));
    expect(await graph.listSendAs()).toEqual([
      { address: 'alice@contoso.test', displayName: undefined, isPrimary: true, verified: true },
      { address: 'sales@contoso.test', displayName: undefined, isPrimary: false, verified: true },
      { address: 'Orders@Contoso.test', displayName: undefined, isPrimary: false, verified: true },
    ]);
    sb.setSharedMember(SUPPORT, 'alice@contoso.test', true);
    const shared = new GraphAdapter({ endpoints: sandboxMicrosoftEndpoints(sb), accessToken: async () => signIn('alice@contoso.test', SHARED), sharedMailbox: SUPPORT });
    expect(await shared.listSendAs()).toEqual([]);
    sb.setSharedMember(SUPPORT, 'alice@contoso.test', false);
  });

  it('an alias keeps its From only where the organization enabled SendFromAliasEnabled; otherwise Exchange rewrites it to the primary address', async () => {
    sb.createUser('bob@contoso.test', 'Bob Agent');
    sb.setAliases('bob@contoso.test', ['billing@contoso.test']);
    const graph = adapter(await signIn('bob@contoso.test', OWN));
    sb.setSendFromAliasEnabled(true);
    const first = await graph.send({ mime: mime('Billing <billing@contoso.test>', '<alias-1@connector.test>'), internetMessageId: '<alias-1@connector.test>' });
    sb.setSendFromAliasEnabled(false);
    const second = await graph.send({ mime: mime('Billing <billing@contoso.test>', '<alias-2@connector.test>'), internetMessageId: '<alias-2@connector.test>' });
    // The adapter reads the From of the Sent Items copy back: that is how a rewrite shows.
    expect(first.sentFrom).toBe('billing@contoso.test');
    expect(second.sentFrom).toBe('bob@contoso.test');
    const [kept, rewritten] = sb.sentMessages('bob@contoso.test');
    expect(kept).toMatchObject({ from: 'billing@contoso.test', sender: 'billing@contoso.test' });
    expect((await headersOf(kept!.mime)).from).toBe('billing@contoso.test');
    expect(rewritten).toMatchObject({ from: 'bob@contoso.test' });
    expect((await headersOf(rewritten!.mime)).from).toBe('bob@contoso.test');
  });

  it('Send on Behalf: from = the shared mailbox, sender = the member, in the Sent Items copy and the MIME; a reply (POST /reply with MIME, no draft) keeps its threading headers and conversation', async () => {
    sb.createUser('dana@contoso.test', 'Dana Member');
    sb.setSendRight(SUPPORT, 'dana@contoso.test', 'SendOnBehalf');
    const question = await sb.deliver('dana@contoso.test', Buffer.from(['From: carla@customer.example', 'To: dana@contoso.test', 'Subject: Order #1234', 'Message-ID: <q-1@customer.example>', '', 'Where is it?', ''].join('\r\n')));
    const graph = adapter(await signIn('dana@contoso.test', SHARED));
    const result = await graph.send({
      mime: mime(`Contoso Support <${SUPPORT}>`, '<obo-1@connector.test>', ['In-Reply-To: <q-1@customer.example>', 'References: <q-1@customer.example>']),
      internetMessageId: '<obo-1@connector.test>',
      replyToProviderMessageId: question.id,
    });
    expect(result.providerThreadId).toBe(question.conversationId);
    const [sent] = sb.sentMessages('dana@contoso.test');
    expect(sent).toMatchObject({ via: 'reply', from: SUPPORT, sender: 'dana@contoso.test', conversationId: question.conversationId });
    expect(await headersOf(sent!.mime)).toEqual({ from: SUPPORT, sender: 'dana@contoso.test', inReplyTo: '<q-1@customer.example>' });
    const copy = sb.mailbox('dana@contoso.test').find((m) => m.internetMessageId === '<obo-1@connector.test>');
    expect(copy?.folder).toBe('sentitems');
    expect(sb.mailbox('dana@contoso.test').filter((m) => m.isDraft)).toHaveLength(0);
  });

  it('Send As: from = sender = the shared mailbox, no Sender header; without Send As or Mail.Send.Shared, 403 ErrorSendAsDenied becomes send_as_denied and nothing is sent', async () => {
    sb.createUser('erin@contoso.test', 'Erin Member');
    sb.setSendRight(SUPPORT, 'erin@contoso.test', 'SendAs');
    await adapter(await signIn('erin@contoso.test', SHARED)).send({ mime: mime(SUPPORT, '<as-1@connector.test>'), internetMessageId: '<as-1@connector.test>' });
    const [sent] = sb.sentMessages('erin@contoso.test');
    expect(sent).toMatchObject({ via: 'sendMail', from: SUPPORT, sender: SUPPORT });
    expect(await headersOf(sent!.mime)).toMatchObject({ from: SUPPORT, sender: undefined });

    // Send As granted, but the token lacks Mail.Send.Shared.
    const unscoped = await refusal(adapter(await signIn('erin@contoso.test', OWN)).send({ mime: mime(SUPPORT, '<as-2@connector.test>'), internetMessageId: '<as-2@connector.test>' }));
    expect(unscoped).toMatchObject({ kind: 'invalid_request', status: 403, reason: SEND_AS_DENIED });

    sb.createUser('frank@contoso.test');
    const graph = adapter(await signIn('frank@contoso.test', SHARED));
    const denied = await refusal(graph.send({ mime: mime(SUPPORT, '<as-3@connector.test>'), internetMessageId: '<as-3@connector.test>' }));
    expect(denied).toMatchObject({ kind: 'invalid_request', status: 403, reason: SEND_AS_DENIED });
    expect(denied.message).not.toContain(SUPPORT);
    // An address outside the organization is refused the same way.
    expect(await refusal(graph.send({ mime: mime('ceo@elsewhere.test', '<as-4@connector.test>'), internetMessageId: '<as-4@connector.test>' }))).toMatchObject({ reason: SEND_AS_DENIED });
    expect(sb.sentMessages('frank@contoso.test')).toHaveLength(0);
    expect(sb.mailbox('frank@contoso.test').filter((m) => m.folder === 'sentitems')).toHaveLength(0);
  });
});

describe('organization install (app-only Mail.Send): Exchange checks the added mailbox’s own permissions', () => {
  it('sends and replies from another address only where the mailbox holds Send As / Send on Behalf on it', async () => {
    sb.createUser('desk@contoso.test', 'Front Desk');
    sb.createSharedMailbox('billing-team@contoso.test', 'Billing Team');
    sb.grantAdminConsent('app-1');
    const cca = new ConfidentialClientApplication(buildMsalConfiguration({ clientId: 'app-1', clientSecret: 's3cret', endpoints: sandboxMicrosoftEndpoints(sb) }));
    const token = async () => (await cca.acquireTokenByClientCredential({ scopes: [`${GRAPH}/.default`], authority: sb.authority }))!.accessToken;
    const graph = new GraphAdapter({ endpoints: sandboxMicrosoftEndpoints(sb), accessToken: token, sharedMailbox: 'desk@contoso.test', appOnly: true, runner: { maxRetries: 0 } });
    expect(await graph.listSendAs()).toEqual([]);

    const denied = await refusal(graph.send({ mime: mime('billing-team@contoso.test', '<app-1@connector.test>'), internetMessageId: '<app-1@connector.test>' }));
    expect(denied).toMatchObject({ status: 403, reason: SEND_AS_DENIED });
    // A reply (POST /users/desk/messages/{id}/reply with MIME) is checked the same way: refused, nothing stays behind.
    const question = await sb.deliver('desk@contoso.test', Buffer.from(['From: carla@customer.example', 'To: desk@contoso.test', 'Subject: Order #1234', 'Message-ID: <q-app@customer.example>', '', 'Where is it?', ''].join('\r\n')));
    const replyMime = (id: string) => mime('billing-team@contoso.test', id, ['In-Reply-To: <q-app@customer.example>', 'References: <q-app@customer.example>']);
    expect(await refusal(graph.send({ mime: replyMime('<app-r1@connector.test>'), internetMessageId: '<app-r1@connector.test>', replyToProviderMessageId: question.id }))).toMatchObject({ status: 403, reason: SEND_AS_DENIED });
    expect(sb.sentMessages('desk@contoso.test')).toHaveLength(0);
    expect(sb.mailbox('desk@contoso.test').filter((m) => m.isDraft || m.folder === 'drafts' || m.folder === 'sentitems')).toHaveLength(0);
    sb.setSendRight('billing-team@contoso.test', 'desk@contoso.test', 'SendOnBehalf');
    await graph.send({ mime: mime('billing-team@contoso.test', '<app-2@connector.test>'), internetMessageId: '<app-2@connector.test>' });
    expect(sb.sentMessages('desk@contoso.test')).toMatchObject([{ from: 'billing-team@contoso.test', sender: 'desk@contoso.test' }]);
    const result = await graph.send({ mime: replyMime('<app-r2@connector.test>'), internetMessageId: '<app-r2@connector.test>', replyToProviderMessageId: question.id });
    expect(sb.sentMessages('desk@contoso.test').at(-1)).toMatchObject({ via: 'reply', from: 'billing-team@contoso.test', sender: 'desk@contoso.test', conversationId: question.conversationId });
    expect(result.providerThreadId).toBe(question.conversationId);
  });
});

describe('the stand-in’s HTTP control surface for send-as', () => {
  it('sets aliases, Send on Behalf and SendFromAliasEnabled over /_sandbox, validating the body', async () => {
    const put = (path: string, body: unknown) => fetch(`${sb.graphBaseUrl}/_sandbox${path}`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    sb.createUser('lena@contoso.test');
    expect((await put('/users/lena@contoso.test/aliases', { aliases: ['team@contoso.test'] })).status).toBe(204);
    expect((await put('/users/lena@contoso.test/aliases', { aliases: ['not an address'] })).status).toBe(400);
    expect((await put(`/users/${SUPPORT}/send-rights`, { trustee: 'lena@contoso.test', right: 'SendOnBehalf' })).status).toBe(204);
    expect((await put(`/users/${SUPPORT}/send-rights`, { trustee: 'lena@contoso.test', right: 'SendForever' })).status).toBe(400);
    expect((await put('/organization/send-from-alias', { enabled: true })).status).toBe(204);

    const graph = adapter(await signIn('lena@contoso.test', SHARED));
    expect((await graph.listSendAs()).map((a) => a.address)).toEqual(['lena@contoso.test', 'team@contoso.test']);
    await graph.send({ mime: mime(SUPPORT, '<ctl-1@connector.test>'), internetMessageId: '<ctl-1@connector.test>' });
    await graph.send({ mime: mime('team@contoso.test', '<ctl-2@connector.test>'), internetMessageId: '<ctl-2@connector.test>' });
    expect(sb.sentMessages('lena@contoso.test').map((s) => ({ from: s.from, sender: s.sender }))).toEqual([
      { from: SUPPORT, sender: 'lena@contoso.test' },
      { from: 'team@contoso.test', sender: 'team@contoso.test' },
    ]);
    expect((await put(`/users/${SUPPORT}/send-rights`, { trustee: 'lena@contoso.test', right: null })).status).toBe(204);
    expect(await refusal(graph.send({ mime: mime(SUPPORT, '<ctl-3@connector.test>'), internetMessageId: '<ctl-3@connector.test>' }))).toMatchObject({ reason: SEND_AS_DENIED });
  });
});

async function connectMicrosoft(address: string, scopes: string[]): Promise<string> {
  const id = newId('mailbox');
  await svc.core.prisma.mailbox.create({
    data: {
      id,
      tenantId: tenant.tenantId,
      provider: 'microsoft',
      addressEnc: new Uint8Array(await svc.core.dataKeys.encryptFor({ type: 'mailbox', id }, address, MAILBOX_ADDRESS_AAD(id))),
      addressIndex: svc.core.blindIndex.emailIndex(address),
      grantedScopes: scopes,
    },
  });
  tokens.set(id, await signIn(address, scopes));
  return id;
}

let seq = 0;
/** A customer message delivered to the stand-in and stored as ingest leaves it. */
async function inbound(mailboxId: string, agent: string, customer = 'carla@customer.example'): Promise<{ messageId: string; providerMessageId: string; conversationId: string; internetMessageId: string }> {
  const internetMessageId = `<orig-${++seq}-${Date.now()}@customer.example>`;
  const subject = 'Order #1234 arrived damaged';
  const delivered = await sb.deliver(
    agent,
    Buffer.from([`From: Carla Customer <${customer}>`, `To: ${agent}`, `Subject: ${subject}`, `Message-ID: ${internetMessageId}`, 'Date: Sat, 28 Nov 2026 09:00:00 +0000', '', 'My order arrived damaged.', ''].join('\r\n')),
  );
  const messageId = newId('message');
  const content: MessageContent = {
    v: 1,
    internetMessageId,
    messageIdSynthetic: false,
    inReplyTo: null,
    references: [],
    from: { name: 'Carla Customer', address: customer },
    to: [{ name: null, address: agent }],
    cc: [],
    bcc: [],
    replyTo: [],
    subject,
    date: '2026-11-28T09:00:00.000Z',
    text: 'My order arrived damaged.',
    html: null,
    headers: {},
    autoReplyReason: null,
    bounceReason: null,
  };
  await svc.core.prisma.message.create({
    data: {
      id: messageId,
      tenantId: tenant.tenantId,
      mailboxId,
      providerMessageId: delivered.id,
      providerThreadId: delivered.conversationId,
      messageIdIndex: svc.core.blindIndex.messageIdIndex(internetMessageId),
      threadKey: `ms:${delivered.conversationId}`,
      receivedAt: new Date('2026-11-28T09:00:00Z'),
      contentEnc: new Uint8Array(await svc.core.dataKeys.encryptFor({ type: 'mailbox', id: mailboxId }, encodeMessageContent(content), MESSAGE_CONTENT_AAD(messageId))),
    },
  });
  return { messageId, providerMessageId: delivered.id, conversationId: delivered.conversationId, internetMessageId };
}

const reply = (messageId: string, body: unknown, key = randomUUID()) => svc.api(tenant.apiKey, 'POST', `/v1/messages/${messageId}/reply`, body, { 'idempotency-key': key });
const send = (mailboxId: string, body: unknown, key = randomUUID()) =>
  svc.api(tenant.apiKey, 'POST', `/v1/mailboxes/${mailboxId}/send`, { to: 'carla@customer.example', subject: 'Your order', text: 'Shipped today.', ...(body as object) }, { 'idempotency-key': key });

const settled = (outboundId: string): Promise<Record<string, unknown>> => outboundSettled(svc, tenant.apiKey, outboundId);

describe('the send API on Microsoft 365 mailboxes', () => {
  it('a reply from an alias of the user’s mailbox goes out with it in From, in the original conversation', async () => {
    sb.createUser('gina@contoso.test', 'Gina Agent');
    sb.setAliases('gina@contoso.test', ['returns@contoso.test']);
    sb.setSendFromAliasEnabled(true);
    const mailboxId = await connectMicrosoft('gina@contoso.test', OWN);
    const original = await inbound(mailboxId, 'gina@contoso.test');

    const res = await reply(original.messageId, { text: 'A replacement is on its way.', from: 'Returns@contoso.test' });
    expect(res.status).toBe(202);
    expect(await settled(res.body.outboundId as string)).toMatchObject({ status: 'sent', providerThreadId: original.conversationId });
    const [sent] = sb.sentMessages('gina@contoso.test');
    // Sent as the alias, spelled as Entra ID lists it.
    expect(await headersOf(sent!.mime)).toEqual({ from: 'returns@contoso.test', sender: undefined, inReplyTo: original.internetMessageId });

    const other = await reply(original.messageId, { text: 'Hello', from: 'ceo@contoso.test' });
    expect(other.status).toBe(422);
    expect(other.body.error).toMatchObject({ code: 'from_not_allowed', details: { field: 'from', reason: 'not_an_alias' } });
  });

  it('an alias Exchange rewrote (SendFromAliasEnabled off) is sent once from the primary address, counted, and then refused with 422 alias_rewritten', async () => {
    sb.createUser('olga@contoso.test', 'Olga Agent');
    sb.setAliases('olga@contoso.test', ['claims@contoso.test']);
    sb.setSendFromAliasEnabled(false);
    const mailboxId = await connectMicrosoft('olga@contoso.test', OWN);
    const first = await send(mailboxId, { from: 'claims@contoso.test' });
    expect(first.status).toBe(202);
    expect(await settled(first.body.outboundId as string)).toMatchObject({ status: 'sent' });
    expect(sb.sentMessages('olga@contoso.test')[0]).toMatchObject({ from: 'olga@contoso.test' });
    expect(await svc.core.metrics.registry.getSingleMetricAsString('mbc_outbound_from_rewritten_total')).toMatch(/provider="microsoft"} [1-9]/);

    const second = await send(mailboxId, { from: 'claims@contoso.test' });
    expect(second.status).toBe(422);
    expect(second.body.error).toMatchObject({ code: 'from_not_allowed', details: { field: 'from', reason: 'alias_rewritten' } });
    expect(second.body.error.message).toMatch(/SendFromAliasEnabled/);
    expect(sb.sentMessages('olga@contoso.test')).toHaveLength(1);
    sb.setSendFromAliasEnabled(true);
  });

  it('from.delegated sends on behalf of the shared mailbox (sender = the member) and replays under its Idempotency-Key', async () => {
    sb.createUser('hank@contoso.test', 'Hank Member');
    sb.setSendRight(SUPPORT, 'hank@contoso.test', 'SendOnBehalf');
    const mailboxId = await connectMicrosoft('hank@contoso.test', SHARED);
    const original = await inbound(mailboxId, 'hank@contoso.test');
    const key = randomUUID();
    const body = { text: 'We are on it.', from: { name: 'Contoso Support', address: SUPPORT, delegated: true } };

    const res = await reply(original.messageId, body, key);
    expect(res.status).toBe(202);
    expect(await settled(res.body.outboundId as string)).toMatchObject({ status: 'sent', providerThreadId: original.conversationId });
    const again = await reply(original.messageId, body, key);
    expect(again.status).toBe(202);
    expect(again.body.outboundId).toBe(res.body.outboundId);

    const sent = sb.sentMessages('hank@contoso.test');
    expect(sent).toHaveLength(1);
    expect(sent[0]).toMatchObject({ from: SUPPORT, sender: 'hank@contoso.test' });
    expect(await headersOf(sent[0]!.mime)).toEqual({ from: SUPPORT, sender: 'hank@contoso.test', inReplyTo: original.internetMessageId });
  });

  it('a delegated reply goes out with POST /reply and its MIME: refused, it leaves no draft in the account; granted, it joins the original’s conversation and the recipient’s copy carries In-Reply-To/References; the original gone, it falls back to sendMail', async () => {
    sb.createUser('nora@contoso.test', 'Nora Member');
    // The customer is a mailbox of the stand-in, so the reply is delivered to an inbox we can read.
    sb.createUser('paul@fabrikam.test', 'Paul Customer');
    sb.createSharedMailbox('help@contoso.test', 'Contoso Help');
    sb.setSendRight('help@contoso.test', 'nora@contoso.test', 'SendOnBehalf');
    const mailboxId = await connectMicrosoft('nora@contoso.test', SHARED);
    const original = await inbound(mailboxId, 'nora@contoso.test', 'paul@fabrikam.test');
    const drafts = () => sb.mailbox('nora@contoso.test').filter((m) => m.folder === 'drafts' || m.isDraft);

    // No right on support@: Exchange refuses, and nothing stays behind in Nora's mailbox.
    const refused = await reply(original.messageId, { text: 'We are on it.', from: { address: SUPPORT, delegated: true } });
    expect(refused.status).toBe(202);
    expect(await settled(refused.body.outboundId as string)).toMatchObject({ status: 'failed', attempts: 1, failure: { code: 'from_not_allowed' } });
    expect(drafts()).toEqual([]);
    expect(sb.sentMessages('nora@contoso.test')).toHaveLength(0);

    const granted = await reply(original.messageId, { text: 'We are on it.', from: { name: 'Contoso Help', address: 'help@contoso.test', delegated: true } });
    expect(granted.status).toBe(202);
    // Replied on the original: the Sent Items copy (looked up after the send) is in its conversation.
    expect(await settled(granted.body.outboundId as string)).toMatchObject({ status: 'sent', providerThreadId: original.conversationId });
    expect(drafts()).toEqual([]);
    const [sent] = sb.sentMessages('nora@contoso.test');
    expect(sent).toMatchObject({ via: 'reply', from: 'help@contoso.test', sender: 'nora@contoso.test', conversationId: original.conversationId });

    // What Paul receives, read from his inbox through Graph.
    const paul = adapter(await signIn('paul@fabrikam.test', OWN));
    let receivedId: string | undefined;
    await waitUntil('the reply in the customer’s inbox', async () => (receivedId = await paul.findByInternetMessageId(sent!.internetMessageId)) !== undefined, { timeoutMs: 30_000 });
    const raw = await paul.fetchRaw(receivedId!);
    const received = await simpleParser(raw.raw);
    expect(received.inReplyTo).toBe(original.internetMessageId);
    expect([received.references].flat()).toEqual([original.internetMessageId]);
    expect((received.from as AddressObject).value[0]?.address).toBe('help@contoso.test');
    expect((received.headers.get('sender') as AddressObject | undefined)?.value[0]?.address).toBe('nora@contoso.test');

    // The agent deleted the original in Outlook: reply on its id answers 404, and the same MIME
    // goes out with sendMail, From checked the same way, threading headers kept.
    expect(sb.deleteMessage('nora@contoso.test', original.providerMessageId)).toBe(true);
    const fallback = await reply(original.messageId, { text: 'One more thing.', from: { name: 'Contoso Help', address: 'help@contoso.test', delegated: true } });
    expect(fallback.status).toBe(202);
    expect(await settled(fallback.body.outboundId as string)).toMatchObject({ status: 'sent', attempts: 1 });
    const [, again] = sb.sentMessages('nora@contoso.test');
    expect(again).toMatchObject({ via: 'sendMail', from: 'help@contoso.test', sender: 'nora@contoso.test', inReplyTo: original.internetMessageId });
    expect(drafts()).toEqual([]);
  });

  it('a refused delegated From fails the send with from_not_allowed (not retried, mailbox unharmed); the next request for it is 422 send_as_denied; nothing is sent', async () => {
    sb.createUser('ivan@contoso.test');
    const mailboxId = await connectMicrosoft('ivan@contoso.test', SHARED);
    const first = await send(mailboxId, { from: { address: SUPPORT, delegated: true } });
    expect(first.status).toBe(202);
    const failed = await settled(first.body.outboundId as string);
    expect(failed).toMatchObject({ status: 'failed', attempts: 1, failure: { code: 'from_not_allowed' } });
    expect((failed.failure as { reason: string }).reason).toMatch(/^send_as_denied: /);
    expect(JSON.stringify(failed)).not.toContain(SUPPORT);
    expect(sb.sentMessages('ivan@contoso.test')).toHaveLength(0);
    const row = await svc.core.prisma.mailbox.findUniqueOrThrow({ where: { id: mailboxId } });
    expect(row.status).toBe('active');

    const second = await send(mailboxId, { from: { address: SUPPORT, delegated: true } });
    expect(second.status).toBe(422);
    expect(second.body.error).toMatchObject({ code: 'from_not_allowed', details: { field: 'from', reason: 'send_as_denied' } });
    // Its own address still sends.
    const own = await send(mailboxId, {});
    expect(await settled(own.body.outboundId as string)).toMatchObject({ status: 'sent' });
  });

  it('refuses from.delegated up front on a connection without Mail.Send.Shared, and on Gmail', async () => {
    sb.createUser('jill@contoso.test');
    const mailboxId = await connectMicrosoft('jill@contoso.test', OWN);
    const res = await send(mailboxId, { from: { address: SUPPORT, delegated: true } });
    expect(res.status).toBe(422);
    expect(res.body.error).toMatchObject({ code: 'from_not_allowed', details: { field: 'from', reason: 'shared_scope_missing' } });
    expect(res.body.error.message).toMatch(/Mail\.Send\.Shared/);

    const gmailId = newId('mailbox');
    await svc.core.prisma.mailbox.create({
      data: {
        id: gmailId,
        tenantId: tenant.tenantId,
        provider: 'google',
        addressEnc: new Uint8Array(await svc.core.dataKeys.encryptFor({ type: 'mailbox', id: gmailId }, 'kim@acme.test', MAILBOX_ADDRESS_AAD(gmailId))),
        addressIndex: svc.core.blindIndex.emailIndex('kim@acme.test'),
      },
    });
    const gmail = await send(gmailId, { from: { address: 'team@acme.test', delegated: true } });
    expect(gmail.status).toBe(422);
    expect(gmail.body.error.details).toEqual({ field: 'from', reason: 'delegation_not_supported' });

    const invalid = await send(mailboxId, { from: { address: 'not an address', delegated: true } });
    expect(invalid.status).toBe(400);
  });
});
