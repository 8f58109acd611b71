import type { GrantPort } from './grant-port.js';
import type { MailProvider, ProviderName, WatchInfo } from './mail-provider.port.js';

export type { AccessGrant, ConsentGrant, ConsentPort, CredentialKindPort, GrantCredential, GrantPort, GrantRevokeResult, StoredGrantAccess } from './grant-port.js';

/**
 * The ports every provider room (`google/`, `microsoft/`) implements, and the one
 * `ProviderModule` per provider that bundles them. The rest of src/ receives a
 * `Record<ProviderName, ProviderModule>` (built in the composition root) and calls these ports:
 * it never names a provider SDK and never branches on the provider name for behaviour.
 *
 * - MailPort (mail-provider.port.ts): sync, fetch, send for one mailbox.
 * - LimitsPort: what the provider refuses to send, checked before anything is queued.
 * - TeardownPort: stop push and revoke the grant on disconnect.
 * - GrantPort (grant-port.ts): consent (authorize URL with PKCE, code exchange, identify,
 *   discard), and per credential kind the stored credential's encoding, access tokens and revoke
 *   (google-grant.ts, microsoft-grant.ts; a provider may hold several kinds).
 * Push (watch/subscription, notification verification) lives in each provider room too
 * (gmail-push.ts, graph-push.ts, pubsub-push.verifier.ts, graph-notification.ts).
 */
export type MailPort = MailProvider;

/** Body and attachment sizes of a send request, before it is composed. */
export interface SendSizeInput {
  textBytes: number;
  htmlBytes: number;
  attachments: ReadonlyArray<{ size: number }>;
}

/**
 * Size limits of the provider's send API. Each method returns a public, content-free reason when
 * the provider would refuse the message, and undefined when it fits.
 */
export interface LimitsPort {
  /** Cheap estimate from sizes alone: runs before composing or scanning. */
  requestTooLarge(input: SendSizeInput): string | undefined;
  /** The exact check on the composed RFC 5322 bytes. */
  composedTooLarge(mimeBytes: number): string | undefined;
}

export interface TeardownMailbox {
  id: string;
  tenantId: string;
  provider: ProviderName;
  /** Graph subscription id, when one was created. */
  subscriptionId: string | null;
}

/**
 * A decrypted mailbox credential, held in memory for the few calls of a teardown only.
 * Google: the refresh token. Microsoft: the serialized MSAL cache.
 */
export interface MailboxCredential {
  provider: ProviderName;
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

/** What a disconnect needs from the provider. Every method never throws. */
export interface TeardownPort {
  readonly provider: ProviderName;
  /** Gmail `users.stop` / Graph subscription DELETE. */
  stopWatch(mailbox: TeardownMailbox, credential: MailboxCredential | null): Promise<WatchStopResult>;
  /** Revoke the grant at the provider (Google revoke endpoint). */
  revokeGrant(mailbox: TeardownMailbox, credential: MailboxCredential | null): Promise<RevokeResult>;
  /** Background retry of a revoke that failed, with the token kept for it. */
  retryRevoke(token: string): Promise<RevokeResult>;
}

/** Gmail users.watch (GmailWatchAdapter fits). */
export interface GmailWatchPort {
  watch(topicName: string): Promise<WatchInfo>;
}

/** Graph subscriptions for one mailbox's inbox (GraphSubscriptionsAdapter fits). */
export interface GraphSubscriptionsPort {
  create(input: { notificationUrl: string; lifecycleNotificationUrl: string; clientState: string; expiresAt: Date }): Promise<WatchInfo & { subscriptionId: string }>;
  renew(subscriptionId: string, expiresAt: Date): Promise<WatchInfo & { subscriptionId: string }>;
  reauthorize(subscriptionId: string): Promise<void>;
  delete(subscriptionId: string): Promise<void>;
}

/** A push channel the provider granted: a Gmail watch (no id) or a Graph subscription. */
export interface PushGrant {
  id: string | null;
  /** The expiration the provider returned (renewal is planned from it). */
  expiresAt: Date;
}

export interface PushStartInput {
  notificationUrl: string;
  lifecycleNotificationUrl: string;
  /** The secret the provider echoes in every notification, when `identified` (Graph clientState). */
  clientState: string | undefined;
  /** The expiration asked for (Graph); the provider may grant less. */
  expiresAt: Date;
}

/** Push notifications for one mailbox: Gmail users.watch, Graph subscriptions. */
export interface PushPort {
  /**
   * Graph: each channel has an id, and a per-channel secret (clientState) that every notification
   * echoes — the connector stores it before start(), because a notification may arrive before
   * start() returns. Gmail: neither (a watch is per user; Pub/Sub's JWT authenticates the push).
   */
  readonly identified: boolean;
  /**
   * Renew at least this often whatever the expiration says (Gmail: daily — "We recommend calling
   * watch once per day", provider-facts §1.1); undefined: plan from the expiration alone.
   */
  readonly maxRenewalIntervalMs?: number;
  /** Renewal of a granted channel; undefined when the provider no longer knows it (start a new one). */
  renew(id: string | null, expiresAt: Date): Promise<PushGrant | undefined>;
  start(input: PushStartInput): Promise<PushGrant>;
}

/** Where a mailbox's push adapters come from (the sync room's SyncProviders fits), and the Pub/Sub topic. */
export interface PushSources {
  gmailWatch(): GmailWatchPort;
  graphSubscriptions(): GraphSubscriptionsPort;
  /** GOOGLE_PUBSUB_TOPIC; unset → no Gmail watch (polling only). */
  gmailTopic: string | undefined;
}

/**
 * Everything about one provider that the rooms above it use: one per provider in a
 * `Record<ProviderName, ProviderModule>` built in the composition root (provider-modules.ts);
 * a room picks `modules[mailbox.provider]` and never names a provider SDK.
 */
export interface ProviderModule {
  readonly name: ProviderName;
  /** For messages shown to people ("Google", "Microsoft"). */
  readonly displayName: string;
  readonly limits: LimitsPort;
  readonly teardown: TeardownPort;
  /** Consent, stored credentials, access tokens, revoke. */
  readonly grant: GrantPort;
  /** Mail (sync cursor, change pages, raw fetch, send) of one of this provider's mailboxes, bound to its tokens. */
  mail(mailbox: { id: string }): MailPort;
  /** The mailbox's push channel (Gmail watch, Graph subscription); undefined when push is not configured in this run. */
  push(sources: PushSources): PushPort | undefined;
}
