import { z } from 'zod';
import type { AccessTokenSource, WatchInfo } from '../mail-provider.port.js';
import { isProviderError, ProviderError, unexpectedResponse } from '../provider-error.js';
import { ConcurrencyLimiter } from './concurrency-limiter.js';
import { createGraphClient } from './graph-client.factory.js';
import { GraphRequestRunner, type GraphRunnerOptions } from './graph-request.runner.js';
import type { MicrosoftEndpoints } from './microsoft-endpoints.js';

/** Outlook message subscriptions live at most 10,080 minutes (change-notifications-subscription-lifetime). */
export const MAX_SUBSCRIPTION_LIFETIME_MS = 10_080 * 60_000;
export const INBOX_RESOURCE = "/me/mailfolders('inbox')/messages";

export interface CreateSubscriptionInput {
  notificationUrl: string;
  lifecycleNotificationUrl: string;
  /** Secret echoed in every notification; at most 128 characters. */
  clientState: string;
  expiresAt: Date;
  changeType?: string;
  resource?: string;
}

export interface GraphSubscriptionsAdapterOptions {
  endpoints: MicrosoftEndpoints;
  accessToken: AccessTokenSource;
  limiter?: ConcurrencyLimiter;
  runner?: GraphRunnerOptions;
  now?: () => number;
}

const subscriptionSchema = z.object({ id: z.string().min(1), expirationDateTime: z.string() });

function invalid(message: string, reason: string): ProviderError {
  return new ProviderError('microsoft', 'invalid_request', message, { reason });
}

/**
 * Graph change-notification subscriptions for one mailbox's inbox
 * (https://learn.microsoft.com/graph/change-notifications-delivery-webhooks). Graph validates the
 * notification and lifecycle URLs during create; they must echo the validationToken.
 */
export class GraphSubscriptionsAdapter {
  private readonly runner: GraphRequestRunner;
  private readonly now: () => number;

  constructor(options: GraphSubscriptionsAdapterOptions) {
    this.runner = new GraphRequestRunner(createGraphClient(options.endpoints, options.accessToken), options.limiter ?? new ConcurrencyLimiter(4), options.runner);
    this.now = options.now ?? Date.now;
  }

  private checkExpiry(expiresAt: Date): void {
    const delta = expiresAt.getTime() - this.now();
    if (!(delta > 0)) throw invalid('subscription expiry must be in the future', 'expiry_past');
    if (delta > MAX_SUBSCRIPTION_LIFETIME_MS) throw invalid('subscription expiry exceeds 10,080 minutes', 'expiry_too_far');
  }

  private watchInfo(body: unknown): WatchInfo & { subscriptionId: string } {
    const parsed = subscriptionSchema.safeParse(body);
    if (!parsed.success) throw unexpectedResponse('microsoft', 'subscriptions', { issues: parsed.error.issues });
    const s = parsed.data;
    return { expiresAt: new Date(s.expirationDateTime), subscriptionId: s.id, historyId: undefined };
  }

  async create(input: CreateSubscriptionInput): Promise<WatchInfo & { subscriptionId: string }> {
    if (input.clientState.length === 0 || input.clientState.length > 128) throw invalid('clientState must be 1–128 characters', 'client_state_length');
    for (const u of [input.notificationUrl, input.lifecycleNotificationUrl]) if (!z.string().url().safeParse(u).success) throw invalid('notification URL is not a URL', 'bad_url');
    this.checkExpiry(input.expiresAt);
    const body = await this.runner.json({
      method: 'POST',
      path: '/subscriptions',
      body: {
        changeType: input.changeType ?? 'created',
        notificationUrl: input.notificationUrl,
        // Only settable at creation ("You also can't add the lifecycleNotificationUrl ... by updating").
        lifecycleNotificationUrl: input.lifecycleNotificationUrl,
        resource: input.resource ?? INBOX_RESOURCE,
        expirationDateTime: input.expiresAt.toISOString(),
        clientState: input.clientState,
      },
      operation: 'subscription',
      idempotent: false,
    });
    return this.watchInfo(body);
  }

  async renew(subscriptionId: string, expiresAt: Date): Promise<WatchInfo & { subscriptionId: string }> {
    this.checkExpiry(expiresAt);
    const body = await this.runner.json({
      method: 'PATCH',
      path: `/subscriptions/${encodeURIComponent(subscriptionId)}`,
      body: { expirationDateTime: expiresAt.toISOString() },
      operation: 'subscription',
      idempotent: true,
    });
    return this.watchInfo(body);
  }

  /** Answer to a `reauthorizationRequired` lifecycle event. */
  async reauthorize(subscriptionId: string): Promise<void> {
    await this.runner.noContent({ method: 'POST', path: `/subscriptions/${encodeURIComponent(subscriptionId)}/reauthorize`, body: '', operation: 'subscription', idempotent: true });
  }

  /** Deleting a subscription that is already gone counts as done (disconnect must be idempotent). */
  async delete(subscriptionId: string): Promise<void> {
    try {
      await this.runner.noContent({ method: 'DELETE', path: `/subscriptions/${encodeURIComponent(subscriptionId)}`, operation: 'subscription', idempotent: true });
    } catch (err) {
      if (isProviderError(err, 'not_found')) return;
      throw err;
    }
  }
}
