import { CodeChallengeMethod, OAuth2Client } from 'google-auth-library';
import type { GoogleEndpoints } from '../../providers/google/google-endpoints.js';
import { approveGoogleConsent } from './google-consent.client.js';

/** The OAuth part of the connector's Google endpoints (what OAuth2Client's `endpoints` takes). */
export type SandboxGoogleEndpointsLike = Omit<GoogleEndpoints, 'gmailRootUrl' | 'issuers'>;

export interface ConnectedGoogleUser {
  accessToken: string;
  refreshToken: string | undefined;
  grantedScopes: string[];
  idToken: string | undefined;
  client: OAuth2Client;
}

/**
 * Connects a stand-in user the way the connector's connect flow does (authorization code + PKCE
 * S256, offline access, consent approved over HTTP). For tests and the demo.
 */
export async function connectGoogleSandboxUser(
  endpoints: SandboxGoogleEndpointsLike,
  opts: { email: string; scopes: string[]; clientId?: string; clientSecret?: string; redirectUri?: string; uncheck?: string[] },
): Promise<ConnectedGoogleUser> {
  const client = new OAuth2Client({
    clientId: opts.clientId ?? 'sandbox-client.apps.googleusercontent.com',
    clientSecret: opts.clientSecret ?? 'sandbox-secret',
    redirectUri: opts.redirectUri ?? 'http://127.0.0.1:9/oauth/google/callback',
    endpoints,
  });
  const { codeVerifier, codeChallenge } = await client.generateCodeVerifierAsync();
  const url = client.generateAuthUrl({
    access_type: 'offline',
    prompt: 'consent',
    scope: opts.scopes,
    state: 'connect',
    login_hint: opts.email,
    code_challenge: codeChallenge,
    code_challenge_method: CodeChallengeMethod.S256,
  });
  const back = await approveGoogleConsent(url, { email: opts.email, ...(opts.uncheck ? { uncheck: opts.uncheck } : {}) });
  const code = back.searchParams.get('code');
  if (!code) throw new Error(`Google sandbox consent failed: ${back.searchParams.get('error') ?? 'no code'}`);
  const { tokens } = await client.getToken({ code, codeVerifier });
  if (!tokens.access_token) throw new Error('Google sandbox token response had no access_token');
  client.setCredentials(tokens);
  return {
    accessToken: tokens.access_token,
    refreshToken: tokens.refresh_token ?? undefined,
    grantedScopes: (tokens.scope ?? '').split(' ').filter(Boolean),
    idToken: tokens.id_token ?? undefined,
    client,
  };
}
