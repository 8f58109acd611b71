import { purgeReceiptView } from '../lifecycle/purge-receipt.view.js';
import { opsViews } from '../ops/ops-views.js';
import { OpsOverviewRepository } from '../storage/ops-overview.repository.js';
import { PurgeRepository } from '../storage/purge.repository.js';
import type { Core } from './core.js';
import type { ServiceModule } from './module.js';

/** The read-only ops views (src/ops/ops-views.ts): the ops console's pages, `mailbox-connector ops <name>`. */
export function opsViewsModule(core: Core): ServiceModule {
  const purges = new PurgeRepository(core.prisma);
  return {
    name: 'ops-views',
    ops: opsViews({
      overview: new OpsOverviewRepository(core.prisma, core.db.sql),
      async receipt(purgeId) {
        const r = await purges.findReceipt(purgeId);
        return r ? { tenantId: r.tenantId, view: purgeReceiptView(r) } : null;
      },
      tenants: core.tenants,
      mailboxes: core.mailboxes,
      clock: core.clock,
    }),
  };
}
