import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { entryHash, GENESIS_HASH, sealEntry, verifyChain, type ChainEntry } from './hash-chain.js';

interface Row extends ChainEntry {
  id: string;
  tenantId: string | null;
  action: string;
  metadata: Record<string, unknown>;
  createdAt: Date;
}

function buildLog(n: number): Row[] {
  const rows: Row[] = [];
  for (let i = 0; i < n; i++) {
    const prev = rows.at(-1) ?? null;
    rows.push(
      sealEntry(prev && { seq: Number(prev.seq), hash: prev.hash }, {
        id: `aud_${i}`,
        tenantId: i % 2 ? 'tn_1' : null,
        action: i % 3 ? 'message.read' : 'mailbox.purge',
        metadata: { count: i, ids: [`m${i}`] },
        createdAt: new Date(Date.UTC(2026, 10, 29, 5, 0, i)),
      }),
    );
  }
  return rows;
}

describe('entryHash', () => {
  it('is SHA-256 over prevHash followed by the canonical entry', () => {
    const expected = createHash('sha256').update(GENESIS_HASH + '{"a":1,"seq":1}').digest('hex');
    expect(entryHash(GENESIS_HASH, { seq: 1, a: 1 })).toBe(expected);
  });

  it('treats null and absent members alike (the database returns null for undefined)', () => {
    expect(entryHash(GENESIS_HASH, { seq: 1, reason: null })).toBe(entryHash(GENESIS_HASH, { seq: 1, reason: undefined }));
    expect(entryHash(GENESIS_HASH, { seq: 1, reason: null })).toBe(entryHash(GENESIS_HASH, { seq: 1 }));
  });

  it('rejects a malformed prevHash', () => {
    expect(() => entryHash('abc', { seq: 1 })).toThrow(TypeError);
  });
});

describe('verifyChain', () => {
  it('passes an intact log and reports its head', () => {
    const log = buildLog(6);
    expect(log[0]!.prevHash).toBe(GENESIS_HASH);
    expect(verifyChain(log)).toEqual({ ok: true, count: 6, head: { seq: 6, hash: log[5]!.hash } });
    expect(verifyChain([])).toEqual({ ok: true, count: 0, head: null });
  });

  it('passes rows as read back from Postgres: bigint seq, null columns, re-ordered JSON keys', () => {
    const log = buildLog(4).map((r) => ({ ...r, seq: BigInt(r.seq), metadata: JSON.parse(JSON.stringify({ ids: r.metadata.ids, count: r.metadata.count })) }));
    expect(verifyChain(log)).toMatchObject({ ok: true, count: 4 });
  });

  it('detects an edited field', () => {
    const log = buildLog(5);
    log[2] = { ...log[2]!, action: 'message.export' };
    expect(verifyChain(log)).toEqual({ ok: false, brokenAt: 3, reason: 'hash_mismatch' });
  });

  it('detects an edit inside nested metadata', () => {
    const log = buildLog(5);
    log[3] = { ...log[3]!, metadata: { count: 3, ids: ['m999'] } };
    expect(verifyChain(log)).toEqual({ ok: false, brokenAt: 4, reason: 'hash_mismatch' });
  });

  it('detects an edit that also recomputes that entry’s own hash', () => {
    const log = buildLog(5);
    const edited = { ...log[1]!, action: 'nothing.to.see' };
    const { prevHash: _p, hash: _h, ...body } = edited;
    log[1] = { ...edited, hash: entryHash(edited.prevHash, body) };
    expect(verifyChain(log)).toEqual({ ok: false, brokenAt: 3, reason: 'prev_mismatch' });
  });

  it('detects a deleted entry, with and without renumbering', () => {
    const gap = buildLog(5);
    gap.splice(2, 1);
    expect(verifyChain(gap)).toEqual({ ok: false, brokenAt: 4, reason: 'sequence_gap' });

    const renumbered = buildLog(5);
    renumbered.splice(2, 1);
    renumbered.forEach((r, i) => (renumbered[i] = { ...r, seq: i + 1 }));
    expect(verifyChain(renumbered)).toMatchObject({ ok: false, brokenAt: 3 });

    const first = buildLog(3).slice(1);
    expect(verifyChain(first)).toEqual({ ok: false, brokenAt: 2, reason: 'sequence_gap' });
  });

  it('detects reordered entries, with and without swapped seq numbers', () => {
    const log = buildLog(5);
    [log[1], log[2]] = [log[2]!, log[1]!];
    expect(verifyChain(log)).toEqual({ ok: false, brokenAt: 3, reason: 'sequence_gap' });

    const swapped = buildLog(5);
    [swapped[1], swapped[2]] = [{ ...swapped[2]!, seq: 2 }, { ...swapped[1]!, seq: 3 }];
    expect(verifyChain(swapped)).toEqual({ ok: false, brokenAt: 2, reason: 'prev_mismatch' });
  });

  it('detects removal of trailing entries only against an external anchor', () => {
    const log = buildLog(5);
    const anchor = { seq: 5, hash: log[4]!.hash };
    expect(verifyChain(log.slice(0, 3))).toMatchObject({ ok: true }); // undetectable without one
    expect(verifyChain(log.slice(0, 3), { expectedHead: anchor })).toEqual({ ok: false, brokenAt: 4, reason: 'truncated' });
    expect(verifyChain(log, { expectedHead: anchor })).toMatchObject({ ok: true });
    expect(verifyChain(log, { expectedHead: { seq: 3, hash: log[2]!.hash } })).toMatchObject({ ok: true }); // grew since
  });

  it('detects a consistently rewritten history against an external anchor', () => {
    const original = buildLog(3);
    const forged: Row[] = [];
    for (const r of original) {
      const prev = forged.at(-1);
      const { seq: _s, prevHash: _p, hash: _h, ...fields } = r;
      forged.push(sealEntry(prev ? { seq: Number(prev.seq), hash: prev.hash } : null, { ...fields, action: 'forged' }));
    }
    expect(verifyChain(forged)).toMatchObject({ ok: true });
    expect(verifyChain(forged, { expectedHead: { seq: 3, hash: original[2]!.hash } })).toMatchObject({ ok: false, brokenAt: 3 });
  });

  it('verifies page by page, continuing from the previous head', () => {
    const log = buildLog(7);
    const first = verifyChain(log.slice(0, 4));
    if (!first.ok) throw new Error('first page should verify');
    expect(verifyChain(log.slice(4), { after: first.head! })).toEqual({ ok: true, count: 3, head: { seq: 7, hash: log[6]!.hash } });
    const tampered = log.slice(4).map((r) => ({ ...r }));
    tampered[0]!.action = 'x';
    expect(verifyChain(tampered, { after: first.head! })).toEqual({ ok: false, brokenAt: 5, reason: 'hash_mismatch' });
  });
});
