import { createHash, createHmac, timingSafeEqual, type KeyObject } from 'node:crypto';
import { canonicalJson } from '../crypto/canonical-json.js';

/**
 * Pure helpers for a tamper-evident, append-only log: each entry stores the hash of the entry
 * before it, so editing, deleting or reordering any stored entry breaks every later link.
 *
 * What is hashed is the whole entry as stored *except* its own `hash` and `prevHash` columns —
 * so no column can be left out of the protection by accident. Object members that are `null` or
 * `undefined` are dropped before hashing, because the database hands back `null` for what the
 * writer may have left `undefined`; that would otherwise look like tampering.
 *
 * Writer's contract (the appender in this folder):
 * - in ONE transaction holding a lock on the log head (e.g. `pg_advisory_xact_lock`), read the
 *   last entry, build the next with `sealEntry(head, fields)`, insert it;
 * - set `seq` explicitly (prev + 1) rather than from a database sequence: sequences skip
 *   numbers on rollback, and a skipped number is indistinguishable from a deleted entry;
 * - store every hashed field exactly (e.g. set `createdAt` yourself; a DB `now()` default has
 *   microseconds the writer never saw).
 *
 * Keyed chain: an entry with a `keyVersion` is sealed with HMAC-SHA-256 under that version of the
 * audit key (AUDIT_HMAC_KEYS, kept outside the database), so someone who can write the table but
 * not read the key cannot edit an entry and recompute the later links. `keyVersion` is itself a
 * hashed column. Entries without it (plain SHA-256) are the chain's pre-key history: a keyed
 * verification accepts them only up to `unkeyedUntil` (recorded in the signed anchor file when the
 * chain was upgraded), so a rewrite "down" to plain SHA-256 is caught as `unkeyed_entry`.
 */

/** `prevHash` of the first entry. */
export const GENESIS_HASH = '0'.repeat(64);

const HASH_RE = /^[0-9a-f]{64}$/;

/** The last verified link: where the next entry (or the next verification page) continues. */
export interface ChainHead {
  readonly seq: number;
  readonly hash: string;
}

/**
 * A stored entry: `seq`, the two link columns, and any other fields — every other own
 * enumerable property is hashed, so pass rows as stored (no index signature needed).
 */
export interface ChainEntry {
  /** 1-based, no gaps. Postgres `bigint` arrives as `bigint`; both are accepted. */
  readonly seq: number | bigint;
  readonly prevHash: string;
  readonly hash: string;
  /** Audit key version the entry was sealed with; null/absent for a plain SHA-256 entry. */
  readonly keyVersion?: number | null;
}

/** The key new entries are sealed with. */
export interface ChainSigner {
  readonly version: number;
  readonly key: KeyObject;
}

export type ChainBreakReason =
  | 'hash_mismatch' // the entry's content no longer matches its hash (edited)
  | 'prev_mismatch' // the entry does not follow the one before it (removed, reordered, re-hashed)
  | 'sequence_gap' // seq is not previous + 1 (removed or reordered)
  | 'truncated' // the log ends before the expected head (trailing entries removed)
  | 'unkeyed_entry' // a plain SHA-256 entry where the chain is keyed (rewritten without the key)
  | 'unknown_key'; // sealed with an audit key version this process does not hold

export type ChainVerification =
  | { readonly ok: true; readonly count: number; readonly head: ChainHead | null }
  | { readonly ok: false; readonly brokenAt: number; readonly reason: ChainBreakReason };

/**
 * SHA-256 (hex) over `prevHash` followed by the canonical JSON of the entry; HMAC-SHA-256 under
 * `key` when one is given (a keyed entry).
 */
export function entryHash(prevHash: string, entry: object, key?: KeyObject): string {
  if (!HASH_RE.test(prevHash)) throw new TypeError('prevHash must be 64 lower-case hex characters');
  const h = key ? createHmac('sha256', key) : createHash('sha256');
  return h.update(prevHash, 'utf8').update(canonicalJson(dropNullish(entry)), 'utf8').digest('hex');
}

/** The next entry after `prev` (null for the first): assigns `seq`, `prevHash` and `hash`. */
export function sealEntry<T extends object>(
  prev: ChainHead | null,
  fields: T,
  signer?: ChainSigner,
): Omit<T, 'seq' | 'prevHash' | 'hash' | 'keyVersion'> & { seq: number; prevHash: string; hash: string; keyVersion: number | null } {
  const { seq: _s, prevHash: _p, hash: _h, keyVersion: _k, ...rest } = fields as Record<string, unknown>;
  const seq = prev === null ? 1 : prev.seq + 1;
  const prevHash = prev === null ? GENESIS_HASH : prev.hash;
  const keyVersion = signer ? signer.version : null;
  const body = { ...rest, seq, keyVersion };
  return {
    ...(rest as Omit<T, 'seq' | 'prevHash' | 'hash' | 'keyVersion'>),
    seq,
    prevHash,
    keyVersion,
    hash: entryHash(prevHash, body, signer?.key),
  };
}

/**
 * Verifies entries given in `seq` order. Verify a large log page by page by passing the
 * previous page's `head` as `after`; pass `expectedHead` (an anchor kept outside the database,
 * e.g. the last head printed by `audit verify`) to also detect removal of trailing entries.
 */
export function verifyChain(
  entries: Iterable<ChainEntry>,
  options: {
    after?: ChainHead;
    expectedHead?: ChainHead;
    /**
     * Keyed verification: the audit key of a version (undefined when not held). Without it,
     * only plain SHA-256 entries verify (a keyed entry is `unknown_key`).
     */
    keys?: (version: number) => KeyObject | undefined;
    /** With `keys`: plain SHA-256 entries are accepted up to this seq (the pre-key history). */
    unkeyedUntil?: number;
  } = {},
): ChainVerification {
  let expectedSeq = (options.after?.seq ?? 0) + 1;
  let prevHash = options.after?.hash ?? GENESIS_HASH;
  let count = 0;
  let head: ChainHead | null = options.after ?? null;
  const anchor = options.expectedHead;
  let hashAtAnchor: string | undefined = anchor && head?.seq === anchor.seq ? head.hash : undefined;

  for (const entry of entries) {
    const seq = toSeq(entry.seq);
    if (seq !== expectedSeq) return { ok: false, brokenAt: seq, reason: 'sequence_gap' };
    if (entry.prevHash !== prevHash) return { ok: false, brokenAt: seq, reason: 'prev_mismatch' };
    const { prevHash: _p, hash, ...rest } = entry as ChainEntry & Record<string, unknown>;
    const keyVersion = entry.keyVersion ?? null;
    let key: KeyObject | undefined;
    if (keyVersion !== null) {
      key = options.keys?.(keyVersion);
      if (!key) return { ok: false, brokenAt: seq, reason: 'unknown_key' };
    } else if (options.keys && seq > (options.unkeyedUntil ?? 0)) {
      return { ok: false, brokenAt: seq, reason: 'unkeyed_entry' };
    }
    if (typeof hash !== 'string' || !safeEqualHex(entryHash(prevHash, { ...rest, seq, keyVersion }, key), hash)) {
      return { ok: false, brokenAt: seq, reason: 'hash_mismatch' };
    }
    prevHash = hash;
    head = { seq, hash };
    if (anchor && seq === anchor.seq) hashAtAnchor = hash;
    expectedSeq = seq + 1;
    count++;
  }

  if (anchor) {
    if (head === null || head.seq < anchor.seq) return { ok: false, brokenAt: head ? head.seq + 1 : 1, reason: 'truncated' };
    // The log may have grown past the anchor; the anchor vouches only for its own position.
    // (If this page started after it, an earlier page already covered it.)
    if (hashAtAnchor !== undefined && hashAtAnchor !== anchor.hash) {
      return { ok: false, brokenAt: anchor.seq, reason: 'prev_mismatch' };
    }
  }
  return { ok: true, count, head };
}

function safeEqualHex(a: string, b: string): boolean {
  if (a.length !== b.length || !HASH_RE.test(b)) return false;
  return timingSafeEqual(Buffer.from(a, 'hex'), Buffer.from(b, 'hex'));
}

function toSeq(seq: number | bigint): number {
  const n = typeof seq === 'bigint' ? Number(seq) : seq;
  if (!Number.isSafeInteger(n) || n < 1) throw new TypeError('seq must be a positive safe integer');
  return n;
}

function dropNullish(value: object): Record<string, unknown> {
  return stripNullishMembers(value) as Record<string, unknown>;
}

function stripNullishMembers(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(stripNullishMembers);
  if (value !== null && typeof value === 'object' && !(value instanceof Date)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      if (v !== null && v !== undefined) out[k] = stripNullishMembers(v);
    }
    return out;
  }
  return value;
}
