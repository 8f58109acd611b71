import { describe, expect, it } from 'vitest';
import { ProviderError } from '../provider-error.js';
import { GOOGLE_ENDPOINTS } from './google-endpoints.js';
import { GoogleTeardownAdapter } from './google-teardown.adapter.js';

const MAILBOX = { id: 'mbx_1', tenantId: 'ten_1', provider: 'google' as const, subscriptionId: null };
const CREDENTIAL = { provider: 'google' as const, secret: '1//refresh-token-secret' };
// Nothing listens on port 9: a revoke there fails at once with a network error.
const UNREACHABLE = { ...GOOGLE_ENDPOINTS, oauth2RevokeUrl: 'http://127.0.0.1:9/revoke', gmailRootUrl: 'http://127.0.0.1:9/' };

describe('GoogleTeardownAdapter', () => {
  it('treats a grant the token endpoint refuses (invalid_grant → auth_revoked) as nothing left to stop', async () => {
    const grant = { refresh: () => Promise.reject(new ProviderError('google', 'auth_revoked', 'invalid_grant', { status: 400, reason: 'invalid_grant' })) };
    const adapter = new GoogleTeardownAdapter({ endpoints: UNREACHABLE, grant });
    await expect(adapter.stopWatch(MAILBOX, CREDENTIAL)).resolves.toEqual({ status: 'not_needed' });
  });

  it('records a refresh that does not answer as a timeout, and a run without Google configured as a failure', async () => {
    const hanging = new GoogleTeardownAdapter({ endpoints: UNREACHABLE, grant: { refresh: () => new Promise(() => undefined) }, timeoutMs: 20 });
    await expect(hanging.stopWatch(MAILBOX, CREDENTIAL)).resolves.toEqual({ status: 'failed', error: 'timeout' });
    const unconfigured = new GoogleTeardownAdapter({ endpoints: UNREACHABLE, grant: undefined });
    await expect(unconfigured.stopWatch(MAILBOX, CREDENTIAL)).resolves.toEqual({ status: 'failed', error: 'google not configured' });
    await expect(unconfigured.stopWatch(MAILBOX, null)).resolves.toEqual({ status: 'not_needed' });
  });

  it('keeps the token for a retry when the revoke fails, and never puts it in the error', async () => {
    const adapter = new GoogleTeardownAdapter({ endpoints: UNREACHABLE, grant: undefined, timeoutMs: 5_000 });
    const result = await adapter.revokeGrant(MAILBOX, CREDENTIAL);
    expect(result).toMatchObject({ status: 'failed', retryToken: CREDENTIAL.secret });
    expect(JSON.stringify(result.status === 'failed' ? result.error : '')).not.toContain('refresh-token');
  });
});
