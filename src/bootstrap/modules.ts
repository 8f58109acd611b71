import type { Core } from './core.js';
import { lifecycleModule } from './lifecycle.module.js';
import type { ServiceModule } from './module.js';
import { tenancyModule } from './tenancy.module.js';

/**
 * Every room's module, in start order. Add a room here (one line) when it has routes, jobs or
 * ops commands.
 */
export async function createModules(core: Core): Promise<ServiceModule[]> {
  return [tenancyModule(core), lifecycleModule(core)];
}
