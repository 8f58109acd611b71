import { signJwt, type SigningKey } from './google-signing-key.js';

export interface PushConfig {
  /** Where the push subscription delivers (the connector's /push/google). */
  endpoint: string;
  /** OIDC token audience; Pub/Sub defaults it to the endpoint URL when unset. */
  audience?: string;
  /** The push subscription's service account, carried in the JWT `email` claim. */
  serviceAccountEmail: string;
  subscription?: string;
  /** Probability (0..1) that a notification is silently dropped ("may be delayed or dropped"). */
  dropProbability?: number;
  /** Attempts for a push answered non-2xx or not answered (Pub/Sub redelivers with backoff). */
  maxAttempts?: number;
  /** First retry delay; doubles per attempt. Real Pub/Sub starts at 10 s; tests want less. */
  retryBackoffMs?: number;
  /** Minimum gap between notifications for one user: "maximum notification rate of 1 event/sec". */
  minIntervalMs?: number;
}

export interface PushAttempt {
  emailAddress: string;
  historyId: string;
  messageId: string;
  attempt: number;
  status: number | 'network_error' | 'dropped';
  at: number;
}

interface UserPushState {
  lastSentAt: number;
  pendingHistoryId: string | undefined;
  timer: NodeJS.Timeout | undefined;
}

/**
 * Delivers Gmail watch notifications the way a Pub/Sub push subscription does: JSON envelope
 * with base64 `message.data`, `Authorization: Bearer <Google-signed OIDC JWT>`, at most one
 * notification per second per user (later changes coalesce into the next one), redelivery of
 * non-2xx answers with exponential backoff, and optional drops.
 * https://developers.google.com/gmail/api/guides/push, https://cloud.google.com/pubsub/docs/push
 */
export class PubSubPushService {
  private config: PushConfig | undefined;
  private readonly users = new Map<string, UserPushState>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private dropNext = 0;
  private closed = false;
  readonly attempts: PushAttempt[] = [];

  constructor(
    private readonly key: SigningKey,
    private readonly now: () => number,
    private readonly random: () => number = Math.random,
  ) {}

  configure(config: PushConfig | undefined): void {
    this.config = config;
  }

  getConfig(): PushConfig | undefined {
    return this.config;
  }

  dropNextPushes(n: number): void {
    this.dropNext += n;
  }

  notify(emailAddress: string, historyId: string): void {
    if (!this.config || this.closed) return;
    const minInterval = this.config.minIntervalMs ?? 1000;
    const state = this.users.get(emailAddress) ?? { lastSentAt: -Infinity, pendingHistoryId: undefined, timer: undefined };
    this.users.set(emailAddress, state);
    state.pendingHistoryId = historyId;
    if (state.timer) return; // already scheduled: this change rides along (coalesced)
    const wait = Math.max(0, state.lastSentAt + minInterval - this.now());
    state.timer = this.schedule(wait, () => {
      state.timer = undefined;
      const hid = state.pendingHistoryId;
      state.pendingHistoryId = undefined;
      if (hid === undefined) return;
      state.lastSentAt = this.now();
      void this.publish(emailAddress, hid);
    });
  }

  private schedule(ms: number, fn: () => void): NodeJS.Timeout {
    const t = setTimeout(() => {
      this.timers.delete(t);
      fn();
    }, ms);
    this.timers.add(t);
    return t;
  }

  private async publish(emailAddress: string, historyId: string): Promise<void> {
    const config = this.config;
    if (!config) return;
    const messageId = String(10_000_000_000_000 + Math.floor(this.random() * 1_000_000_000_000));
    if (this.dropNext > 0 || this.random() < (config.dropProbability ?? 0)) {
      if (this.dropNext > 0) this.dropNext--;
      this.attempts.push({ emailAddress, historyId, messageId, attempt: 1, status: 'dropped', at: this.now() });
      return;
    }
    const body = JSON.stringify({
      message: {
        // Gmail push guide: data decodes to {"emailAddress": …, "historyId": "…"} (a string in the documented example).
        data: Buffer.from(JSON.stringify({ emailAddress, historyId })).toString('base64'),
        messageId,
        message_id: messageId,
        publishTime: new Date(this.now()).toISOString(),
        publish_time: new Date(this.now()).toISOString(),
      },
      subscription: config.subscription ?? 'projects/sandbox-project/subscriptions/gmail-push',
    });
    const maxAttempts = config.maxAttempts ?? 5;
    const attempt = async (n: number): Promise<void> => {
      if (this.closed) return;
      let status: PushAttempt['status'];
      try {
        const res = await fetch(config.endpoint, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${this.token(config)}` },
          body,
          signal: AbortSignal.timeout(10_000),
        });
        await res.arrayBuffer();
        status = res.status;
      } catch {
        status = 'network_error';
      }
      this.attempts.push({ emailAddress, historyId, messageId, attempt: n, status, at: this.now() });
      const ok = typeof status === 'number' && status >= 200 && status < 300;
      if (!ok && n < maxAttempts && !this.closed) {
        this.schedule((config.retryBackoffMs ?? 100) * 2 ** (n - 1), () => void attempt(n + 1));
      }
    };
    await attempt(1);
  }

  private token(config: PushConfig): string {
    const iat = Math.floor(this.now() / 1000);
    const sub = String(100_000_000_000_000_000_000n + BigInt(config.serviceAccountEmail.length * 7919));
    return signJwt(this.key, {
      aud: config.audience ?? config.endpoint,
      azp: sub,
      email: config.serviceAccountEmail,
      email_verified: true,
      exp: iat + 3600,
      iat,
      iss: 'https://accounts.google.com',
      sub,
    });
  }

  close(): void {
    this.closed = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    for (const s of this.users.values()) s.timer = undefined;
  }
}
