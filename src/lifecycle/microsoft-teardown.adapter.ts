import { GraphSubscriptionsAdapter } from '../providers/microsoft/graph-subscriptions.adapter.js';
import type { MicrosoftEndpoints } from '../providers/microsoft/microsoft-endpoints.js';
import { isProviderError } from '../providers/provider-error.js';
import { withTimeout } from './google-teardown.adapter.js';
import type { MailboxCredential, ProviderTeardown, RevokeResult, TeardownMailbox, WatchStopResult } from './provider-teardown.port.js';

/**
 * Access tokens for a Microsoft mailbox from its MSAL cache. The token vault (connect room)
 * implements it; until it is wired the subscription DELETE is skipped and recorded as failed,
 * and the subscription lapses at its expiry (at most 10,080 minutes, provider-facts §4.2).
 */
export type MicrosoftAccessTokenSource = (mailbox: TeardownMailbox, credential: MailboxCredential) => Promise<string>;

export interface MicrosoftTeardownOptions {
  endpoints: MicrosoftEndpoints | undefined;
  accessToken: MicrosoftAccessTokenSource | undefined;
  timeoutMs?: number;
}

/**
 * Microsoft side of a disconnect. There is no per-app refresh-token revoke for a delegated grant
 * (provider-facts §5): `revokeSignInSessions` signs the user out of every app and needs admin
 * consent, deleting the oAuth2PermissionGrant needs DelegatedPermissionGrant.ReadWrite.All. So
 * "revoke" here is: delete the subscription, then destroy the MSAL cache (the credential column
 * and the mailbox DEK go with the purge), and report `not_supported` on the receipt.
 */
export class MicrosoftTeardownAdapter implements ProviderTeardown {
  readonly provider = 'microsoft' as const;
  private readonly timeoutMs: number;

  constructor(private readonly opts: MicrosoftTeardownOptions) {
    this.timeoutMs = opts.timeoutMs ?? 10_000;
  }

  async stopWatch(mailbox: TeardownMailbox, credential: MailboxCredential | null): Promise<WatchStopResult> {
    if (!mailbox.subscriptionId) return { status: 'not_needed' };
    if (!credential) return { status: 'failed', error: 'no credential to authenticate the DELETE' };
    const { endpoints, accessToken } = this.opts;
    if (!endpoints || !accessToken) return { status: 'failed', error: 'microsoft token source not configured' };
    try {
      const token = await withTimeout(accessToken(mailbox, credential), this.timeoutMs);
      const subs = new GraphSubscriptionsAdapter({ endpoints, accessToken: async () => token, runner: { maxRetries: 1, maxRetryWaitMs: 2_000 } });
      await withTimeout(subs.delete(mailbox.subscriptionId), this.timeoutMs);
      return { status: 'stopped' };
    } catch (err) {
      if (isProviderError(err, 'auth_revoked')) return { status: 'not_needed' };
      return { status: 'failed', error: isProviderError(err) ? err.kind : 'error' };
    }
  }

  async revokeGrant(): Promise<RevokeResult> {
    return { status: 'not_supported' };
  }

  async retryRevoke(): Promise<RevokeResult> {
    return { status: 'not_supported' };
  }
}
