import { attachmentRescanOps } from '../ingest/attachment-rescan.ops.js';
import { AttachmentRescanService } from '../ingest/attachment-rescan.service.js';
import type { ScanPolicy } from '../scan/scan-policy.js';
import { scannerReadiness } from '../scan/scanner.factory.js';
import { AttachmentScanRepository } from '../storage/attachment-scan.repository.js';
import { BlobStore } from '../storage/blob.store.js';
import type { Core } from './core.js';
import type { ServiceModule } from './module.js';
import type { ProcessServices } from './modules.js';

export interface ScanModuleOptions {
  policy?: ScanPolicy;
}

/**
 * Attachment scanning outside ingest: the `scanner` readiness check, the `scan.attachments` job
 * (every minute) that scans what is still pending — stored while clamd was down or not yet
 * configured, or waiting for a retry after a scan error — and the `attachments.rescan` command.
 */
export function scanModule(core: Core, services: Pick<ProcessServices, 'scanner'>, opts: ScanModuleOptions = {}): ServiceModule {
  const rescan = new AttachmentRescanService({
    attachments: new AttachmentScanRepository(core.prisma),
    blobs: new BlobStore(core.prisma, core.dataKeys),
    outbox: core.outbox,
    jobs: core.jobs,
    scanner: services.scanner,
    ...(opts.policy ? { policy: opts.policy } : {}),
    clock: core.clock,
    logger: core.logger,
  });
  return {
    name: 'scan',
    jobs(queue) {
      queue.register('scan.attachments', (payload) => rescan.run(payload.attachmentIds), { concurrency: 1 });
    },
    schedules: [{ name: 'scan.attachments', cron: '* * * * *' }],
    readiness: [scannerReadiness(services.scanner)],
    ops: attachmentRescanOps(rescan),
  };
}
