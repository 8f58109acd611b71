import type { Readable } from 'node:stream';

/** What the scanner may know about the content. Used for metrics/audit, never sent to clamd. */
export interface ScanMeta {
  filename?: string | null;
  contentType?: string | null;
  /** Declared size when known; lets a scanner refuse early instead of streaming in vain. */
  sizeBytes?: number | null;
}

export type ScanErrorReason = 'unreachable' | 'too_large' | 'timeout' | 'protocol';

export type ScanVerdict =
  | { status: 'clean' }
  | { status: 'infected'; signature: string }
  | { status: 'error'; reason: ScanErrorReason }
  /** No scanner is configured (CLAMD_* unset). Never counts as a scan attempt. */
  | { status: 'not_configured' };

export interface Scanner {
  /**
   * Scans `content` to its end. Always consumes the whole stream (draining what it does not send),
   * so a caller that tees one stream into storage and the scanner never stalls. Resolves with a
   * verdict for every scanner-side failure; rejects only when `content` itself errors.
   */
  scan(content: Readable, meta?: ScanMeta): Promise<ScanVerdict>;
  /** True when the scanner answers (readiness probe). */
  ping(): Promise<boolean>;
}
