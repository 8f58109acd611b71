import { GmailPush } from './google/gmail-push.js';
import type { ProviderName } from './mail-provider.port.js';
import { GraphPush } from './microsoft/graph-push.js';
import type { GmailWatchPort, GraphSubscriptionsPort, PushPort } from './ports.js';

/** Where a mailbox's push adapters come from (the sync room's SyncProviders fits), and the Pub/Sub topic. */
export interface PushSources {
  gmailWatch(): GmailWatchPort;
  graphSubscriptions(): GraphSubscriptionsPort;
  /** GOOGLE_PUBSUB_TOPIC; unset → no Gmail watch (polling only). */
  gmailTopic: string | undefined;
}

const PUSH: Record<ProviderName, (s: PushSources) => PushPort | undefined> = {
  google: (s) => (s.gmailTopic ? new GmailPush(s.gmailWatch(), s.gmailTopic) : undefined),
  microsoft: (s) => new GraphPush(s.graphSubscriptions()),
};

/** The provider's PushPort, or undefined when push is not configured for it in this run. */
export function pushPortFor(provider: ProviderName, sources: PushSources): PushPort | undefined {
  return PUSH[provider](sources);
}
