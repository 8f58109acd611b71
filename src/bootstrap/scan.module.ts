import { z } from 'zod';
import { AttachmentRescanService } from '../ingest/attachment-rescan.service.js';
import { defineOps } from '../ops/ops-command.js';
import type { ScanPolicy } from '../scan/scan-policy.js';
import { createScanner } from '../scan/scanner.factory.js';
import type { Scanner } from '../scan/scanner.port.js';
import { AttachmentScanRepository } from '../storage/attachment-scan.repository.js';
import { BlobStore } from '../storage/blob.store.js';
import type { Core } from './core.js';
import type { ServiceModule } from './module.js';

export interface ConfiguredScanner {
  scanner: Scanner;
  configured: boolean;
}

const scanners = new WeakMap<Core, ConfiguredScanner>();

/** The clamd client from CLAMD_* (one per process; a NullScanner when unset). */
export function configuredScanner(core: Core): ConfiguredScanner {
  let s = scanners.get(core);
  if (!s) {
    const clamd = core.config.clamd;
    s = createScanner({
      socket: clamd.kind === 'socket' ? clamd.socket : null,
      host: clamd.kind === 'tcp' ? clamd.host : null,
      port: clamd.kind === 'tcp' ? clamd.port : null,
      streamMaxBytes: clamd.kind === 'none' ? null : (clamd.streamMaxBytes ?? null),
      timeouts: { scanTimeoutMs: clamd.kind === 'none' ? undefined : clamd.timeoutMs },
    });
    scanners.set(core, s);
  }
  return s;
}

export interface ScanModuleOptions {
  scanner?: ConfiguredScanner;
  policy?: ScanPolicy;
}

/**
 * Attachment scanning outside ingest: the `scanner` readiness check and the `scan.attachments`
 * job (every minute) that scans what is still pending — stored while clamd was down or not yet
 * configured, or waiting for a retry after a scan error.
 */
export function scanModule(core: Core, opts: ScanModuleOptions = {}): ServiceModule {
  const scanner = opts.scanner ?? configuredScanner(core);
  const rescan = new AttachmentRescanService({
    attachments: new AttachmentScanRepository(core.prisma),
    blobs: new BlobStore(core.prisma, core.dataKeys),
    outbox: core.outbox,
    jobs: core.jobs,
    scanner,
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
    readiness: [
      {
        name: 'scanner',
        // Not required: without clamd attachments stay pending (never served), mail still flows.
        required: false,
        async check() {
          if (!scanner.configured) return { status: 'not_configured', detail: 'set CLAMD_SOCKET or CLAMD_HOST + CLAMD_PORT; attachments stay pending' };
          return (await scanner.scanner.ping()) ? { status: 'ok' } : { status: 'error', detail: 'clamd does not answer PING' };
        },
      },
    ],
    ops: [
      defineOps({
        name: 'attachments.rescan',
        summary: 'Scan pending attachments now (after clamd came back)',
        input: z.strictObject({}),
        async run() {
          return rescan.run();
        },
      }),
    ],
  };
}
