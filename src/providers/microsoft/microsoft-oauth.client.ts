import { ConfidentialClientApplication, CryptoProvider, type AuthenticationResult } from '@azure/msal-node';
import { GraphAdapter } from './graph.adapter.js';
import { mapGraphError } from './graph-error.mapper.js';
import type { MicrosoftEndpoints } from './microsoft-endpoints.js';
import { buildMsalConfiguration } from './msal-config.js';
import { ProviderError } from '../provider-error.js';
import { cacheHasRefreshToken, CapturingMsalCacheStore, MailboxMsalCachePlugin, type MsalCacheStore } from './msal-cache.plugin.js';

export interface MicrosoftOAuthSettings {
  clientId: string;
  clientSecret: string;
  /** The app's certificate (MICROSOFT_CLIENT_CERTIFICATE_PATH): used instead of the secret when set. */
  clientCertificate?: { thumbprintSha256: string; privateKeyPem: string };
  /** `<PUBLIC_URL>/oauth/microsoft/callback`, registered on the Entra app. */
  redirectUri: string;
  endpoints: MicrosoftEndpoints;
  /** The scopes to ask for (the oauth room's scope policy decides them), offline_access included. */
  scopes: readonly string[];
  /**
   * Scopes a refresh asks for again when the account's cached grant holds them (a shared
   * mailbox's Mail.Read.Shared / Mail.Send.Shared): a refresh asking only for `scopes` would get
   * a token without them, and a refresh asking for scopes never consented fails (consent_required).
   */
  keepScopes?: readonly string[];
}

export interface MicrosoftGrant {
  accessToken: string;
  expiresAt: Date;
  grantedScopes: string[];
  /** `<uid>.<utid>`: how the account is found again in the cache. Identifies the person. */
  homeAccountId: string;
  /** The serialized MSAL cache after the exchange (holds the refresh token). */
  serializedCache: string;
}


/**
 * Entra ID through @azure/msal-node's ConfidentialClientApplication. Every call builds its
 * application around one mailbox's cache plugin, so a cache never holds two customers' tokens.
 */
export class MicrosoftOAuthClient {
  /** Resource scopes (MSAL handles openid/profile/offline_access itself but we still ask for offline_access explicitly). */
  readonly #resourceScopes: string[];

  constructor(
    private readonly settings: MicrosoftOAuthSettings,
    private readonly log?: (level: 'error' | 'warn' | 'info' | 'debug', message: string) => void,
  ) {
    this.#resourceScopes = settings.scopes.filter((s) => s !== 'offline_access');
  }

  private app(store?: MsalCacheStore): ConfidentialClientApplication {
    return new ConfidentialClientApplication(
      buildMsalConfiguration({
        clientId: this.settings.clientId,
        ...(this.settings.clientCertificate
          ? { clientCertificate: { thumbprintSha256: this.settings.clientCertificate.thumbprintSha256, privateKey: this.settings.clientCertificate.privateKeyPem } }
          : { clientSecret: this.settings.clientSecret }),
        endpoints: this.settings.endpoints,
        ...(store ? { cachePlugin: new MailboxMsalCachePlugin(store) } : {}),
        ...(this.log ? { log: this.log } : {}),
      }),
    );
  }

  async pkce(): Promise<{ verifier: string; challenge: string }> {
    return new CryptoProvider().generatePkceCodes();
  }

  async authorizeUrl(input: { state: string; codeChallenge: string; loginHint?: string }): Promise<string> {
    try {
      return await this.app().getAuthCodeUrl({
        scopes: [...this.#resourceScopes, 'offline_access'],
        redirectUri: this.settings.redirectUri,
        state: input.state,
        codeChallenge: input.codeChallenge,
        codeChallengeMethod: 'S256',
        // A re-consent must show the permissions again, so an unticked one can be restored.
        prompt: 'consent',
        ...(input.loginHint ? { loginHint: input.loginHint } : {}),
      });
    } catch (err) {
      throw mapGraphError(err, 'token');
    }
  }

  async exchange(code: string, codeVerifier: string): Promise<MicrosoftGrant> {
    const store = new CapturingMsalCacheStore();
    let result: AuthenticationResult;
    try {
      result = await this.app(store).acquireTokenByCode({ code, codeVerifier, redirectUri: this.settings.redirectUri, scopes: [...this.#resourceScopes, 'offline_access'] });
    } catch (err) {
      throw mapGraphError(err, 'token');
    }
    const homeAccountId = result.account?.homeAccountId;
    if (!homeAccountId || !store.serialized) {
      throw new ProviderError('microsoft', 'invalid_request', 'Microsoft token response built no account', { reason: 'no_account' });
    }
    // Once each: MSAL may or may not list offline_access in `scopes` (the stand-in and Entra differ).
    const granted = [...new Set(result.scopes)];
    // When MSAL leaves offline_access out of `scopes`, the refresh token in the cache is the proof.
    if (cacheHasRefreshToken(store.serialized) && !granted.includes('offline_access')) granted.push('offline_access');
    return {
      accessToken: result.accessToken,
      expiresAt: result.expiresOn ?? new Date(Date.now() + 3_600_000),
      grantedScopes: granted,
      homeAccountId,
      serializedCache: store.serialized,
    };
  }

  /**
   * The connect check for a shared mailbox, as the member who signed in: throws `auth_revoked` /
   * `shared_mailbox_access_denied` (not a member, or no .Shared consent) or `not_found` (no such mailbox).
   */
  async checkSharedMailbox(accessToken: string, sharedMailbox: string): Promise<void> {
    await new GraphAdapter({ endpoints: this.settings.endpoints, accessToken: () => Promise.resolve(accessToken), sharedMailbox }).checkMailboxAccess();
  }

    /** The mailbox address from Graph `/me` (mail, else userPrincipalName). */
  async identify(accessToken: string): Promise<string> {
    return new GraphAdapter({ endpoints: this.settings.endpoints, accessToken: () => Promise.resolve(accessToken) }).getAddress();
  }

  /**
   * A valid access token from the mailbox's persisted cache. MSAL returns the cached token while
   * it has more than five minutes left and otherwise redeems the refresh token; the plugin
   * writes the rotated cache back.
   */
  async acquireSilent(store: MsalCacheStore, homeAccountId: string, opts: { forceRefresh?: boolean } = {}): Promise<{ accessToken: string; expiresAt: Date }> {
    const app = this.app(store);
    try {
      const account = await app.getTokenCache().getAccountByHomeId(homeAccountId);
      if (!account) throw new ProviderError('microsoft', 'auth_revoked', 'Microsoft account is no longer in the token cache', { reason: 'no_account' });
      const kept = grantedKeepScopes(app.getTokenCache().serialize(), homeAccountId, this.settings.keepScopes ?? []);
      const result = await app.acquireTokenSilent({ account, scopes: [...this.#resourceScopes, ...kept], forceRefresh: opts.forceRefresh ?? false });
      return { accessToken: result.accessToken, expiresAt: result.expiresOn ?? new Date(Date.now() + 3_600_000) };
    } catch (err) {
      throw mapGraphError(err, 'token');
    }
  }
}

/** Of `keep`, the scopes an access token cached for this account was granted (MSAL cache JSON: AccessToken.*.target). */
function grantedKeepScopes(serializedCache: string, homeAccountId: string, keep: readonly string[]): string[] {
  if (keep.length === 0) return [];
  let targets: string[];
  try {
    const doc = JSON.parse(serializedCache) as { AccessToken?: Record<string, { home_account_id?: unknown; target?: unknown }> };
    targets = Object.values(doc.AccessToken ?? {})
      .filter((t) => t.home_account_id === homeAccountId && typeof t.target === 'string')
      .flatMap((t) => (t.target as string).toLowerCase().split(/\s+/));
  } catch {
    return [];
  }
  const bare = (s: string) => s.toLowerCase().replace(/^https:\/\/graph\.microsoft\.com\//, '');
  const have = new Set(targets.map(bare));
  return keep.filter((k) => have.has(bare(k)));
}
