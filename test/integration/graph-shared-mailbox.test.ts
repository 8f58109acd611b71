import { randomBytes } from 'node:crypto';
import { simpleParser } from 'mailparser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isProviderError, type ProviderError } from '../../src/providers/provider-error.js';
import { createGraphClient } from '../../src/providers/microsoft/graph-client.factory.js';
import { GraphAdapter, SHARED_MAILBOX_ACCESS_DENIED } from '../../src/providers/microsoft/graph.adapter.js';
import { sandboxMicrosoftEndpoints } from '../../src/providers/microsoft/microsoft-endpoints.js';
import { startMicrosoftSandbox, type MicrosoftSandbox } from '../../src/sandbox/microsoft/microsoft-sandbox.js';
import { msalSignIn } from '../helpers/msal-sign-in.js';

const REDIRECT = 'http://127.0.0.1:7777/connect/microsoft/callback';
const GRAPH = 'https://graph.microsoft.com';
const OWN = [`${GRAPH}/Mail.ReadWrite`, `${GRAPH}/Mail.Send`, `${GRAPH}/User.Read`];
const SHARED = [...OWN, `${GRAPH}/Mail.Read.Shared`, `${GRAPH}/Mail.Send.Shared`];
const SUPPORT = 'support@contoso.test';

let sb: MicrosoftSandbox;

beforeAll(async () => {
  sb = await startMicrosoftSandbox({ clients: [{ clientId: 'app-1', clientSecret: 's3cret', redirectUris: [REDIRECT] }] });
  sb.createSharedMailbox(SUPPORT, 'Contoso Support');
});
afterAll(async () => {
  await sb?.close();
});

/** The member signs in through the consent page with the real MSAL confidential client; returns the access token. */
const signIn = (email: string, scopes: string[]): Promise<string> => msalSignIn(sb, { clientId: 'app-1', clientSecret: 's3cret', redirectUri: REDIRECT }, email, scopes);

function adapter(token: string, sharedMailbox = SUPPORT): GraphAdapter {
  return new GraphAdapter({ endpoints: sandboxMicrosoftEndpoints(sb), accessToken: async () => token, sharedMailbox, runner: { maxRetries: 0 } });
}

async function failure(p: Promise<unknown>): Promise<ProviderError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!isProviderError(err)) throw new Error(`expected a ProviderError, got ${String(err)}`);
  return err;
}

function question(): Buffer {
  return Buffer.from(`From: Customer <c@fabrikam.test>\r\nTo: ${SUPPORT}\r\nSubject: Where is my order\r\nMessage-ID: <q.${randomBytes(4).toString('hex')}@fabrikam.test>\r\nDate: Mon, 2 Mar 2026 09:00:00 +0000\r\n\r\nHello\r\n`);
}

describe('Microsoft 365 shared mailbox through a member (MSAL + Graph client against the stand-in)', () => {
  it('a member with the Shared scopes reads the shared inbox by delta and replies as the shared address; removal turns into a named auth_revoked', async () => {
    sb.setSharedMember(SUPPORT, 'dana@contoso.test', true);
    const graph = adapter(await signIn('dana@contoso.test', SHARED));
    await graph.checkMailboxAccess();

    const cursor = await graph.currentCursor();
    expect(cursor.provider === 'microsoft' && cursor.link).toContain(`/users/${encodeURIComponent(SUPPORT)}/`);
    const delivered = await sb.deliver(SUPPORT, question());
    await sb.deliver('dana@contoso.test', question()); // the member's own mail is never read
    const page = await graph.listChanges(cursor);
    expect(page.addedMessageIds).toEqual([delivered.id]);
    const raw = await graph.fetchRaw(delivered.id);
    expect(raw.providerMessageId).toBe(delivered.id);

    const reply = Buffer.from(`From: ${SUPPORT}\r\nTo: c@fabrikam.test\r\nSubject: Re: Where is my order\r\nMessage-ID: <r1@connector.test>\r\n\r\nOn its way\r\n`);
    await graph.send({ mime: reply, internetMessageId: '<r1@connector.test>', replyToProviderMessageId: delivered.id });
    const sent = sb.sentMessages(SUPPORT);
    expect(sent).toHaveLength(1);
    const parsed = await simpleParser(sent[0]?.mime ?? Buffer.alloc(0));
    expect(parsed.from?.value[0]?.address).toBe(SUPPORT);
    expect(sent[0]?.savedToSentItems).toBe(true);
    expect(sb.sentMessages('dana@contoso.test')).toHaveLength(0);

    sb.setSharedMember(SUPPORT, 'dana@contoso.test', false);
    const lost = await failure(graph.listChanges(page.nextCursor));
    expect(lost).toMatchObject({ kind: 'auth_revoked', status: 403, reason: SHARED_MAILBOX_ACCESS_DENIED });
    expect(lost.message).not.toContain(SUPPORT);
  });

  it('refuses at the connect check a user who is not a member, and a member who did not consent to the Shared scopes', async () => {
    const outsider = adapter(await signIn('eve@contoso.test', SHARED));
    expect(await failure(outsider.checkMailboxAccess())).toMatchObject({ kind: 'auth_revoked', status: 403, reason: SHARED_MAILBOX_ACCESS_DENIED });

    sb.setSharedMember(SUPPORT, 'finn@contoso.test', true);
    const unscoped = adapter(await signIn('finn@contoso.test', OWN));
    expect(await failure(unscoped.checkMailboxAccess())).toMatchObject({ kind: 'auth_revoked', reason: SHARED_MAILBOX_ACCESS_DENIED });

    const nobody = adapter(await signIn('finn@contoso.test', SHARED), 'nobody@contoso.test');
    expect(await failure(nobody.checkMailboxAccess())).toMatchObject({ kind: 'not_found', status: 404 });
  });

  it('offers no change-notification subscription on the shared mailbox to a member (delegated .Shared permissions do not support them)', async () => {
    sb.setSharedMember(SUPPORT, 'gus@contoso.test', true);
    const token = await signIn('gus@contoso.test', SHARED);
    const client = createGraphClient(sandboxMicrosoftEndpoints(sb), async () => token);
    const body = { changeType: 'created', notificationUrl: 'https://127.0.0.1:1/push', resource: `/users/${SUPPORT}/mailFolders('inbox')/messages`, expirationDateTime: new Date(Date.now() + 3_600_000).toISOString() };
    await expect(client.api('/subscriptions').post(body)).rejects.toMatchObject({ statusCode: 403 });
    expect(sb.subscriptions()).toHaveLength(0);
  });
});
