import { OAuth2Client } from 'google-auth-library';
import { oauth2ClientEndpoints, type GoogleEndpoints } from './google-endpoints.js';
import { mapGoogleError } from './google-error.mapper.js';

/**
 * Revokes a Google refresh or access token (RFC 7009 at oauth2.googleapis.com/revoke).
 * Google: revoking an access token also revokes its refresh token; 200 on success, 400 on error.
 * An already revoked/expired token answers 400 invalid_token: for a disconnect that is success,
 * so it resolves `'already_invalid'` instead of throwing.
 */
export async function revokeGoogleToken(
  endpoints: GoogleEndpoints,
  token: string,
): Promise<'revoked' | 'already_invalid'> {
  const client = new OAuth2Client({ endpoints: oauth2ClientEndpoints(endpoints) });
  try {
    await client.revokeToken(token);
    return 'revoked';
  } catch (err) {
    const e = err as { response?: { status?: number; data?: { error?: unknown } } };
    if (e.response?.status === 400 && e.response.data?.error === 'invalid_token') return 'already_invalid';
    throw mapGoogleError(err, 'oauth.revoke');
  }
}
