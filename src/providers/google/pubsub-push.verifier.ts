import { createRemoteJWKSet, jwtVerify, type JWTVerifyGetKey } from 'jose';
import type { GoogleEndpoints } from './google-endpoints.js';

export interface GooglePushSettings {
  /** GOOGLE_PUBSUB_AUDIENCE, else the push endpoint URL (Pub/Sub's default audience). */
  audience: string;
  /** GOOGLE_PUBSUB_SERVICE_ACCOUNT: the JWT `email` must equal it. Unset → every push is refused. */
  serviceAccount: string | undefined;
  endpoints: Pick<GoogleEndpoints, 'oauth2FederatedSignonJwkCertsUrl' | 'issuers'>;
  /** The connector's clock (exp/iat are checked against it). */
  clock?: () => Date;
}

/**
 * Gmail push through Pub/Sub: authenticates the push request's OIDC JWT and reads the Gmail
 * notification out of the envelope. The signing keys come as a JWKS from the issuer's
 * `jwks_uri` (Google: https://www.googleapis.com/oauth2/v3/certs; a Google-compatible issuer or
 * the stand-in: the discovered / configured one) through `jose` (createRemoteJWKSet: fetch
 * timeout, cached, refetched at most every 30 s for an unknown `kid`). Before, google-auth-library's
 * verifyIdToken read the PEM certificate URL, which for a non-Google issuer is its JWKS document:
 * every push was refused.
 */
export class GooglePushVerifier {
  readonly #keys: JWTVerifyGetKey;
  readonly #clock: () => Date;

  constructor(private readonly settings: GooglePushSettings) {
    this.#keys = createRemoteJWKSet(new URL(settings.endpoints.oauth2FederatedSignonJwkCertsUrl), { timeoutDuration: 5_000, cooldownDuration: 30_000, cacheMaxAge: 3_600_000 });
    this.#clock = settings.clock ?? (() => new Date());
  }

  /**
   * 'missing' when there is no bearer token or no service account is configured, 'rejected' when
   * the token fails verification (provider-facts §1.2: signature + aud, then `email` = the push
   * service account and `email_verified`). Nothing of the token is ever returned or thrown:
   * google-auth-library's messages can embed its payload.
   */
  async authenticate(authorization: string | undefined): Promise<'ok' | 'missing' | 'rejected'> {
    const token = /^Bearer ([A-Za-z0-9._-]+)$/.exec(authorization ?? '')?.[1];
    if (!token || !this.settings.serviceAccount) return 'missing';
    try {
      // RS256 only (what Google signs with); iss, aud, exp checked; iat required and at most a day
      // old (google-auth-library's limit), 5 minutes of clock skew as it allowed.
      const { payload: claims } = await jwtVerify(token, this.#keys, {
        algorithms: ['RS256'],
        issuer: this.settings.endpoints.issuers,
        audience: this.settings.audience,
        requiredClaims: ['exp', 'iat'],
        maxTokenAge: '1 day',
        clockTolerance: '5 minutes',
        currentDate: this.#clock(),
      });
      return claims.email === this.settings.serviceAccount && claims.email_verified === true ? 'ok' : 'rejected';
    } catch {
      return 'rejected';
    }
  }
}
