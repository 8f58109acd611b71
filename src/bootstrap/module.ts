import type { ReadinessCheck } from '../http/app.js';
import type { RouteRegistry } from '../http/route-registry.js';
import type { JobName } from '../jobs/job-map.js';
import type { JobQueue } from '../jobs/job-queue.js';
import type { OpsCommand } from '../ops/ops-command.js';

/** What a room contributes to the running service. Wired by hand in service.ts. */
export interface ServiceModule {
  name: string;
  routes?(registry: RouteRegistry): void;
  /** Register job handlers (workers run them). */
  jobs?(queue: JobQueue): void;
  schedules?: Array<{ name: JobName; cron: string }>;
  readiness?: ReadinessCheck[];
  ops?: OpsCommand[];
  /** Called on shutdown after HTTP stops accepting and workers stopped. */
  stop?(): Promise<void>;
}
