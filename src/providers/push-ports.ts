import { GmailPush } from './google/gmail-push.js';
import type { ProviderName } from './mail-provider.port.js';
import { GraphPush } from './microsoft/graph-push.js';
import type { PushPort, PushSources } from './ports.js';

export type { PushSources } from './ports.js';

/** Each provider's push port from a mailbox's sources (ProviderModule.push). */
export const PUSH_PORTS: Readonly<Record<ProviderName, (s: PushSources) => PushPort | undefined>> = {
  google: (s) => (s.gmailTopic ? new GmailPush(s.gmailWatch(), s.gmailTopic) : undefined),
  microsoft: (s) => new GraphPush(s.graphSubscriptions()),
};

/** The provider's PushPort, or undefined when push is not configured for it in this run. */
export function pushPortFor(provider: ProviderName, sources: PushSources): PushPort | undefined {
  return PUSH_PORTS[provider](sources);
}
