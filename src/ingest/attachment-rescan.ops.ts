import { z } from 'zod';
import { defineOps, type OpsCommand } from '../ops/ops-command.js';
import type { AttachmentRescanService } from './attachment-rescan.service.js';

/** `attachments.rescan`: scan the pending attachments now (after clamd came back) instead of at the next minute. */
export function attachmentRescanOps(rescan: Pick<AttachmentRescanService, 'run'>): OpsCommand[] {
  return [
    defineOps({
      name: 'attachments.rescan',
      summary: 'Scan pending attachments now (after clamd came back)',
      input: z.strictObject({}),
      run: () => rescan.run(),
    }),
  ];
}
