import { OAuth2Client } from 'google-auth-library';
import { GmailWatchAdapter } from '../providers/google/gmail-watch.adapter.js';
import { oauth2ClientEndpoints, type GoogleEndpoints } from '../providers/google/google-endpoints.js';
import { revokeGoogleToken } from '../providers/google/google-token-revoke.adapter.js';
import { isProviderError } from '../providers/provider-error.js';
import type { MailboxCredential, ProviderTeardown, RevokeResult, TeardownMailbox, WatchStopResult } from './provider-teardown.port.js';

export interface GoogleTeardownOptions {
  endpoints: GoogleEndpoints;
  clientId: string | undefined;
  clientSecret: string | undefined;
  /** Upper bound on each provider call: the local purge never waits on Google for long. */
  timeoutMs?: number;
}

/**
 * Google side of a disconnect: `users.stop` (with an access token refreshed from the stored
 * refresh token), then the revoke endpoint (provider-facts §2.2: revoking the refresh token
 * invalidates the grant and its access tokens; 200 on success, 400 on error).
 */
export class GoogleTeardownAdapter implements ProviderTeardown {
  readonly provider = 'google' as const;
  private readonly timeoutMs: number;

  constructor(private readonly opts: GoogleTeardownOptions) {
    this.timeoutMs = opts.timeoutMs ?? 10_000;
  }

  async stopWatch(_mailbox: TeardownMailbox, credential: MailboxCredential | null): Promise<WatchStopResult> {
    if (!credential) return { status: 'not_needed' };
    try {
      const accessToken = await withTimeout(this.accessToken(credential.secret), this.timeoutMs);
      const watch = new GmailWatchAdapter({ endpoints: this.opts.endpoints, accessToken: async () => accessToken });
      await withTimeout(watch.stop(), this.timeoutMs);
      return { status: 'stopped' };
    } catch (err) {
      // A grant that is already gone has no watch we could stop; Gmail drops it within 7 days.
      if (isProviderError(err, 'auth_revoked') || isInvalidGrant(err)) return { status: 'not_needed' };
      return { status: 'failed', error: describe(err) };
    }
  }

  async revokeGrant(_mailbox: TeardownMailbox, credential: MailboxCredential | null): Promise<RevokeResult> {
    if (!credential) return { status: 'not_needed' };
    return this.retryRevoke(credential.secret);
  }

  async retryRevoke(token: string): Promise<RevokeResult> {
    try {
      // 'already_invalid' (400 invalid_token) means the grant is gone: that is what we wanted.
      await withTimeout(revokeGoogleToken(this.opts.endpoints, token), this.timeoutMs);
      return { status: 'revoked' };
    } catch (err) {
      return { status: 'failed', error: describe(err), retryToken: token };
    }
  }

  private async accessToken(refreshToken: string): Promise<string> {
    const client = new OAuth2Client({
      ...(this.opts.clientId ? { clientId: this.opts.clientId } : {}),
      ...(this.opts.clientSecret ? { clientSecret: this.opts.clientSecret } : {}),
      endpoints: oauth2ClientEndpoints(this.opts.endpoints),
    });
    client.setCredentials({ refresh_token: refreshToken });
    const { token } = await client.getAccessToken();
    if (!token) throw new Error('token endpoint returned no access token');
    return token;
  }
}

function isInvalidGrant(err: unknown): boolean {
  const e = err as { response?: { data?: { error?: unknown } } };
  return e?.response?.data?.error === 'invalid_grant';
}

/** A short, secret-free description for the receipt (kind and status only; never a token). */
function describe(err: unknown): string {
  if (isProviderError(err)) return `${err.kind}${err.status ? ` (${err.status})` : ''}`;
  if (err instanceof TimeoutError) return 'timeout';
  const status = (err as { response?: { status?: unknown } })?.response?.status;
  if (typeof status === 'number') return `http ${status}`;
  const code = (err as { code?: unknown })?.code;
  return typeof code === 'string' ? `network ${code}` : 'error';
}

class TimeoutError extends Error {
  override readonly name = 'TimeoutError';
}

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
