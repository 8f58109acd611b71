import type { MailProvider, ProviderName } from '../providers/mail-provider.port.js';
import type { GmailWatchPort, GraphSubscriptionsPort } from '../providers/ports.js';

export interface SyncMailboxRef {
  id: string;
  provider: ProviderName;
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
