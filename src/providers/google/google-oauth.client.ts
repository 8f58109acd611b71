import { createPublicKey, type JsonWebKey } from 'node:crypto';
import { CodeChallengeMethod, OAuth2Client } from 'google-auth-library';
import { z } from 'zod';
import { GmailAdapter } from './gmail.adapter.js';
import { oauth2ClientEndpoints, type GoogleEndpoints } from './google-endpoints.js';
import { mapGoogleError } from './google-error.mapper.js';
import { revokeGoogleToken } from './google-token-revoke.adapter.js';
import { ProviderError, unexpectedResponse } from '../provider-error.js';

const jwksSchema = z.object({ keys: z.array(z.object({ kid: z.string().min(1), kty: z.string() }).loose()) });

export interface GoogleOAuthSettings {
  clientId: string;
  clientSecret: string;
  /** `<PUBLIC_URL>/oauth/google/callback`, registered on the Google OAuth client. */
  redirectUri: string;
  endpoints: GoogleEndpoints;
  /** The scopes to ask for (the oauth room's scope policy decides them). */
  scopes: readonly string[];
}

export interface GoogleGrant {
  accessToken: string;
  refreshToken: string | undefined;
  expiresAt: Date;
  grantedScopes: string[];
  idToken: string | undefined;
}

// Validate what came back from the token endpoint before trusting any field of it.
const tokenResponseSchema = z.object({
  access_token: z.string().min(1),
  refresh_token: z.string().min(1).nullish(),
  expiry_date: z.number().nullish(),
  scope: z.string().nullish(),
  id_token: z.string().min(1).nullish(),
});
const idTokenPayloadSchema = z.object({ email: z.string().min(3), email_verified: z.boolean().optional() });

type TokenResponse = z.infer<typeof tokenResponseSchema>;

/** A token endpoint call: its failure mapped to a ProviderError, its answer validated before any field is trusted. */
async function tokenCall(call: () => Promise<unknown>): Promise<TokenResponse> {
  let tokens: unknown;
  try {
    tokens = await call();
  } catch (err) {
    throw mapGoogleError(err, 'oauth.token');
  }
  const t = tokenResponseSchema.safeParse(tokens);
  if (!t.success) throw unexpectedResponse('google', 'oauth.token', { issues: t.error.issues });
  return t.data;
}

/** Token lifetime assumed when the response names none (Google's is 3599 s). */
const DEFAULT_LIFETIME_MS = 3_600_000;

/**
 * Google OAuth 2.0 for the connector through google-auth-library's OAuth2Client, pointed at the
 * real Google or the stand-in by `endpoints`. A new OAuth2Client per call: the library keeps
 * credentials on the instance, and one mailbox's tokens must never be visible to another's call.
 */
export class GoogleOAuthClient {
  constructor(
    private readonly settings: GoogleOAuthSettings,
    private readonly clock: () => Date = () => new Date(),
  ) {}

  private client(): OAuth2Client {
    const client = new OAuth2Client({
      clientId: this.settings.clientId,
      clientSecret: this.settings.clientSecret,
      redirectUri: this.settings.redirectUri,
      endpoints: oauth2ClientEndpoints(this.settings.endpoints),
    });
    // The library retries token calls on 5xx by itself; the token vault owns retries (backoff,
    // attempt budget), so the two must not multiply.
    client.transporter.interceptors.request.add({
      resolved: (opts) => Promise.resolve({ ...opts, retry: false, retryConfig: { ...opts.retryConfig, retry: 0 } }),
    });
    return client;
  }

  async pkce(): Promise<{ codeVerifier: string; codeChallenge: string }> {
    const { codeVerifier, codeChallenge } = await this.client().generateCodeVerifierAsync();
    if (!codeChallenge) throw new Error('google-auth-library returned no PKCE challenge');
    return { codeVerifier, codeChallenge };
  }

  /**
   * offline + prompt=consent: a refresh token is only returned on a consent screen, and a
   * re-consent must produce a new one. include_granted_scopes keeps earlier grants of this app.
   */
  authorizeUrl(input: { state: string; codeChallenge: string; loginHint?: string }): string {
    return this.client().generateAuthUrl({
      access_type: 'offline',
      prompt: 'consent',
      include_granted_scopes: true,
      scope: [...this.settings.scopes],
      state: input.state,
      code_challenge: input.codeChallenge,
      code_challenge_method: CodeChallengeMethod.S256,
      ...(input.loginHint ? { login_hint: input.loginHint } : {}),
    });
  }

  async exchange(code: string, codeVerifier: string): Promise<GoogleGrant> {
    const t = await tokenCall(async () => (await this.client().getToken({ code, codeVerifier })).tokens);
    return {
      accessToken: t.access_token,
      refreshToken: t.refresh_token ?? undefined,
      expiresAt: this.expiry(t),
      grantedScopes: (t.scope ?? '').split(/\s+/).filter(Boolean),
      idToken: t.id_token ?? undefined,
    };
  }

  /**
   * The issuer's ID-token keys from its `jwks_uri` (discovery), as the PEM map google-auth-library
   * verifies against. Google also serves PEM, but a Google-compatible issuer need not.
   */
  private async idTokenKeys(): Promise<Record<string, string>> {
    const res = await fetch(this.settings.endpoints.oauth2FederatedSignonJwkCertsUrl, { signal: AbortSignal.timeout(10_000), redirect: 'error' });
    if (!res.ok) throw new Error(`jwks_uri answered ${res.status}`);
    const jwks = jwksSchema.parse(await res.json());
    const pems: Record<string, string> = {};
    for (const k of jwks.keys) {
      if (k.kty === 'RSA') pems[k.kid] = createPublicKey({ key: k as JsonWebKey, format: 'jwk' }).export({ type: 'spki', format: 'pem' }).toString();
    }
    return pems;
  }

  /**
   * The connected address: from the ID token after verifying its signature (keys from the
   * issuer's jwks_uri), audience, expiry and issuer with google-auth-library; a token without a
   * verified email falls back to the Gmail profile, which names the mailbox itself.
   */
  async identify(grant: GoogleGrant): Promise<string> {
    if (grant.idToken) {
      try {
        const ticket = await this.client().verifySignedJwtWithCertsAsync(grant.idToken, await this.idTokenKeys(), this.settings.clientId, this.settings.endpoints.issuers);
        const payload = idTokenPayloadSchema.safeParse(ticket.getPayload());
        if (payload.success && payload.data.email_verified !== false) return payload.data.email;
      } catch (err) {
        throw new ProviderError('google', 'invalid_request', 'Google ID token failed verification', { reason: 'id_token_invalid', cause: err });
      }
    }
    const gmail = new GmailAdapter({ endpoints: this.settings.endpoints, accessToken: () => Promise.resolve(grant.accessToken) });
    return gmail.getAddress();
  }

  async refresh(refreshToken: string): Promise<{ accessToken: string; expiresAt: Date; refreshToken: string | undefined }> {
    const client = this.client();
    client.setCredentials({ refresh_token: refreshToken });
    const t = await tokenCall(async () => (await client.refreshAccessToken()).credentials);
    return {
      accessToken: t.access_token,
      expiresAt: this.expiry(t),
      // The library copies the old refresh token into the result when none came back.
      refreshToken: t.refresh_token && t.refresh_token !== refreshToken ? t.refresh_token : undefined,
    };
  }

  private expiry(t: TokenResponse): Date {
    return new Date(t.expiry_date ?? this.clock().getTime() + DEFAULT_LIFETIME_MS);
  }

  /** Revokes the grant at Google; revoking either token revokes both (provider-facts §2.2). */
  async revoke(token: string): Promise<'revoked' | 'already_invalid'> {
    return revokeGoogleToken(this.settings.endpoints, token);
  }
}
