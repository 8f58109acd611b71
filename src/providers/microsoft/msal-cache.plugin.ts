import type { ICachePlugin, TokenCacheContext } from '@azure/msal-node';

/** Where one mailbox's serialized MSAL cache lives (the vault: encrypted in `credentialEnc`). */
export interface MsalCacheStore {
  load(): Promise<string | null>;
  save(serialized: string): Promise<void>;
}

const EMPTY_CACHE = JSON.stringify({ Account: {}, IdToken: {}, AccessToken: {}, RefreshToken: {}, AppMetadata: {} });

/**
 * MSAL's recommended shape for confidential clients: one cache blob per user, read before and
 * written after every cache access (docs/caching.md, "distributed cache"). Reading before each
 * access means a refresh done by another worker process is seen here; an absent blob resets the
 * in-memory cache so nothing from a forgotten grant survives in this process.
 */
export class MailboxMsalCachePlugin implements ICachePlugin {
  constructor(private readonly store: MsalCacheStore) {}

  async beforeCacheAccess(ctx: TokenCacheContext): Promise<void> {
    ctx.tokenCache.deserialize((await this.store.load()) ?? EMPTY_CACHE);
  }

  async afterCacheAccess(ctx: TokenCacheContext): Promise<void> {
    if (ctx.cacheHasChanged) await this.store.save(ctx.tokenCache.serialize());
  }
}

/** A cache that only lives for one code exchange, before the mailbox row exists. */
export class CapturingMsalCacheStore implements MsalCacheStore {
  serialized: string | null = null;
  load(): Promise<string | null> {
    return Promise.resolve(this.serialized);
  }
  save(serialized: string): Promise<void> {
    this.serialized = serialized;
    return Promise.resolve();
  }
}

/** True when the serialized cache holds a refresh token (i.e. offline_access was granted). */
export function cacheHasRefreshToken(serialized: string): boolean {
  try {
    const parsed = JSON.parse(serialized) as { RefreshToken?: Record<string, unknown> };
    return Object.keys(parsed.RefreshToken ?? {}).length > 0;
  } catch {
    return false;
  }
}
