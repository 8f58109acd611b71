import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { simpleParser } from 'mailparser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isProviderError, type ProviderError } from '../../src/providers/provider-error.js';
import { createGraphClient } from '../../src/providers/microsoft/graph-client.factory.js';
import { GraphAdapter } from '../../src/providers/microsoft/graph.adapter.js';
import { MicrosoftAppTokenClient, type MicrosoftAppCredential } from '../../src/providers/microsoft/microsoft-app-token.client.js';
import { sandboxMicrosoftEndpoints } from '../../src/providers/microsoft/microsoft-endpoints.js';
import { approveMicrosoftAdminConsent, approveMicrosoftConsent } from '../../src/sandbox/microsoft/approve-microsoft-consent.js';
import { startMicrosoftSandbox, type MicrosoftSandbox } from '../../src/sandbox/microsoft/microsoft-sandbox.js';
import { certificateThumbprintSha256 } from '../../src/sandbox/microsoft/sandbox-app-access.js';
import { SANDBOX_DIRECTORY_ROLES } from '../../src/sandbox/microsoft/sandbox-identity.handler.js';
import { selfSignedCertificate } from '../../src/sandbox/self-signed-certificate.js';

const REDIRECT = 'http://127.0.0.1:7777/oauth/microsoft/admin-consent';
const SUPPORT = 'support@contoso.test';
const AGENT = 'agent@contoso.test';
const CEO = 'ceo@contoso.test';

let sb: MicrosoftSandbox;
let cert: { certPem: string; keyPem: string };

/** An RSA certificate, as Entra app credentials are (MSAL signs the client assertion with PS256/RS256). */
function rsaCertificate(commonName: string) {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048, privateKeyEncoding: { type: 'pkcs8', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } });
  return selfSignedCertificate({ commonName, dnsNames: ['connector.test'], keyPair: { privateKeyPem: privateKey, publicKeyPem: publicKey } });
}

beforeAll(async () => {
  cert = await rsaCertificate('connector-app');
  sb = await startMicrosoftSandbox({
    clients: [
      { clientId: 'app-secret', clientSecret: 's3cret', redirectUris: [REDIRECT] },
      { clientId: 'app-cert', clientSecret: 'unused-secret', redirectUris: [REDIRECT], certificatePem: cert.certPem },
    ],
  });
  sb.createUser('admin@contoso.test');
  sb.setDirectoryRoles('admin@contoso.test', [SANDBOX_DIRECTORY_ROLES.globalAdministrator]);
  sb.createUser('appadmin@contoso.test');
  sb.setDirectoryRoles('appadmin@contoso.test', [SANDBOX_DIRECTORY_ROLES.applicationAdministrator]);
  sb.createUser(AGENT);
  sb.createUser(CEO);
  sb.createSharedMailbox(SUPPORT, 'Contoso Support');
});
afterAll(async () => {
  await sb?.close();
});

function tokens(clientId: string, credential: MicrosoftAppCredential): MicrosoftAppTokenClient {
  return new MicrosoftAppTokenClient({ clientId, credential, endpoints: sandboxMicrosoftEndpoints(sb), adminConsentRedirectUri: REDIRECT });
}

function appOnly(client: MicrosoftAppTokenClient, mailbox: string): GraphAdapter {
  return new GraphAdapter({ endpoints: sandboxMicrosoftEndpoints(sb), accessToken: async () => (await client.acquire(sb.tenantId)).accessToken, sharedMailbox: mailbox, appOnly: true, runner: { maxRetries: 0 } });
}

async function failure(p: Promise<unknown>): Promise<ProviderError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!isProviderError(err)) throw new Error(`expected a ProviderError, got ${String(err)}`);
  return err;
}

function question(to: string): Buffer {
  return Buffer.from(`From: Customer <c@fabrikam.test>\r\nTo: ${to}\r\nSubject: Where is my order\r\nMessage-ID: <q.${randomBytes(4).toString('hex')}@fabrikam.test>\r\nDate: Mon, 2 Mar 2026 09:00:00 +0000\r\n\r\nHello\r\n`);
}

describe('Microsoft organization install: admin consent and app-only tokens (real MSAL confidential client + Graph client against the stand-in)', () => {
  it('no token before the admin consents; the consent page grants Mail.Read + Mail.Send for the tenant; the token carries those roles', async () => {
    const client = tokens('app-secret', { kind: 'secret', clientSecret: 's3cret' });
    expect(await failure(client.acquire(sb.tenantId))).toMatchObject({ kind: 'auth_revoked', reason: 'admin_consent_missing' });

    const url = new URL(client.adminConsentUrl('state-123', sb.tenantId));
    expect(url.pathname).toBe(`/${sb.tenantId}/v2.0/adminconsent`);
    expect(url.searchParams.get('scope')).toBe('https://graph.microsoft.com/.default');
    const back = await approveMicrosoftAdminConsent(url.toString(), { email: 'admin@contoso.test' });
    expect(back.searchParams.get('admin_consent')).toBe('True');
    expect(back.searchParams.get('tenant')).toBe(sb.tenantId);
    expect(back.searchParams.get('state')).toBe('state-123');

    const t = await client.acquire(sb.tenantId);
    expect(t.roles.sort()).toEqual(['Mail.Read', 'Mail.Send']);
    // MSAL serves the cached app token to the next caller: one token for every mailbox of the tenant.
    expect((await client.acquire(sb.tenantId)).accessToken).toBe(t.accessToken);
    // A wrong secret is refused by the token endpoint (AADSTS7000215): the connector's credential, not the consent.
    const wrong = tokens('app-secret', { kind: 'secret', clientSecret: 'nope' });
    expect(await failure(wrong.acquire(sb.tenantId))).toMatchObject({ kind: 'transient', reason: 'app_credential_rejected' });
  });

  it('the administrator signs in first (code + PKCE + nonce, organizations authority): the verified ID token names their directory and roles; a replayed code or a wrong nonce is refused', async () => {
    const client = tokens('app-secret', { kind: 'secret', clientSecret: 's3cret' });
    const signIn = async (email: string) => {
      const s = await client.signInSecrets();
      const url = new URL(await client.adminSignInUrl({ state: 'st-1', nonce: s.nonce, codeChallenge: s.codeChallenge }));
      expect(url.pathname).toBe('/organizations/oauth2/v2.0/authorize');
      expect(url.searchParams.get('scope')?.split(' ')).toEqual(expect.arrayContaining(['openid', 'profile']));
      expect(url.searchParams.get('redirect_uri')).toBe(REDIRECT);
      const back = await approveMicrosoftConsent(url.toString(), { email });
      expect(back.searchParams.get('state')).toBe('st-1');
      return { code: back.searchParams.get('code')!, s };
    };
    const admin = await signIn('admin@contoso.test');
    const verified = await client.redeemAdminSignIn({ code: admin.code, codeVerifier: admin.s.codeVerifier, nonce: admin.s.nonce, state: 'st-1', returnedState: 'st-1' });
    expect(verified).toEqual({ directoryId: sb.tenantId.toLowerCase(), roleTemplateIds: expect.arrayContaining([SANDBOX_DIRECTORY_ROLES.globalAdministrator]) });
    // The code is single use.
    expect(await failure(client.redeemAdminSignIn({ code: admin.code, codeVerifier: admin.s.codeVerifier, nonce: admin.s.nonce, state: 'st-1', returnedState: 'st-1' }))).toBeDefined();
    // A nonce other than the one sent (a token minted for another sign-in) is refused by MSAL.
    const other = await signIn('admin@contoso.test');
    await expect(client.redeemAdminSignIn({ code: other.code, codeVerifier: other.s.codeVerifier, nonce: 'another-nonce', state: 'st-1', returnedState: 'st-1' })).rejects.toThrow();
    // A returned state that is not the one sent is refused by MSAL.
    const third = await signIn('admin@contoso.test');
    await expect(client.redeemAdminSignIn({ code: third.code, codeVerifier: third.s.codeVerifier, nonce: third.s.nonce, state: 'st-1', returnedState: 'st-2' })).rejects.toThrow();
    // An Application Administrator's token says so (no Global / Privileged Role Administrator role) ...
    const appAdmin = await signIn('appadmin@contoso.test');
    const v2 = await client.redeemAdminSignIn({ code: appAdmin.code, codeVerifier: appAdmin.s.codeVerifier, nonce: appAdmin.s.nonce, state: 'st-1', returnedState: 'st-1' });
    expect(v2.roleTemplateIds).toContain(SANDBOX_DIRECTORY_ROLES.applicationAdministrator);
    expect(v2.roleTemplateIds).not.toContain(SANDBOX_DIRECTORY_ROLES.globalAdministrator);
    // ... and Microsoft's admin consent refuses them too (Graph application permissions need those roles).
    await expect(approveMicrosoftAdminConsent(client.adminConsentUrl('s3', sb.tenantId), { email: 'appadmin@contoso.test' })).rejects.toThrow(/AADSTS90094/);
    // The admin consent of a directory the stand-in does not hold is refused.
    await expect(approveMicrosoftAdminConsent(client.adminConsentUrl('s4', '00000000-0000-4000-8000-000000000000'), { email: 'admin@contoso.test' })).rejects.toThrow(/HTTP 400/);
  });

  it('a declined admin consent redirects with access_denied and grants nothing', async () => {
    const client = tokens('app-cert', { kind: 'certificate', thumbprintSha256: certificateThumbprintSha256(cert.certPem), privateKeyPem: cert.keyPem });
    const back = await approveMicrosoftAdminConsent(client.adminConsentUrl('s2', sb.tenantId), { email: 'admin@contoso.test', deny: true });
    expect(back.searchParams.get('error')).toBe('access_denied');
    expect(sb.adminConsents()['app-cert']).toBeUndefined();
  });

  it('a certificate credential (client_assertion signed with its key) gets app-only tokens once consented', async () => {
    sb.grantAdminConsent('app-cert');
    const client = tokens('app-cert', { kind: 'certificate', thumbprintSha256: certificateThumbprintSha256(cert.certPem), privateKeyPem: cert.keyPem });
    expect((await client.acquire(sb.tenantId)).roles).toContain('Mail.Read');
    // Another key, same thumbprint claim (x5t#S256): the signature does not verify (AADSTS700027).
    // The connector's own credential is refused — an operator problem, not the organization's consent.
    const other = await rsaCertificate('intruder');
    const forged = tokens('app-cert', { kind: 'certificate', thumbprintSha256: certificateThumbprintSha256(cert.certPem), privateKeyPem: other.keyPem });
    expect(await failure(forged.acquire(sb.tenantId))).toMatchObject({ kind: 'transient', reason: 'app_credential_rejected' });
    // Another certificate altogether: its x5t#S256 names no certificate registered on the app.
    const unregistered = tokens('app-cert', { kind: 'certificate', thumbprintSha256: certificateThumbprintSha256(other.certPem), privateKeyPem: other.keyPem });
    const refused = await failure(unregistered.acquire(sb.tenantId));
    expect(refused).toMatchObject({ kind: 'transient', reason: 'app_credential_rejected' });
    expect(String((refused.cause as { errorMessage?: string }).errorMessage)).toMatch(/AADSTS700027: .*not registered on application/);
  });

  it('reads a user and a shared mailbox by address, replies as that mailbox with POST /users/{x}/messages/{id}/reply and MIME (no draft; sendMail once the original is gone), and cannot use /me', async () => {
    sb.grantAdminConsent('app-secret');
    const client = tokens('app-secret', { kind: 'secret', clientSecret: 's3cret' });
    for (const mailbox of [SUPPORT, AGENT]) {
      const graph = appOnly(client, mailbox);
      await graph.checkMailboxAccess();
      const cursor = await graph.currentCursor();
      const delivered = await sb.deliver(mailbox, question(mailbox));
      const page = await graph.listChanges(cursor);
      expect(page.addedMessageIds).toEqual([delivered.id]);
      const replyMime = (id: string) =>
        Buffer.from(`From: ${mailbox}\r\nTo: c@fabrikam.test\r\nSubject: Re: Where is my order\r\nIn-Reply-To: ${delivered.internetMessageId}\r\nMessage-ID: ${id}\r\n\r\nOn its way\r\n`);
      const firstId = `<r.${randomBytes(3).toString('hex')}@connector.test>`;
      const result = await graph.send({ mime: replyMime(firstId), internetMessageId: firstId, replyToProviderMessageId: delivered.id });
      // Replied on the original: same conversation, the Sent Items copy found afterwards, no draft.
      expect(sb.sentMessages(mailbox).at(-1)).toMatchObject({ via: 'reply', internetMessageId: firstId, conversationId: delivered.conversationId, savedToSentItems: true, from: mailbox, sender: mailbox });
      expect(result).toMatchObject({ providerMessageId: sb.sentMessages(mailbox).at(-1)?.messageId, providerThreadId: delivered.conversationId });
      expect(sb.mailbox(mailbox).filter((m) => m.isDraft || m.folder === 'drafts')).toEqual([]);
      const parsed = await simpleParser(sb.sentMessages(mailbox).at(-1)?.mime ?? Buffer.alloc(0));
      expect(parsed.from?.value[0]?.address).toBe(mailbox);
      expect(parsed.inReplyTo).toBe(delivered.internetMessageId);

      // The original deleted in the mailbox: reply answers 404 and the same MIME goes out with sendMail.
      expect(sb.deleteMessage(mailbox, delivered.id)).toBe(true);
      const secondId = `<r.${randomBytes(3).toString('hex')}@connector.test>`;
      await graph.send({ mime: replyMime(secondId), internetMessageId: secondId, replyToProviderMessageId: delivered.id });
      expect(sb.sentMessages(mailbox).at(-1)).toMatchObject({ via: 'sendMail', internetMessageId: secondId, inReplyTo: delivered.internetMessageId, from: mailbox });
      expect(sb.mailbox(mailbox).filter((m) => m.isDraft || m.folder === 'drafts')).toEqual([]);
    }
    const token = (await client.acquire(sb.tenantId)).accessToken;
    await expect(createGraphClient(sandboxMicrosoftEndpoints(sb), async () => token).api('/me').get()).rejects.toMatchObject({ statusCode: 400 });
  });

  it('an application access policy restricts the app to named mailboxes: others answer 403, subscriptions included', async () => {
    const client = tokens('app-secret', { kind: 'secret', clientSecret: 's3cret' });
    sb.setApplicationAccessPolicy('app-secret', [SUPPORT, AGENT]);
    try {
      await appOnly(client, SUPPORT).checkMailboxAccess();
      expect(await failure(appOnly(client, CEO).checkMailboxAccess())).toMatchObject({ status: 403 });
      expect(await failure(appOnly(client, 'nobody@contoso.test').checkMailboxAccess())).toMatchObject({ kind: 'not_found' });

      const token = (await client.acquire(sb.tenantId)).accessToken;
      const graph = createGraphClient(sandboxMicrosoftEndpoints(sb), async () => token);
      const body = (mailbox: string) => ({ changeType: 'created', notificationUrl: 'http://127.0.0.1:1/push', resource: `/users/${mailbox}/mailFolders('inbox')/messages`, expirationDateTime: new Date(Date.now() + 3_600_000).toISOString() });
      await expect(graph.api('/subscriptions').post(body(CEO))).rejects.toMatchObject({ statusCode: 403 });
      expect(sb.subscriptions().filter((s) => s.email === CEO)).toHaveLength(0);
    } finally {
      sb.setApplicationAccessPolicy('app-secret', null);
    }
    // Without a policy the app reads every mailbox of the tenant (Exchange's default): what the probe detects.
    await appOnly(client, CEO).checkMailboxAccess();
  });

  it('revoking the admin consent stops issued tokens and new ones', async () => {
    const client = tokens('app-cert', { kind: 'certificate', thumbprintSha256: certificateThumbprintSha256(cert.certPem), privateKeyPem: cert.keyPem });
    const graph = appOnly(client, AGENT);
    await graph.checkMailboxAccess();
    sb.revokeAdminConsent('app-cert');
    // The token MSAL still holds is refused by Graph now (401), and no new one is issued.
    expect(await failure(graph.checkMailboxAccess())).toMatchObject({ kind: 'auth_revoked' });
    expect(await failure(tokens('app-cert', { kind: 'certificate', thumbprintSha256: certificateThumbprintSha256(cert.certPem), privateKeyPem: cert.keyPem }).acquire(sb.tenantId))).toMatchObject({
      kind: 'auth_revoked',
      reason: 'admin_consent_missing',
    });
  });
});
