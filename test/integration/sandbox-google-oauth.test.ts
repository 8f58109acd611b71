import { X509Certificate } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CodeChallengeMethod, OAuth2Client } from 'google-auth-library';
import { startGoogleSandbox, type GoogleSandbox } from '../../src/sandbox/google/google-sandbox.server.js';
import { approveGoogleConsent } from '../../src/sandbox/google/google-consent.client.js';
import { sandboxGoogleEndpoints, oauth2ClientEndpoints } from '../../src/providers/google/google-endpoints.js';
import { revokeGoogleToken } from '../../src/providers/google/google-token-revoke.adapter.js';
import { mapGoogleError } from '../../src/providers/google/google-error.mapper.js';

const GMAIL_READONLY = 'https://www.googleapis.com/auth/gmail.readonly';
const GMAIL_SEND = 'https://www.googleapis.com/auth/gmail.send';
const CLIENT_ID = 'connector-test.apps.googleusercontent.com';
const REDIRECT = 'http://127.0.0.1:4545/oauth/google/callback';

let sandbox: GoogleSandbox;

function newClient(): OAuth2Client {
  return new OAuth2Client({
    clientId: CLIENT_ID,
    clientSecret: 'test-secret',
    redirectUri: REDIRECT,
    endpoints: oauth2ClientEndpoints(sandboxGoogleEndpoints(sandbox.url)),
  });
}

async function authorize(
  client: OAuth2Client,
  opts: { email: string; scopes?: string[]; uncheck?: string[]; prompt?: string; accessType?: 'online' | 'offline'; deny?: boolean },
) {
  const { codeVerifier, codeChallenge } = await client.generateCodeVerifierAsync();
  const url = client.generateAuthUrl({
    access_type: opts.accessType ?? 'offline',
    ...(opts.prompt !== undefined ? { prompt: opts.prompt } : {}),
    scope: opts.scopes ?? ['openid', 'email', GMAIL_READONLY, GMAIL_SEND],
    state: 'st-123',
    login_hint: opts.email,
    code_challenge: codeChallenge,
    code_challenge_method: CodeChallengeMethod.S256,
  });
  const back = await approveGoogleConsent(url, {
    email: opts.email,
    ...(opts.uncheck ? { uncheck: opts.uncheck } : {}),
    ...(opts.deny ? { deny: true } : {}),
  });
  return { back, codeVerifier, url };
}

/** Refresh the way the token vault does: credentials hold only the refresh token. */
async function refresh(client: OAuth2Client, refreshToken: string): Promise<string> {
  client.setCredentials({ refresh_token: refreshToken });
  const { token } = await client.getAccessToken();
  return token!;
}

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

async function gmailProfileStatus(accessToken: string): Promise<number> {
  const res = await fetch(`${sandbox.url}/gmail/v1/users/me/profile`, { headers: { authorization: `Bearer ${accessToken}` } });
  await res.arrayBuffer();
  return res.status;
}

beforeAll(async () => {
  sandbox = await startGoogleSandbox({
    clients: [
      { clientId: CLIENT_ID, clientSecret: 'test-secret', redirectUris: [REDIRECT] },
      { clientId: 'testing-app', clientSecret: 's', redirectUris: [REDIRECT], testingRefreshTokenTtlMs: 50 },
    ],
  });
});
afterAll(async () => {
  await sandbox.close();
});

describe('Google OAuth stand-in with the real OAuth2Client', () => {
  it('exchanges a PKCE code for tokens with the granted scopes, a refresh token and a verifiable ID token', async () => {
    const client = newClient();
    const { back, codeVerifier } = await authorize(client, { email: 'owner@acme.test', prompt: 'consent' });
    expect(back.origin + back.pathname).toBe(REDIRECT);
    expect(back.searchParams.get('state')).toBe('st-123');
    const { tokens } = await client.getToken({ code: back.searchParams.get('code')!, codeVerifier });
    expect(tokens.access_token).toMatch(/^ya29\./);
    expect(tokens.refresh_token).toBeTruthy();
    expect(tokens.token_type).toBe('Bearer');
    expect(tokens.expiry_date! - Date.now()).toBeGreaterThan(3500_000);
    expect(tokens.scope!.split(' ').sort()).toEqual(['email', GMAIL_READONLY, GMAIL_SEND, 'openid'].sort());

    const ticket = await client.verifyIdToken({ idToken: tokens.id_token!, audience: CLIENT_ID });
    const payload = ticket.getPayload()!;
    expect(payload.iss).toBe('https://accounts.google.com');
    expect(payload.aud).toBe(CLIENT_ID);
    expect(payload.email).toBe('owner@acme.test');
    expect(payload.email_verified).toBe(true);
    expect(payload.sub).toMatch(/^\d+$/);
    expect(await gmailProfileStatus(tokens.access_token!)).toBe(200);
  });

  it('rejects a code exchange without the PKCE verifier or with the wrong one', async () => {
    const client = newClient();
    const { back } = await authorize(client, { email: 'pkce@acme.test' });
    const err = await client.getToken({ code: back.searchParams.get('code')!, codeVerifier: 'x'.repeat(64) }).catch((e: unknown) => e);
    expect(mapGoogleError(err, 'oauth.token').kind).toBe('auth_revoked');
    expect((err as { response: { data: { error: string } } }).response.data.error).toBe('invalid_grant');
  });

  it('grants only the scopes left ticked (granular consent)', async () => {
    const client = newClient();
    const { back, codeVerifier } = await authorize(client, { email: 'partial@acme.test', uncheck: [GMAIL_SEND] });
    expect(back.searchParams.get('scope')!.split(' ')).not.toContain(GMAIL_SEND);
    const { tokens } = await client.getToken({ code: back.searchParams.get('code')!, codeVerifier });
    expect(tokens.scope!.split(' ')).toContain(GMAIL_READONLY);
    expect(tokens.scope!.split(' ')).not.toContain(GMAIL_SEND);
    const info = await client.getTokenInfo(tokens.access_token!);
    expect(info.scopes).not.toContain(GMAIL_SEND);
    expect(info.email).toBe('partial@acme.test');
    // Sending with this token is refused with Google's insufficientPermissions.
    const res = await fetch(`${sandbox.url}/gmail/v1/users/me/messages/send`, {
      method: 'POST',
      headers: { authorization: `Bearer ${tokens.access_token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ raw: Buffer.from('To: a@b.test\r\n\r\nhi').toString('base64url') }),
    });
    expect(res.status).toBe(403);
    expect(((await res.json()) as Json).error.errors[0].reason).toBe('insufficientPermissions');
  });

  it('redirects with access_denied and the state when the user cancels', async () => {
    const { back } = await authorize(newClient(), { email: 'nope@acme.test', deny: true });
    expect(back.searchParams.get('error')).toBe('access_denied');
    expect(back.searchParams.get('state')).toBe('st-123');
    expect(back.searchParams.get('code')).toBeNull();
  });

  it('refuses an unregistered redirect_uri without redirecting to it', async () => {
    const client = new OAuth2Client({ clientId: CLIENT_ID, redirectUri: 'http://127.0.0.1:1/evil', endpoints: oauth2ClientEndpoints(sandboxGoogleEndpoints(sandbox.url)) });
    const url = client.generateAuthUrl({ scope: ['openid'] });
    await expect(approveGoogleConsent(url, { email: 'x@acme.test' })).rejects.toThrow(/redirect_uri_mismatch/);
  });

  it('refreshes, and after revoking the access token the refresh token is dead too (invalid_grant)', async () => {
    const client = newClient();
    const { back, codeVerifier } = await authorize(client, { email: 'revoke@acme.test', prompt: 'consent' });
    const { tokens } = await client.getToken({ code: back.searchParams.get('code')!, codeVerifier });
    const refreshed = await refresh(client, tokens.refresh_token!);
    expect(refreshed).toMatch(/^ya29\./);
    expect(refreshed).not.toBe(tokens.access_token);

    expect(await revokeGoogleToken(sandboxGoogleEndpoints(sandbox.url), tokens.access_token!)).toBe('revoked');
    const err = await refresh(client, tokens.refresh_token!).catch((e: unknown) => e);
    expect((err as { response: { data: { error: string } } }).response.data.error).toBe('invalid_grant');
    expect(mapGoogleError(err, 'oauth.token').kind).toBe('auth_revoked');
    // Access tokens minted from that refresh token are gone as well.
    expect(await gmailProfileStatus(refreshed)).toBe(401);
    // Revoking again is a 400 invalid_token, which a disconnect treats as done.
    expect(await revokeGoogleToken(sandboxGoogleEndpoints(sandbox.url), tokens.refresh_token!)).toBe('already_invalid');
  });

  it('answers invalid_grant to a reused code and revokes the tokens the code issued', async () => {
    const client = newClient();
    const { back, codeVerifier } = await authorize(client, { email: 'reuse@acme.test', prompt: 'consent' });
    const code = back.searchParams.get('code')!;
    const { tokens } = await client.getToken({ code, codeVerifier });
    expect(await gmailProfileStatus(tokens.access_token!)).toBe(200);
    const err = await client.getToken({ code, codeVerifier }).catch((e: unknown) => e);
    expect((err as { response: { data: { error: string } } }).response.data.error).toBe('invalid_grant');
    expect(await gmailProfileStatus(tokens.access_token!)).toBe(401);
    await expect(refresh(client, tokens.refresh_token!)).rejects.toMatchObject({ response: { status: 400 } });
  });

  it('returns a refresh token only on first offline consent or with prompt=consent', async () => {
    const client = newClient();
    const first = await authorize(client, { email: 'again@acme.test' });
    const t1 = await client.getToken({ code: first.back.searchParams.get('code')!, codeVerifier: first.codeVerifier });
    expect(t1.tokens.refresh_token).toBeTruthy();
    const second = await authorize(client, { email: 'again@acme.test' });
    const t2 = await client.getToken({ code: second.back.searchParams.get('code')!, codeVerifier: second.codeVerifier });
    expect(t2.tokens.refresh_token).toBeUndefined();
    const third = await authorize(client, { email: 'again@acme.test', prompt: 'consent' });
    const t3 = await client.getToken({ code: third.back.searchParams.get('code')!, codeVerifier: third.codeVerifier });
    expect(t3.tokens.refresh_token).toBeTruthy();
    const online = await authorize(client, { email: 'again@acme.test', accessType: 'online', prompt: 'consent' });
    const t4 = await client.getToken({ code: online.back.searchParams.get('code')!, codeVerifier: online.codeVerifier });
    expect(t4.tokens.refresh_token).toBeUndefined();
  });

  it('adds previously granted scopes with include_granted_scopes=true (incremental authorization)', async () => {
    const client = newClient();
    const first = await authorize(client, { email: 'incremental@acme.test', scopes: [GMAIL_READONLY] });
    await client.getToken({ code: first.back.searchParams.get('code')!, codeVerifier: first.codeVerifier });
    const { codeVerifier, codeChallenge } = await client.generateCodeVerifierAsync();
    const url = client.generateAuthUrl({
      scope: [GMAIL_SEND],
      include_granted_scopes: true,
      code_challenge: codeChallenge,
      code_challenge_method: CodeChallengeMethod.S256,
    });
    const back = await approveGoogleConsent(url, { email: 'incremental@acme.test' });
    const { tokens } = await client.getToken({ code: back.searchParams.get('code')!, codeVerifier });
    expect(tokens.scope!.split(' ').sort()).toEqual([GMAIL_READONLY, GMAIL_SEND].sort());
  });

  it('expires refresh tokens of an app in "testing" publishing status', async () => {
    const client = new OAuth2Client({ clientId: 'testing-app', clientSecret: 's', redirectUri: REDIRECT, endpoints: oauth2ClientEndpoints(sandboxGoogleEndpoints(sandbox.url)) });
    const { back, codeVerifier } = await authorize(client, { email: 'tester@acme.test', prompt: 'consent' });
    const { tokens } = await client.getToken({ code: back.searchParams.get('code')!, codeVerifier });
    await new Promise((r) => setTimeout(r, 80));
    const err = await refresh(client, tokens.refresh_token!).catch((e: unknown) => e);
    expect((err as { response: { data: { error: string } } }).response.data.error).toBe('invalid_grant');
  });

  it('revoking a user grant from the control surface kills refresh and access tokens', async () => {
    const client = newClient();
    const { back, codeVerifier } = await authorize(client, { email: 'removed@acme.test', prompt: 'consent' });
    const { tokens } = await client.getToken({ code: back.searchParams.get('code')!, codeVerifier });
    const res = await fetch(`${sandbox.url}/_sandbox/users/removed@acme.test/revoke`, { method: 'POST' });
    expect(res.status).toBe(204);
    expect(await gmailProfileStatus(tokens.access_token!)).toBe(401);
    await expect(refresh(client, tokens.refresh_token!)).rejects.toMatchObject({ response: { status: 400 } });
    expect(sandbox.revokedTokens().filter((r) => r.email === 'removed@acme.test').map((r) => r.kind).sort()).toEqual(['access', 'refresh']);
  });

  it('serves discovery, JWKS and userinfo consistent with the tokens', async () => {
    const conf = (await (await fetch(`${sandbox.url}/.well-known/openid-configuration`)).json()) as Json;
    expect(conf.issuer).toBe('https://accounts.google.com');
    expect(conf.code_challenge_methods_supported).toContain('S256');
    const jwks = (await (await fetch(conf.jwks_uri)).json()) as Json;
    expect(jwks.keys[0]).toMatchObject({ kty: 'RSA', alg: 'RS256', use: 'sig' });
    // /oauth2/v1/certs serves X.509 certificates (as Google does) for the same key.
    const pem = (await (await fetch(`${sandbox.url}/oauth2/v1/certs`)).json()) as Record<string, string>;
    const cert = new X509Certificate(pem[jwks.keys[0].kid]!);
    expect(cert.publicKey.export({ format: 'jwk' }).n).toBe(jwks.keys[0].n);
    expect(cert.verify(cert.publicKey)).toBe(true);
    const client = newClient();
    const { back, codeVerifier } = await authorize(client, { email: 'Info@Acme.test' });
    const { tokens } = await client.getToken({ code: back.searchParams.get('code')!, codeVerifier });
    const me = (await (await fetch(conf.userinfo_endpoint, { headers: { authorization: `Bearer ${tokens.access_token}` } })).json()) as Json;
    expect(me.email).toBe('info@acme.test');
    const id = await client.verifyIdToken({ idToken: tokens.id_token!, audience: CLIENT_ID });
    expect(id.getPayload()!.sub).toBe(me.sub);
  });
});

describe('Google OAuth stand-in lifetimes (injected clock)', () => {
  it('expires codes after 10 minutes and access tokens after 3599 s', async () => {
    let t = Date.now();
    const timed = await startGoogleSandbox({ now: () => t });
    try {
      const client = new OAuth2Client({ clientId: 'c', redirectUri: 'http://localhost:8080/cb', endpoints: oauth2ClientEndpoints(sandboxGoogleEndpoints(timed.url)) });
      const { codeVerifier, codeChallenge } = await client.generateCodeVerifierAsync();
      const url = client.generateAuthUrl({ scope: [GMAIL_READONLY], access_type: 'offline', code_challenge: codeChallenge, code_challenge_method: CodeChallengeMethod.S256 });
      const stale = await approveGoogleConsent(url, { email: 'slow@acme.test' });
      t += 10 * 60_000 + 1;
      const err = await client.getToken({ code: stale.searchParams.get('code')!, codeVerifier }).catch((e: unknown) => e);
      expect((err as { response: { data: { error: string } } }).response.data.error).toBe('invalid_grant');

      const fresh = await approveGoogleConsent(url, { email: 'slow@acme.test' });
      const { tokens } = await client.getToken({ code: fresh.searchParams.get('code')!, codeVerifier });
      const profile = () => fetch(`${timed.url}/gmail/v1/users/me/profile`, { headers: { authorization: `Bearer ${tokens.access_token}` } }).then((r) => r.status);
      expect(await profile()).toBe(200);
      t += 3599_000;
      expect(await profile()).toBe(401);
    } finally {
      await timed.close();
    }
  });
});
