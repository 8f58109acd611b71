// Google Workspace organization install, provider side (issue 15 item 3): a service account with
// domain-wide delegation, driven through google-auth-library's JWT client with `subject` (the
// connector's GoogleDelegatedAccess) against the Google stand-in's jwt-bearer grant, then the real
// @googleapis/gmail adapters reading, sending and watching as the named mailbox.
import { gmail } from '@googleapis/gmail';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GmailWatchAdapter } from '../../src/providers/google/gmail-watch.adapter.js';
import { GmailAdapter } from '../../src/providers/google/gmail.adapter.js';
import { GOOGLE_DELEGATED_SCOPES, GoogleDelegatedAccess, serviceAccountKeySchema } from '../../src/providers/google/google-delegated-access.js';
import { sandboxGoogleEndpoints } from '../../src/providers/google/google-endpoints.js';
import { ProviderError } from '../../src/providers/provider-error.js';
import { startGoogleSandbox, type GoogleSandbox } from '../../src/sandbox/google/google-sandbox.server.js';
import type { ServiceAccountKeyFile } from '../../src/sandbox/google/google-service-accounts.js';

let google: GoogleSandbox;
let sa: ServiceAccountKeyFile;

const mime = (from: string, to: string, subject: string, id: string) =>
  Buffer.from([`From: ${from}`, `To: ${to}`, `Subject: ${subject}`, `Message-ID: <${id}>`, 'Content-Type: text/plain', '', 'Hello', ''].join('\r\n'));

function access(key: ServiceAccountKeyFile = sa): GoogleDelegatedAccess {
  return new GoogleDelegatedAccess({ key: serviceAccountKeySchema.parse(key), tokenUrl: google.endpoints.oauth2TokenUrl });
}

async function refusal(p: Promise<unknown>): Promise<ProviderError> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(ProviderError);
  return err as ProviderError;
}

beforeAll(async () => {
  google = await startGoogleSandbox();
  for (const u of ['support@acme.test', 'billing@acme.test', 'ceo@acme.test', 'someone@other.test']) google.createUser(u);
  sa = await google.createServiceAccount({ name: 'helpdesk-connector' });
  google.delegateDomainWide('acme.test', sa.client_id, [...GOOGLE_DELEGATED_SCOPES]);
}, 60_000);

afterAll(async () => {
  await google?.close();
});

describe('Google Workspace domain-wide delegation', () => {
  it('reads, sends and watches a named mailbox as that user, with only gmail.readonly + gmail.send', async () => {
    const tokens = access().forMailbox('Support@acme.test');
    const endpoints = sandboxGoogleEndpoints(google.url);
    const mail = new GmailAdapter({ endpoints, accessToken: tokens });
    expect(await mail.getAddress()).toBe('support@acme.test');

    const cursor = await mail.currentCursor();
    const delivered = google.deliver('support@acme.test', mime('Carla <carla@customer.example>', 'support@acme.test', 'Where is my order?', 'dwd-1@customer.example'));
    const changes = await mail.listChanges(cursor);
    expect(changes.addedMessageIds).toEqual([delivered.id]);
    const raw = await mail.fetchRaw(delivered.id);
    const chunks: Buffer[] = [];
    for await (const c of raw.raw) chunks.push(Buffer.from(c as Uint8Array));
    expect(Buffer.concat(chunks).toString()).toContain('Where is my order?');

    const reply = mime('support@acme.test', 'carla@customer.example', 'Re: Where is my order?', 'dwd-reply-1@acme.test');
    const sent = await mail.send({ mime: reply, internetMessageId: '<dwd-reply-1@acme.test>' });
    expect(google.sent('support@acme.test').map((s) => s.id)).toEqual([sent.providerMessageId]);

    const watch = await new GmailWatchAdapter({ endpoints, accessToken: tokens }).watch('projects/acme/topics/gmail');
    expect(watch.expiresAt.getTime()).toBeGreaterThan(Date.now());
    expect(google.watches().find((w) => w.email === 'support@acme.test')).toMatchObject({ active: true, topicName: 'projects/acme/topics/gmail' });
  });

  it('a token for one mailbox does not reach another mailbox of the domain', async () => {
    const token = await access().forMailbox('support@acme.test')();
    const api = gmail({ version: 'v1', rootUrl: google.endpoints.gmailRootUrl, retry: false });
    const err = await api.users.getProfile({ userId: 'billing@acme.test' }, { headers: { Authorization: `Bearer ${token}` } }).then(() => undefined, (e: { status?: number }) => e);
    expect(err?.status).toBe(403);
  });

  it('is refused (auth_revoked) when the administrator delegated fewer scopes, for another domain, for a user that does not exist, and after the key was deleted', async () => {
    const narrow = await google.createServiceAccount({ name: 'narrow-connector' });
    google.delegateDomainWide('acme.test', narrow.client_id, ['https://www.googleapis.com/auth/gmail.readonly']);
    const scopeMissing = await refusal(access(narrow).forMailbox('support@acme.test')());
    expect({ kind: scopeMissing.kind, reason: scopeMissing.reason, status: scopeMissing.status }).toEqual({ kind: 'auth_revoked', reason: 'unauthorized_client', status: 401 });

    const otherDomain = await refusal(access().forMailbox('someone@other.test')());
    expect({ kind: otherDomain.kind, reason: otherDomain.reason }).toEqual({ kind: 'auth_revoked', reason: 'unauthorized_client' });

    const noSuchUser = await refusal(access().forMailbox('nobody@acme.test')());
    expect({ kind: noSuchUser.kind, reason: noSuchUser.reason }).toEqual({ kind: 'auth_revoked', reason: 'invalid_grant' });

    const rotated = await google.createServiceAccount({ name: 'rotated-connector' });
    google.delegateDomainWide('acme.test', rotated.client_id, [...GOOGLE_DELEGATED_SCOPES]);
    expect(await access(rotated).forMailbox('ceo@acme.test')()).toMatch(/^ya29\./);
    google.deleteServiceAccountKey(rotated.client_email, rotated.private_key_id);
    const deleted = await refusal(access(rotated).forMailbox('ceo@acme.test')());
    expect({ kind: deleted.kind, reason: deleted.reason }).toEqual({ kind: 'auth_revoked', reason: 'invalid_grant' });
  });

  it('refuses an assertion signed with another key for this service account (forged)', async () => {
    const other = await google.createServiceAccount({ name: 'other-connector' });
    const forged = { ...sa, private_key: other.private_key };
    const err = await refusal(access(forged).forMailbox('support@acme.test')());
    expect({ kind: err.kind, reason: err.reason }).toEqual({ kind: 'auth_revoked', reason: 'invalid_grant' });
  });

  it('revoking the delegation stops new tokens', async () => {
    const temp = await google.createServiceAccount({ name: 'temp-connector' });
    google.delegateDomainWide('acme.test', temp.client_id, [...GOOGLE_DELEGATED_SCOPES]);
    expect(await access(temp).forMailbox('billing@acme.test')()).toMatch(/^ya29\./);
    google.revokeDomainWideDelegation('acme.test', temp.client_id);
    const err = await refusal(access(temp).forMailbox('billing@acme.test')());
    expect(err.reason).toBe('unauthorized_client');
  });

  it('validates the key file as external input', () => {
    expect(serviceAccountKeySchema.safeParse({ ...sa, private_key: 'not a key' }).success).toBe(false);
    expect(serviceAccountKeySchema.safeParse({ ...sa, type: 'authorized_user' }).success).toBe(false);
    expect(serviceAccountKeySchema.safeParse(sa).success).toBe(true);
  });
});
