/**
 * Every Google URL the connector talks to, so production and the local stand-in differ only in
 * configuration. Field names match google-auth-library's OAuth2Client `endpoints` option.
 */
export interface GoogleEndpoints {
  oauth2AuthBaseUrl: string;
  oauth2TokenUrl: string;
  oauth2RevokeUrl: string;
  oauth2FederatedSignonPemCertsUrl: string;
  oauth2FederatedSignonJwkCertsUrl: string;
  tokenInfoUrl: string;
  /** `rootUrl` for @googleapis/gmail (trailing slash). */
  gmailRootUrl: string;
  /** Accepted `iss` values for ID tokens and Pub/Sub push JWTs. */
  issuers: string[];
}

/** google-auth-library's own defaults (oauth2client.ts) plus the Gmail API root. */
export const GOOGLE_ENDPOINTS: Readonly<GoogleEndpoints> = Object.freeze({
  oauth2AuthBaseUrl: 'https://accounts.google.com/o/oauth2/v2/auth',
  oauth2TokenUrl: 'https://oauth2.googleapis.com/token',
  oauth2RevokeUrl: 'https://oauth2.googleapis.com/revoke',
  oauth2FederatedSignonPemCertsUrl: 'https://www.googleapis.com/oauth2/v1/certs',
  oauth2FederatedSignonJwkCertsUrl: 'https://www.googleapis.com/oauth2/v3/certs',
  tokenInfoUrl: 'https://oauth2.googleapis.com/tokeninfo',
  gmailRootUrl: 'https://gmail.googleapis.com/',
  issuers: ['accounts.google.com', 'https://accounts.google.com'],
});

/** Endpoints of the local Google stand-in (src/sandbox/google) listening at `baseUrl`. */
export function sandboxGoogleEndpoints(baseUrl: string): GoogleEndpoints {
  const base = baseUrl.replace(/\/+$/, '');
  return {
    oauth2AuthBaseUrl: `${base}/o/oauth2/v2/auth`,
    oauth2TokenUrl: `${base}/token`,
    oauth2RevokeUrl: `${base}/revoke`,
    oauth2FederatedSignonPemCertsUrl: `${base}/oauth2/v1/certs`,
    oauth2FederatedSignonJwkCertsUrl: `${base}/oauth2/v3/certs`,
    tokenInfoUrl: `${base}/tokeninfo`,
    gmailRootUrl: `${base}/`,
    // The stand-in signs as Google does.
    issuers: [...GOOGLE_ENDPOINTS.issuers],
  };
}

/** The subset OAuth2Client accepts as `endpoints`. */
export function oauth2ClientEndpoints(e: GoogleEndpoints): Omit<GoogleEndpoints, 'gmailRootUrl' | 'issuers'> {
  return {
    oauth2AuthBaseUrl: e.oauth2AuthBaseUrl,
    oauth2TokenUrl: e.oauth2TokenUrl,
    oauth2RevokeUrl: e.oauth2RevokeUrl,
    oauth2FederatedSignonPemCertsUrl: e.oauth2FederatedSignonPemCertsUrl,
    oauth2FederatedSignonJwkCertsUrl: e.oauth2FederatedSignonJwkCertsUrl,
    tokenInfoUrl: e.tokenInfoUrl,
  };
}
