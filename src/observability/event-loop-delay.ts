import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Gauge, type Registry } from 'prom-client';

/**
 * How often the event loop's delay is sampled. Each sample is a timer that wakes the process:
 * prom-client's default (10 ms, 100 wake-ups a second) cost an idle `serve` process 0.4 % of a
 * core on a 2-core VM — about half of all it spends doing nothing (docs/benchmarks.md, "Idle",
 * run J). At 50 ms it costs 0.1 %; a stall as long as the interval or longer is always seen, a
 * shorter one in proportion to its length.
 */
export const EVENT_LOOP_SAMPLE_MS = 50;

/** The gauges prom-client's default metrics would fill from their own 10 ms histogram. */
export const EVENT_LOOP_DELAY_STATS = ['min', 'max', 'mean', 'stddev', 'p50', 'p90', 'p99'] as const;

/**
 * `<prefix>nodejs_eventloop_lag_{min,max,mean,stddev,p50,p90,p99}_seconds` from Node's own
 * event-loop delay histogram (`perf_hooks.monitorEventLoopDelay`), reset at every scrape, like
 * prom-client's. Written here rather than taken from prom-client's default metrics for two
 * reasons: its sampling interval is fixed per process at 10 ms unless raised, and what it reports
 * is the histogram's raw value — the time between two samples, interval included — so a coarser
 * interval would read as lag (an idle process would show 50 ms). These gauges report the delay
 * beyond the interval: an idle loop reads ~0, a 200 ms stall ~0.2 s, whatever the interval.
 */
export function registerEventLoopDelay(registry: Registry, prefix: string, sampleMs = EVENT_LOOP_SAMPLE_MS): void {
  const histogram = monitorEventLoopDelay({ resolution: sampleMs });
  histogram.enable();
  const intervalNs = sampleMs * 1e6;
  /** Seconds of delay beyond the sampling interval (a sample can come up to 1 ms early: libuv's clock is in ms). */
  const delay = (ns: number): number => (Number.isFinite(ns) ? Math.max(0, ns - intervalNs) / 1e9 : 0);
  let gauges: Gauge[] = [];
  // One collect fills all seven, then starts the next window (as prom-client's does). The first
  // gauge carries it: a scrape reads metrics in the order they were registered.
  const collect = (): void => {
    const [min, max, mean, stddev, p50, p90, p99] = gauges as [Gauge, Gauge, Gauge, Gauge, Gauge, Gauge, Gauge];
    if (histogram.count === 0) {
      for (const g of gauges) g.set(0);
      return;
    }
    min.set(delay(histogram.min));
    max.set(delay(histogram.max));
    mean.set(delay(histogram.mean));
    // A spread, not a delay: the interval is not subtracted.
    stddev.set(Number.isFinite(histogram.stddev) ? histogram.stddev / 1e9 : 0);
    p50.set(delay(histogram.percentile(50)));
    p90.set(delay(histogram.percentile(90)));
    p99.set(delay(histogram.percentile(99)));
    histogram.reset();
  };
  gauges = EVENT_LOOP_DELAY_STATS.map(
    (stat, i) =>
      new Gauge({
        name: `${prefix}nodejs_eventloop_lag_${stat}_seconds`,
        help: `Event loop delay since the last scrape, ${stat} (seconds beyond the ${sampleMs} ms sampling interval).`,
        registers: [registry],
        ...(i === 0 ? { collect } : {}),
      }),
  );
}
