import { connectModule } from './connect.module.js';
import type { Core } from './core.js';
import { lifecycleModule } from './lifecycle.module.js';
import { messagesModule } from './messages.module.js';
import type { ServiceModule } from './module.js';
import { opsViewsModule } from './ops-views.module.js';
import { scanModule } from './scan.module.js';
import { sendModule } from './send.module.js';
import { syncModule } from './sync.module.js';
import { tenancyModule } from './tenancy.module.js';
import { webhooksModule } from './webhooks.module.js';

/**
 * Every room's module, in start order. Add a room here (one line) when it has routes, jobs or
 * ops commands.
 */
export async function createModules(core: Core): Promise<ServiceModule[]> {
  return [tenancyModule(core), await lifecycleModule(core), webhooksModule(core), messagesModule(core), await connectModule(core), await sendModule(core), await syncModule(core), scanModule(core), opsViewsModule(core)];
}
