import type { GraphSubscriptionsPort, PushGrant, PushPort, PushStartInput } from '../ports.js';
import { isProviderError } from '../provider-error.js';

/**
 * Graph push: a change-notification subscription on the inbox, with a clientState secret and a
 * lifecycle notification URL (provider-facts §4.2). Graph may grant a shorter lifetime than asked
 * (rich notifications: 1,440 min): the returned expiration is what counts.
 */
export class GraphPush implements PushPort {
  readonly identified = true;

  constructor(private readonly subs: GraphSubscriptionsPort) {}

  async renew(id: string | null, expiresAt: Date): Promise<PushGrant | undefined> {
    if (id === null) return undefined;
    try {
      // PATCH also answers reauthorizationRequired (provider-facts §4.2).
      const renewed = await this.subs.renew(id, expiresAt);
      return { id: renewed.subscriptionId, expiresAt: renewed.expiresAt };
    } catch (err) {
      // Gone at Graph (expired, removed): a new one is created.
      if (isProviderError(err, 'not_found')) return undefined;
      throw err;
    }
  }

  async start(input: PushStartInput): Promise<PushGrant> {
    if (input.clientState === undefined) throw new TypeError('a Graph subscription needs a clientState');
    const created = await this.subs.create({ notificationUrl: input.notificationUrl, lifecycleNotificationUrl: input.lifecycleNotificationUrl, clientState: input.clientState, expiresAt: input.expiresAt });
    return { id: created.subscriptionId, expiresAt: created.expiresAt };
  }
}
