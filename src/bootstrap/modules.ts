import { scannerFromConfig, type ConfiguredScanner } from '../scan/scanner.factory.js';
import { buildMailAccess, connectModule, type MailAccess } from './connect.module.js';
import type { Core } from './core.js';
import { lifecycleModule } from './lifecycle.module.js';
import { messagesModule } from './messages.module.js';
import type { ServiceModule } from './module.js';
import { opsViewsModule } from './ops-views.module.js';
import { organizationsModule } from './organizations.module.js';
import { scanModule } from './scan.module.js';
import { sendModule } from './send.module.js';
import { syncModule } from './sync.module.js';
import { tenancyModule } from './tenancy.module.js';
import { webhooksModule } from './webhooks.module.js';

/**
 * What several rooms' modules share beyond the core, built once per process by whoever composes
 * the service (`serve`, `worker`, one-off ops commands, the demo, the test service) and passed to
 * the modules that use it — no module builds or caches its own.
 */
export interface ProcessServices {
  /** Provider settings (real or sandbox), the token vault, the provider modules and the connect service. */
  access: MailAccess;
  /** The clamd client from CLAMD_* that ingest, the rescan job and send share. */
  scanner: ConfiguredScanner;
}

export async function buildProcessServices(core: Core): Promise<ProcessServices> {
  return { access: await buildMailAccess(core), scanner: scannerFromConfig(core.config.clamd) };
}

/**
 * Every room's module, in start order. Add a room here (one line) when it has routes, jobs or
 * ops commands.
 */
export async function createModules(core: Core, services: ProcessServices): Promise<ServiceModule[]> {
  const lifecycle = lifecycleModule(core, services);
  return [
    tenancyModule(core),
    lifecycle,
    webhooksModule(core),
    messagesModule(core),
    connectModule(core, services),
    sendModule(core, services),
    syncModule(core, services),
    scanModule(core, services),
    opsViewsModule(core),
    organizationsModule(core, services, lifecycle),
  ];
}
