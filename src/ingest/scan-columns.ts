import type { ScanState } from '../scan/scan-policy.js';
import type { NewAttachmentRow } from '../storage/message-write.repository.js';

export type ScanColumns = Pick<NewAttachmentRow, 'scanStatus' | 'scanSignature' | 'scanAttempts' | 'scanError' | 'scannedAt' | 'nextScanAt'>;

/** A ScanState as the `attachments` scan columns (ingest and the rescan job write the same shape). */
export function scanColumns(s: ScanState): ScanColumns {
  switch (s.status) {
    case 'clean':
      return { scanStatus: 'clean', scanSignature: null, scanAttempts: s.attempts, scanError: null, scannedAt: s.scannedAt, nextScanAt: null };
    case 'infected':
      return { scanStatus: 'infected', scanSignature: s.signature, scanAttempts: s.attempts, scanError: null, scannedAt: s.scannedAt, nextScanAt: null };
    case 'unscannable':
      return { scanStatus: 'unscannable', scanSignature: null, scanAttempts: s.attempts, scanError: s.reason, scannedAt: null, nextScanAt: null };
    case 'pending':
      return { scanStatus: 'pending', scanSignature: null, scanAttempts: s.attempts, scanError: s.lastError, scannedAt: null, nextScanAt: s.nextAttemptAt };
  }
}
