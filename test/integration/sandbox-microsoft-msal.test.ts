import { ConfidentialClientApplication, CryptoProvider, type ICachePlugin, type TokenCacheContext } from '@azure/msal-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isProviderError } from '../../src/providers/provider-error.js';
import { mapGraphError } from '../../src/providers/microsoft/graph-error.mapper.js';
import { sandboxMicrosoftEndpoints } from '../../src/providers/microsoft/microsoft-endpoints.js';
import { buildMsalConfiguration } from '../../src/providers/microsoft/msal-config.js';
import { approveMicrosoftConsent } from '../../src/sandbox/microsoft/approve-microsoft-consent.js';
import { startMicrosoftSandbox, type MicrosoftSandbox } from '../../src/sandbox/microsoft/microsoft-sandbox.js';

const REDIRECT = 'http://127.0.0.1:7777/connect/microsoft/callback';
const SCOPES = ['https://graph.microsoft.com/Mail.ReadWrite', 'https://graph.microsoft.com/Mail.Send', 'https://graph.microsoft.com/User.Read'];

/** Stands in for the token vault: one serialized MSAL cache blob per test. */
class MemoryCachePlugin implements ICachePlugin {
  blob = '';
  writes = 0;
  async beforeCacheAccess(ctx: TokenCacheContext): Promise<void> {
    if (this.blob) ctx.tokenCache.deserialize(this.blob);
  }
  async afterCacheAccess(ctx: TokenCacheContext): Promise<void> {
    if (ctx.cacheHasChanged) {
      this.blob = ctx.tokenCache.serialize();
      this.writes += 1;
    }
  }
}

let sb: MicrosoftSandbox;

beforeAll(async () => {
  sb = await startMicrosoftSandbox({ clients: [{ clientId: 'app-1', clientSecret: 's3cret', redirectUris: [REDIRECT] }] });
});
afterAll(async () => {
  await sb?.close();
});

function app(cachePlugin?: ICachePlugin): ConfidentialClientApplication {
  return new ConfidentialClientApplication(buildMsalConfiguration({ clientId: 'app-1', clientSecret: 's3cret', endpoints: sandboxMicrosoftEndpoints(sb), cachePlugin }));
}

async function connect(cca: ConfidentialClientApplication, email: string, opts: { uncheck?: string[] } = {}) {
  const { verifier, challenge } = await new CryptoProvider().generatePkceCodes();
  const state = new CryptoProvider().createNewGuid();
  const authUrl = await cca.getAuthCodeUrl({ scopes: SCOPES, redirectUri: REDIRECT, codeChallenge: challenge, codeChallengeMethod: 'S256', state, loginHint: email });
  const back = await approveMicrosoftConsent(authUrl, { email, uncheck: opts.uncheck });
  expect(back.searchParams.get('state')).toBe(state);
  const code = back.searchParams.get('code') ?? '';
  const result = await cca.acquireTokenByCode({ code, redirectUri: REDIRECT, scopes: SCOPES, codeVerifier: verifier });
  return { result, code, verifier };
}

describe('Microsoft sandbox identity with the real MSAL ConfidentialClientApplication', () => {
  it('runs auth code + PKCE, builds the account from client_info/id_token, and the token works on Graph', async () => {
    const cca = app();
    const { result } = await connect(cca, 'alice@contoso.test');
    const user = sb.createUser('alice@contoso.test');
    expect(result.account?.homeAccountId).toBe(user.homeAccountId);
    expect(result.account?.username).toBe('alice@contoso.test');
    expect(result.scopes.map((s) => s.toLowerCase())).toEqual(expect.arrayContaining(SCOPES.map((s) => s.toLowerCase())));
    const me = await fetch(`${sb.graphBaseUrl}/v1.0/me`, { headers: { authorization: `Bearer ${result.accessToken}` } });
    expect(me.status).toBe(200);
    expect((await me.json()) as { mail: string }).toMatchObject({ mail: 'alice@contoso.test' });
  });

  it('rejects a replayed authorization code and a wrong PKCE verifier', async () => {
    const cca = app();
    const { code, verifier } = await connect(cca, 'replay@contoso.test');
    await expect(cca.acquireTokenByCode({ code, redirectUri: REDIRECT, scopes: SCOPES, codeVerifier: verifier })).rejects.toMatchObject({ errorCode: 'invalid_grant' });

    const { challenge } = await new CryptoProvider().generatePkceCodes();
    const other = await new CryptoProvider().generatePkceCodes();
    const url = await cca.getAuthCodeUrl({ scopes: SCOPES, redirectUri: REDIRECT, codeChallenge: challenge, codeChallengeMethod: 'S256' });
    const back = await approveMicrosoftConsent(url, { email: 'replay@contoso.test' });
    await expect(cca.acquireTokenByCode({ code: back.searchParams.get('code') ?? '', redirectUri: REDIRECT, scopes: SCOPES, codeVerifier: other.verifier })).rejects.toMatchObject({ errorCode: 'invalid_grant' });
  });

  it('refreshes silently, finds the account by homeAccountId in a serialized cache, and maps revocation to auth_revoked', async () => {
    const plugin = new MemoryCachePlugin();
    const first = await connect(app(plugin), 'bob@contoso.test');
    const homeAccountId = first.result.account?.homeAccountId ?? '';
    expect(plugin.blob).toContain(homeAccountId);

    // A fresh application instance (a new process) sees only the persisted blob.
    const later = app(plugin);
    const account = await later.getTokenCache().getAccountByHomeId(homeAccountId);
    expect(account?.username).toBe('bob@contoso.test');
    const refreshed = await later.acquireTokenSilent({ account: account!, scopes: SCOPES, forceRefresh: true });
    expect(refreshed.accessToken).not.toBe(first.result.accessToken);

    sb.revokeGrants('bob@contoso.test');
    expect(sb.revocations().map((r) => r.email)).toContain('bob@contoso.test');
    const failure = await later.acquireTokenSilent({ account: account!, scopes: SCOPES, forceRefresh: true }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(failure).toBeDefined();
    const mapped = mapGraphError(failure, 'token');
    expect(isProviderError(mapped, 'auth_revoked')).toBe(true);
    expect(mapped.message).not.toContain('1.A');
  });

  it('maps an interaction_required refresh to auth_revoked', async () => {
    const cca = app();
    const { result } = await connect(cca, 'carol@contoso.test');
    sb.setRefreshFailure('carol@contoso.test', 'interaction_required');
    const err = await cca.acquireTokenSilent({ account: result.account!, scopes: SCOPES, forceRefresh: true }).catch((e: unknown) => e);
    expect((err as { errorCode?: string }).errorCode).toBe('interaction_required');
    expect(mapGraphError(err, 'token').kind).toBe('auth_revoked');
  });

  it('returns access_denied with state when the user cancels, and only the ticked scopes when one is unticked', async () => {
    const cca = app();
    const url = await cca.getAuthCodeUrl({ scopes: SCOPES, redirectUri: REDIRECT, state: 'st-1' });
    const denied = await approveMicrosoftConsent(url, { email: 'dave@contoso.test', deny: true });
    expect(denied.searchParams.get('error')).toBe('access_denied');
    expect(denied.searchParams.get('state')).toBe('st-1');
    expect(denied.searchParams.get('code')).toBeNull();

    const { result } = await connect(cca, 'dave@contoso.test', { uncheck: ['https://graph.microsoft.com/Mail.Send'] });
    expect(result.scopes.map((s) => s.toLowerCase())).not.toContain('https://graph.microsoft.com/mail.send');
  });

  it('refuses an unregistered redirect URI on the consent page instead of redirecting', async () => {
    const cca = app();
    const url = await cca.getAuthCodeUrl({ scopes: SCOPES, redirectUri: 'https://evil.example/cb' });
    await expect(approveMicrosoftConsent(url, { email: 'eve@contoso.test' })).rejects.toThrow(/AADSTS50011/);
  });
});
