import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { EVENT_LOOP_DELAY_STATS, registerEventLoopDelay } from './event-loop-delay.js';

/** One registry per process; rooms add their metrics through `metrics.registry`. */
export interface Metrics {
  readonly registry: Registry;
  readonly httpRequests: Histogram<'method' | 'route' | 'status'>;
  counter<L extends string>(name: string, help: string, labelNames?: readonly L[]): Counter<L>;
  gauge<L extends string>(name: string, help: string, labelNames?: readonly L[]): Gauge<L>;
  histogram<L extends string>(name: string, help: string, labelNames?: readonly L[], buckets?: number[]): Histogram<L>;
}

const PREFIX = 'mbc_';

export function createMetrics(opts: { collectDefaults?: boolean } = {}): Metrics {
  const registry = new Registry();
  if (opts.collectDefaults !== false) {
    // prom-client's event-loop delay gauges are replaced by ours (event-loop-delay.ts: sampled
    // every 50 ms, not 10, and reported as delay beyond the interval). Its option cannot leave
    // them out: its histogram samples once a minute and its seven gauges are unregistered.
    collectDefaultMetrics({ register: registry, prefix: PREFIX, eventLoopMonitoringPrecision: 60_000 });
    for (const stat of EVENT_LOOP_DELAY_STATS) registry.removeSingleMetric(`${PREFIX}nodejs_eventloop_lag_${stat}_seconds`);
    registerEventLoopDelay(registry, PREFIX);
  }
  const httpRequests = new Histogram({
    name: 'mbc_http_request_duration_seconds',
    help: 'HTTP request duration by route template and status',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  });
  // Several rooms may ask for the same metric (e.g. two workers in one process): reuse it.
  const getOrCreate = <T>(name: string, make: () => T): T => (registry.getSingleMetric(name) as T | undefined) ?? make();
  return {
    registry,
    httpRequests,
    counter: (name, help, labelNames = []) =>
      getOrCreate(name, () => new Counter({ name, help, labelNames, registers: [registry] })),
    gauge: (name, help, labelNames = []) => getOrCreate(name, () => new Gauge({ name, help, labelNames, registers: [registry] })),
    histogram: (name, help, labelNames = [], buckets) =>
      getOrCreate(name, () => new Histogram({ name, help, labelNames, registers: [registry], ...(buckets ? { buckets } : {}) })),
  };
}
