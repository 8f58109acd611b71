import { describe, expect, it } from 'vitest';
import { DEFAULT_SCAN_POLICY, INITIAL_SCAN_STATE, isDueForScan, isServable, nextScanState, type ScanState } from './scan-policy.js';
import type { ScanVerdict } from './scanner.port.js';

const t0 = new Date('2026-03-01T10:00:00Z');
const unreachable: ScanVerdict = { status: 'error', reason: 'unreachable' };
const policy = { retryDelaysMs: [1_000, 10_000], maxAttempts: 3 };

describe('nextScanState (fail closed)', () => {
  it('serves only what clamd called clean', () => {
    const verdicts: ScanVerdict[] = [
      { status: 'infected', signature: 'Eicar' },
      unreachable,
      { status: 'error', reason: 'timeout' },
      { status: 'error', reason: 'protocol' },
      { status: 'error', reason: 'too_large' },
      { status: 'not_configured' },
    ];
    for (const verdict of verdicts) expect(isServable(nextScanState(INITIAL_SCAN_STATE, verdict, 1, t0))).toBe(false);
    expect(isServable(nextScanState(INITIAL_SCAN_STATE, { status: 'clean' }, 1, t0))).toBe(true);
  });

  it('retries errors on the configured schedule, then gives up as unscannable', () => {
    let state: ScanState = INITIAL_SCAN_STATE;
    state = nextScanState(state, unreachable, 1, t0, policy);
    expect(state).toEqual({ status: 'pending', attempts: 1, nextAttemptAt: new Date(t0.getTime() + 1_000), lastError: 'unreachable' });
    state = nextScanState(state, unreachable, 2, t0, policy);
    expect(state).toMatchObject({ status: 'pending', nextAttemptAt: new Date(t0.getTime() + 10_000) });
    state = nextScanState(state, { status: 'error', reason: 'timeout' }, 3, t0, policy);
    expect(state).toEqual({ status: 'unscannable', attempts: 3, reason: 'timeout' });
    expect(isDueForScan(state, new Date(t0.getTime() + 1e9), true)).toBe(false);
  });

  it('repeats the last delay when attempts outnumber the schedule', () => {
    const state = nextScanState(INITIAL_SCAN_STATE, unreachable, 5, t0, { retryDelaysMs: [1_000, 7_000], maxAttempts: 9 });
    expect(state).toMatchObject({ status: 'pending', nextAttemptAt: new Date(t0.getTime() + 7_000) });
  });

  it('marks too_large unscannable at once: a retry cannot make it fit', () => {
    const state = nextScanState(INITIAL_SCAN_STATE, { status: 'error', reason: 'too_large' }, 1, t0);
    expect(state).toEqual({ status: 'unscannable', attempts: 1, reason: 'too_large' });
  });

  it('keeps attachments pending without a scanner and does not spend the retry budget', () => {
    const state = nextScanState(INITIAL_SCAN_STATE, { status: 'not_configured' }, 0, t0);
    expect(state).toEqual(INITIAL_SCAN_STATE);
    expect(isDueForScan(state, t0, false)).toBe(false);
    expect(isDueForScan(state, t0, true)).toBe(true);
  });

  it('waits for nextAttemptAt before rescanning', () => {
    const state = nextScanState(INITIAL_SCAN_STATE, unreachable, 1, t0, policy);
    expect(isDueForScan(state, new Date(t0.getTime() + 999), true)).toBe(false);
    expect(isDueForScan(state, new Date(t0.getTime() + 1_000), true)).toBe(true);
  });

  it('keeps infected sticky and does not downgrade a clean result on a failed rescan', () => {
    const infected = nextScanState(INITIAL_SCAN_STATE, { status: 'infected', signature: 'X' }, 1, t0);
    expect(nextScanState(infected, { status: 'clean' }, 2, t0)).toBe(infected);
    const clean = nextScanState(INITIAL_SCAN_STATE, { status: 'clean' }, 1, t0);
    expect(nextScanState(clean, unreachable, 2, t0)).toBe(clean);
    // …but a rescan with newer signatures that finds something locks it.
    expect(nextScanState(clean, { status: 'infected', signature: 'New.Sig' }, 2, t0).status).toBe('infected');
  });

  it('ships a default schedule that ends in unscannable', () => {
    const last = nextScanState(INITIAL_SCAN_STATE, unreachable, DEFAULT_SCAN_POLICY.maxAttempts, t0);
    expect(last.status).toBe('unscannable');
  });
});
