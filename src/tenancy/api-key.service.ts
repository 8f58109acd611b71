import { constantTimeEqual, generateToken, hashApiKey, isWellFormedToken } from '../crypto/secret-compare.js';
import { lastUsedDue, type ApiKeyRecord, type ApiKeyRepository } from '../storage/api-key.repository.js';

/**
 * API keys are long random strings with a recognisable prefix (`mbc_live_` for tenant keys,
 * `mbc_test_` for tenant keys issued by a sandbox process (SANDBOX=1), `mbc_admin_` for ops keys,
 * so secret scanners and humans can tell them apart) and a checksum,
 * shown once and stored only as a SHA-256 hash (see crypto/secret-compare.ts for why a fast hash
 * is right for 256-bit random keys).
 */
export const TENANT_KEY_PREFIX = 'mbc_live_';
export const ADMIN_KEY_PREFIX = 'mbc_admin_';
/** Tenant keys issued while SANDBOX=1: visibly not live, and refused by a production process. */
export const SANDBOX_KEY_PREFIX = 'mbc_test_';

/** True when the presented string is a sandbox key by its prefix (whether or not it was ever issued). */
export function isSandboxKey(presented: string): boolean {
  return presented.startsWith(SANDBOX_KEY_PREFIX);
}

export interface IssuedApiKey {
  record: ApiKeyRecord;
  /** The only time the full key exists outside the caller's hands. */
  key: string;
}

export type AuthenticatedKey = { keyId: string; scope: 'tenant'; tenantId: string } | { keyId: string; scope: 'admin' };

export class ApiKeyService {
  constructor(
    private readonly keys: ApiKeyRepository,
    private readonly clock: () => Date = () => new Date(),
    /** `sandbox`: this process runs against the stand-ins, so tenant keys it issues are `mbc_test_`. */
    private readonly options: { sandbox?: boolean } = {},
  ) {}

  async issue(input: { tenantId: string; name?: string } | { admin: true; name?: string }): Promise<IssuedApiKey> {
    const admin = 'admin' in input;
    const prefix = admin ? ADMIN_KEY_PREFIX : this.options.sandbox ? SANDBOX_KEY_PREFIX : TENANT_KEY_PREFIX;
    const key = generateToken(prefix, 32);
    const record = await this.keys.create({
      tenantId: admin ? null : input.tenantId,
      name: input.name ?? (admin ? 'ops key' : 'default'),
      scope: admin ? 'admin' : 'tenant',
      prefix: key.slice(0, prefix.length + 6),
      keyHash: hashApiKey(key),
    });
    return { record, key };
  }

  /** The principal for a presented key, or null (malformed, unknown or revoked — callers answer 401 alike). */
  async authenticate(presented: string): Promise<AuthenticatedKey | null> {
    if (![TENANT_KEY_PREFIX, SANDBOX_KEY_PREFIX, ADMIN_KEY_PREFIX].some((prefix) => isWellFormedToken(presented, prefix))) return null;
    const digest = hashApiKey(presented);
    const row = await this.keys.findActiveByHash(digest);
    if (!row) return null;
    // The lookup was by digest; compare again in constant time so the match itself leaks nothing.
    if (!constantTimeEqual(row.keyHash, digest)) return null;
    // The row read says whether `lastUsedAt` is due (touch keeps the same rule in its statement,
    // for requests racing on another process): most requests write nothing and send nothing.
    const now = this.clock();
    if (lastUsedDue(row.lastUsedAt, now)) void this.keys.touch(row.id, now).catch(() => undefined);
    if (row.scope === 'admin') return { keyId: row.id, scope: 'admin' };
    if (!row.tenantId) return null;
    return { keyId: row.id, scope: 'tenant', tenantId: row.tenantId };
  }

  async revoke(keyId: string, tenantId: string | null | 'any'): Promise<boolean> {
    return this.keys.revoke(keyId, tenantId);
  }

  list(tenantId: string): Promise<ApiKeyRecord[]> {
    return this.keys.listForTenant(tenantId);
  }
}
