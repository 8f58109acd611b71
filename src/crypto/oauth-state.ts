import { createHash, randomBytes } from 'node:crypto';

/**
 * The OAuth `state` parameter: 256 random bits, single use. Only its SHA-256 is stored
 * (`connect_sessions.stateHash`), so a database reader cannot forge a callback, and lookup by
 * hash is an exact index match — no timing-sensitive string comparison happens at all.
 */
export function newState(): { state: string; stateHash: string } {
  const state = randomBytes(32).toString('base64url');
  return { state, stateHash: hashState(state) };
}

export function hashState(state: string): string {
  return createHash('sha256').update(state, 'utf8').digest('hex');
}

/** A `state` we could have issued: 43 base64url characters. Anything else is refused unread. */
export const STATE_PATTERN = /^[A-Za-z0-9_-]{43}$/;
