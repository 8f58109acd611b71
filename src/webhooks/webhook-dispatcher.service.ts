import type { PayloadBuilder } from '../events/payload-builder.js';
import type { JobOutcome } from '../jobs/job-map.js';
import type { JobQueue } from '../jobs/job-queue.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { OutboxEventRecord, OutboxRepository } from '../storage/outbox.repository.js';
import type { Claimed, DeliveryRecord, WebhookEndpointRecord, WebhookRepository } from '../storage/webhook.repository.js';
import { AttemptWriter, type FinishItem } from './attempt-writer.js';
import { checkWebhookUrl, EgressDeniedError, type EgressPolicy, type PinnedTarget } from './egress-guard.js';
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

/**
 * An event's wire body for this batch: the exact bytes that are signed and sent, encoded once
 * (the signer and the sender both take the bytes; no second JSON or UTF-8 encoding per attempt).
 */
type EventBody = { kind: 'ready'; bytes: Buffer } | { kind: 'cancelled'; reason: string } | { kind: 'error'; error: unknown };

type PreparedEndpoint =
  | { kind: 'ok'; target: PinnedTarget; secrets: string[] }
  | { kind: 'denied'; code: string }
  | { kind: 'error'; error: unknown };

/** How long a built body may be reused for other endpoints of the same event (memory only). */
const BODY_CACHE_MS = 1_000;
const BODY_CACHE_MAX = 5_000;

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
  private readonly writer: AttemptWriter;
  /** Insertion order = expiry order (same TTL for all). */
  private readonly bodyCache = new Map<string, { body: EventBody; expiresAt: number }>();

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
      /** Tells the local delivery pump when a retry it just scheduled becomes due. */
      retryScheduled?: (at: Date) => void;
    },
  ) {
    this.schedule = deps.settings.retryDelaysMs ? { delaysMs: deps.settings.retryDelaysMs } : {};
    // A worker that died mid-attempt loses its lease after the send budget plus a margin.
    this.leaseMs = deps.settings.timeoutMs + 30_000;
    this.writer = new AttemptWriter({ webhooks: deps.webhooks, logger: deps.logger });
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

  /** One attempt of a delivery this worker holds the lease on (from `deliver`). */
  async attemptClaimed(claim: Claimed): Promise<JobOutcome> {
    await this.attemptBatch([claim]);
    return { status: 'done' };
  }

  /**
   * One attempt of each claimed delivery (this worker holds their leases), sent concurrently.
   * Per batch, not per delivery: each event's body is built once (and shared by every endpoint
   * it goes to), each endpoint's URL is checked by the egress guard once and its signing secrets
   * decrypted once. Each result goes to `store` (the delivery pump's, which writes results
   * together with its next claim) or, by default, to the AttemptWriter; resolves when every
   * result is stored.
   */
  async attemptBatch(batch: readonly Claimed[], store: (item: FinishItem) => Promise<boolean> = (item) => this.writer.write(item)): Promise<void> {
    if (batch.length === 0) return;
    const now = this.deps.clock();
    const bodies = await this.bodiesFor(batch.map((c) => c.event));
    const endpoints = new Map<string, Promise<PreparedEndpoint>>();
    for (const c of batch) {
      if (!endpoints.has(c.endpoint.id)) endpoints.set(c.endpoint.id, this.prepareEndpoint(c.endpoint, now));
    }
    await Promise.all(
      batch.map(async (c) => {
        try {
          await this.attempt(c, bodies.get(c.event.id)!, await endpoints.get(c.endpoint.id)!, store);
        } catch (err) {
          await this.internalFailure(c, err, store);
        }
      }),
    );
  }

  /** Our own failure (a payload that does not decrypt…) counts as a failed attempt on the schedule, so a broken event ends dead instead of spinning. */
  private async internalFailure({ delivery }: Claimed, err: unknown, store: (item: FinishItem) => Promise<boolean>): Promise<void> {
    this.deps.logger.error({ err, deliveryId: delivery.id }, 'webhook attempt failed inside the connector');
    const attemptNo = delivery.attempts + 1;
    const action = nextAction({ attempt: attemptNo, result: { ok: false }, now: this.deps.clock(), random: this.deps.random ?? Math.random, schedule: this.schedule });
    this.attemptsTotal.inc({ outcome: action.kind === 'retry' ? 'retry' : 'dead' });
    await store({
      deliveryId: delivery.id,
      patch: { status: action.kind === 'retry' ? 'failed' : 'dead', attempts: attemptNo, nextAttemptAt: action.kind === 'retry' ? action.at : null, lastStatus: delivery.lastStatus },
      attempt: { statusCode: null, latencyMs: 0, responseSnippet: null, error: 'internal_error', createdAt: this.deps.clock() },
    });
    if (action.kind === 'retry') this.deps.retryScheduled?.(action.at);
  }

  /** How long a claimed delivery stays leased to its worker. */
  get leaseDurationMs(): number {
    return this.leaseMs;
  }

  /** Waits until every attempt result handed to the writer is stored (shutdown). */
  async drain(): Promise<void> {
    await this.writer.drain();
  }

  /** Stores one result through the AttemptWriter (retries a failed write; false if it never was). */
  storeResult(item: FinishItem): Promise<boolean> {
    return this.writer.write(item);
  }

  /**
   * Wire bodies of a batch's events: built once per event from encrypted storage, kept in memory
   * only, for at most BODY_CACHE_MS (so an event fanned out to several endpoints over a few
   * batches is built once; a retry, seconds later, rebuilds and so re-checks that the source was
   * not purged meanwhile). Never written anywhere.
   */
  private async bodiesFor(events: readonly OutboxEventRecord[]): Promise<Map<string, EventBody>> {
    const out = new Map<string, EventBody>();
    const nowMs = Date.now();
    for (const [id, entry] of this.bodyCache) {
      if (entry.expiresAt > nowMs) break;
      this.bodyCache.delete(id);
    }
    const missing: OutboxEventRecord[] = [];
    for (const e of events) {
      if (out.has(e.id)) continue;
      const cached = this.bodyCache.get(e.id);
      if (cached && cached.expiresAt > nowMs) out.set(e.id, cached.body);
      else {
        out.set(e.id, { kind: 'error', error: new Error('not built') });
        missing.push(e);
      }
    }
    if (missing.length === 0) return out;
    let built: EventBody[];
    try {
      // Already the wire bytes; a large content is encoded off the event loop (PayloadBuilder.encodeMany).
      built = await this.deps.payloads.encodeMany(missing, { mailboxes: (ids) => this.deps.webhooks.mailboxesForPayloads(ids) });
    } catch (error) {
      built = missing.map(() => ({ kind: 'error' as const, error }));
    }
    missing.forEach((e, i) => {
      const body = built[i]!;
      out.set(e.id, body);
      if (body.kind !== 'error') {
        this.bodyCache.set(e.id, { body, expiresAt: nowMs + BODY_CACHE_MS });
        if (this.bodyCache.size > BODY_CACHE_MAX) this.bodyCache.delete(this.bodyCache.keys().next().value!);
      }
    });
    return out;
  }

  private async prepareEndpoint(endpoint: WebhookEndpointRecord, now: Date): Promise<PreparedEndpoint> {
    try {
      // Checked again for every batch of attempts (they start now): the host may resolve
      // somewhere else by now. The sender connects only to the addresses pinned here.
      const target = await checkWebhookUrl(endpoint.url, this.deps.egress);
      return { kind: 'ok', target, secrets: await this.deps.endpoints.signingSecrets(endpoint, now) };
    } catch (err) {
      if (err instanceof EgressDeniedError) return { kind: 'denied', code: err.code };
      return { kind: 'error', error: err };
    }
  }

  private async attempt(claim: Claimed, body: EventBody, endpoint: PreparedEndpoint, store: (item: FinishItem) => Promise<boolean>): Promise<void> {
    const { delivery, event } = claim;
    if (body.kind === 'error') throw body.error;
    if (body.kind === 'cancelled') {
      await store({ deliveryId: delivery.id, patch: { status: 'cancelled', attempts: delivery.attempts, nextAttemptAt: null, lastStatus: delivery.lastStatus } });
      this.attemptsTotal.inc({ outcome: 'cancelled' });
      this.deps.logger.info({ deliveryId: delivery.id, eventId: event.id, endpointId: claim.endpoint.id, reason: body.reason, type: event.type }, 'webhook delivery cancelled');
      return;
    }
    if (endpoint.kind === 'error') throw endpoint.error;
    let result: WebhookSendResult;
    if (endpoint.kind === 'denied') {
      result = { ok: false, latencyMs: 0, responseSnippet: '', abortMessage: false, error: 'connect', errorCode: `egress_denied:${endpoint.code}` };
    } else {
      const headers = signWebhook({ msgId: event.id, timestamp: this.deps.clock(), body: body.bytes, secrets: endpoint.secrets });
      result = await this.deps.sender({ target: endpoint.target, headers, body: body.bytes, timeoutMs: this.deps.settings.timeoutMs });
    }
    const attemptNo = delivery.attempts + 1;
    const logged = {
      statusCode: result.status ?? null,
      latencyMs: result.latencyMs,
      responseSnippet: safeSnippet(result.responseSnippet, body.bytes),
      error: result.error ? `${result.error}${result.errorCode ? `: ${result.errorCode}` : ''}` : null,
      createdAt: this.deps.clock(),
    };
    const action = nextAction({ attempt: attemptNo, result, now: this.deps.clock(), random: this.deps.random ?? Math.random, schedule: this.schedule });
    const lastStatus = result.status ?? null;
    this.attemptsTotal.inc({ outcome: action.kind });
    if (action.kind !== 'delivered') {
      // Successes are the bulk and are not logged; failures are what an operator looks for.
      this.deps.logger.info(
        { deliveryId: delivery.id, eventId: event.id, endpointId: claim.endpoint.id, type: event.type, attempt: attemptNo, status: lastStatus, error: result.error, latencyMs: result.latencyMs, next: action.kind },
        'webhook attempt',
      );
    }
    switch (action.kind) {
      case 'delivered':
        await store({ deliveryId: delivery.id, patch: { status: 'delivered', attempts: attemptNo, nextAttemptAt: null, lastStatus, deliveredAt: this.deps.clock() }, attempt: logged });
        return;
      case 'retry':
        // No job: the pumps claim due retries themselves (a timer here, their polling everywhere).
        await store({ deliveryId: delivery.id, patch: { status: 'failed', attempts: attemptNo, nextAttemptAt: action.at, lastStatus }, attempt: logged });
        this.deps.retryScheduled?.(action.at);
        return;
      case 'dead':
        await store({ deliveryId: delivery.id, patch: { status: 'dead', attempts: attemptNo, nextAttemptAt: null, lastStatus }, attempt: logged });
        this.deps.logger.warn({ deliveryId: delivery.id, eventId: event.id, endpointId: claim.endpoint.id, reason: action.reason }, 'webhook delivery is dead');
        return;
      case 'disable_endpoint':
        await this.deps.webhooks.disableEndpointUnscoped(claim.endpoint.id, 'receiver_gone_410');
        await store({ deliveryId: delivery.id, patch: { status: 'dead', attempts: attemptNo, nextAttemptAt: null, lastStatus }, attempt: logged });
        this.deps.logger.warn({ deliveryId: delivery.id, endpointId: claim.endpoint.id }, 'webhook endpoint answered 410 Gone; endpoint disabled');
        return;
    }
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
export function safeSnippet(snippet: string, body: string | Buffer): string | null {
  const text = snippet.slice(0, SNIPPET_CHARS);
  if (text.trim() === '') return null;
  const probe = text.slice(0, 48);
  if (probe.length >= 12 && body.includes(probe)) return '[response echoed the request body; not stored]';
  return text;
}
