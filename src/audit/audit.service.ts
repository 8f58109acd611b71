import { newId } from '../storage/ids.js';
import type { AuditRepository, AuditSeal, StoredAuditEntry } from '../storage/audit.repository.js';
import type { DbTransaction } from '../storage/database.js';
import { anchorsFor, type AnchorKeys, type AuditAnchorFile } from './audit-anchor.js';
import { sealEntry, verifyChain, type ChainBreakReason, type ChainEntry, type ChainHead } from './hash-chain.js';

/** Why `audit verify` failed: a broken chain, or an anchor the log no longer matches. */
export type AuditBreakReason = ChainBreakReason | 'anchor_mismatch' | 'anchor_invalid' | 'anchor_unknown_key';

export type AuditVerification =
  | { readonly ok: true; readonly count: number; readonly head: ChainHead | null; readonly anchorsChecked: number; readonly keyed: boolean }
  | { readonly ok: false; readonly brokenAt: number; readonly reason: AuditBreakReason; readonly anchorLine?: number };

/** The audit key ring and the anchor file; without it the chain is plain SHA-256 (unit tests). */
export interface AuditChainKeys {
  readonly keys: AnchorKeys;
  readonly anchors?: AuditAnchorFile;
}

export type AuditActorType = 'api_key' | 'ops' | 'system' | 'break_glass';

export interface AuditInput {
  tenantId?: string | null;
  actorType: AuditActorType;
  actorId: string;
  /** Dotted verb, e.g. `message.read`, `attachment.download`, `mailbox.purged`, `break_glass.opened`. */
  action: string;
  targetType?: string;
  targetId?: string;
  /** Human reason (ops actions, break-glass). Never mail content. */
  reason?: string;
  /** Ids and counts only, never content. */
  metadata?: Record<string, string | number | boolean | null | string[]>;
}

/**
 * Postgres refused a value of the statement (SQLSTATE class 22, data exception: e.g. U+0000 in
 * jsonb; class 23, integrity constraint): something an entry holds, not the database failing.
 */
function refusedEntry(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^2[23][0-9A-Z]{3}$/.test(code);
}

/** Entries one group commit writes at most (one multi-row insert). */
export const AUDIT_BATCH_MAX = 256;

interface Pending {
  seal: AuditSeal;
  resolve: (entry: StoredAuditEntry) => void;
  reject: (err: unknown) => void;
}

/**
 * The append-only, hash-chained audit log (ARCHITECTURE: every content read and ops action).
 * With `chain` keys, entries are HMAC-sealed under the active audit key and heads are anchored to
 * a file outside the database (see hash-chain.ts and audit-anchor.ts).
 *
 * Group commit: an entry recorded outside a caller's transaction (every content read) waits in
 * this process's queue while the batch before it is being written, and is then written with the
 * others that queued meanwhile — one transaction, one hold of the cluster-wide append lock, one
 * commit for the batch (AuditRepository.appendMany). `record` still resolves only once its entry
 * is committed, so a read is never answered before it is on the log; a lone entry is written at
 * once. Every process takes the same lock, so the chain stays one line across processes.
 */
export class AuditService {
  #lastAnchoredSeq = 0;
  #queue: Pending[] = [];
  #writing = false;

  constructor(
    private readonly repo: AuditRepository,
    private readonly clock: () => Date = () => new Date(),
    private readonly chain?: AuditChainKeys,
  ) {}

  /**
   * Once per install (at start): if the log holds plain SHA-256 entries from before the chain was
   * keyed and the anchor file does not yet say where they end, records that boundary there, signed.
   * Never done when the file already has anchors for this chain: then the boundary is known, and
   * re-signing would bless entries someone downgraded since.
   */
  async prepare(): Promise<void> {
    const anchors = this.chain?.anchors;
    if (!anchors) return;
    const { first, lastUnkeyedSeq } = await this.repo.ends();
    if (!first || lastUnkeyedSeq === null) return;
    const read = anchors.read();
    if (!read.ok || read.anchors.some((a) => a.chain === first.hash)) return;
    const boundary = await this.repo.page(lastUnkeyedSeq - 1, 1);
    const entry = boundary[0];
    if (!entry) return;
    anchors.append({ kind: 'upgrade', chain: first.hash, seq: entry.seq, hash: entry.hash, at: this.clock().toISOString() });
  }

  /**
   * After `restore` replaced the database with a backup: records the restored head as a signed
   * `restore` line, so the heads anchored before (past the backup's end) no longer count as cut off.
   */
  async markRestored(): Promise<ChainHead | null> {
    const anchors = this.chain?.anchors;
    if (!anchors) return null;
    const { first, last } = await this.repo.ends();
    if (!first || !last) return null;
    anchors.append({ kind: 'restore', chain: first.hash, seq: last.seq, hash: last.hash, at: this.clock().toISOString() });
    this.#lastAnchoredSeq = last.seq;
    return { seq: last.seq, hash: last.hash };
  }

  /** Appends the current head to the anchor file when it moved since the last anchor. */
  async anchor(): Promise<ChainHead | null> {
    const anchors = this.chain?.anchors;
    if (!anchors) return null;
    const { first, last } = await this.repo.ends();
    if (!first || !last || last.seq === this.#lastAnchoredSeq) return null;
    anchors.append({ kind: 'head', chain: first.hash, seq: last.seq, hash: last.hash, at: this.clock().toISOString() });
    this.#lastAnchoredSeq = last.seq;
    return { seq: last.seq, hash: last.hash };
  }

  /**
   * Appends an entry: inside `tx` when given (committed or rolled back with the caller's work),
   * otherwise through the group commit; resolves with the entry once it is committed.
   */
  async record(input: AuditInput, tx?: DbTransaction): Promise<StoredAuditEntry> {
    const createdAt = this.clock().toISOString();
    const fields = {
      id: newId('audit'),
      tenantId: input.tenantId ?? null,
      actorType: input.actorType,
      actorId: input.actorId,
      action: input.action,
      targetType: input.targetType ?? null,
      targetId: input.targetId ?? null,
      reason: input.reason ?? null,
      metadata: input.metadata ?? {},
      createdAt,
    };
    const signer = this.chain ? { version: this.chain.keys.activeVersion, key: this.chain.keys.activeKey } : undefined;
    const seal: AuditSeal = (head) => sealEntry(head, fields, signer);
    if (tx) return this.repo.append(seal, tx);
    return new Promise<StoredAuditEntry>((resolve, reject) => {
      this.#queue.push({ seal, resolve, reject });
      if (!this.#writing) void this.#writeQueued();
    });
  }

  /** Writes the queue in batches until it is empty (one writer per process at a time). */
  async #writeQueued(): Promise<void> {
    this.#writing = true;
    try {
      while (this.#queue.length > 0) {
        const batch = this.#queue.splice(0, AUDIT_BATCH_MAX);
        try {
          const entries = await this.repo.appendMany(batch.map((p) => p.seal));
          batch.forEach((p, i) => p.resolve(entries[i]!));
        } catch (err) {
          if (batch.length === 1 || !refusedEntry(err)) {
            // One entry, or the database failing (down, restarting, timing out): every caller
            // gets the error now rather than after one more attempt per entry.
            for (const p of batch) p.reject(err);
            continue;
          }
          // Postgres refused something an entry holds, and nothing of the batch was written (one
          // transaction). Each entry alone, so that the one that cannot be written fails its own
          // request and not the others'.
          for (const p of batch) {
            try {
              p.resolve((await this.repo.appendMany([p.seal]))[0]!);
            } catch (e) {
              p.reject(e);
            }
          }
        }
      }
    } finally {
      this.#writing = false;
    }
  }

  /** Entries visible to one tenant, oldest first, keyset-paginated by seq. */
  async listForTenant(tenantId: string, afterSeq: number, limit: number): Promise<StoredAuditEntry[]> {
    return this.repo.page(afterSeq, limit, tenantId);
  }

  /**
   * Walks the whole chain page by page; detects edited (also edited and re-hashed without the
   * audit key), removed and reordered entries, and — against the signed anchors and an optional
   * operator-kept `expectedHead` — entries cut off the end.
   */
  async verify(opts: { expectedHead?: ChainHead; pageSize?: number } = {}): Promise<AuditVerification> {
    const pageSize = opts.pageSize ?? 1000;
    const keys = this.chain?.keys;
    let anchored: ChainHead[] = [];
    let unkeyedUntil: number | undefined;
    if (this.chain?.anchors) {
      const read = this.chain.anchors.read();
      if (!read.ok) return { ok: false, brokenAt: 0, reason: read.reason, anchorLine: read.line };
      const { first } = await this.repo.ends();
      ({ heads: anchored, unkeyedUntil } = anchorsFor(read.anchors, first?.hash ?? null));
    }
    const wanted = new Map<number, string>(anchored.map((a) => [a.seq, a.hash]));
    const highestAnchor = anchored.reduce((m, a) => Math.max(m, a.seq), 0);
    let after: ChainHead | undefined;
    let count = 0;
    for (;;) {
      const page = await this.repo.page(after?.seq ?? 0, pageSize);
      const isLast = page.length < pageSize;
      const result = verifyChain(page.map((e): ChainEntry => ({ ...e })), {
        ...(after ? { after } : {}),
        ...(isLast && opts.expectedHead ? { expectedHead: opts.expectedHead } : {}),
        ...(keys ? { keys: (v: number) => keys.key(v), ...(unkeyedUntil !== undefined ? { unkeyedUntil } : {}) } : {}),
      });
      if (!result.ok) return result;
      for (const e of page) {
        const expected = wanted.get(e.seq);
        if (expected !== undefined && expected !== e.hash) return { ok: false, brokenAt: e.seq, reason: 'anchor_mismatch' };
      }
      count += result.count;
      if (result.head) after = result.head;
      if (isLast) {
        if ((after?.seq ?? 0) < highestAnchor) return { ok: false, brokenAt: (after?.seq ?? 0) + 1, reason: 'truncated' };
        return { ok: true, count, head: after ?? null, anchorsChecked: anchored.length, keyed: keys !== undefined };
      }
    }
  }
}
