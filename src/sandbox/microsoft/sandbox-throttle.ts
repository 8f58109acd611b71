import { GraphHttpError } from './sandbox-http.util.js';

export interface ThrottleOptions {
  /** Outlook: "Four concurrent requests" per app + mailbox (throttling-limits#outlook-service-limits). */
  maxConcurrentPerMailbox: number;
  /** Outlook: "10,000 API requests in a 10-minute period"; tests shrink both numbers. */
  requestsPerWindow: number;
  windowMs: number;
  /** Retry-After (seconds) sent with every 429 the stand-in produces on its own. */
  retryAfterSeconds: number;
}

export interface InjectedFault {
  status: number;
  code: string;
  /** How many matching requests fail; Infinity for a storm until cleared. */
  remaining: number;
  retryAfterSeconds: number | undefined;
  /** Only requests whose path contains this fail. */
  pathIncludes: string | undefined;
}

export interface FaultInput {
  status: number;
  code?: string;
  count?: number;
  retryAfterSeconds?: number;
  pathIncludes?: string;
}

/** Per-mailbox concurrency + request-window limits, injected faults and latency. */
export class SandboxThrottle {
  private readonly active = new Map<string, number>();
  private readonly windows = new Map<string, { start: number; count: number }>();
  private faults: InjectedFault[] = [];
  latencyMs = 0;
  /** Highest number of simultaneous requests seen per mailbox (inspection). */
  readonly peakConcurrency = new Map<string, number>();
  throttledCount = 0;

  constructor(
    private options: ThrottleOptions,
    private readonly now: () => number,
  ) {}

  configure(patch: Partial<ThrottleOptions>): void {
    this.options = { ...this.options, ...patch };
    this.windows.clear();
  }

  injectFault(input: FaultInput): void {
    const defaults: Record<number, string> = { 429: 'ApplicationThrottled', 500: 'InternalServerError', 502: 'BadGateway', 503: 'ServiceUnavailable', 504: 'GatewayTimeout' };
    this.faults.push({
      status: input.status,
      code: input.code ?? defaults[input.status] ?? 'UnknownError',
      remaining: input.count ?? 1,
      retryAfterSeconds: input.retryAfterSeconds ?? (input.status === 429 ? this.options.retryAfterSeconds : undefined),
      pathIncludes: input.pathIncludes,
    });
  }

  clearFaults(): void {
    this.faults = [];
    this.latencyMs = 0;
  }

  /** Throws the first matching injected fault, consuming one use of it. */
  checkFaults(path: string): void {
    const f = this.faults.find((x) => x.remaining > 0 && (x.pathIncludes === undefined || path.includes(x.pathIncludes)));
    if (!f) return;
    f.remaining -= 1;
    const headers: Record<string, string> = f.retryAfterSeconds !== undefined ? { 'retry-after': String(f.retryAfterSeconds) } : {};
    if (f.status === 429) this.throttledCount += 1;
    throw new GraphHttpError(f.status, f.code, f.status === 429 ? 'Application is over its MailboxConcurrency limit.' : 'The service is temporarily unavailable.', headers);
  }

  /** Admits one request for `mailbox` or throws 429. Returns the release function. */
  admit(mailbox: string): () => void {
    const t = this.now();
    const w = this.windows.get(mailbox);
    if (!w || t - w.start >= this.options.windowMs) this.windows.set(mailbox, { start: t, count: 1 });
    else {
      w.count += 1;
      if (w.count > this.options.requestsPerWindow) {
        const retryAfter = Math.max(1, Math.ceil((w.start + this.options.windowMs - t) / 1000));
        this.throttledCount += 1;
        throw new GraphHttpError(429, 'ApplicationThrottled', 'Application is over its resource limit.', { 'retry-after': String(retryAfter) });
      }
    }
    const n = this.active.get(mailbox) ?? 0;
    if (n >= this.options.maxConcurrentPerMailbox) {
      this.throttledCount += 1;
      throw new GraphHttpError(429, 'ApplicationThrottled', 'Application is over its MailboxConcurrency limit.', { 'retry-after': String(this.options.retryAfterSeconds) });
    }
    this.active.set(mailbox, n + 1);
    this.peakConcurrency.set(mailbox, Math.max(this.peakConcurrency.get(mailbox) ?? 0, n + 1));
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.active.set(mailbox, (this.active.get(mailbox) ?? 1) - 1);
    };
  }
}
