/**
 * What the purge needs from the providers, kept narrow so the lifecycle room does not depend on
 * the connect/token-vault or sync rooms' internals. Real adapters live beside this file
 * (google-teardown.adapter.ts, microsoft-teardown.adapter.ts); tests use honest fakes.
 */
export type TeardownProvider = 'google' | 'microsoft';

export interface TeardownMailbox {
  id: string;
  tenantId: string;
  provider: TeardownProvider;
  /** Graph subscription id, when one was created. */
  subscriptionId: string | null;
}

/**
 * A decrypted mailbox credential, held in memory for the few calls of a teardown only.
 * Google: the refresh token. Microsoft: the serialized MSAL cache.
 */
export interface MailboxCredential {
  provider: TeardownProvider;
  secret: string;
}

export type WatchStopResult =
  | { status: 'stopped' }
  /** Nothing to stop (no watch/subscription recorded, or the grant is already gone). */
  | { status: 'not_needed' }
  /** Best effort: recorded on the receipt; a Gmail watch lapses within 7 days, a Graph subscription within its expiry. */
  | { status: 'failed'; error: string };

export type RevokeResult =
  | { status: 'revoked' }
  /** Microsoft offers no per-app revoke for a delegated grant (docs/data-lifecycle.md). */
  | { status: 'not_supported' }
  /** No credential to revoke (never connected, or already cleared). */
  | { status: 'not_needed' }
  /** Retry later with `retryToken` (kept under the tenant DEK until it succeeds). */
  | { status: 'failed'; error: string; retryToken: string | null };

export interface ProviderTeardown {
  readonly provider: TeardownProvider;
  /** Gmail `users.stop` / Graph subscription DELETE. Never throws. */
  stopWatch(mailbox: TeardownMailbox, credential: MailboxCredential | null): Promise<WatchStopResult>;
  /** Revoke the grant at the provider (Google revoke endpoint). Never throws. */
  revokeGrant(mailbox: TeardownMailbox, credential: MailboxCredential | null): Promise<RevokeResult>;
  /** Background retry of a revoke that failed, with the token kept for it. Never throws. */
  retryRevoke(token: string): Promise<RevokeResult>;
}

/** Reads (decrypts) a mailbox's stored credential; null when none is stored or its key is gone. */
export interface CredentialReader {
  read(mailbox: { id: string; provider: TeardownProvider; credentialEnc: Uint8Array | null }): Promise<MailboxCredential | null>;
}
