import { z } from 'zod';
import type { MailboxCredential, RevokeResult, TeardownMailbox, WatchStopResult } from '../ports.js';
import { BoundedTeardown, describeFailure } from '../teardown-call.js';
import { GmailWatchAdapter } from './gmail-watch.adapter.js';
import type { GoogleEndpoints } from './google-endpoints.js';
import type { GoogleOAuthClient } from './google-oauth.client.js';
import { isGoogleOrganizationDocument } from './google-organization-grant.js';
import { revokeGoogleToken } from './google-token-revoke.adapter.js';

// The token vault stores `{v:1, provider, refreshToken}` (google-grant.ts). A purge must still
// revoke what it can if that shape grows, so unknown fields are tolerated and a bare token or the
// older `refresh_token` spelling is accepted too.
const storedGoogleCredential = z.union([
  z.object({ refreshToken: z.string().min(1) }).loose(),
  z.object({ refresh_token: z.string().min(1) }).loose(),
]);

/** The refresh token a disconnect revokes, read tolerantly from a stored credential document. */
export function googleTeardownSecret(stored: string): string {
  const trimmed = stored.trim();
  if (trimmed.startsWith('{')) {
    try {
      const parsed = storedGoogleCredential.safeParse(JSON.parse(trimmed));
      if (parsed.success) return 'refreshToken' in parsed.data ? String(parsed.data.refreshToken) : String(parsed.data.refresh_token);
    } catch {
      // not JSON after all: treat as the token itself
    }
  }
  return trimmed;
}

export interface GoogleTeardownOptions {
  endpoints: GoogleEndpoints;
  /** The grant client (refresh for users.stop); undefined when Google is not configured in this run. */
  grant: Pick<GoogleOAuthClient, 'refresh'> | undefined;
  /**
   * An access token of an organization-install mailbox (the token vault: a JWT grant signed with
   * the install's key); its stored document holds no refresh token. Undefined: such a watch is left to expire.
   */
  organizationToken?: (mailbox: TeardownMailbox) => Promise<string>;
  /** Upper bound on each provider call (default 10 s). */
  timeoutMs?: number;
}

/**
 * Google side of a disconnect: `users.stop` (with an access token refreshed from the stored
 * refresh token through the same grant client the token vault uses, so every token error is a
 * mapped ProviderError), then the revoke endpoint (provider-facts §2.2: revoking the refresh
 * token invalidates the grant and its access tokens; 200 on success, 400 on error).
 */
export class GoogleTeardownAdapter extends BoundedTeardown<GoogleTeardownOptions> {
  readonly provider = 'google' as const;

  async stopWatch(mailbox: TeardownMailbox, credential: MailboxCredential | null): Promise<WatchStopResult> {
    if (!credential) return { status: 'not_needed' };
    if (isGoogleOrganizationDocument(credential.secret)) {
      const token = this.opts.organizationToken;
      if (!token) return { status: 'failed', error: 'google organization tokens not configured' };
      return this.stopWithToken(
        () => token(mailbox),
        (t) => new GmailWatchAdapter({ endpoints: this.opts.endpoints, accessToken: async () => t }).stop(),
      );
    }
    const grant = this.opts.grant;
    if (!grant) return { status: 'failed', error: 'google not configured' };
    return this.stopWithToken(
      async () => (await grant.refresh(credential.secret)).accessToken,
      (token) => new GmailWatchAdapter({ endpoints: this.opts.endpoints, accessToken: async () => token }).stop(),
    );
  }

  async revokeGrant(_mailbox: TeardownMailbox, credential: MailboxCredential | null): Promise<RevokeResult> {
    if (!credential) return { status: 'not_needed' };
    // An organization mailbox has no grant of its own: the delegation is the Workspace
    // administrator's to remove, and the install's key goes with the uninstall.
    if (isGoogleOrganizationDocument(credential.secret)) return { status: 'not_supported' };
    return this.retryRevoke(credential.secret);
  }

  async retryRevoke(token: string): Promise<RevokeResult> {
    try {
      // 'already_invalid' (400 invalid_token) means the grant is gone: that is what we wanted.
      await this.bounded(revokeGoogleToken(this.opts.endpoints, token));
      return { status: 'revoked' };
    } catch (err) {
      return { status: 'failed', error: describeFailure(err), retryToken: token };
    }
  }
}
