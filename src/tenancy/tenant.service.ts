import type { DataKeyService } from '../crypto/data-key.service.js';
import type { TenantRecord, TenantRepository } from '../storage/tenant.repository.js';
import type { TenantBranding } from './tenant-branding.js';

/**
 * Creates tenants together with their data key. Creating the key up front matters: later writers
 * (the outbox seals event data with the tenant key) run inside their own transactions, and
 * minting a key there would need a second connection — which the embedded database, a single
 * connection, cannot give while the transaction holds it.
 */
export class TenantService {
  constructor(
    private readonly tenants: TenantRepository,
    private readonly dataKeys: Pick<DataKeyService, 'getOrCreate'>,
  ) {}

  async create(input: { name: string; allowedReturnOrigins?: string[]; retentionDays?: number | null; blockRemoteImages?: boolean } & Partial<TenantBranding>): Promise<TenantRecord> {
    const tenant = await this.tenants.create(input);
    await this.dataKeys.getOrCreate({ type: 'tenant', id: tenant.id });
    return tenant;
  }
}
