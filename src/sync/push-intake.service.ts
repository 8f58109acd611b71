import { OAuth2Client } from 'google-auth-library';
import { z } from 'zod';
import type { BlindIndex } from '../crypto/blind-index.js';
import type { DataKeyService } from '../crypto/data-key.service.js';
import { constantTimeEqual } from '../crypto/secret-compare.js';
import type { JobQueue } from '../jobs/job-queue.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { GoogleEndpoints } from '../providers/google/google-endpoints.js';
import type { MailboxRepository } from '../storage/mailbox.repository.js';
import type { SyncStateRepository } from '../storage/sync-state.repository.js';
import { requestMailboxSync } from './sync-request.js';
import { CLIENT_STATE_AAD } from './watch.service.js';

/** Pub/Sub push envelope (https://cloud.google.com/pubsub/docs/push#receive_push). */
const pubsubEnvelopeSchema = z.object({
  message: z.object({ data: z.string().max(8192), messageId: z.string().max(200).optional() }),
  subscription: z.string().max(500).optional(),
});
/** `message.data`, base64url JSON: {"emailAddress": "...", "historyId": "..."} (provider-facts §1.1). */
const gmailNotificationSchema = z.object({
  emailAddress: z.string().min(3).max(320),
  historyId: z.union([z.string().regex(/^\d{1,30}$/), z.number().int().nonnegative()]),
});

/** Graph change / lifecycle notifications (provider-facts §4.2). Unknown fields are ignored. */
const graphNotificationSchema = z.object({
  subscriptionId: z.string().min(1).max(200),
  clientState: z.string().max(256).optional(),
  changeType: z.string().max(100).optional(),
  lifecycleEvent: z.string().max(100).optional(),
});
export const graphNotificationsSchema = z.object({ value: z.array(z.unknown()).max(1000) });

export interface GooglePushSettings {
  /** GOOGLE_PUBSUB_AUDIENCE, else the push endpoint URL (Pub/Sub's default audience). */
  audience: string;
  /** GOOGLE_PUBSUB_SERVICE_ACCOUNT: the JWT `email` must equal it. Unset → every push is refused. */
  serviceAccount: string | undefined;
  endpoints: Pick<GoogleEndpoints, 'oauth2FederatedSignonPemCertsUrl' | 'oauth2FederatedSignonJwkCertsUrl' | 'issuers'>;
}

export type GooglePushOutcome = { status: 'accepted'; mailboxes: number } | { status: 'unauthorized' } | { status: 'bad_request' };

export class PushIntakeService {
  readonly #google: OAuth2Client;
  readonly #pushes: ReturnType<Metrics['counter']>;

  constructor(
    private readonly d: {
      jobs: Pick<JobQueue, 'enqueue'>;
      mailboxes: Pick<MailboxRepository, 'findByAddressIndexUnscoped'>;
      state: SyncStateRepository;
      blindIndex: Pick<BlindIndex, 'emailIndex'>;
      dataKeys: Pick<DataKeyService, 'decryptFor'>;
      clock: () => Date;
      logger: Pick<Logger, 'info' | 'warn' | 'debug'>;
      metrics: Metrics;
      google: GooglePushSettings;
    },
  ) {
    // Same library and cert handling as Google's own sample: signature, exp and aud checked by
    // verifyIdToken, certificates cached by Cache-Control; the certs URL is configurable so the
    // sandbox can sign push tokens.
    this.#google = new OAuth2Client({
      endpoints: {
        oauth2FederatedSignonPemCertsUrl: d.google.endpoints.oauth2FederatedSignonPemCertsUrl,
        oauth2FederatedSignonJwkCertsUrl: d.google.endpoints.oauth2FederatedSignonJwkCertsUrl,
      },
      issuers: d.google.endpoints.issuers,
    });
    this.#pushes = d.metrics.counter('mbc_push_notifications_total', 'Push notifications received by provider and outcome', ['provider', 'outcome'] as const);
  }

  /**
   * `POST /push/google`. Authenticates the Pub/Sub OIDC JWT before reading anything else
   * (provider-facts §1.2: verify signature + aud, then `email` = push service account and
   * `email_verified`), then requests a sync of each mailbox with that address (coalesced per mailbox: one waiting sync
   * covers any number of notifications). An address we do not
   * know is acknowledged (a non-2xx would make Pub/Sub redeliver it for days) and counted.
   */
  async receiveGoogle(authorization: string | undefined, body: unknown): Promise<GooglePushOutcome> {
    const token = /^Bearer ([A-Za-z0-9._-]+)$/.exec(authorization ?? '')?.[1];
    if (!token || !this.d.google.serviceAccount) {
      this.#pushes.inc({ provider: 'google', outcome: 'unauthorized' });
      return { status: 'unauthorized' };
    }
    try {
      const ticket = await this.#google.verifyIdToken({ idToken: token, audience: this.d.google.audience });
      const claims = ticket.getPayload();
      if (!claims || claims.email !== this.d.google.serviceAccount || claims.email_verified !== true) throw new Error('push token claims rejected');
    } catch {
      // google-auth-library's messages can embed the token payload: log nothing of it.
      this.d.logger.warn('google push rejected: push token failed verification');
      this.#pushes.inc({ provider: 'google', outcome: 'unauthorized' });
      return { status: 'unauthorized' };
    }
    const envelope = pubsubEnvelopeSchema.safeParse(body);
    if (!envelope.success) {
      this.#pushes.inc({ provider: 'google', outcome: 'bad_request' });
      return { status: 'bad_request' };
    }
    let data: z.infer<typeof gmailNotificationSchema>;
    try {
      data = gmailNotificationSchema.parse(JSON.parse(Buffer.from(envelope.data.message.data, 'base64url').toString('utf8')));
    } catch {
      this.#pushes.inc({ provider: 'google', outcome: 'bad_request' });
      return { status: 'bad_request' };
    }
    const matches = (await this.d.mailboxes.findByAddressIndexUnscoped('google', this.d.blindIndex.emailIndex(data.emailAddress))).filter((m) => m.status === 'active');
    if (matches.length === 0) {
      this.#pushes.inc({ provider: 'google', outcome: 'unknown_mailbox' });
      return { status: 'accepted', mailboxes: 0 };
    }
    // The notification's historyId is NOT the cursor: sync reads from the last *stored* one.
    await this.d.state.markPush(
      matches.map((m) => m.id),
      this.d.clock(),
    );
    for (const m of matches) await requestMailboxSync(this.d.jobs, m.id, 'push');
    this.#pushes.inc({ provider: 'google', outcome: 'accepted' });
    return { status: 'accepted', mailboxes: matches.length };
  }

  /**
   * `POST /push/microsoft` and `/push/microsoft/lifecycle`. Each notification is matched to its
   * mailbox by subscription id and its clientState compared in constant time with the stored
   * secret; a mismatch is dropped and counted ("don't consider the change notification as valid").
   * Lifecycle events only adjust the mailbox's subscription fields and queue a sync, so the answer
   * stays well inside Graph's 3 s: reauthorizationRequired → renew at the start of that sync,
   * subscriptionRemoved → recreate then delta, missed → delta.
   */
  async receiveMicrosoft(notifications: readonly unknown[]): Promise<{ accepted: number; rejected: number }> {
    let accepted = 0;
    let rejected = 0;
    const queued = new Set<string>();
    for (const raw of notifications) {
      const n = graphNotificationSchema.safeParse(raw);
      if (!n.success) {
        rejected++;
        this.#pushes.inc({ provider: 'microsoft', outcome: 'bad_request' });
        continue;
      }
      const mailbox = await this.d.state.findBySubscriptionId(n.data.subscriptionId);
      if (!mailbox || !mailbox.clientStateEnc || mailbox.status !== 'active') {
        rejected++;
        this.#pushes.inc({ provider: 'microsoft', outcome: 'unknown_subscription' });
        continue;
      }
      const expected = (await this.d.dataKeys.decryptFor({ type: 'mailbox', id: mailbox.id }, mailbox.clientStateEnc, CLIENT_STATE_AAD(mailbox.id))).toString('utf8');
      if (!n.data.clientState || !constantTimeEqual(n.data.clientState, expected)) {
        rejected++;
        this.#pushes.inc({ provider: 'microsoft', outcome: 'client_state_mismatch' });
        continue;
      }
      accepted++;
      this.#pushes.inc({ provider: 'microsoft', outcome: n.data.lifecycleEvent ? `lifecycle_${n.data.lifecycleEvent}`.slice(0, 60) : 'accepted' });
      if (n.data.lifecycleEvent === 'reauthorizationRequired') {
        await this.d.state.saveSubscription(mailbox.id, { subscriptionId: mailbox.subscriptionId, expiresAt: this.d.clock() });
      } else if (n.data.lifecycleEvent === 'subscriptionRemoved') {
        await this.d.state.saveSubscription(mailbox.id, { subscriptionId: null, expiresAt: null });
      }
      if (queued.has(mailbox.id)) continue;
      queued.add(mailbox.id);
      await this.d.state.markPush([mailbox.id], this.d.clock());
      await requestMailboxSync(this.d.jobs, mailbox.id, n.data.lifecycleEvent ? 'lifecycle' : 'push');
    }
    return { accepted, rejected };
  }
}
