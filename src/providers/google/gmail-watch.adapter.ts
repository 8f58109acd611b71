import { gmail, type gmail_v1 } from '@googleapis/gmail';
import type { AccessTokenSource, WatchInfo } from '../mail-provider.port.js';
import { unexpectedResponse, withRetryAfter } from '../provider-error.js';
import type { GoogleEndpoints } from './google-endpoints.js';
import { mapGoogleError } from './google-error.mapper.js';
import { GmailQuotaBudget } from './gmail-quota.js';
import { gmailWatchResponseSchema } from './gmail-response.schema.js';

export interface GmailWatchOptions {
  endpoints: Pick<GoogleEndpoints, 'gmailRootUrl'>;
  accessToken: AccessTokenSource;
  quota?: GmailQuotaBudget;
}

/**
 * users.watch / users.stop for one mailbox. Watch only INBOX changes; Google requires re-calling
 * watch at least every 7 days and recommends daily (https://developers.google.com/gmail/api/guides/push).
 */
export class GmailWatchAdapter {
  private readonly client: gmail_v1.Gmail;
  private readonly quota: GmailQuotaBudget;

  constructor(private readonly opts: GmailWatchOptions) {
    this.client = gmail({ version: 'v1', rootUrl: opts.endpoints.gmailRootUrl, retry: false });
    this.quota = opts.quota ?? new GmailQuotaBudget();
  }

  private async headers(): Promise<{ headers: Record<string, string> }> {
    try {
      return { headers: { Authorization: `Bearer ${await this.opts.accessToken()}` } };
    } catch (err) {
      throw mapGoogleError(err, 'oauth.token');
    }
  }

  async watch(topicName: string): Promise<WatchInfo> {
    const ticket = await this.quota.take('watch');
    try {
      const res = await this.client.users.watch(
        { userId: 'me', requestBody: { topicName, labelIds: ['INBOX'], labelFilterBehavior: 'INCLUDE' } },
        await this.headers(),
      );
      ticket.settle();
      const parsed = gmailWatchResponseSchema.safeParse(res.data);
      if (!parsed.success) throw unexpectedResponse('google', 'watch', { issues: parsed.error.issues });
      return { expiresAt: new Date(Number(parsed.data.expiration)), subscriptionId: undefined, historyId: parsed.data.historyId };
    } catch (err) {
      ticket.settle();
      const mapped = mapGoogleError(err, 'watch');
      if (mapped.kind === 'rate_limited') throw withRetryAfter(mapped, this.quota.rateLimited(mapped.retryAfterMs));
      throw mapped;
    }
  }

  async stop(): Promise<void> {
    const ticket = await this.quota.take('stop');
    try {
      await this.client.users.stop({ userId: 'me' }, await this.headers());
    } catch (err) {
      throw mapGoogleError(err, 'stop');
    } finally {
      ticket.settle();
    }
  }
}
