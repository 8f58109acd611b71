import { z } from 'zod';
import { GrantNotConfiguredError, type CredentialKindPort, type GrantCredential } from '../grant-port.js';
import { ProviderError } from '../provider-error.js';
import type { ServiceAccountKey } from './google-delegated-access.js';
import type { GoogleEndpoints } from './google-endpoints.js';
import { GoogleOrganizationAccess } from './google-organization-access.js';

/** The credential kind of a mailbox added to a Google Workspace organization install. */
export const GOOGLE_ORGANIZATION_KIND = 'organization';

/**
 * A Gmail mailbox added to an organization install: which install's service-account key signs
 * its tokens, and the address they are for (`sub`). NOT a copy of the key: the key is stored once,
 * encrypted under the tenant data key on the install (organization_installs.credentialEnc), and
 * an uninstall deletes it. This document is encrypted under the mailbox DEK like every credential.
 */
export interface GoogleOrganizationCredential extends GrantCredential {
  readonly provider: 'google';
  readonly kind: typeof GOOGLE_ORGANIZATION_KIND;
  readonly installId: string;
  readonly address: string;
}

const fields = z.strictObject({ installId: z.string().min(1).max(64), address: z.email().max(320) });

/** The install's key, decrypted; undefined once the install is gone (uninstalled, key deleted). */
export type InstallKeyLookup = (installId: string) => Promise<ServiceAccountKey | undefined>;

/** A mailbox whose install no longer holds a key (uninstalled): `auth_revoked`, reason `install_removed`. */
export const INSTALL_REMOVED = 'install_removed';

/**
 * `organization` (Google): each token is a fresh JWT grant with `sub` = the mailbox, signed with
 * the install's key, for exactly gmail.readonly + gmail.send. There is no per-mailbox grant to
 * revoke: removing a mailbox stops its watch and purges it; the delegation itself is the
 * Workspace administrator's to remove (docs/organization-installs.md).
 */
export function googleOrganizationKind(deps: { keys: InstallKeyLookup | undefined; endpoints: GoogleEndpoints | undefined; cacheMs?: number }): CredentialKindPort<GoogleOrganizationCredential> {
  // One JWT client set per install and key (the key is re-read at most every cacheMs, so an
  // uninstall or a key rotation takes effect within that time).
  const accesses = new Map<string, { keyId: string; access: GoogleOrganizationAccess; readAt: number }>();
  const cacheMs = deps.cacheMs ?? 60_000;
  async function accessFor(installId: string, fresh = false): Promise<GoogleOrganizationAccess> {
    const { keys, endpoints } = deps;
    if (!keys || !endpoints) throw new GrantNotConfiguredError('google', 'Google organization installs are not configured in this run');
    const cached = accesses.get(installId);
    if (cached && !fresh && Date.now() - cached.readAt < cacheMs) return cached.access;
    const key = await keys(installId);
    if (!key) {
      accesses.delete(installId);
      throw new ProviderError('google', 'auth_revoked', 'the organization install of this mailbox holds no service-account key any more (uninstalled)', { reason: INSTALL_REMOVED });
    }
    const access = cached && cached.keyId === key.private_key_id ? cached.access : new GoogleOrganizationAccess(key, endpoints);
    accesses.set(installId, { keyId: key.private_key_id, access, readAt: Date.now() });
    if (accesses.size > 1000) accesses.delete(accesses.keys().next().value as string);
    return access;
  }
  return {
    kind: GOOGLE_ORGANIZATION_KIND,
    parse(raw, common) {
      const f = fields.parse(raw);
      return { provider: 'google', kind: GOOGLE_ORGANIZATION_KIND, installId: f.installId, address: f.address.toLowerCase(), ...common };
    },
    serialize: (c) => ({ installId: c.installId, address: c.address }),
    async accessToken(stored) {
      const c = stored.credential;
      const access = await accessFor(c.installId);
      try {
        // Always a new assertion: the token vault caches the access token itself and asks only
        // when it needs a new one, so the JWT client's own cache could only hand back a token the
        // vault already had (one Google may have revoked since: a 401 must reach the token endpoint).
        return await access.token(c.address, undefined, { forceRefresh: true });
      } catch (err) {
        // A refused key may be one rotated away in another process (the cache above is up to a
        // minute old): read the stored key again and retry once if it is another key.
        if (!(err instanceof ProviderError) || err.reason !== 'key_invalid') throw err;
        const current = await accessFor(c.installId, true);
        if (current.keyId === access.keyId) throw err;
        return current.token(c.address, undefined, { forceRefresh: true });
      }
    },
    revoke: () => Promise.resolve('not_supported'),
  };
}

/** True for a stored Google credential document of kind `organization` (teardown reads it so). */
export function isGoogleOrganizationDocument(stored: string): boolean {
  try {
    const d = JSON.parse(stored) as { provider?: unknown; kind?: unknown };
    return d.provider === 'google' && d.kind === GOOGLE_ORGANIZATION_KIND;
  } catch {
    return false;
  }
}
