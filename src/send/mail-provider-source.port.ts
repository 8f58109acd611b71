import type { MailProvider, ProviderName } from '../providers/mail-provider.port.js';

/**
 * How the sender gets a provider adapter bound to one mailbox's grant. The connect room's
 * `MailProviderFactory.forMailbox` (src/providers/mail-provider.factory.ts) satisfies it; tests pass
 * adapters built straight from the sandboxes.
 */
export type MailProviderSource = (mailbox: { id: string; provider: ProviderName; /** `shared_member`: sent as the shared address through the member's grant. */ access?: string }) => Promise<MailProvider>;
