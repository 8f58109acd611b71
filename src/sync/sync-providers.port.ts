import type { MailProvider, ProviderName, WatchInfo } from '../providers/mail-provider.port.js';

export interface SyncMailboxRef {
  id: string;
  provider: ProviderName;
}

/** Gmail users.watch / users.stop (GmailWatchAdapter fits). */
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

/**
 * Where the sync engine gets provider adapters bound to a mailbox's tokens.
 * providers/mail-provider.factory.ts (token vault + configured endpoints) satisfies it; tests may bind adapters
 * straight to a sandbox token.
 */
export interface SyncProviders {
  forMailbox(mailbox: SyncMailboxRef): MailProvider;
  gmailWatch(mailbox: SyncMailboxRef): GmailWatchPort;
  graphSubscriptions(mailbox: SyncMailboxRef): GraphSubscriptionsPort;
}
