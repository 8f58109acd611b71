// Builds the real ingest pipeline (IngestService + BlobStore + OutboxService + clamd or no
// scanner) on a test service's Core, for the scan, ingest, corpus and dump tests.
import { Readable } from 'node:stream';
import type { Core } from '../../src/bootstrap/core.js';
import { MAILBOX_ADDRESS_AAD } from '../../src/mailboxes/message-content.js';
import { OutboxService } from '../../src/events/outbox.service.js';
import { AttachmentRescanService } from '../../src/ingest/attachment-rescan.service.js';
import { IngestService, type IngestResult } from '../../src/ingest/ingest.service.js';
import type { MimeParseFn } from '../../src/ingest/parse-pool.js';
import type { ScanPolicy } from '../../src/scan/scan-policy.js';
import { NullScanner } from '../../src/scan/null.scanner.js';
import type { Scanner } from '../../src/scan/scanner.port.js';
import { AttachmentScanRepository } from '../../src/storage/attachment-scan.repository.js';
import { BlobStore } from '../../src/storage/blob.store.js';
import { newId } from '../../src/storage/ids.js';
import { MessageWriteRepository } from '../../src/storage/message-write.repository.js';
import { OutboxRepository } from '../../src/storage/outbox.repository.js';

// The EICAR test file (provider-facts §7.2), from hex so this file is not itself flagged.
export const EICAR = Buffer.from(
  '58354f2150254041505b345c505a58353428505e2937434329377d2445494341522d5354414e444152442d414e544956495255532d544553542d46494c452124482b482a',
  'hex',
);

export interface Harness {
  ingest: IngestService;
  rescan: (clock?: () => Date) => AttachmentRescanService;
  blobs: BlobStore;
  run(mailbox: { id: string; tenantId: string }, providerMessageId: string, raw: Buffer, opts?: { threadId?: string; receivedAt?: Date }): Promise<IngestResult>;
}

export function ingestHarness(
  core: Core,
  opts: { scanner?: Scanner | null; policy?: ScanPolicy; maxMessageBytes?: number; parse?: MimeParseFn; blobs?: BlobStore } = {},
): Harness {
  const scanner = opts.scanner ? { scanner: opts.scanner, configured: true } : { scanner: new NullScanner(), configured: false };
  const blobs = opts.blobs ?? new BlobStore(core.prisma, core.dataKeys);
  const outbox = new OutboxService({ repo: new OutboxRepository(core.prisma), dataKeys: core.dataKeys, clock: core.clock });
  const ingest = new IngestService({
    messages: new MessageWriteRepository(core.prisma, core.db),
    blobs,
    dataKeys: core.dataKeys,
    blindIndex: core.blindIndex,
    outbox,
    jobs: null,
    scanner,
    maxMessageBytes: opts.maxMessageBytes ?? core.config.sync.maxMessageBytes,
    ...(opts.policy ? { scanPolicy: opts.policy } : {}),
    ...(opts.parse ? { parse: opts.parse } : {}),
    clock: core.clock,
    logger: core.logger,
  });
  return {
    ingest,
    blobs,
    rescan: (clock = core.clock) =>
      new AttachmentRescanService({ attachments: new AttachmentScanRepository(core.prisma), blobs, outbox, jobs: null, scanner, ...(opts.policy ? { policy: opts.policy } : {}), clock, logger: core.logger }),
    run: (mailbox, providerMessageId, raw, o = {}) =>
      ingest.ingest(
        { id: mailbox.id, tenantId: mailbox.tenantId, provider: 'google' },
        { providerMessageId, providerThreadId: o.threadId, raw: Readable.from([raw]), receivedAt: o.receivedAt ?? new Date() },
      ),
  };
}

export { storedZip } from '../helpers/zip.js';


let seq = 0;
/** multipart/mixed with the given parts (each: headers + base64 body). */
export function multipart(subject: string, parts: Array<{ headers: string[]; body: Buffer }>, extra: string[] = []): Buffer {
  seq++;
  const b = `b${seq}x`;
  const lines = [
    'From: Customer <customer@example.com>',
    'To: support@helpdesk.example',
    `Subject: ${subject}`,
    `Message-ID: <scan${seq}.${Date.now()}@example.com>`,
    'MIME-Version: 1.0',
    ...extra,
    `Content-Type: multipart/mixed; boundary="${b}"`,
    '',
    `--${b}`,
    'Content-Type: text/plain',
    '',
    'see attached',
  ];
  for (const p of parts) lines.push(`--${b}`, ...p.headers, 'Content-Transfer-Encoding: base64', '', p.body.toString('base64'));
  lines.push(`--${b}--`, '');
  return Buffer.from(lines.join('\r\n'));
}

export function attachmentPart(filename: string, body: Buffer, type = 'application/octet-stream', disposition = 'attachment', cid?: string): { headers: string[]; body: Buffer } {
  return {
    headers: [`Content-Type: ${type}; name="${filename}"`, `Content-Disposition: ${disposition}; filename="${filename}"`, ...(cid ? [`Content-ID: <${cid}>`] : [])],
    body,
  };
}

/** A new tenant with one mailbox of `address` (encrypted and blind-indexed as connect stores it). */
export async function seedIngestMailbox(core: Core, address: string, provider: 'google' | 'microsoft' = 'google'): Promise<{ id: string; tenantId: string }> {
  const tenant = await core.tenants.create({ name: 'bench' });
  const id = newId('mailbox');
  await core.prisma.mailbox.create({
    data: {
      id,
      tenantId: tenant.id,
      provider,
      addressEnc: new Uint8Array(await core.dataKeys.encryptFor({ type: 'mailbox', id }, address, MAILBOX_ADDRESS_AAD(id))),
      addressIndex: core.blindIndex.emailIndex(address),
    },
  });
  return { id, tenantId: tenant.id };
}
