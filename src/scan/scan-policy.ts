import { z } from 'zod';
import type { ScanErrorReason, ScanVerdict } from './scanner.port.js';

/*
 * Fail-closed scan states (ARCHITECTURE.md invariant: an attachment is never served unless its
 * verdict is `clean`). Everything that is not a positive clean result keeps the bytes locked:
 * - pending      not scanned yet, scanner not configured, or waiting for a retry;
 * - clean        the only servable state;
 * - infected     sticky: a later scan error or clean result does not unlock it (manual review);
 * - unscannable  clamd refused it (too large) or kept failing: never served, reported to the tenant.
 */
export type ScanState =
  | { status: 'pending'; attempts: number; nextAttemptAt: Date | null; lastError: ScanErrorReason | null }
  | { status: 'clean'; attempts: number; scannedAt: Date }
  | { status: 'infected'; attempts: number; signature: string; scannedAt: Date }
  | { status: 'unscannable'; attempts: number; reason: ScanErrorReason };

export const ScanPolicySchema = z
  .object({
    /** Delay before retry n (1-based) after a scanner error. Last entry repeats if maxAttempts is larger. */
    retryDelaysMs: z.array(z.number().int().positive()).min(1),
    /** After this many errored attempts the attachment becomes `unscannable`. */
    maxAttempts: z.number().int().min(1),
  })
  .strict();

export type ScanPolicy = z.infer<typeof ScanPolicySchema>;

export const DEFAULT_SCAN_POLICY: ScanPolicy = {
  // 30 s, 2 min, 10 min, 30 min, 2 h, 6 h: rides out a clamd restart or signature reload quickly
  // and a longer outage within a working day.
  retryDelaysMs: [30_000, 120_000, 600_000, 1_800_000, 7_200_000, 21_600_000],
  maxAttempts: 7,
};

export const INITIAL_SCAN_STATE: ScanState = { status: 'pending', attempts: 0, nextAttemptAt: null, lastError: null };

/**
 * Pure transition. `attempts` counts scan attempts made so far including the one that produced
 * `verdict` (`not_configured` is not an attempt and does not consume the budget).
 */
export function nextScanState(
  current: ScanState,
  verdict: ScanVerdict,
  attempts: number,
  now: Date,
  policy: ScanPolicy = DEFAULT_SCAN_POLICY,
): ScanState {
  if (current.status === 'infected') return current;
  switch (verdict.status) {
    case 'infected':
      return { status: 'infected', attempts, signature: verdict.signature, scannedAt: now };
    case 'clean':
      return { status: 'clean', attempts, scannedAt: now };
    case 'not_configured':
      // Stays locked; rescanned once a scanner is configured (nextAttemptAt null = "when possible").
      return current.status === 'pending' ? { ...current, nextAttemptAt: null } : current;
    case 'error': {
      // A rescan of something already decided (e.g. after a signature update) that errors keeps
      // the earlier decision rather than downgrading it.
      if (current.status === 'clean' || current.status === 'unscannable') return current;
      // Retrying cannot make a stream fit under clamd's StreamMaxLength.
      if (verdict.reason === 'too_large') return { status: 'unscannable', attempts, reason: 'too_large' };
      if (attempts >= policy.maxAttempts) return { status: 'unscannable', attempts, reason: verdict.reason };
      const delays = policy.retryDelaysMs;
      const delay = delays[Math.min(Math.max(attempts, 1), delays.length) - 1]!;
      return { status: 'pending', attempts, nextAttemptAt: new Date(now.getTime() + delay), lastError: verdict.reason };
    }
  }
}

/** The one question the download path asks. */
export function isServable(state: ScanState): boolean {
  return state.status === 'clean';
}

/** Whether a sweep should (re)scan this attachment at `now`. */
export function isDueForScan(state: ScanState, now: Date, scannerConfigured: boolean): boolean {
  if (state.status !== 'pending' || !scannerConfigured) return false;
  return state.nextAttemptAt === null || state.nextAttemptAt.getTime() <= now.getTime();
}
