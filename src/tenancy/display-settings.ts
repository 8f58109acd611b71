import type { TenantRepository } from '../storage/tenant.repository.js';

/** How a tenant wants message content presented (tenant settings, set with `tenants update`). */
export interface DisplaySettings {
  /** `safeHtml` is served with remote images turned off (tracking pixels). */
  blockRemoteImages: boolean;
}

export const DEFAULT_DISPLAY_SETTINGS: DisplaySettings = { blockRemoteImages: false };

/**
 * A tenant's display settings, read when content is read or delivered (not baked in at ingest,
 * so a change applies to mail already stored). `ttlMs` > 0 keeps each answer that long: the
 * webhook pump builds many bodies per batch and should not read the tenant row for each; a
 * change then applies to deliveries within that time.
 */
export class TenantDisplaySettings {
  readonly #cache = new Map<string, { at: number; value: DisplaySettings }>();

  constructor(
    private readonly tenants: Pick<TenantRepository, 'find'>,
    private readonly ttlMs = 0,
    private readonly now: () => number = Date.now,
  ) {}

  readonly for = async (tenantId: string): Promise<DisplaySettings> => {
    const hit = this.#cache.get(tenantId);
    if (hit && this.now() - hit.at < this.ttlMs) return hit.value;
    const tenant = await this.tenants.find(tenantId);
    const value: DisplaySettings = tenant ? { blockRemoteImages: tenant.blockRemoteImages } : DEFAULT_DISPLAY_SETTINGS;
    if (this.ttlMs > 0) {
      if (this.#cache.size > 10_000) this.#cache.clear();
      this.#cache.set(tenantId, { at: this.now(), value });
    }
    return value;
  };
}
