import { describe, expect, it } from 'vitest';
import { googleGrantPort } from './google/google-grant.js';
import { GOOGLE_ENDPOINTS } from './google/google-endpoints.js';
import { composeGrantPort, DELEGATED, type CredentialKindPort, type GrantCredential, type StoredGrantAccess } from './grant-port.js';
import { microsoftGrantPort } from './microsoft/microsoft-grant.js';

const bytes = (doc: unknown) => Buffer.from(JSON.stringify(doc), 'utf8');

interface AppCredential extends GrantCredential {
  provider: 'microsoft';
  kind: 'app';
  userId: string;
}

/** A second kind, as an organization install adds one: the port dispatches on `kind`. */
const appKind: CredentialKindPort<AppCredential> = {
  kind: 'app',
  parse: (f, common) => {
    if (typeof f.userId !== 'string' || Object.keys(f).length !== 1) throw new Error('bad app credential');
    return { provider: 'microsoft', kind: 'app', userId: f.userId, ...common };
  },
  serialize: (c) => ({ userId: c.userId }),
  accessToken: (s) => Promise.resolve({ accessToken: `app-token-for-${s.credential.userId}`, expiresAt: new Date(0) }),
  revoke: () => Promise.resolve('not_supported'),
};

function access(credential: GrantCredential): StoredGrantAccess {
  return { mailboxId: 'mbx_1', credential, accountId: null, reload: () => Promise.resolve(credential), store: () => Promise.resolve() };
}

describe('GrantPort credential encoding', () => {
  const google = googleGrantPort({ client: undefined, endpoints: GOOGLE_ENDPOINTS });

  it('reads rows written before credential kinds existed, and writes delegated credentials in that same shape', () => {
    const legacy = { v: 1, provider: 'google', refreshToken: '1//rt', sandbox: true };
    const decoded = google.decode(bytes(legacy));
    expect(decoded).toEqual({ provider: 'google', kind: DELEGATED, refreshToken: '1//rt', sandbox: true });
    expect(JSON.parse(google.encode(decoded).toString('utf8'))).toEqual(legacy);
    const ms = microsoftGrantPort({ client: undefined });
    expect(ms.decode(bytes({ v: 1, provider: 'microsoft', msalCache: '{"Account":{}}' }))).toEqual({ provider: 'microsoft', kind: DELEGATED, msalCache: '{"Account":{}}' });
  });

  it.each([
    ['an unknown version', { v: 2, provider: 'google', refreshToken: 'x' }],
    ['another provider', { v: 1, provider: 'microsoft', msalCache: '{}' }],
    ['an unknown field', { v: 1, provider: 'google', refreshToken: 'x', extra: 1 }],
    ['an unknown kind', { v: 1, provider: 'google', kind: 'service_account', subject: 'a@b' }],
    ['an explicit delegated kind', { v: 1, provider: 'google', kind: 'delegated', refreshToken: 'x' }],
    ['a bad sandbox marker', { v: 1, provider: 'google', refreshToken: 'x', sandbox: false }],
    ['an empty token', { v: 1, provider: 'google', refreshToken: '' }],
  ])('fails closed on %s', (_what, doc) => {
    expect(() => google.decode(bytes(doc))).toThrow();
  });

  it('refuses to encode a credential of another provider or kind', () => {
    expect(() => google.encode({ provider: 'microsoft', kind: DELEGATED, msalCache: '{}' } as GrantCredential)).toThrow(/microsoft credential/);
    expect(() => google.encode({ provider: 'google', kind: 'service_account' })).toThrow(/not known/);
  });

  it('holds more than one kind and dispatches on the stored kind', async () => {
    const port = composeGrantPort({ provider: 'microsoft', displayName: 'Microsoft', consent: undefined, kinds: [appKind] });
    expect(port.kinds).toEqual(['app']);
    const app: AppCredential = { provider: 'microsoft', kind: 'app', userId: 'u-1' };
    const stored = port.encode(app);
    expect(JSON.parse(stored.toString('utf8'))).toEqual({ v: 1, provider: 'microsoft', kind: 'app', userId: 'u-1' });
    const back = port.decode(stored);
    expect(back).toEqual(app);
    await expect(port.accessToken(access(back), { forceRefresh: false })).resolves.toMatchObject({ accessToken: 'app-token-for-u-1' });
    await expect(port.revoke(back)).resolves.toBe('not_supported');
  });

  it('a delegated credential without a configured client says so instead of calling the provider', async () => {
    await expect(google.accessToken(access({ provider: 'google', kind: DELEGATED, refreshToken: 'x' } as GrantCredential), { forceRefresh: false })).rejects.toMatchObject({ name: 'GrantNotConfiguredError', provider: 'google' });
    expect(google.consent).toBeUndefined();
  });
});
