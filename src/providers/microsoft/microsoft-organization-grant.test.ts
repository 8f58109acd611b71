import { describe, expect, it } from 'vitest';
import { composeGrantPort } from '../grant-port.js';
import { microsoftDelegatedKind } from './microsoft-grant.js';
import { microsoftOrganizationKind, ORGANIZATION_KIND, type MicrosoftOrganizationCredential } from './microsoft-organization-grant.js';

const DIRECTORY = '72f988bf-86f1-41af-91ab-2d7cd011db47';

type Acquire = (directoryId: string, opts?: { forceRefresh?: boolean }) => Promise<{ accessToken: string; expiresAt: Date; roles: string[]; directoryId: string }>;

function port(acquire: Acquire = async (directoryId) => ({ accessToken: `app-token-for-${directoryId}`, expiresAt: new Date(0), roles: [], directoryId })) {
  return composeGrantPort({ provider: 'microsoft', displayName: 'Microsoft', consent: undefined, kinds: [microsoftDelegatedKind({ client: undefined }), microsoftOrganizationKind({ client: { acquire } })] });
}

const credential: MicrosoftOrganizationCredential = { provider: 'microsoft', kind: ORGANIZATION_KIND, directoryId: DIRECTORY, installId: 'oin_1' };

describe('the organization credential kind', () => {
  it('is stored as {v, provider, kind, directoryId, installId} — no secret — and reads back the same', () => {
    const p = port();
    const bytes = p.encode(credential);
    expect(JSON.parse(bytes.toString('utf8'))).toEqual({ v: 1, provider: 'microsoft', kind: 'organization', directoryId: DIRECTORY, installId: 'oin_1' });
    expect(p.decode(bytes)).toEqual(credential);
  });

  it('fails closed on a directory that is not a tenant id, or on fields it does not know', () => {
    const p = port();
    expect(() => p.decode(Buffer.from(JSON.stringify({ v: 1, provider: 'microsoft', kind: 'organization', directoryId: 'common', installId: 'oin_1' })))).toThrow();
    expect(() => p.decode(Buffer.from(JSON.stringify({ v: 1, provider: 'microsoft', kind: 'organization', directoryId: DIRECTORY, installId: 'oin_1', clientSecret: 'x' })))).toThrow();
  });

  it('gets the directory’s app-only token (forceRefresh passed on) and revokes nothing per mailbox', async () => {
    const calls: Array<{ directoryId: string; forceRefresh: boolean | undefined }> = [];
    const p = port(async (directoryId, opts?: { forceRefresh?: boolean }) => {
      calls.push({ directoryId, forceRefresh: opts?.forceRefresh });
      return { accessToken: 'tok', expiresAt: new Date(1000), roles: ['Mail.Read'], directoryId };
    });
    const stored = { mailboxId: 'mbx_1', credential, accountId: null, reload: async () => credential, store: async () => undefined };
    expect(await p.accessToken(stored, { forceRefresh: true })).toEqual({ accessToken: 'tok', expiresAt: new Date(1000) });
    expect(calls).toEqual([{ directoryId: DIRECTORY, forceRefresh: true }]);
    expect(await p.revoke(credential)).toBe('not_supported');
  });
});
