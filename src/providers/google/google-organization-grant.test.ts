import { describe, expect, it } from 'vitest';
import { composeGrantPort } from '../grant-port.js';
import { ProviderError } from '../provider-error.js';
import { sandboxGoogleEndpoints } from './google-endpoints.js';
import { googleDelegatedKind } from './google-grant.js';
import { classifyTokenError, serviceAccountKeyInput } from './google-organization-access.js';
import { googleOrganizationKind, INSTALL_REMOVED, isGoogleOrganizationDocument } from './google-organization-grant.js';
import { GoogleTeardownAdapter, googleTeardownSecret } from './google-teardown.adapter.js';

const endpoints = sandboxGoogleEndpoints('http://127.0.0.1:9');
const port = (keys?: () => Promise<undefined>) =>
  composeGrantPort({
    provider: 'google',
    displayName: 'Google',
    consent: undefined,
    kinds: [googleDelegatedKind({ client: undefined, endpoints }), googleOrganizationKind({ keys: keys ?? (async () => undefined), endpoints })],
  });

/** A gaxios-shaped token endpoint refusal. */
const refusal = (status: number, error: string, description: string) => Object.assign(new Error('x'), { response: { status, data: { error, error_description: description } } });

describe('Google organization credential kind', () => {
  it('stores only the install id and the address, beside delegated credentials', () => {
    const p = port();
    const stored = p.encode({ provider: 'google', kind: 'organization', installId: 'oin_1', address: 'Support@Acme.test' } as never);
    expect(JSON.parse(stored.toString())).toEqual({ v: 1, provider: 'google', kind: 'organization', installId: 'oin_1', address: 'support@acme.test' });
    expect(p.decode(stored)).toMatchObject({ kind: 'organization', installId: 'oin_1', address: 'support@acme.test' });
    expect(p.decode(p.encode({ provider: 'google', kind: 'delegated', refreshToken: 'r' } as never))).toMatchObject({ kind: 'delegated', refreshToken: 'r' });
    expect(() => p.decode(Buffer.from(JSON.stringify({ v: 1, provider: 'google', kind: 'organization', installId: 'oin_1', address: 'a@b.test', private_key: 'x' })))).toThrow();
    expect(isGoogleOrganizationDocument(stored.toString())).toBe(true);
    expect(isGoogleOrganizationDocument('{"v":1,"provider":"google","refreshToken":"r"}')).toBe(false);
  });

  it('a mailbox of an uninstalled install gets auth_revoked install_removed', async () => {
    const p = port();
    const credential = { provider: 'google', kind: 'organization', installId: 'oin_1', address: 'a@acme.test' } as never;
    const err = await p.accessToken({ mailboxId: 'mbx', credential, accountId: null, reload: async () => credential, store: async () => undefined }, { forceRefresh: false }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProviderError);
    expect((err as ProviderError).reason).toBe(INSTALL_REMOVED);
    expect(await p.revoke(credential)).toBe('not_supported');
  });

  it('maps Google token refusals by error and fixed wording', () => {
    expect(classifyTokenError(refusal(401, 'unauthorized_client', 'Client is unauthorized to retrieve access tokens using this method, or client not authorized for any of the scopes requested.')).reason).toBe('delegation_not_granted');
    expect(classifyTokenError(refusal(400, 'invalid_grant', 'Invalid email or User ID')).reason).toBe('user_not_found');
    expect(classifyTokenError(refusal(400, 'invalid_grant', 'Invalid JWT Signature.')).reason).toBe('key_invalid');
    expect(classifyTokenError(refusal(400, 'invalid_grant', 'Invalid grant: account not found')).reason).toBe('key_invalid');
    expect(classifyTokenError(refusal(400, 'invalid_grant', 'Robot is disabled.')).reason).toBe('key_invalid');
    expect(classifyTokenError(refusal(400, 'admin_policy_enforced', 'x')).reason).toBe('admin_policy_enforced');
    expect(classifyTokenError(refusal(503, 'backendError', 'x')).kind).toBe('transient');
  });

  it('accepts a key file only with Google’s or the configured token_uri', () => {
    const file = {
      type: 'service_account',
      project_id: 'p',
      private_key_id: 'a'.repeat(40),
      private_key: '-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n',
      client_email: 'c@p.iam.gserviceaccount.com',
      client_id: '1234567890',
      token_uri: 'https://oauth2.googleapis.com/token',
    };
    const schema = serviceAccountKeyInput(endpoints);
    const ok = schema.parse(file);
    expect(Object.keys(ok).sort()).toEqual(['client_email', 'client_id', 'private_key', 'private_key_id', 'type']);
    expect(schema.safeParse({ ...file, token_uri: endpoints.oauth2TokenUrl }).success).toBe(true);
    expect(schema.safeParse({ ...file, token_uri: 'https://evil.example/token' }).success).toBe(false);
    expect(schema.safeParse({ ...file, token_uri: undefined }).success).toBe(false);
  });

  it('teardown: an organization mailbox is never sent to the revoke endpoint; its watch is stopped with a delegated token', async () => {
    const doc = '{"v":1,"provider":"google","kind":"organization","installId":"oin_1","address":"a@acme.test"}';
    const secret = googleTeardownSecret(doc);
    const calls: string[] = [];
    const teardown = new GoogleTeardownAdapter({
      endpoints,
      grant: undefined,
      organizationToken: async (m) => {
        calls.push(m.id);
        throw new ProviderError('google', 'auth_revoked', 'gone', { reason: INSTALL_REMOVED });
      },
    });
    const mailbox = { id: 'mbx', tenantId: 't', provider: 'google' as const, subscriptionId: null };
    expect(await teardown.revokeGrant(mailbox, { provider: 'google', secret })).toEqual({ status: 'not_supported' });
    expect(await teardown.stopWatch(mailbox, { provider: 'google', secret })).toEqual({ status: 'not_needed' });
    expect(calls).toEqual(['mbx']);
  });
});
