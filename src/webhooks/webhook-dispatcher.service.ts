import type { PayloadBuilder } from '../events/payload-builder.js';
import type { JobOutcome } from '../jobs/job-map.js';
import type { JobQueue } from '../jobs/job-queue.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { OutboxEventRecord, OutboxRepository } from '../storage/outbox.repository.js';
import type { Claimed, DeliveryRecord, DeliveryStatus, WebhookEndpointRecord, WebhookRepository } from '../storage/webhook.repository.js';
import { checkWebhookUrl, EgressDeniedError, type EgressPolicy } from './egress-guard.js';
import { nextAction, type RetrySchedule } from './retry-schedule.js';
import type { WebhookEndpointService } from './webhook-endpoint.service.js';
import type { WebhookSender, WebhookSendResult } from './webhook-sender.js';
import { signWebhook } from './webhook-signer.js';

export interface DispatcherSettings {
  /** Delays between attempts; undefined = Svix's schedule. */
  retryDelaysMs: readonly number[] | undefined;
  timeoutMs: number;
  /** Deliveries in flight per endpoint across all worker processes. */
  endpointConcurrency: number;
}

/** Stored response text is capped: enough to debug a receiver, little room for anything else. */
const SNIPPET_CHARS = 256;

export class NoMatchingEndpointError extends Error {
  override readonly name = 'NoMatchingEndpointError';
}

/**
 * Outbox event → one delivery per matching endpoint → signed attempts on the retry schedule.
 *
 * Per-endpoint concurrency: a delivery is "claimed" under a per-endpoint transaction lock that
 * counts the endpoint's live leases; over the limit the claim is refused and the delivery stays
 * due. The pump only fetches as many due deliveries per endpoint as it has free slots, so a slow
 * endpoint holds at most `endpointConcurrency` attempts cluster-wide and every other endpoint's
 * deliveries keep flowing.
 */
export class WebhookDispatcher {
  private readonly schedule: Partial<RetrySchedule>;
  private readonly leaseMs: number;

  constructor(
    private readonly deps: {
      outbox: OutboxRepository;
      webhooks: WebhookRepository;
      payloads: PayloadBuilder;
      endpoints: WebhookEndpointService;
      sender: WebhookSender;
      egress: EgressPolicy;
      jobs: Pick<JobQueue, 'enqueue'>;
      logger: Logger;
      metrics: Metrics;
      clock: () => Date;
      random?: () => number;
      settings: DispatcherSettings;
      /** Tells the local delivery pump that new work is due (set by the module). */
      wake?: () => void;
    },
  ) {
    this.schedule = deps.settings.retryDelaysMs ? { delaysMs: deps.settings.retryDelaysMs } : {};
    // A worker that died mid-attempt loses its lease after the send budget plus a margin.
    this.leaseMs = deps.settings.timeoutMs + 30_000;
  }

  private get attemptsTotal() {
    return this.deps.metrics.counter('mbc_webhook_attempts_total', 'Webhook delivery attempts by outcome', ['outcome'] as const);
  }

  /** `webhooks.dispatch`: idempotent — (eventId, endpointId) is unique, a re-run creates nothing. */
  async dispatch(eventId: string): Promise<JobOutcome> {
    const n = await this.dispatchMany([eventId]);
    return { status: 'done', detail: { deliveries: n } };
  }

  /**
   * Fans committed events out into deliveries, in one pass per batch. New deliveries are due at
   * once; the delivery pump picks them up (no job per delivery).
   */
  async dispatchMany(eventIds: readonly string[]): Promise<number> {
    // dispatchedAt is set only after the deliveries were inserted: a set one means nothing to do
    // (the wake-up job of an event the pump already fanned out).
    const events = (await this.deps.outbox.findManyUnscoped(eventIds)).filter((e) => e.dispatchedAt === null);
    if (events.length === 0) return 0;
    const endpoints = await this.deps.webhooks.enabledEndpointsOf([...new Set(events.map((e) => e.tenantId))]);
    const rows = events.flatMap((e) =>
      endpoints.filter((ep) => ep.tenantId === e.tenantId && (ep.events.length === 0 || ep.events.includes(e.type))).map((ep) => ({ tenantId: e.tenantId, eventId: e.id, endpointId: ep.id })),
    );
    const created = await this.deps.webhooks.insertDeliveries(rows);
    await this.deps.outbox.markManyDispatched(events.map((e) => e.id), this.deps.clock());
    if (created > 0) this.deps.wake?.();
    return created;
  }

  /** `webhooks.deliver`: one attempt of one delivery. */
  async deliver(deliveryId: string, hint: { endpointId?: string } = {}): Promise<JobOutcome> {
    const claim = await this.deps.webhooks.claim(deliveryId, this.deps.clock(), {
      limit: this.deps.settings.endpointConcurrency,
      leaseMs: this.leaseMs,
      ...(hint.endpointId ? { endpointId: hint.endpointId } : {}),
    });
    switch (claim.kind) {
      case 'missing':
        return { status: 'skipped', reason: 'delivery not found' };
      case 'final':
        return { status: 'skipped', reason: `delivery is ${claim.status}` };
      case 'busy':
        return { status: 'skipped', reason: 'another worker is delivering it' };
      case 'not_due':
        return { status: 'skipped', reason: 'not due yet (a scheduled job exists)' };
      case 'throttled':
        // Still due: the pump takes it as soon as the endpoint has a free slot.
        return { status: 'skipped', reason: 'endpoint at its concurrency limit' };
      case 'claimed':
        break;
    }
    return this.attemptClaimed(claim);
  }

  /** One attempt of a delivery this worker holds the lease on (from `deliver` or a batch claim). */
  async attemptClaimed({ delivery, endpoint, event }: Claimed): Promise<JobOutcome> {
    try {
      return await this.attempt(delivery, endpoint, event);
    } catch (err) {
      // Our own failure (database, a payload that does not decrypt…) counts as a failed attempt on
      // the same schedule, so a permanently broken event ends up dead instead of spinning.
      this.deps.logger.error({ err, deliveryId: delivery.id }, 'webhook attempt failed inside the connector');
      const attemptNo = delivery.attempts + 1;
      const action = nextAction({ attempt: attemptNo, result: { ok: false }, now: this.deps.clock(), random: this.deps.random ?? Math.random, schedule: this.schedule });
      await this.deps.webhooks.finishAttempt(
        delivery.id,
        { status: action.kind === 'retry' ? 'failed' : 'dead', attempts: attemptNo, nextAttemptAt: action.kind === 'retry' ? action.at : null, lastStatus: delivery.lastStatus },
        { statusCode: null, latencyMs: 0, responseSnippet: null, error: 'internal_error', createdAt: this.deps.clock() },
      );
      if (action.kind === 'retry') await this.deps.jobs.enqueue('webhooks.deliver', { deliveryId: delivery.id }, { startAfter: action.at });
      return { status: 'failed', reason: 'internal error during the attempt' };
    }
  }

  /** How long a claimed delivery stays leased to its worker. */
  get leaseDurationMs(): number {
    return this.leaseMs;
  }

  private async attempt(delivery: DeliveryRecord, endpoint: WebhookEndpointRecord, event: OutboxEventRecord): Promise<JobOutcome> {
    const log = this.deps.logger.child({ deliveryId: delivery.id, eventId: delivery.eventId, endpointId: endpoint.id });
    const built = await this.deps.payloads.build(event);
    if (built.kind === 'cancelled') {
      await this.finish(delivery, 'cancelled', null, null);
      this.attemptsTotal.inc({ outcome: 'cancelled' });
      log.info({ reason: built.reason, type: event.type }, 'webhook delivery cancelled');
      return { status: 'done', detail: { cancelled: built.reason } };
    }
    const body = JSON.stringify(built.body);
    const result = await this.send(event, endpoint, body);
    const attemptNo = delivery.attempts + 1;
    const logged = {
      statusCode: result.status ?? null,
      latencyMs: result.latencyMs,
      responseSnippet: safeSnippet(result.responseSnippet, body),
      error: result.error ? `${result.error}${result.errorCode ? `: ${result.errorCode}` : ''}` : null,
      createdAt: this.deps.clock(),
    };
    const action = nextAction({ attempt: attemptNo, result, now: this.deps.clock(), random: this.deps.random ?? Math.random, schedule: this.schedule });
    const lastStatus = result.status ?? null;
    // Successes are the bulk: debug. Failures are what an operator looks for: info.
    log[action.kind === 'delivered' ? 'debug' : 'info']({ type: event.type, attempt: attemptNo, status: lastStatus, error: result.error, latencyMs: result.latencyMs, next: action.kind }, 'webhook attempt');
    this.attemptsTotal.inc({ outcome: action.kind });
    switch (action.kind) {
      case 'delivered':
        await this.deps.webhooks.finishAttempt(delivery.id, { status: 'delivered', attempts: attemptNo, nextAttemptAt: null, lastStatus, deliveredAt: this.deps.clock() }, logged);
        return { status: 'done' };
      case 'retry':
        if (await this.deps.webhooks.finishAttempt(delivery.id, { status: 'failed', attempts: attemptNo, nextAttemptAt: action.at, lastStatus }, logged)) {
          await this.deps.jobs.enqueue('webhooks.deliver', { deliveryId: delivery.id }, { startAfter: action.at });
        }
        return { status: 'done', detail: { retryAt: action.at.toISOString() } };
      case 'dead':
        await this.deps.webhooks.finishAttempt(delivery.id, { status: 'dead', attempts: attemptNo, nextAttemptAt: null, lastStatus }, logged);
        log.warn({ reason: action.reason }, 'webhook delivery is dead');
        return { status: 'done', detail: { dead: action.reason } };
      case 'disable_endpoint':
        await this.deps.webhooks.disableEndpointUnscoped(endpoint.id, 'receiver_gone_410');
        await this.deps.webhooks.finishAttempt(delivery.id, { status: 'dead', attempts: attemptNo, nextAttemptAt: null, lastStatus }, logged);
        log.warn('webhook endpoint answered 410 Gone; endpoint disabled');
        return { status: 'done', detail: { endpointDisabled: true } };
    }
  }

  private async send(event: OutboxEventRecord, endpoint: WebhookEndpointRecord, body: string): Promise<WebhookSendResult> {
    let target;
    try {
      // Checked again before every attempt: the host may resolve somewhere else by now.
      target = await checkWebhookUrl(endpoint.url, this.deps.egress);
    } catch (err) {
      if (!(err instanceof EgressDeniedError)) throw err;
      return { ok: false, latencyMs: 0, responseSnippet: '', abortMessage: false, error: 'connect', errorCode: `egress_denied:${err.code}` };
    }
    const now = this.deps.clock();
    const headers = signWebhook({ msgId: event.id, timestamp: now, body, secrets: await this.deps.endpoints.signingSecrets(endpoint, now) });
    return this.deps.sender({ target, headers, body, timeoutMs: this.deps.settings.timeoutMs });
  }

  private async finish(delivery: DeliveryRecord, status: DeliveryStatus, lastStatus: number | null, nextAttemptAt: Date | null): Promise<void> {
    await this.deps.webhooks.finishAttempt(delivery.id, { status, attempts: delivery.attempts, nextAttemptAt, lastStatus: lastStatus ?? delivery.lastStatus });
  }

  /**
   * Replays an event: every enabled endpoint subscribed to its type (or just `endpointId`) gets
   * a fresh delivery schedule. The `webhook-id` stays the event id, so receivers deduplicate.
   */
  async replay(event: OutboxEventRecord, endpointId?: string): Promise<DeliveryRecord[]> {
    const endpoints = (await this.deps.webhooks.matchingEndpoints(event.tenantId, event.type)).filter((e) => !endpointId || e.id === endpointId);
    if (endpoints.length === 0) throw new NoMatchingEndpointError('no enabled endpoint is subscribed to this event');
    const deliveries = await this.deps.webhooks.resetForReplay(event.tenantId, event.id, endpoints.map((e) => e.id));
    // A job per delivery: replay may come from an HTTP-only process, whose pump is not running.
    await this.enqueueDeliveries(deliveries);
    await this.deps.outbox.markDispatched(event.id, this.deps.clock());
    return deliveries;
  }

  /** `webhooks.sweep`: re-enqueue what a crash left behind (undispatched events, stranded deliveries). */
  async sweep(): Promise<JobOutcome> {
    const now = this.deps.clock().getTime();
    const events = await this.deps.outbox.listUndispatched(new Date(now - 30_000), 500);
    for (const eventId of events) await this.deps.jobs.enqueue('webhooks.dispatch', { eventId });
    const stranded = await this.deps.webhooks.listStrandedDeliveries(new Date(now - 60_000), new Date(now - this.leaseMs), 500);
    for (const deliveryId of stranded) await this.deps.jobs.enqueue('webhooks.deliver', { deliveryId });
    if (events.length || stranded.length) this.deps.logger.info({ events: events.length, deliveries: stranded.length }, 'webhook sweep re-enqueued work');
    return { status: 'done', detail: { events: events.length, deliveries: stranded.length } };
  }

  private async enqueueDeliveries(deliveries: readonly DeliveryRecord[]): Promise<void> {
    for (const d of deliveries) await this.deps.jobs.enqueue('webhooks.deliver', { deliveryId: d.id });
  }
}

/**
 * The receiver's answer is stored for debugging, capped. A receiver that echoes the request
 * would put our payload (mail content) into the log: such an answer is not kept.
 */
export function safeSnippet(snippet: string, body: string): string | null {
  const text = snippet.slice(0, SNIPPET_CHARS);
  if (text.trim() === '') return null;
  const probe = text.slice(0, 48);
  if (probe.length >= 12 && body.includes(probe)) return '[response echoed the request body; not stored]';
  return text;
}
