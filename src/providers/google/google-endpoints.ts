import { z } from 'zod';

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

export const GOOGLE_ISSUER_URL = 'https://accounts.google.com';

const discoverySchema = z
  .object({ issuer: z.url(), authorization_endpoint: z.url(), token_endpoint: z.url(), revocation_endpoint: z.url(), jwks_uri: z.url() })
  .loose();

export class GoogleDiscoveryError extends Error {
  override readonly name = 'GoogleDiscoveryError';
}

function isLoopback(u: URL): boolean {
  return ['127.0.0.1', 'localhost', '[::1]'].includes(u.hostname);
}

/**
 * Google's endpoints from its OpenID discovery document (`<issuer>/.well-known/openid-configuration`,
 * OpenID Connect Discovery 1.0 §4): authorize, token, revoke and the ID-token keys (`jwks_uri`),
 * so a Google-compatible issuer with another path layout works unchanged. The document's `issuer`
 * must equal the configured one (§4.3), every endpoint must be https (plain http only for an
 * issuer on loopback), and the Gmail API root is its own setting (`GMAIL_API_URL`).
 */
export async function discoverGoogleEndpoints(
  issuerUrl: string,
  opts: { gmailApiUrl?: string; fetch?: typeof fetch; timeoutMs?: number } = {},
): Promise<GoogleEndpoints> {
  const issuer = issuerUrl.replace(/\/+$/, '');
  const issuerParsed = new URL(issuer);
  const insecureOk = isLoopback(issuerParsed);
  const checkUrl = (u: string, what: string): string => {
    const p = new URL(u);
    if (p.protocol !== 'https:' && !(insecureOk && p.protocol === 'http:' && isLoopback(p))) throw new GoogleDiscoveryError(`${what} must be https`);
    return u;
  };
  checkUrl(issuer, 'GOOGLE_ISSUER_URL');
  let body: unknown;
  try {
    const res = await (opts.fetch ?? fetch)(`${issuer}/.well-known/openid-configuration`, { signal: AbortSignal.timeout(opts.timeoutMs ?? 10_000), redirect: 'error' });
    if (!res.ok) throw new Error(`answered ${res.status}`);
    body = await res.json();
  } catch (err) {
    throw new GoogleDiscoveryError(`the OpenID discovery document of ${issuer} could not be read (${err instanceof Error ? err.message : 'error'})`);
  }
  const doc = discoverySchema.safeParse(body);
  if (!doc.success) throw new GoogleDiscoveryError(`the OpenID discovery document of ${issuer} lacks ${doc.error.issues.map((i) => i.path.join('.')).join(', ')}`);
  if (doc.data.issuer.replace(/\/+$/, '') !== issuer) throw new GoogleDiscoveryError(`the discovery document names issuer ${doc.data.issuer}, not ${issuer}`);
  const gmailRoot = checkUrl(opts.gmailApiUrl ?? GOOGLE_ENDPOINTS.gmailRootUrl, 'GMAIL_API_URL');
  const google = issuer === GOOGLE_ISSUER_URL;
  return {
    oauth2AuthBaseUrl: checkUrl(doc.data.authorization_endpoint, 'authorization_endpoint'),
    oauth2TokenUrl: checkUrl(doc.data.token_endpoint, 'token_endpoint'),
    oauth2RevokeUrl: checkUrl(doc.data.revocation_endpoint, 'revocation_endpoint'),
    oauth2FederatedSignonJwkCertsUrl: checkUrl(doc.data.jwks_uri, 'jwks_uri'),
    // Not part of discovery: only Google serves its keys as PEM too. ID tokens are verified
    // against jwks_uri (GoogleOAuthClient.identify), so another issuer needs no PEM endpoint.
    oauth2FederatedSignonPemCertsUrl: google ? GOOGLE_ENDPOINTS.oauth2FederatedSignonPemCertsUrl : doc.data.jwks_uri,
    tokenInfoUrl: google ? GOOGLE_ENDPOINTS.tokenInfoUrl : `${issuer}/tokeninfo`,
    gmailRootUrl: gmailRoot.endsWith('/') ? gmailRoot : `${gmailRoot}/`,
    issuers: google ? [...GOOGLE_ENDPOINTS.issuers] : [doc.data.issuer],
  };
}
