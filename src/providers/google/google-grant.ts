import { z } from 'zod';
import { composeGrantPort, DELEGATED, GrantNotConfiguredError, type ConsentGrant, type ConsentPort, type CredentialKindPort, type GrantCredential, type GrantPort } from '../grant-port.js';
import type { GoogleEndpoints } from './google-endpoints.js';
import type { GoogleOAuthClient } from './google-oauth.client.js';
import { revokeGoogleToken } from './google-token-revoke.adapter.js';

/** A Google user's consent: the refresh token (Google revokes the grant when either token is revoked). */
export interface GoogleDelegatedCredential extends GrantCredential {
  readonly provider: 'google';
  readonly kind: typeof DELEGATED;
  readonly refreshToken: string;
}

const delegatedFields = z.strictObject({ refreshToken: z.string().min(1) });

function isGoogleDelegated(c: GrantCredential | undefined): c is GoogleDelegatedCredential {
  return c?.provider === 'google' && c.kind === DELEGATED && typeof (c as { refreshToken?: unknown }).refreshToken === 'string';
}

/**
 * `delegated`: a refresh token from the user's consent. An access token comes from the token
 * endpoint (google-auth-library); a rotated refresh token is stored at once (the old one may stop
 * working). Revoke: the revoke endpoint (RFC 7009; provider-facts §2.2).
 */
export function googleDelegatedKind(deps: { client: Pick<GoogleOAuthClient, 'refresh'> | undefined; endpoints: GoogleEndpoints }): CredentialKindPort<GoogleDelegatedCredential> {
  return {
    kind: DELEGATED,
    parse(fields, common) {
      const f = delegatedFields.parse(fields);
      return { provider: 'google', kind: DELEGATED, refreshToken: f.refreshToken, ...common };
    },
    serialize: (c) => ({ refreshToken: c.refreshToken }),
    async accessToken(stored) {
      if (!deps.client) throw new GrantNotConfiguredError('google', 'Google is not configured (GOOGLE_CLIENT_ID)');
      const cred = stored.credential;
      const res = await deps.client.refresh(cred.refreshToken);
      if (res.refreshToken) await stored.store({ ...cred, refreshToken: res.refreshToken });
      return { accessToken: res.accessToken, expiresAt: res.expiresAt };
    },
    revoke: (c) => revokeGoogleToken(deps.endpoints, c.refreshToken),
  };
}

function googleConsent(client: GoogleOAuthClient): ConsentPort {
  return {
    async pkce() {
      const p = await client.pkce();
      return { verifier: p.codeVerifier, challenge: p.codeChallenge };
    },
    authorizeUrl: (input) => Promise.resolve(client.authorizeUrl(input)),
    async exchange(code, codeVerifier) {
      const g = await client.exchange(code, codeVerifier);
      const credential: GoogleDelegatedCredential | undefined = g.refreshToken ? { provider: 'google', kind: DELEGATED, refreshToken: g.refreshToken } : undefined;
      return { accessToken: g.accessToken, expiresAt: g.expiresAt, grantedScopes: g.grantedScopes, idToken: g.idToken, credential, accountId: undefined };
    },
    identify: (g: ConsentGrant) => client.identify({ accessToken: g.accessToken, expiresAt: g.expiresAt, grantedScopes: g.grantedScopes, idToken: g.idToken, refreshToken: undefined }),
    // Revoking either token revokes the grant (provider-facts §2.2).
    discard: (g) => client.revoke(isGoogleDelegated(g.credential) ? g.credential.refreshToken : g.accessToken),
  };
}

/** Google's grant port: consent when a client is configured, the `delegated` credential kind, then `kinds` (organization installs'). */
export function googleGrantPort(deps: { client: GoogleOAuthClient | undefined; endpoints: GoogleEndpoints; kinds?: CredentialKindPort[] }): GrantPort {
  return composeGrantPort({
    provider: 'google',
    displayName: 'Google',
    consent: deps.client ? googleConsent(deps.client) : undefined,
    kinds: [googleDelegatedKind(deps), ...(deps.kinds ?? [])],
  });
}
