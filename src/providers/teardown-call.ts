import { isProviderError } from './provider-error.js';
import type { ProviderName } from './mail-provider.port.js';
import type { MailboxCredential, RevokeResult, TeardownMailbox, TeardownPort, WatchStopResult } from './ports.js';

class TimeoutError extends Error {
  override readonly name = 'TimeoutError';
}

/** `p`, or a TimeoutError after `ms`: the local purge never waits on a provider for long. */
export function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new TimeoutError(`timed out after ${ms} ms`)), ms);
      timer.unref();
    }),
  ]).finally(() => clearTimeout(timer));
}

/** A short, secret-free description for the receipt (kind and status only; never a token). */
export function describeFailure(err: unknown): string {
  if (isProviderError(err)) return `${err.kind}${err.status ? ` (${err.status})` : ''}`;
  if (err instanceof TimeoutError) return 'timeout';
  const code = (err as { code?: unknown })?.code;
  return typeof code === 'string' ? `network ${code}` : 'error';
}

/**
 * Runs the provider calls that stop a watch/subscription. A grant that is already gone
 * (`auth_revoked`) has nothing left we could stop: the provider drops the watch itself
 * (Gmail within 7 days, Graph at the subscription's expiry). Never throws.
 */
export async function stopPush(stop: () => Promise<void>): Promise<WatchStopResult> {
  try {
    await stop();
    return { status: 'stopped' };
  } catch (err) {
    if (isProviderError(err, 'auth_revoked')) return { status: 'not_needed' };
    return { status: 'failed', error: describeFailure(err) };
  }
}

/**
 * A provider's teardown with every provider call bounded by `opts.timeoutMs` (default 10 s): the
 * local purge never waits on a provider for long.
 */
export abstract class BoundedTeardown<O extends { timeoutMs?: number | undefined }> implements TeardownPort {
  abstract readonly provider: ProviderName;

  constructor(protected readonly opts: O) {}

  protected bounded<T>(p: Promise<T>): Promise<T> {
    return withTimeout(p, this.opts.timeoutMs ?? 10_000);
  }

  /** `stopPush` of `stop` with an access token from `accessToken`, each call bounded. */
  protected stopWithToken(accessToken: () => Promise<string>, stop: (token: string) => Promise<void>): Promise<WatchStopResult> {
    return stopPush(async () => {
      const token = await this.bounded(accessToken());
      await this.bounded(stop(token));
    });
  }

  abstract stopWatch(mailbox: TeardownMailbox, credential: MailboxCredential | null): Promise<WatchStopResult>;
  abstract revokeGrant(mailbox: TeardownMailbox, credential: MailboxCredential | null): Promise<RevokeResult>;
  abstract retryRevoke(token: string): Promise<RevokeResult>;
}
