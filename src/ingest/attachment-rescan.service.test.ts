import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import type { EventType } from '../events/event-types.js';
import type { ScanVerdict } from '../scan/scanner.port.js';
import type { AttachmentScanRecord, ScanUpdate } from '../storage/attachment-scan.repository.js';
import { AttachmentRescanService } from './attachment-rescan.service.js';

/** Strict fakes: one pending attachment, the verdicts the scanner gives, the events appended. */
function setup(verdict: ScanVerdict, record: Partial<AttachmentScanRecord> = {}) {
  const row: AttachmentScanRecord = {
    id: 'att_1',
    tenantId: 'ten_1',
    mailboxId: 'mbx_1',
    messageId: 'msg_1',
    contentType: 'application/pdf',
    size: 3,
    scanStatus: 'pending',
    scanAttempts: 0,
    scanError: null,
    nextScanAt: null,
    blobId: 'blob_1',
    ...record,
  };
  const events: Array<{ type: EventType; refs: unknown }> = [];
  const updates: ScanUpdate[] = [];
  const tx = {} as never;
  const service = new AttachmentRescanService({
    attachments: {
      transaction: (fn: (t: never) => Promise<unknown>) => fn(tx),
      listDue: async () => (row.scanStatus === 'pending' ? [row] : []),
      update: async (_tx: unknown, _id: string, u: ScanUpdate) => {
        if (row.scanStatus !== 'pending') return false;
        updates.push(u);
        row.scanStatus = u.scanStatus;
        row.scanAttempts = u.scanAttempts;
        return true;
      },
    } as never,
    blobs: { read: () => Readable.from([Buffer.from('abc')]), delete: async () => 0 },
    outbox: {
      appendEvent: async (_tx, e) => {
        events.push({ type: e.type, refs: e.refs });
        return { id: `evt_${events.length}`, sequence: BigInt(events.length) };
      },
    },
    jobs: null,
    scanner: { scanner: { scan: async (content) => (content.resume(), verdict), ping: async () => true }, configured: true },
    policy: { retryDelaysMs: [1000], maxAttempts: 2 },
    clock: () => new Date('2026-12-01T10:00:00Z'),
    logger: { info: () => undefined, warn: () => undefined },
  });
  return { service, events, updates, row };
}

describe('AttachmentRescanService events', () => {
  it('clean → one attachment.scanned', async () => {
    const { service, events } = setup({ status: 'clean' });
    await service.run();
    expect(events).toEqual([{ type: 'attachment.scanned', refs: { messageId: 'msg_1', attachmentId: 'att_1' } }]);
  });

  it('infected → attachment.infected, then attachment.scanned', async () => {
    const { service, events } = setup({ status: 'infected', signature: 'Eicar-Signature' });
    await service.run();
    expect(events.map((e) => e.type)).toEqual(['attachment.infected', 'attachment.scanned']);
  });

  it('an error below the attempt budget stays pending (no event); the last allowed attempt → unscannable → attachment.scanned', async () => {
    const { service, events, row } = setup({ status: 'error', reason: 'timeout' });
    await service.run();
    expect(row.scanStatus).toBe('pending');
    expect(events).toEqual([]);
    await service.run();
    expect(row.scanStatus).toBe('unscannable');
    expect(events.map((e) => e.type)).toEqual(['attachment.scanned']);
    // Nothing pending any more: a further run emits nothing.
    await service.run();
    expect(events).toHaveLength(1);
  });
});
