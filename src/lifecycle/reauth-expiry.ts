import type { PurgeRepository } from '../storage/purge.repository.js';
import type { PurgeService } from './purge.service.js';

/** A purge left `running` this long without progress is re-enqueued by the sweep. */
export const STALE_PURGE_MS = 10 * 60_000;

/**
 * The `lifecycle.reauth-expiry` job: purges mailboxes left in `reauth_required` longer than the
 * grace period (the customer never reconnected), then re-enqueues purges that stalled.
 */
export async function expireReauthRequired(
  deps: { purges: Pick<PurgeService, 'start' | 'resumeStale'>; repo: Pick<PurgeRepository, 'listReauthExpired'>; clock: () => Date },
  graceDays: number,
): Promise<{ status: 'done'; detail: Record<string, unknown> }> {
  const expired = await deps.repo.listReauthExpired(new Date(deps.clock().getTime() - graceDays * 86_400_000), 100);
  for (const m of expired) {
    await deps.purges.start({
      tenantId: m.tenantId,
      mailboxId: m.id,
      trigger: 'provider_revoked',
      reason: `reauth_required for more than ${graceDays} days`,
      actor: { actorType: 'system', actorId: 'lifecycle' },
    });
  }
  const resumed = await deps.purges.resumeStale(STALE_PURGE_MS);
  return { status: 'done', detail: { expired: expired.length, ...resumed } };
}
