import { z } from 'zod';
import type { MailboxCredential, RevokeResult, TeardownMailbox, WatchStopResult } from '../ports.js';
import { BoundedTeardown } from '../teardown-call.js';
import { GraphSubscriptionsAdapter } from './graph-subscriptions.adapter.js';
import type { MicrosoftEndpoints } from './microsoft-endpoints.js';

const storedMicrosoftCredential = z.object({ msalCache: z.string().min(2) }).loose();

/** The serialized MSAL cache a disconnect's subscription DELETE needs, read tolerantly from a stored credential document (a bare cache too). */
export function microsoftTeardownSecret(stored: string): string {
  try {
    const parsed = storedMicrosoftCredential.safeParse(JSON.parse(stored));
    if (parsed.success) return parsed.data.msalCache;
  } catch {
    // not the vault's JSON document: the cache itself
  }
  return stored;
}

/**
 * Access tokens for a Microsoft mailbox from its MSAL cache (the token vault implements it).
 * Without one the subscription DELETE is skipped and recorded as failed, and the subscription
 * lapses at its expiry (at most 10,080 minutes, provider-facts §4.2).
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
export class MicrosoftTeardownAdapter extends BoundedTeardown<MicrosoftTeardownOptions> {
  readonly provider = 'microsoft' as const;

  async stopWatch(mailbox: TeardownMailbox, credential: MailboxCredential | null): Promise<WatchStopResult> {
    const subscriptionId = mailbox.subscriptionId;
    if (!subscriptionId) return { status: 'not_needed' };
    if (!credential) return { status: 'failed', error: 'no credential to authenticate the DELETE' };
    const { endpoints, accessToken } = this.opts;
    if (!endpoints || !accessToken) return { status: 'failed', error: 'microsoft token source not configured' };
    return this.stopWithToken(
      () => accessToken(mailbox, credential),
      (token) => new GraphSubscriptionsAdapter({ endpoints, accessToken: async () => token, runner: { maxRetries: 1, maxRetryWaitMs: 2_000 } }).delete(subscriptionId),
    );
  }

  async revokeGrant(): Promise<RevokeResult> {
    return { status: 'not_supported' };
  }

  async retryRevoke(): Promise<RevokeResult> {
    return { status: 'not_supported' };
  }
}
