import { describe, expect, it } from 'vitest';
import type { MailProvider, SendAsAddress } from '../providers/mail-provider.port.js';
import { ProviderError } from '../providers/provider-error.js';
import { SendAsDirectory, SendAsUnavailableError } from './send-as.directory.js';

const mailbox = { id: 'mbx_1', provider: 'google' as const };
const primary: SendAsAddress = { address: 'support@acme.test', displayName: undefined, isPrimary: true, verified: true };
const orders: SendAsAddress = { address: 'Orders@Acme.test', displayName: 'Acme Orders', isPrimary: false, verified: true };
const billing: SendAsAddress = { address: 'billing@acme.test', displayName: undefined, isPrimary: false, verified: false };

function setup(initial: SendAsAddress[], opts: { ttlMs?: number; missRefreshMs?: number; maxEntries?: number } = {}) {
  let now = 1_000_000;
  let list = initial;
  let failure: Error | undefined;
  const calls: string[] = [];
  const warnings: unknown[] = [];
  const provider = {
    async listSendAs() {
      calls.push('listSendAs');
      await new Promise((r) => setTimeout(r, 5));
      if (failure) throw failure;
      return list;
    },
  } as unknown as MailProvider;
  const dir = new SendAsDirectory(
    { providers: async () => provider, clock: () => new Date(now), logger: { warn: (obj: unknown) => void warnings.push(obj) } },
    opts,
  );
  return {
    dir,
    calls,
    warnings,
    advance: (ms: number) => (now += ms),
    setList: (l: SendAsAddress[]) => (list = l),
    fail: (err: Error | undefined) => (failure = err),
  };
}

describe('SendAsDirectory', () => {
  it('accepts a verified alias (any case, answered as the provider spells it), refuses a pending or unknown one', async () => {
    const t = setup([primary, orders, billing]);
    expect(await t.dir.check(mailbox, 'orders@acme.TEST')).toEqual({ ok: true, address: 'Orders@Acme.test', displayName: 'Acme Orders' });
    expect(await t.dir.check(mailbox, 'billing@acme.test')).toEqual({ ok: false, reason: 'alias_not_verified' });
    expect(await t.dir.check(mailbox, 'someone@else.test')).toEqual({ ok: false, reason: 'not_an_alias' });
    // All three answered from one provider call: misses within 30 s of the fetch do not refetch.
    expect(t.calls).toHaveLength(1);
  });

  it('serves hits from the cache until the TTL, and refreshes a miss (at most every missRefreshMs)', async () => {
    const t = setup([primary, orders], { ttlMs: 600_000, missRefreshMs: 30_000 });
    await t.dir.check(mailbox, 'orders@acme.test');
    t.setList([primary, orders, { address: 'help@acme.test', displayName: undefined, isPrimary: false, verified: true }]);
    t.advance(10_000);
    expect(await t.dir.check(mailbox, 'help@acme.test')).toEqual({ ok: false, reason: 'not_an_alias' });
    expect(t.calls).toHaveLength(1);
    t.advance(25_000); // 35 s after the fetch: a miss refreshes
    expect(await t.dir.check(mailbox, 'help@acme.test')).toMatchObject({ ok: true, address: 'help@acme.test' });
    expect(t.calls).toHaveLength(2);

    // An alias removed at the provider still answers from the cache until the TTL…
    t.setList([primary]);
    t.advance(60_000);
    expect(await t.dir.check(mailbox, 'orders@acme.test')).toMatchObject({ ok: true });
    expect(t.calls).toHaveLength(2);
    // …and not after it.
    t.advance(600_000);
    expect(await t.dir.check(mailbox, 'orders@acme.test')).toEqual({ ok: false, reason: 'not_an_alias' });
    expect(t.calls).toHaveLength(3);
  });

  it('asks the provider once for concurrent checks of one mailbox', async () => {
    const t = setup([primary, orders]);
    const verdicts = await Promise.all(Array.from({ length: 5 }, () => t.dir.check(mailbox, 'orders@acme.test')));
    expect(verdicts.every((v) => v.ok)).toBe(true);
    expect(t.calls).toHaveLength(1);
  });

  it('keeps at most maxEntries mailboxes', async () => {
    const t = setup([primary, orders], { maxEntries: 2 });
    for (const id of ['mbx_a', 'mbx_b', 'mbx_c']) await t.dir.check({ id, provider: 'google' }, 'orders@acme.test');
    expect(t.calls).toHaveLength(3);
    await t.dir.check({ id: 'mbx_c', provider: 'google' }, 'orders@acme.test');
    expect(t.calls).toHaveLength(3);
    await t.dir.check({ id: 'mbx_a', provider: 'google' }, 'orders@acme.test'); // evicted: fetched again
    expect(t.calls).toHaveLength(4);
  });

  it('a provider failure is SendAsUnavailableError; the log names kind and status, never an address', async () => {
    const t = setup([primary, orders]);
    t.fail(new ProviderError('google', 'transient', 'Gmail settings.sendAs.list: 503', { status: 503 }));
    await expect(t.dir.check(mailbox, 'orders@acme.test')).rejects.toBeInstanceOf(SendAsUnavailableError);
    expect(t.warnings).toEqual([{ mailboxId: 'mbx_1', provider: 'google', kind: 'transient', status: 503 }]);
    expect(JSON.stringify(t.warnings)).not.toContain('acme.test');
    // Nothing cached from a failure: the next check asks again.
    t.fail(undefined);
    expect(await t.dir.check(mailbox, 'orders@acme.test')).toMatchObject({ ok: true });
  });

  it('a provider without a send-as list allows no other address', async () => {
    const dir = new SendAsDirectory({ providers: async () => ({}) as MailProvider, clock: () => new Date(), logger: { warn: () => undefined } });
    expect(await dir.check({ id: 'mbx_2', provider: 'microsoft' }, 'orders@contoso.test')).toEqual({ ok: false, reason: 'not_an_alias' });
  });
  it('remembers a From the provider refused at a send for ttlMs, per mailbox, without asking the provider; forget clears it', async () => {
    const t = setup([primary, orders], { ttlMs: 60_000 });
    await t.dir.rememberDenied('mbx_1', 'Support@Contoso.test');
    expect(await t.dir.deniedRecently('mbx_1', 'support@contoso.test')).toBe(true);
    expect(await t.dir.deniedRecently('mbx_2', 'support@contoso.test')).toBe(false);
    // A remembered refusal answers check() too, even for an address the list has.
    await t.dir.rememberDenied('mbx_1', 'orders@acme.test');
    expect(await t.dir.check(mailbox, 'orders@acme.test')).toEqual({ ok: false, reason: 'send_as_denied' });
    expect(t.calls).toHaveLength(0);
    t.advance(60_000);
    expect(await t.dir.deniedRecently('mbx_1', 'support@contoso.test')).toBe(false);
    expect(await t.dir.check(mailbox, 'orders@acme.test')).toMatchObject({ ok: true });
    await t.dir.rememberDenied('mbx_1', 'x@contoso.test');
    t.dir.forget('mbx_1');
    expect(await t.dir.deniedRecently('mbx_1', 'x@contoso.test')).toBe(false);
  });

  it('refuses an alias the provider rewrote to the primary address (alias_rewritten) for ttlMs, then asks again', async () => {
    const t = setup([primary, orders], { ttlMs: 60_000 });
    await t.dir.rememberRewritten('mbx_1', 'ORDERS@acme.test');
    expect(await t.dir.check(mailbox, 'orders@acme.test')).toEqual({ ok: false, reason: 'alias_rewritten' });
    // Not a Send As refusal: a delegated From of that address is not blocked by it.
    expect(await t.dir.deniedRecently('mbx_1', 'orders@acme.test')).toBe(false);
    t.advance(60_000);
    expect(await t.dir.check(mailbox, 'orders@acme.test')).toEqual({ ok: true, address: 'Orders@Acme.test', displayName: 'Acme Orders' });
  });

  it('shares refusals with other processes through the store: the address only as its index, read again after refusalCacheMs, expired rows ignored', async () => {
    let now = 1_000_000;
    const rows = new Map<string, { reason: 'send_as_denied' | 'alias_rewritten'; expiresAt: Date }>();
    const written: unknown[] = [];
    let reads = 0;
    const store = {
      async remember(r: { mailboxId: string; addressIndex: string; reason: 'send_as_denied' | 'alias_rewritten'; expiresAt: Date; now: Date }) {
        written.push(r);
        rows.set(`${r.mailboxId}/${r.addressIndex}`, { reason: r.reason, expiresAt: r.expiresAt });
      },
      async find(mailboxId: string, addressIndex: string, at: Date) {
        reads++;
        const row = rows.get(`${mailboxId}/${addressIndex}`);
        return row && row.expiresAt > at ? row : null;
      },
    };
    const refusals = { store, index: (a: string) => `idx(${a.toLowerCase()})` };
    const make = () => new SendAsDirectory({ providers: async () => ({ listSendAs: async () => [primary, orders] }) as unknown as MailProvider, clock: () => new Date(now), logger: { warn: () => undefined }, refusals }, { ttlMs: 60_000, refusalCacheMs: 5_000 });
    const worker = make();
    const api = make();

    expect(await api.deniedRecently('mbx_1', 'support@contoso.test')).toBe(false);
    expect(await api.check(mailbox, 'orders@acme.test')).toMatchObject({ ok: true });
    await worker.rememberDenied('mbx_1', 'Support@Contoso.test');
    await worker.rememberRewritten('mbx_1', 'orders@acme.test');
    expect(JSON.stringify(written)).not.toContain('Support@Contoso.test');
    expect(written).toEqual([
      { mailboxId: 'mbx_1', addressIndex: 'idx(support@contoso.test)', reason: 'send_as_denied', expiresAt: new Date(now + 60_000), now: new Date(now) },
      { mailboxId: 'mbx_1', addressIndex: 'idx(orders@acme.test)', reason: 'alias_rewritten', expiresAt: new Date(now + 60_000), now: new Date(now) },
    ]);
    // The API process answered "none" a moment ago and keeps that answer for refusalCacheMs…
    expect(await api.deniedRecently('mbx_1', 'support@contoso.test')).toBe(false);
    now += 5_000;
    // …then reads the store again and refuses, as the worker does at once.
    expect(await api.deniedRecently('mbx_1', 'support@contoso.test')).toBe(true);
    expect(await api.check(mailbox, 'orders@acme.test')).toEqual({ ok: false, reason: 'alias_rewritten' });
    expect(await worker.check(mailbox, 'orders@acme.test')).toEqual({ ok: false, reason: 'alias_rewritten' });
    const before = reads;
    expect(await api.deniedRecently('mbx_1', 'support@contoso.test')).toBe(true);
    expect(reads).toBe(before);
    // Past expiresAt the cached refusal and the row no longer count.
    now += 55_000;
    expect(await api.deniedRecently('mbx_1', 'support@contoso.test')).toBe(false);
    expect(await api.check(mailbox, 'orders@acme.test')).toMatchObject({ ok: true });
  });
});
