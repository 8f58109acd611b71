import { afterEach, describe, expect, it } from 'vitest';
import { waitUntil } from '../../test/helpers/wait.js';
import type { Logger } from '../observability/logger.js';
import type { OutboxRepository } from '../storage/outbox.repository.js';
import type { WebhookRepository } from '../storage/webhook.repository.js';
import { DeliveryPump } from './delivery-pump.js';
import type { WebhookDispatcher } from './webhook-dispatcher.service.js';

/** A pump over a stand-in repository that counts the statements it would send. */
function pumpWith(tickMs?: number) {
  const calls: Array<{ what: 'fan_out' | 'claim'; at: number }> = [];
  const webhooks = {
    dispatchCommitted: async () => {
      calls.push({ what: 'fan_out', at: Date.now() });
      return { events: 0, created: 0 };
    },
    claimDue: async () => {
      calls.push({ what: 'claim', at: Date.now() });
      return { claimed: [], lockedOut: 0 };
    },
    finishAndClaim: async () => ({ updated: new Set<string>(), claimed: [], lockedOut: 0 }),
  } as unknown as WebhookRepository;
  const logger = { warn: () => undefined, error: () => undefined, info: () => undefined } as unknown as Logger;
  const pump = new DeliveryPump({
    dispatcher: { drain: async () => undefined } as unknown as WebhookDispatcher,
    webhooks,
    outbox: {} as OutboxRepository,
    logger,
    clock: () => new Date(),
    slots: 8,
    endpointConcurrency: 4,
    leaseMs: 45_000,
    ...(tickMs !== undefined ? { tickMs } : {}),
  });
  return { pump, calls };
}

const pumps: DeliveryPump[] = [];
afterEach(async () => {
  await Promise.all(pumps.splice(0).map((p) => p.stop()));
});

describe('delivery pump: waking on work instead of polling', () => {
  it('an idle pump sends nothing between safety ticks (the default tick is no longer 1 s)', async () => {
    const { pump, calls } = pumpWith();
    pumps.push(pump);
    pump.start();
    await new Promise((r) => setTimeout(r, 2_500));
    expect(calls).toEqual([]);
  });

  it('committed events wake it at once: fan-out, then a claim', async () => {
    const { pump, calls } = pumpWith(600_000);
    pumps.push(pump);
    pump.start();
    pump.wakeDispatch();
    await waitUntil('the woken cycle', () => calls.length >= 2, { timeoutMs: 10_000, intervalMs: 10 });
    expect(calls.map((c) => c.what)).toEqual(['fan_out', 'claim']);
  });

  it('every retry this process scheduled wakes it when due, not only the earliest', async () => {
    const { pump, calls } = pumpWith(600_000);
    pumps.push(pump);
    pump.start();
    const t0 = Date.now();
    // Scheduled out of order; each one must get its own look when it becomes due.
    pump.wakeAt(new Date(t0 + 900));
    pump.wakeAt(new Date(t0 + 300));
    pump.wakeAt(new Date(t0 + 1_500));
    await waitUntil('three claims', () => calls.filter((c) => c.what === 'claim').length >= 3, { timeoutMs: 20_000, intervalMs: 20 });
    const claims = calls.filter((c) => c.what === 'claim').map((c) => c.at - t0);
    // Not before each due time (timers never fire early; a loaded machine may make them late).
    expect(claims[0]).toBeGreaterThanOrEqual(300);
    expect(claims[1]).toBeGreaterThanOrEqual(900);
    expect(claims[2]).toBeGreaterThanOrEqual(1_500);
    // Retries are deliveries, not new events: no fan-out probe beyond the first look after start.
    expect(calls.filter((c) => c.what === 'fan_out').length).toBeLessThanOrEqual(1);
  });

  it('the safety tick still looks for work nobody announced', async () => {
    const { pump, calls } = pumpWith(200);
    pumps.push(pump);
    pump.start();
    await waitUntil('a tick', () => calls.length >= 2, { timeoutMs: 10_000, intervalMs: 20 });
    expect(calls.slice(0, 2).map((c) => c.what)).toEqual(['fan_out', 'claim']);
  });
});
