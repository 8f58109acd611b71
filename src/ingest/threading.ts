import { createHash } from 'node:crypto';
import { dedupe } from './message-id.js';
import type { ThreadIndex } from './thread-index.port.js';

export interface ThreadInput {
  /** Normalized Message-ID (ParsedMessage.messageId, possibly synthetic). */
  messageId: string;
  inReplyTo: string | null;
  /** Normalized References, oldest first (ParsedMessage.references). */
  references: readonly string[];
  /** Gmail threadId or Graph conversationId, when the provider gave one. */
  providerThreadId?: string | null;
  provider?: 'google' | 'microsoft';
}

/**
 * Ids to look up, in priority order:
 * 1. the message's own id — it is known when a reply arrived first and recorded it as a ghost
 *    root, or when the same message is ingested again (idempotent re-ingest, duplicate ids);
 * 2. In-Reply-To — RFC 5322 §3.6.4 names it the direct parent, so it wins a conflict with
 *    References (some clients write a stale or truncated References header);
 * 3. References from last to first — the nearest known ancestor decides.
 * Self references are dropped and duplicates collapse, so References loops cannot matter: this is
 * a lookup, not a tree walk.
 */
export function threadCandidates(input: ThreadInput): string[] {
  const refs = [...input.references].reverse();
  const ids = [input.messageId, ...(input.inReplyTo ? [input.inReplyTo] : []), ...refs];
  return dedupe(ids.filter((id) => id.length > 0));
}

/** `gm:<threadId>` / `ms:<conversationId>`, or null without a provider thread. */
export function providerThreadKey(input: Pick<ThreadInput, 'provider' | 'providerThreadId'>): string | null {
  if (!input.providerThreadId || !input.provider) return null;
  return `${input.provider === 'google' ? 'gm' : 'ms'}:${input.providerThreadId}`;
}

/**
 * Key for a thread nothing else identifies. Derived from the thread's root (first Reference, else
 * In-Reply-To, else the message itself) rather than random, so re-ingesting the same message after
 * a rolled-back attempt yields the same key, and two messages of one unseen thread agree.
 */
export function newThreadKey(input: ThreadInput): string {
  const root = input.references[0] ?? input.inReplyTo ?? input.messageId;
  return `mid:${createHash('sha256').update(root).digest('base64url').slice(0, 27)}`;
}

/**
 * Resolves the thread key and records the message's own id and all its references under it (so a
 * later reply to a not-yet-seen parent still joins). Existing mappings are never moved: when
 * references point into two different known threads, the first candidate's thread wins and the
 * other ids keep their own thread (no merging, thread keys already delivered stay valid).
 */
export async function resolveThreadKey(input: ThreadInput, index: ThreadIndex): Promise<string> {
  const candidates = threadCandidates(input);
  const known = await index.lookup(candidates);
  let key: string | null = null;
  for (const id of candidates) {
    const found = known.get(id);
    if (found !== undefined) {
      key = found;
      break;
    }
  }
  key ??= providerThreadKey(input) ?? newThreadKey(input);
  await index.record(candidates, key);
  return key;
}
