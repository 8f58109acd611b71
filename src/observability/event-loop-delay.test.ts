import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { EVENT_LOOP_DELAY_STATS, EVENT_LOOP_SAMPLE_MS, registerEventLoopDelay } from './event-loop-delay.js';
import { createMetrics } from './metrics.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The value of one sample line of the exposition text. */
function value(text: string, name: string): number {
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  if (!m) throw new Error(`${name} not in /metrics`);
  return Number(m[1]);
}

function blockFor(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    // a synchronous stall: nothing else runs on this thread meanwhile
  }
}

describe('event-loop delay gauges', () => {
  it('read ~0 on an idle loop, not the sampling interval, and see a stall as its length', async () => {
    const registry = new Registry();
    registerEventLoopDelay(registry, 'x_');
    await sleep(EVENT_LOOP_SAMPLE_MS * 8);
    const idle = await registry.metrics();
    // prom-client's own gauges would read the interval itself here (≥ 0.05 s at this sampling).
    expect(value(idle, 'x_nodejs_eventloop_lag_p50_seconds')).toBeLessThan(0.02);
    expect(value(idle, 'x_nodejs_eventloop_lag_min_seconds')).toBeLessThan(0.02);

    // The scrape started a new window: a 300 ms stall in it is its max, about its own length.
    await sleep(EVENT_LOOP_SAMPLE_MS * 2);
    blockFor(300);
    await sleep(EVENT_LOOP_SAMPLE_MS * 3);
    const stalled = await registry.metrics();
    const max = value(stalled, 'x_nodejs_eventloop_lag_max_seconds');
    expect(max).toBeGreaterThan(0.25);
    expect(max).toBeLessThan(0.3 + 0.2);
    expect(value(stalled, 'x_nodejs_eventloop_lag_p50_seconds')).toBeLessThan(0.02);
  });

  it('replace prom-client’s seven in the service registry; the rest of the default metrics stay', async () => {
    const text = await createMetrics().registry.metrics();
    for (const stat of EVENT_LOOP_DELAY_STATS) {
      const lines = text.split('\n').filter((l) => l.startsWith(`# HELP mbc_nodejs_eventloop_lag_${stat}_seconds `));
      expect(lines).toHaveLength(1);
      expect(lines[0]).toContain(`beyond the ${EVENT_LOOP_SAMPLE_MS} ms sampling interval`);
    }
    expect(text).toMatch(/^mbc_nodejs_eventloop_lag_seconds /m);
    expect(text).toMatch(/^mbc_process_cpu_seconds_total /m);
    expect(text).toMatch(/^mbc_nodejs_heap_size_used_bytes /m);
  });
});
