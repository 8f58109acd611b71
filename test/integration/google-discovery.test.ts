// The connector pointed at a Google-compatible OpenID issuer that is NOT the built-in stand-in:
// a small one built here with its own path layout (everything under /tenant-x/, keys at /keys),
// found only through its discovery document. Authorization-code exchange, ID-token verification
// (against the discovered jwks_uri), refresh and revoke run through google-auth-library.
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requestedScopes } from '../../src/oauth/scope-policy.js';
import { GoogleOAuthClient } from '../../src/providers/google/google-oauth.client.js';
import { discoverGoogleEndpoints, GoogleDiscoveryError } from '../../src/providers/google/google-endpoints.js';

const CLIENT = { clientId: 'client-1.example', clientSecret: 'secret-1', redirectUri: 'https://connector.example/oauth/google/callback', scopes: requestedScopes('google') };
let server: Server;
let origin: string;
let issuer: string;
let privateKey: Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];
let jwk: Record<string, unknown>;
const calls: string[] = [];
let docOverride: ((doc: Record<string, unknown>) => Record<string, unknown>) | undefined;

async function form(req: IncomingMessage): Promise<URLSearchParams> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

beforeAll(async () => {
  const pair = await generateKeyPair('RS256');
  privateKey = pair.privateKey;
  jwk = { ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
  server = createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', origin);
      calls.push(`${req.method} ${url.pathname}`);
      const json = (status: number, body: unknown) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
      if (url.pathname === '/tenant-x/.well-known/openid-configuration') {
        const doc = {
          issuer,
          authorization_endpoint: `${issuer}/o/authorize`,
          token_endpoint: `${issuer}/o/token`,
          revocation_endpoint: `${issuer}/o/revoke`,
          jwks_uri: `${origin}/keys`,
        };
        return json(200, docOverride ? docOverride(doc) : doc);
      }
      if (url.pathname === '/keys') return json(200, { keys: [jwk] });
      if (url.pathname === '/tenant-x/o/token' && req.method === 'POST') {
        const f = await form(req);
        if (f.get('client_id') !== CLIENT.clientId || f.get('client_secret') !== CLIENT.clientSecret) return json(401, { error: 'invalid_client' });
        if (f.get('grant_type') === 'authorization_code' && f.get('code') === 'code-1' && f.get('code_verifier')) {
          const idToken = await new SignJWT({ email: 'pat@acme.test', email_verified: true })
            .setProtectedHeader({ alg: 'RS256', kid: 'k1', typ: 'JWT' })
            .setIssuer(issuer)
            .setAudience(CLIENT.clientId)
            .setSubject('u1')
            .setIssuedAt()
            .setExpirationTime('1h')
            .sign(privateKey);
          return json(200, { access_token: 'at-1', refresh_token: 'rt-1', expires_in: 3599, scope: 'openid email https://www.googleapis.com/auth/gmail.readonly', token_type: 'Bearer', id_token: idToken });
        }
        if (f.get('grant_type') === 'refresh_token' && f.get('refresh_token') === 'rt-1') return json(200, { access_token: 'at-2', expires_in: 3599, token_type: 'Bearer' });
        return json(400, { error: 'invalid_grant' });
      }
      if (url.pathname === '/tenant-x/o/revoke' && req.method === 'POST') {
        const token = url.searchParams.get('token') ?? (await form(req)).get('token');
        return token === 'rt-1' ? json(200, {}) : json(400, { error: 'invalid_token' });
      }
      return json(404, { error: 'not_found' });
    })();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  issuer = `${origin}/tenant-x`;
});
afterAll(async () => {
  await new Promise((r) => server.close(r));
});

describe('Google endpoints from OpenID discovery', () => {
  it('connects through an issuer with its own path layout: exchange, ID token verified with its jwks_uri, refresh, revoke', async () => {
    const endpoints = await discoverGoogleEndpoints(issuer, { gmailApiUrl: `${origin}/gmail-root` });
    expect(endpoints).toMatchObject({ oauth2TokenUrl: `${issuer}/o/token`, oauth2RevokeUrl: `${issuer}/o/revoke`, oauth2FederatedSignonJwkCertsUrl: `${origin}/keys`, gmailRootUrl: `${origin}/gmail-root/`, issuers: [issuer] });
    const client = new GoogleOAuthClient({ ...CLIENT, endpoints });
    const { codeVerifier } = await client.pkce();
    const grant = await client.exchange('code-1', codeVerifier);
    expect(grant).toMatchObject({ accessToken: 'at-1', refreshToken: 'rt-1' });
    await expect(client.identify(grant)).resolves.toBe('pat@acme.test');
    await expect(client.refresh('rt-1')).resolves.toMatchObject({ accessToken: 'at-2' });
    await expect(client.revoke('rt-1')).resolves.toBe('revoked');
    // Nothing was asked at the built-in stand-in's layout (/token, /revoke, /oauth2/v1/certs).
    expect(calls.filter((c) => /\/token$|\/revoke$|\/oauth2\//.test(c) && !c.includes('/tenant-x/o/'))).toEqual([]);
  });

  it('an ID token from another issuer, or signed by another key, does not identify the mailbox', async () => {
    const endpoints = await discoverGoogleEndpoints(issuer);
    const client = new GoogleOAuthClient({ ...CLIENT, endpoints });
    const other = await generateKeyPair('RS256');
    const forged = await new SignJWT({ email: 'eve@acme.test', email_verified: true }).setProtectedHeader({ alg: 'RS256', kid: 'k1' }).setIssuer(issuer).setAudience(CLIENT.clientId).setIssuedAt().setExpirationTime('1h').sign(other.privateKey);
    const wrongIss = await new SignJWT({ email: 'eve@acme.test', email_verified: true }).setProtectedHeader({ alg: 'RS256', kid: 'k1' }).setIssuer('https://accounts.google.com').setAudience(CLIENT.clientId).setIssuedAt().setExpirationTime('1h').sign(privateKey);
    for (const idToken of [forged, wrongIss]) {
      await expect(client.identify({ accessToken: 'x', refreshToken: undefined, expiresAt: new Date(), grantedScopes: [], idToken })).rejects.toMatchObject({ reason: 'id_token_invalid' });
    }
  });

  it('refuses a document for another issuer, one without jwks_uri, and plain http off loopback', async () => {
    docOverride = (d) => ({ ...d, issuer: 'https://accounts.google.com' });
    await expect(discoverGoogleEndpoints(issuer)).rejects.toThrow(GoogleDiscoveryError);
    docOverride = (d) => ({ ...d, jwks_uri: undefined });
    await expect(discoverGoogleEndpoints(issuer)).rejects.toThrow(/jwks_uri/);
    docOverride = (d) => ({ ...d, token_endpoint: 'http://tokens.example/token' });
    await expect(discoverGoogleEndpoints(issuer)).rejects.toThrow(/token_endpoint must be https/);
    docOverride = undefined;
    await expect(discoverGoogleEndpoints('http://issuer.example')).rejects.toThrow(/GOOGLE_ISSUER_URL must be https/);
    await expect(discoverGoogleEndpoints(`${origin}/nowhere`)).rejects.toThrow(GoogleDiscoveryError);
  });
});
