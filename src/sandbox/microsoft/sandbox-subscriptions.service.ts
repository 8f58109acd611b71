import { randomBytes, randomUUID } from 'node:crypto';
import type { Subscription } from '@microsoft/microsoft-graph-types';
import { z } from 'zod';
import { GraphHttpError } from './sandbox-http.util.js';
import { etagOf, type SandboxUser, type StoredMessage } from './sandbox-mailbox.store.js';

export type LifecycleEvent = 'reauthorizationRequired' | 'subscriptionRemoved' | 'missed';

export interface NotificationTiming {
  /** Graph waits 3 s for a 2xx before it counts the delivery as failed. */
  ackTimeoutMs: number;
  /** Delays before each re-send; Graph retries for up to 4 h, tests use milliseconds. */
  retryDelaysMs: number[];
  /** The validation handshake must be answered within 10 s. */
  validationTimeoutMs: number;
}

export interface SandboxSubscription {
  id: string;
  userId: string;
  tenantId: string;
  clientId: string;
  resource: string;
  changeType: string;
  notificationUrl: string;
  lifecycleNotificationUrl: string | undefined;
  clientState: string | undefined;
  expirationDateTime: string;
  createdAt: string;
  deleted: boolean;
  removedBy: 'client' | 'lifecycle' | undefined;
  reauthorizedCount: number;
}

export interface NotificationAttempt {
  subscriptionId: string;
  kind: 'change' | 'lifecycle';
  url: string;
  attempt: number;
  /** HTTP status, or 'timeout' / 'network' when no answer arrived. */
  outcome: number | 'timeout' | 'network' | 'dropped';
  at: string;
}

/** Outlook message subscriptions: at most 10,080 minutes ahead (change-notifications-subscription-lifetime). */
export const MAX_SUBSCRIPTION_MINUTES = 10_080;

const createBody = z.object({
  changeType: z.string().min(1),
  notificationUrl: z.string().url(),
  lifecycleNotificationUrl: z.string().url().optional(),
  resource: z.string().min(1),
  expirationDateTime: z.string().datetime({ offset: true }),
  clientState: z.string().max(128).optional(),
  includeResourceData: z.boolean().optional(),
  latestSupportedTlsVersion: z.string().optional(),
});

const patchBody = z.object({ expirationDateTime: z.string().datetime({ offset: true }) }).passthrough();

// `/me/mailFolders('inbox')/messages`, `/users/{id}/mailFolders/inbox/messages`, `/me/messages` …
const resourcePattern = /^\/?(me|users\/[^/]+)\/(mailfolders(\('inbox'\)|\/inbox)\/)?messages$/i;

function isoNoMillis(ms: number): string {
  // Graph writes seven fractional digits (2016-11-20T18:23:45.9356913Z).
  return new Date(ms).toISOString().replace('Z', '0000Z');
}

export class SandboxSubscriptions {
  readonly subscriptions = new Map<string, SandboxSubscription>();
  readonly attempts: NotificationAttempt[] = [];
  /** Notifications still to be dropped (simulates Graph discarding them). */
  dropRemaining = 0;
  private readonly timers = new Set<NodeJS.Timeout>();
  private closed = false;

  constructor(
    private readonly timing: NotificationTiming,
    private readonly now: () => number,
    private readonly fetchImpl: typeof fetch = fetch,
  ) {}

  close(): void {
    this.closed = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }

  toGraph(s: SandboxSubscription): Subscription & Record<string, unknown> {
    return {
      id: s.id,
      resource: s.resource,
      applicationId: s.clientId,
      changeType: s.changeType,
      clientState: s.clientState ?? null,
      notificationUrl: s.notificationUrl,
      lifecycleNotificationUrl: s.lifecycleNotificationUrl ?? null,
      expirationDateTime: s.expirationDateTime,
      creatorId: s.userId,
      latestSupportedTlsVersion: 'v1_2',
      encryptionCertificate: null,
      encryptionCertificateId: null,
      includeResourceData: false,
      notificationContentType: 'application/json',
    };
  }

  private checkExpiration(iso: string): void {
    const t = Date.parse(iso);
    if (t <= this.now()) throw new GraphHttpError(400, 'ExtensionError', 'Subscription expiration date must be in the future.');
    if (t > this.now() + MAX_SUBSCRIPTION_MINUTES * 60_000) {
      throw new GraphHttpError(400, 'ExtensionError', `Subscription expiration can only be ${MAX_SUBSCRIPTION_MINUTES} minutes in the future.`);
    }
  }

  async create(user: SandboxUser, clientId: string, body: unknown): Promise<SandboxSubscription> {
    const parsed = createBody.safeParse(body);
    if (!parsed.success) {
      const clientStateTooLong = parsed.error.issues.some((i) => i.path[0] === 'clientState');
      throw new GraphHttpError(400, clientStateTooLong ? 'ValidationError' : 'InvalidRequest', clientStateTooLong ? 'clientState exceeds the maximum length of 128 characters.' : 'Invalid subscription request.');
    }
    const b = parsed.data;
    if (!resourcePattern.test(b.resource)) throw new GraphHttpError(400, 'ExtensionError', 'Operation: Create; Exception: [Status Code: BadRequest; Reason: The resource is not supported by this sandbox.]');
    // Delegated subscriptions cover the signed-in user's own mailbox only: the `.Shared` permissions
    // do not support change notifications (Outlook change-notifications overview), so another mailbox is refused.
    const owner = /^\/?users\/([^/]+)\//i.exec(b.resource)?.[1];
    if (owner !== undefined && ![user.email.toLowerCase(), user.id].includes(safeDecode(owner).toLowerCase())) {
      throw new GraphHttpError(403, 'ExtensionError', 'Operation: Create; Exception: [Status Code: Forbidden; Reason: Access is denied. Check credentials and try again.]');
    }
    const kinds = b.changeType.split(',').map((s) => s.trim());
    if (kinds.some((k) => !['created', 'updated', 'deleted'].includes(k))) throw new GraphHttpError(400, 'InvalidRequest', 'Invalid changeType.');
    if (b.includeResourceData) throw new GraphHttpError(400, 'InvalidRequest', 'includeResourceData requires encryptionCertificate.');
    for (const u of [b.notificationUrl, b.lifecycleNotificationUrl]) {
      if (u && new URL(u).protocol !== 'https:' && !['127.0.0.1', 'localhost', '[::1]'].includes(new URL(u).hostname)) {
        throw new GraphHttpError(400, 'InvalidRequest', 'NotificationUrl must use https.');
      }
    }
    this.checkExpiration(b.expirationDateTime);
    // Graph validates every URL before creating anything (change-notifications-delivery-webhooks#notificationurl-validation).
    await this.validateEndpoint(b.notificationUrl);
    if (b.lifecycleNotificationUrl) await this.validateEndpoint(b.lifecycleNotificationUrl);
    const sub: SandboxSubscription = {
      id: randomUUID(),
      userId: user.id,
      tenantId: user.tenantId,
      clientId,
      resource: b.resource,
      changeType: kinds.join(','),
      notificationUrl: b.notificationUrl,
      lifecycleNotificationUrl: b.lifecycleNotificationUrl,
      clientState: b.clientState,
      expirationDateTime: isoNoMillis(Date.parse(b.expirationDateTime)),
      createdAt: new Date(this.now()).toISOString(),
      deleted: false,
      removedBy: undefined,
      reauthorizedCount: 0,
    };
    this.subscriptions.set(sub.id, sub);
    return sub;
  }

  requireOwned(user: SandboxUser, id: string): SandboxSubscription {
    const s = this.subscriptions.get(id);
    if (!s || s.deleted || s.userId !== user.id) throw new GraphHttpError(404, 'ResourceNotFound', `The object was not found.`);
    return s;
  }

  renew(user: SandboxUser, id: string, body: unknown): SandboxSubscription {
    const s = this.requireOwned(user, id);
    const parsed = patchBody.safeParse(body);
    if (!parsed.success) throw new GraphHttpError(400, 'InvalidRequest', 'expirationDateTime is required.');
    if ('lifecycleNotificationUrl' in parsed.data) throw new GraphHttpError(400, 'InvalidRequest', 'lifecycleNotificationUrl can only be set at creation.');
    this.checkExpiration(parsed.data.expirationDateTime);
    s.expirationDateTime = isoNoMillis(Date.parse(parsed.data.expirationDateTime));
    return s;
  }

  delete(user: SandboxUser, id: string): void {
    const s = this.requireOwned(user, id);
    s.deleted = true;
    s.removedBy = 'client';
  }

  reauthorize(user: SandboxUser, id: string): void {
    const s = this.requireOwned(user, id);
    s.reauthorizedCount += 1;
  }

  private async validateEndpoint(rawUrl: string): Promise<void> {
    // Real tokens contain spaces and colons, so an endpoint that echoes the encoded form fails.
    const token = `Validation: Testing client application reachability for subscription Request-Id: ${randomUUID()}`;
    const url = new URL(rawUrl);
    url.searchParams.set('validationToken', token);
    let ok: boolean;
    try {
      const res = await this.fetchImpl(url, {
        method: 'POST',
        headers: { 'content-type': 'text/plain; charset=utf-8' },
        body: '',
        signal: AbortSignal.timeout(this.timing.validationTimeoutMs),
      });
      const text = await res.text();
      ok = res.status === 200 && (res.headers.get('content-type') ?? '').toLowerCase().startsWith('text/plain') && text === token;
    } catch {
      ok = false;
    }
    if (!ok) {
      throw new GraphHttpError(400, 'ValidationError', `Subscription validation request failed. Notification endpoint must respond with 200 OK to validation request.`);
    }
  }

  private active(s: SandboxSubscription): boolean {
    return !s.deleted && Date.parse(s.expirationDateTime) > this.now();
  }

  /** Called for every new message in a folder; fans out to matching subscriptions. */
  notifyCreated(user: SandboxUser, msg: StoredMessage): void {
    for (const s of this.subscriptions.values()) {
      if (s.userId !== user.id || !this.active(s) || !s.changeType.split(',').includes('created')) continue;
      const inboxOnly = /mailfolders/i.test(s.resource);
      if (inboxOnly && msg.folder !== 'inbox') continue;
      const path = `Users/${user.id}/Messages/${msg.id}`;
      const body = {
        value: [
          {
            id: randomBytes(8).toString('base64url'),
            subscriptionId: s.id,
            subscriptionExpirationDateTime: s.expirationDateTime,
            changeType: 'created',
            resource: path,
            ...(s.clientState !== undefined ? { clientState: s.clientState } : {}),
            tenantId: s.tenantId,
            resourceData: { '@odata.type': '#Microsoft.Graph.Message', '@odata.id': path, '@odata.etag': etagOf(msg), id: msg.id },
          },
        ],
      };
      this.deliver(s, 'change', s.notificationUrl, body, 0);
    }
  }

  /** Sends a lifecycle event (the documented body) to the subscription's lifecycleNotificationUrl. */
  sendLifecycle(id: string, event: LifecycleEvent): void {
    const s = this.subscriptions.get(id);
    if (!s) throw new Error(`sandbox: no subscription ${id}`);
    if (!s.lifecycleNotificationUrl) throw new Error('sandbox: subscription has no lifecycleNotificationUrl');
    if (event === 'subscriptionRemoved') {
      s.deleted = true;
      s.removedBy = 'lifecycle';
    }
    const body = {
      value: [
        {
          subscriptionId: s.id,
          subscriptionExpirationDateTime: s.expirationDateTime,
          tenantId: s.tenantId,
          ...(s.clientState !== undefined ? { clientState: s.clientState } : {}),
          lifecycleEvent: event,
        },
      ],
    };
    this.deliver(s, 'lifecycle', s.lifecycleNotificationUrl, body, 0);
  }

  private deliver(s: SandboxSubscription, kind: 'change' | 'lifecycle', url: string, body: unknown, attempt: number): void {
    if (this.closed) return;
    const record = (outcome: NotificationAttempt['outcome']): void => {
      this.attempts.push({ subscriptionId: s.id, kind, url, attempt, outcome, at: new Date(this.now()).toISOString() });
    };
    if (attempt === 0 && this.dropRemaining > 0) {
      this.dropRemaining -= 1;
      record('dropped');
      return;
    }
    void (async () => {
      let outcome: NotificationAttempt['outcome'];
      try {
        const res = await this.fetchImpl(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json; charset=utf-8' },
          body: JSON.stringify(body),
          signal: AbortSignal.timeout(this.timing.ackTimeoutMs),
        });
        await res.arrayBuffer().catch(() => undefined);
        outcome = res.status;
      } catch (err) {
        outcome = err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError') ? 'timeout' : 'network';
      }
      record(outcome);
      const acked = typeof outcome === 'number' && outcome >= 200 && outcome < 300;
      const delay = this.timing.retryDelaysMs[attempt];
      if (!acked && delay !== undefined && !this.closed) {
        const t = setTimeout(() => {
          this.timers.delete(t);
          this.deliver(s, kind, url, body, attempt + 1);
        }, delay);
        this.timers.add(t);
      }
    })();
  }
}

function safeDecode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}
