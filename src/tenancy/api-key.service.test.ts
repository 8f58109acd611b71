import { describe, expect, it } from 'vitest';
import { hashApiKey } from '../crypto/secret-compare.js';
import { LAST_USED_RESOLUTION_MS, lastUsedDue, type ApiKeyRecord, type ApiKeyRepository } from '../storage/api-key.repository.js';
import { ApiKeyService } from './api-key.service.js';

/** The repository's two calls authentication makes, over one stored key (touch applies its own rule, as the SQL does). */
function keyStore() {
  const rows: Array<ApiKeyRecord & { keyHash: string }> = [];
  const touches: Date[] = [];
  const repo = {
    async create(input: { tenantId: string | null; name: string; scope: 'tenant' | 'admin'; prefix: string; keyHash: string }) {
      const row = { id: `key_${rows.length + 1}`, createdAt: new Date(0), lastUsedAt: null, revokedAt: null, ...input };
      rows.push(row);
      return row;
    },
    async findActiveByHash(keyHash: string) {
      const row = rows.find((r) => r.keyHash === keyHash && !r.revokedAt);
      return row ? { ...row } : null;
    },
    async touch(id: string, now: Date) {
      touches.push(now);
      const row = rows.find((r) => r.id === id)!;
      if (lastUsedDue(row.lastUsedAt, now)) row.lastUsedAt = now;
    },
  };
  return { repo: repo as unknown as ApiKeyRepository, rows, touches };
}

describe('ApiKeyService.authenticate: lastUsedAt', () => {
  it('writes lastUsedAt at most once per LAST_USED_RESOLUTION_MS per key, and sends nothing for the requests between', async () => {
    let now = Date.parse('2026-12-06T10:00:00Z');
    const store = keyStore();
    const keys = new ApiKeyService(store.repo, () => new Date(now));
    const { key } = await keys.issue({ tenantId: 'ten_1' });
    expect(store.rows[0]!.keyHash).toBe(hashApiKey(key));

    for (let i = 0; i < 50; i++) {
      expect(await keys.authenticate(key)).toEqual({ keyId: 'key_1', scope: 'tenant', tenantId: 'ten_1' });
      now += 1_000;
    }
    // The first request wrote it; the next 49, within the minute, did not ask the database to.
    expect(store.touches).toHaveLength(1);
    expect(store.rows[0]!.lastUsedAt?.toISOString()).toBe('2026-12-06T10:00:00.000Z');

    now = Date.parse('2026-12-06T10:01:00Z') + LAST_USED_RESOLUTION_MS;
    await keys.authenticate(key);
    expect(store.touches).toHaveLength(2);
    expect(store.rows[0]!.lastUsedAt?.getTime()).toBe(now);
    // A key that is not known is not touched.
    expect(await keys.authenticate(`${key.slice(0, -4)}AAAA`)).toBeNull();
    expect(store.touches).toHaveLength(2);
  });
});
