import { randomBytes } from 'node:crypto';
import pino from 'pino';
import { beforeEach, describe, expect, it } from 'vitest';
import { DataKeyService } from '../crypto/data-key.service.js';
import { InMemoryDataKeyStore } from '../crypto/in-memory-data-key.store.js';
import { parseKeyring } from '../crypto/keyring.js';
import { ProviderError } from '../providers/provider-error.js';
import type { Prisma } from '../storage/database.js';
import { googleGrantPort, type GoogleDelegatedCredential } from '../providers/google/google-grant.js';
import { GOOGLE_ENDPOINTS } from '../providers/google/google-endpoints.js';
import type { GoogleOAuthClient } from '../providers/google/google-oauth.client.js';
import { microsoftGrantPort } from '../providers/microsoft/microsoft-grant.js';
import type { MailboxEventSink } from './mailbox-event.port.js';
import type { MailboxGrantRepository, StoredGrant } from '../storage/mailbox-grant.repository.js';
import { TokenVault } from './token-vault.service.js';

/** Strict in-memory stand-in for the grant columns of `mailboxes`. */
class FakeGrants {
  rows = new Map<string, StoredGrant & { statusReason: string | null }>();
  async findGrant(id: string) {
    const r = this.rows.get(id);
    return r ? { ...r } : null;
  }
  async updateCredential(id: string, credentialEnc: Uint8Array) {
    const r = this.rows.get(id);
    if (r && (r.status === 'active' || r.status === 'disconnecting')) r.credentialEnc = credentialEnc;
  }
  async clearCredential(id: string) {
    const r = this.rows.get(id);
    if (r) r.credentialEnc = r.accountIdEnc = null;
  }
  async markReauthRequired(_tx: unknown, id: string, reason: string) {
    const r = this.rows.get(id);
    if (!r || r.status !== 'active') return false;
    r.status = 'reauth_required';
    r.statusReason = reason;
    return true;
  }
  transaction<T>(fn: (tx: Prisma.TransactionClient) => Promise<T>): Promise<T> {
    return fn({} as Prisma.TransactionClient);
  }
}

class FakeGoogle {
  calls = 0;
  script: Array<'ok' | 'transient' | 'revoked' | 'rotate'> = [];
  seen: string[] = [];
  gate: Promise<void> = Promise.resolve();
  async refresh(refreshToken: string) {
    this.calls++;
    this.seen.push(refreshToken);
    await this.gate;
    const step = this.script.shift() ?? 'ok';
    if (step === 'transient') throw new ProviderError('google', 'transient', 'server error', { status: 503 });
    if (step === 'revoked') throw new ProviderError('google', 'auth_revoked', 'grant is no longer valid', { reason: 'invalid_grant' });
    return { accessToken: `at-${this.calls}-${refreshToken.slice(0, 3)}`, expiresAt: new Date(Date.now() + 3_600_000), refreshToken: step === 'rotate' ? `rotated-${this.calls}` : undefined };
  }
}

/** The real grant ports (credential encoding, rotation) around the fake Google token endpoint. */
function grantPorts() {
  return { google: googleGrantPort({ client: google as unknown as GoogleOAuthClient, endpoints: GOOGLE_ENDPOINTS }), microsoft: microsoftGrantPort({ client: undefined }) };
}

const googleCredential = (refreshToken: string): GoogleDelegatedCredential => ({ provider: 'google', kind: 'delegated', refreshToken });

let grants: FakeGrants;
let google: FakeGoogle;
let events: string[];
let vault: TokenVault;
let dataKeys: DataKeyService;

beforeEach(async () => {
  grants = new FakeGrants();
  google = new FakeGoogle();
  events = [];
  dataKeys = new DataKeyService(parseKeyring(`1:${randomBytes(32).toString('base64')}`), new InMemoryDataKeyStore());
  const sink: MailboxEventSink = {
    append: async (_tx, input) => {
      events.push(`${input.mailboxId}:${input.type}`);
      return `evt_${events.length}`;
    },
    committed: async () => undefined,
  };
  vault = new TokenVault({
    grants: grants as unknown as MailboxGrantRepository,
    dataKeys,
    events: sink,
    audit: { record: async () => ({}) as never },
    logger: pino({ level: 'silent' }),
    grantPorts: grantPorts(),
    baseDelayMs: 1,
  });
  const sealed = await vault.sealCredential('mbx_1', googleCredential('rt-secret-1'));
  grants.rows.set('mbx_1', { id: 'mbx_1', tenantId: 'ten_1', provider: 'google', status: 'active', statusReason: null, credentialEnc: sealed.credentialEnc, accountIdEnc: null });
});

describe('TokenVault', () => {
  it('shares one refresh between concurrent callers and keeps the token in memory', async () => {
    let open!: () => void;
    google.gate = new Promise((r) => (open = r));
    const pending = Array.from({ length: 10 }, () => vault.accessToken('mbx_1'));
    open();
    const tokens = await Promise.all(pending);
    expect(new Set(tokens)).toEqual(new Set(['at-1-rt-']));
    await vault.accessToken('mbx_1');
    expect(google.calls).toBe(1);
  });

  it('drops expired access tokens of idle mailboxes from memory on a later refresh', async () => {
    let now = Date.now();
    const timed = new TokenVault({
      grants: grants as unknown as MailboxGrantRepository,
      dataKeys,
      events: { append: async () => 'evt', committed: async () => undefined },
      audit: { record: async () => ({}) as never },
      logger: pino({ level: 'silent' }),
      grantPorts: grantPorts(),
      clock: () => new Date(now),
    });
    for (let i = 0; i < 100; i++) timed.prime(`mbx_idle_${i}`, `at-idle-${i}`, new Date(now + 10 * 60_000));
    expect(timed.cachedTokens).toBe(100);
    // Ten minutes later those tokens are past their renewal point: useless, and gone on the next refresh.
    now += 10 * 60_000;
    expect(await timed.accessToken('mbx_1')).toBe('at-1-rt-');
    expect(timed.cachedTokens).toBe(1);
  });

  it('drops access tokens not handed out for 15 minutes, keeps the ones in use', async () => {
    let now = Date.now();
    const timed = new TokenVault({
      grants: grants as unknown as MailboxGrantRepository,
      dataKeys,
      events: { append: async () => 'evt', committed: async () => undefined },
      audit: { record: async () => ({}) as never },
      logger: pino({ level: 'silent' }),
      grantPorts: grantPorts(),
      clock: () => new Date(now),
    });
    // Valid for an hour, primed by connects.
    for (let i = 0; i < 50; i++) timed.prime(`mbx_idle_${i}`, `at-idle-${i}`, new Date(now + 3_600_000));
    timed.prime('mbx_busy', 'at-busy', new Date(now + 3_600_000));
    for (let minute = 1; minute <= 16; minute++) {
      now += 60_000;
      expect(await timed.accessToken('mbx_busy')).toBe('at-busy');
    }
    // A refresh (of another mailbox) prunes: the 50 unused tokens go, the busy one and the new one stay.
    expect(await timed.accessToken('mbx_1')).toBe('at-1-rt-');
    expect(timed.cachedTokens).toBe(2);
    expect(await timed.accessToken('mbx_busy')).toBe('at-busy');
    expect(google.calls).toBe(1);
  });

  it('remembers which grants it sealed only until stopTrackingSeals', async () => {
    expect(vault.sealedInThisProcess('mbx_1')).toBe(true);
    vault.stopTrackingSeals();
    expect(vault.sealedInThisProcess('mbx_1')).toBe(false);
    await vault.sealCredential('mbx_2', googleCredential('rt-secret-2'));
    expect(vault.sealedInThisProcess('mbx_2')).toBe(false);
  });

  it('retries transient failures without touching the status', async () => {
    google.script = ['transient', 'transient', 'ok'];
    await expect(vault.accessToken('mbx_1')).resolves.toBe('at-3-rt-');
    expect(grants.rows.get('mbx_1')!.status).toBe('active');
    google.script = ['transient', 'transient', 'transient', 'transient'];
    vault.invalidate('mbx_1');
    await expect(vault.accessToken('mbx_1')).rejects.toMatchObject({ kind: 'transient' });
    expect(grants.rows.get('mbx_1')!.status).toBe('active');
    expect(events).toEqual([]);
  });

  it('a dead grant flips the status once, emits one event, and later calls fail without a provider call', async () => {
    google.script = ['revoked', 'revoked', 'revoked'];
    const results = await Promise.allSettled([vault.accessToken('mbx_1'), vault.accessToken('mbx_1')]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    expect(events).toEqual(['mbx_1:mailbox.reauth_required']);
    expect(grants.rows.get('mbx_1')!.statusReason).toContain('invalid_grant');
    const calls = google.calls;
    await expect(vault.accessToken('mbx_1')).rejects.toMatchObject({ kind: 'auth_revoked', reason: 'reauth_required' });
    expect(google.calls).toBe(calls);
    expect(events).toHaveLength(1);
  });

  it('forget() while a refresh is in flight does not put the token back in memory', async () => {
    let open!: () => void;
    google.gate = new Promise((r) => (open = r));
    const inflight = vault.accessToken('mbx_1');
    await vault.forget('mbx_1');
    open();
    await inflight;
    await expect(vault.accessToken('mbx_1')).rejects.toMatchObject({ kind: 'auth_revoked', reason: 'no_credential' });
  });

  it('stores a rotated refresh token (encrypted) and refreshes with it next time', async () => {
    google.script = ['rotate'];
    await vault.accessToken('mbx_1');
    const row = grants.rows.get('mbx_1')!;
    expect(Buffer.from(row.credentialEnc!).toString('latin1')).not.toContain('rotated-1');
    expect(await vault.credential('mbx_1')).toMatchObject({ credential: { refreshToken: 'rotated-1' } });
    vault.invalidate('mbx_1');
    await vault.accessToken('mbx_1');
    expect(google.seen).toEqual(['rt-secret-1', 'rotated-1']);
  });

  it('stores the credential encrypted and returns it only through credential()', async () => {
    const row = grants.rows.get('mbx_1')!;
    expect(Buffer.from(row.credentialEnc!).toString('latin1')).not.toContain('rt-secret-1');
    expect(await vault.credential('mbx_1')).toEqual({ credential: { provider: 'google', kind: 'delegated', refreshToken: 'rt-secret-1' }, accountId: null });
  });
});
