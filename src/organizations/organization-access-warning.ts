import type { Logger } from '../observability/logger.js';
import type { DbTransaction } from '../storage/database.js';
import type { AccessCheck } from '../storage/organization-install.repository.js';
import type { AnnouncedAccess, OrganizationAccessNoticeRepository } from '../storage/organization-access-notice.repository.js';

/** The tenant-level webhook event of a change of an install's restriction verdict. */
export const ACCESS_CHANGED_EVENT = 'organization_install.access_changed' as const;

export interface AccessChangedData {
  installId: string;
  provider: string;
  /** The new verdict: `unrestricted` (the app can read a mailbox it was not given) or `restricted`. */
  accessCheck: AnnouncedAccess;
  /** `["app_access_unrestricted"]` when unrestricted, `[]` when restricted again. */
  warnings: string[];
}

/**
 * Tells the tenant, by webhook, when an install's restriction probe changes its mind: the app
 * became able to read mailboxes it was not given (`unrestricted`, warning
 * `app_access_unrestricted`), or it is restricted again after that. Once per change — the daily
 * probe repeating the same verdict sends nothing, a `failed` probe changes nothing, and a first
 * verdict of `restricted` is not news. The announced verdict is swapped compare-and-set in the
 * transaction that appends the event, so two probes at once announce a change once. No address
 * and no mailbox content in the event: the install id, provider, verdict and warnings.
 */
export class OrganizationAccessWarnings {
  constructor(
    private readonly d: {
      repo: OrganizationAccessNoticeRepository;
      /** Appends a tenant-level event (no mailbox) in the transaction; returns its id. */
      appendTenantEvent(tx: DbTransaction, input: { tenantId: string; type: typeof ACCESS_CHANGED_EVENT; data: AccessChangedData }): Promise<string>;
      eventsCommitted(ids: string[]): Promise<void>;
      logger: Logger;
    },
  ) {}

  /** After a probe: announces the verdict when it changed. Returns whether an event was appended. */
  async afterProbe(install: { id: string; tenantId: string; provider: string }, verdict: AccessCheck): Promise<boolean> {
    if (verdict !== 'unrestricted' && verdict !== 'restricted') return false;
    const announced = await this.d.repo.announced(install.id);
    if (announced === verdict || (announced === null && verdict === 'restricted')) return false;
    const eventId = await this.d.repo.transaction(async (tx) => {
      if (!(await this.d.repo.claim(tx, install.id, announced, verdict))) return undefined;
      const data: AccessChangedData = { installId: install.id, provider: install.provider, accessCheck: verdict, warnings: verdict === 'unrestricted' ? ['app_access_unrestricted'] : [] };
      return this.d.appendTenantEvent(tx, { tenantId: install.tenantId, type: ACCESS_CHANGED_EVENT, data });
    });
    if (eventId === undefined) return false;
    await this.d.eventsCommitted([eventId]).catch((err: unknown) => this.d.logger.warn({ err, installId: install.id }, 'organization install: dispatching the access_changed event failed (the sweep sends it)'));
    return true;
  }
}
