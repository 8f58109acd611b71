import { createHmac, timingSafeEqual, type KeyObject } from 'node:crypto';
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { canonicalJson } from '../crypto/canonical-json.js';
import type { ChainHead } from './hash-chain.js';

/**
 * Signed heads of the audit chain, appended to a file outside the database (AUDIT_ANCHOR_FILE).
 *
 * The keyed chain already stops anyone without the audit key from editing and recomputing
 * entries; what a chain cannot show by itself is entries cut off its end (or the whole log
 * replaced by an older copy). An anchor line records a head `{seq, hash}` under an HMAC of the
 * audit key, so `audit verify` can insist that the log still reaches every anchored head with the
 * same hash. An `upgrade` line records, once, where the pre-key (plain SHA-256) history ends.
 *
 * One JSON object per line; lines that are not valid JSON or whose MAC does not verify make the
 * verification fail (`anchor_invalid`) rather than being skipped: a tampered anchor file is itself
 * a finding. Each line names the chain it belongs to (`chain`: the hash of entry 1), so a file
 * shared by several databases (tests, a mistaken path) only speaks for its own chain.
 */

const MAC_CONTEXT = 'mailbox-connector audit anchor v1\n';

export interface AnchorRecord {
  readonly v: 1;
  /** `restore`: the log was replaced by a backup here; heads anchored before it no longer apply. */
  readonly kind: 'head' | 'upgrade' | 'restore';
  /** Hash of entry 1: which chain this line is about. */
  readonly chain: string;
  readonly seq: number;
  readonly hash: string;
  readonly at: string;
  readonly keyVersion: number;
}

export interface AnchorKeys {
  readonly activeVersion: number;
  readonly activeKey: KeyObject;
  key(version: number): KeyObject | undefined;
}

export type AnchorReadResult =
  | { readonly ok: true; readonly anchors: readonly AnchorRecord[] }
  | { readonly ok: false; readonly line: number; readonly reason: 'anchor_invalid' | 'anchor_unknown_key' };

export class AuditAnchorFile {
  constructor(
    readonly path: string,
    private readonly keys: AnchorKeys,
  ) {}

  /** Appends one signed line (fsynced). */
  append(record: Omit<AnchorRecord, 'v' | 'keyVersion'>): AnchorRecord {
    const full: AnchorRecord = { v: 1, ...record, keyVersion: this.keys.activeVersion };
    const line = JSON.stringify({ ...full, mac: mac(this.keys.activeKey, full) }) + '\n';
    mkdirSync(dirname(this.path), { recursive: true });
    const fd = openSync(this.path, 'a', 0o600);
    try {
      writeSync(fd, line);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    return full;
  }

  /** Every verified line of the file (none when the file does not exist). */
  read(): AnchorReadResult {
    if (!existsSync(this.path)) return { ok: true, anchors: [] };
    const lines = readFileSync(this.path, 'utf8').split('\n');
    const anchors: AnchorRecord[] = [];
    for (let i = 0; i < lines.length; i++) {
      const text = lines[i]!.trim();
      if (text === '') continue;
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch {
        return { ok: false, line: i + 1, reason: 'anchor_invalid' };
      }
      const record = toRecord(parsed);
      if (!record) return { ok: false, line: i + 1, reason: 'anchor_invalid' };
      const key = this.keys.key(record.keyVersion);
      if (!key) return { ok: false, line: i + 1, reason: 'anchor_unknown_key' };
      const expected = Buffer.from(mac(key, record), 'hex');
      const given = Buffer.from(String((parsed as { mac?: unknown }).mac ?? ''), 'hex');
      if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
        return { ok: false, line: i + 1, reason: 'anchor_invalid' };
      }
      anchors.push(record);
    }
    return { ok: true, anchors };
  }
}

/** What the anchors say about one chain: heads it must still reach, and the pre-key boundary. */
export function anchorsFor(anchors: readonly AnchorRecord[], chain: string | null): { heads: ChainHead[]; unkeyedUntil: number | undefined } {
  const mine = chain === null ? [] : anchors.filter((a) => a.chain === chain);
  const upgrades = mine.filter((a) => a.kind === 'upgrade');
  // A restore (an audited operator action, signed like every line) rolls the log back on purpose:
  // only what was anchored from then on still has to be reached.
  let heads: ChainHead[] = [];
  for (const a of mine) {
    if (a.kind === 'restore') heads = [];
    heads.push({ seq: a.seq, hash: a.hash });
  }
  return { heads, unkeyedUntil: upgrades.length ? Math.max(...upgrades.map((a) => a.seq)) : undefined };
}

function mac(key: KeyObject, record: AnchorRecord): string {
  const { v, kind, chain, seq, hash, at, keyVersion } = record;
  return createHmac('sha256', key)
    .update(MAC_CONTEXT, 'utf8')
    .update(canonicalJson({ v, kind, chain, seq, hash, at, keyVersion }), 'utf8')
    .digest('hex');
}

const HEX64 = /^[0-9a-f]{64}$/;

function toRecord(value: unknown): AnchorRecord | null {
  if (value === null || typeof value !== 'object') return null;
  const r = value as Record<string, unknown>;
  if (r.v !== 1 || (r.kind !== 'head' && r.kind !== 'upgrade' && r.kind !== 'restore')) return null;
  if (typeof r.chain !== 'string' || !HEX64.test(r.chain)) return null;
  if (typeof r.hash !== 'string' || !HEX64.test(r.hash)) return null;
  if (!Number.isSafeInteger(r.seq) || (r.seq as number) < 1) return null;
  if (!Number.isSafeInteger(r.keyVersion) || (r.keyVersion as number) < 1) return null;
  if (typeof r.at !== 'string') return null;
  return { v: 1, kind: r.kind, chain: r.chain, seq: r.seq as number, hash: r.hash, at: r.at, keyVersion: r.keyVersion as number };
}
