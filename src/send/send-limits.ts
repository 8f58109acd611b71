import type { LimitsPort, SendSizeInput } from '../providers/ports.js';
import { SendRejectedError } from './send-rejection.js';

/**
 * Size limits checked BEFORE anything is queued, so the caller gets a 413 now instead of a
 * `message.send_failed` later. What each provider accepts lives in its room
 * (providers/google/gmail-limits.ts, providers/microsoft/graph-limits.ts).
 */

/** Refuses what the provider would refuse; cheap, runs before composing or scanning. */
export function checkRequestSize(limits: LimitsPort, input: SendSizeInput): void {
  const problem = limits.requestTooLarge(input);
  if (problem) throw new SendRejectedError('message_too_large', problem);
}

/** The exact check on the composed bytes. */
export function checkComposedSize(limits: LimitsPort, mimeBytes: number): void {
  const problem = limits.composedTooLarge(mimeBytes);
  if (problem) throw new SendRejectedError('message_too_large', problem);
}
