import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { AdminSessionRecord } from '../../storage/admin-session.repository.js';

/** Storage of console sessions (AdminSessionRepository). */
export interface AdminSessionStore {
  create(row: { tokenHash: string; apiKeyId: string; createdAt: Date; expiresAt: Date }): Promise<void>;
  find(tokenHash: string): Promise<AdminSessionRecord | null>;
  touch(tokenHash: string, at: Date): Promise<void>;
  end(tokenHash: string, at: Date): Promise<boolean>;
  /** Deletes sessions that expired or ended before `before`. */
  prune(before: Date): Promise<number>;
}

export interface ConsoleSession {
  tokenHash: string;
  apiKeyId: string;
  /** The per-session CSRF token every console form carries and every POST must return. */
  csrf: string;
}

/** A session lasts at most this long after sign-in… */
export const SESSION_MAX_MS = 8 * 3_600_000;
/** …and ends after this long without a request. */
export const SESSION_IDLE_MS = 30 * 60_000;
/** `seenAt` is written at most this often. */
const TOUCH_EVERY_MS = 60_000;

const TOKEN_PATTERN = /^[A-Za-z0-9_-]{43}$/;

const hashToken = (token: string): string => createHash('sha256').update(token).digest('hex');
/** Derived from the cookie's token: only the holder of the cookie can know it; nothing to store. */
const csrfFor = (token: string): string => createHmac('sha256', token).update('mbc-console-csrf').digest('base64url');

/**
 * Server-side console sessions. The cookie carries 256 random bits; the database keeps their
 * SHA-256. A session is valid while it has not ended, is younger than SESSION_MAX_MS, was used
 * within SESSION_IDLE_MS, and its admin API key is still active (revoking the key signs its
 * sessions out).
 */
export class ConsoleSessions {
  constructor(
    private readonly deps: {
      store: AdminSessionStore;
      /** Whether this API key still exists, is an admin key and is not revoked. */
      adminKeyActive(apiKeyId: string): Promise<boolean>;
      clock: () => Date;
    },
  ) {}

  async start(apiKeyId: string): Promise<{ token: string; session: ConsoleSession; expiresAt: Date }> {
    const token = randomBytes(32).toString('base64url');
    const now = this.deps.clock();
    const expiresAt = new Date(now.getTime() + SESSION_MAX_MS);
    const tokenHash = hashToken(token);
    await this.deps.store.create({ tokenHash, apiKeyId, createdAt: now, expiresAt });
    // Housekeeping without a job: sign-ins are rare, and a day-old dead session is of no use.
    await this.deps.store.prune(new Date(now.getTime() - 86_400_000));
    return { token, session: { tokenHash, apiKeyId, csrf: csrfFor(token) }, expiresAt };
  }

  /** The session of a cookie value, or null (malformed, unknown, ended, expired, idle, key revoked). */
  async resume(token: string | undefined): Promise<ConsoleSession | null> {
    if (!token || !TOKEN_PATTERN.test(token)) return null;
    const tokenHash = hashToken(token);
    const row = await this.deps.store.find(tokenHash);
    const now = this.deps.clock();
    if (!row || row.endedAt || row.expiresAt <= now || now.getTime() - row.seenAt.getTime() > SESSION_IDLE_MS) return null;
    if (!(await this.deps.adminKeyActive(row.apiKeyId))) return null;
    if (now.getTime() - row.seenAt.getTime() > TOUCH_EVERY_MS) await this.deps.store.touch(tokenHash, now);
    return { tokenHash, apiKeyId: row.apiKeyId, csrf: csrfFor(token) };
  }

  async end(session: ConsoleSession): Promise<void> {
    await this.deps.store.end(session.tokenHash, this.deps.clock());
  }

  /** Constant-time comparison of a submitted CSRF token with the session's. */
  static csrfMatches(session: ConsoleSession, submitted: unknown): boolean {
    if (typeof submitted !== 'string' || submitted.length !== session.csrf.length) return false;
    return timingSafeEqual(Buffer.from(submitted), Buffer.from(session.csrf));
  }
}
