import type { AuditService } from '../audit/audit.service.js';
import type { Logger } from '../observability/logger.js';
import type { RetentionRepository } from '../storage/retention.repository.js';

export interface RetentionTenantResult {
  tenantId: string;
  retentionDays: number;
  cutoff: string;
  messages: number;
  attachments: number;
  blobs: number;
  messageAddresses: number;
}

const DAY_MS = 86_400_000;

/**
 * Per-tenant retention (privacy policy: data kept only as long as needed): messages received
 * before `now - retentionDays` are deleted with their attachments and blobs, in batches.
 * Idempotent; the scheduled job and `retention run` call the same method.
 */
export class RetentionService {
  constructor(
    private readonly repo: RetentionRepository,
    private readonly audit: AuditService,
    private readonly logger: Logger,
    private readonly clock: () => Date,
  ) {}

  async run(opts: { actorType: 'ops' | 'system'; actorId: string; progress?: (line: string) => void }): Promise<RetentionTenantResult[]> {
    const results: RetentionTenantResult[] = [];
    for (const tenant of await this.repo.tenantsWithRetention()) {
      const cutoff = new Date(this.clock().getTime() - tenant.retentionDays * DAY_MS);
      const total = { messages: 0, attachments: 0, blobs: 0, messageAddresses: 0 };
      for (;;) {
        const batch = await this.repo.deleteBatchOlderThan(tenant.id, cutoff);
        if (batch.messages === 0) break;
        total.messages += batch.messages;
        total.attachments += batch.attachments;
        total.blobs += batch.blobs;
        total.messageAddresses += batch.messageAddresses;
        opts.progress?.(`${tenant.id}: deleted ${total.messages} messages so far`);
      }
      const result: RetentionTenantResult = { tenantId: tenant.id, retentionDays: tenant.retentionDays, cutoff: cutoff.toISOString(), ...total };
      results.push(result);
      await this.audit.record({
        tenantId: tenant.id,
        actorType: opts.actorType,
        actorId: opts.actorId,
        action: 'retention.applied',
        targetType: 'tenant',
        targetId: tenant.id,
        metadata: { retentionDays: tenant.retentionDays, cutoff: result.cutoff, ...total },
      });
      if (total.messages) this.logger.info({ tenantId: tenant.id, ...total }, 'retention applied');
    }
    return results;
  }
}
