import { z } from 'zod';
import { composeGrantPort, DELEGATED, GrantNotConfiguredError, type ConsentPort, type CredentialKindPort, type GrantCredential, type GrantPort } from '../grant-port.js';
import { ProviderError } from '../provider-error.js';
import type { MicrosoftOAuthClient } from './microsoft-oauth.client.js';
import type { MsalCacheStore } from './msal-cache.plugin.js';

/** A Microsoft user's consent: the whole serialized MSAL cache of this one account (access + refresh token, id token, account). */
export interface MicrosoftDelegatedCredential extends GrantCredential {
  readonly provider: 'microsoft';
  readonly kind: typeof DELEGATED;
  readonly msalCache: string;
}

const delegatedFields = z.strictObject({ msalCache: z.string().min(2) });

function isMicrosoftDelegated(c: GrantCredential | null): c is MicrosoftDelegatedCredential {
  return c?.provider === 'microsoft' && c.kind === DELEGATED && typeof (c as { msalCache?: unknown }).msalCache === 'string';
}

/**
 * `delegated`: the MSAL cache from the user's consent, with the homeAccountId stored beside it.
 * MSAL reads the cache fresh from storage at every cache access and writes the rewritten cache
 * back (msal-cache.plugin.ts), so a refresh done by another process is seen. Entra offers no
 * per-app revoke for a delegated grant (provider-facts §5): `not_supported`.
 */
export function microsoftDelegatedKind(deps: { client: Pick<MicrosoftOAuthClient, 'acquireSilent'> | undefined }): CredentialKindPort<MicrosoftDelegatedCredential> {
  return {
    kind: DELEGATED,
    parse(fields, common) {
      const f = delegatedFields.parse(fields);
      return { provider: 'microsoft', kind: DELEGATED, msalCache: f.msalCache, ...common };
    },
    serialize: (c) => ({ msalCache: c.msalCache }),
    accessToken(stored, opts) {
      const client = deps.client;
      if (!client) throw new GrantNotConfiguredError('microsoft', 'Microsoft is not configured (MICROSOFT_CLIENT_ID)');
      if (!stored.accountId) throw new ProviderError('microsoft', 'auth_revoked', 'no account id stored for this mailbox', { reason: 'no_account' });
      // MSAL loads before it saves: the credential read at load (its sandbox marker) is the one rewritten.
      let read: MicrosoftDelegatedCredential = stored.credential;
      const cache: MsalCacheStore = {
        load: async () => {
          const c = await stored.reload();
          if (!isMicrosoftDelegated(c)) return null;
          read = c;
          return c.msalCache;
        },
        save: (serialized) => stored.store({ ...read, msalCache: serialized }),
      };
      return client.acquireSilent(cache, stored.accountId, { forceRefresh: opts.forceRefresh });
    },
    revoke: () => Promise.resolve('not_supported'),
  };
}

function microsoftConsent(client: MicrosoftOAuthClient): ConsentPort {
  return {
    pkce: () => client.pkce(),
    authorizeUrl: (input) => client.authorizeUrl(input),
    async exchange(code, codeVerifier) {
      const g = await client.exchange(code, codeVerifier);
      const credential: MicrosoftDelegatedCredential = { provider: 'microsoft', kind: DELEGATED, msalCache: g.serializedCache };
      return { accessToken: g.accessToken, expiresAt: g.expiresAt, grantedScopes: g.grantedScopes, idToken: undefined, credential, accountId: g.homeAccountId };
    },
    identify: (g) => client.identify(g.accessToken),
    // No per-app revoke for a delegated grant: nothing is kept; the failure page tells the
    // customer how to remove the app from their account.
    discard: () => Promise.resolve('not_supported'),
  };
}

/** Microsoft's grant port: consent when a client is configured, the `delegated` credential kind, then `kinds` (organization installs'). */
export function microsoftGrantPort(deps: { client: MicrosoftOAuthClient | undefined; kinds?: CredentialKindPort[] }): GrantPort {
  return composeGrantPort({
    provider: 'microsoft',
    displayName: 'Microsoft',
    consent: deps.client ? microsoftConsent(deps.client) : undefined,
    kinds: [microsoftDelegatedKind(deps), ...(deps.kinds ?? [])],
  });
}
