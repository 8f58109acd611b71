import type { LimitsPort, SendSizeInput } from '../providers/ports.js';
import { SendRejectedError } from './send-rejection.js';

/**
 * Size limits checked BEFORE anything is queued, so the caller gets a 413 now instead of a
 * `message.send_failed` later. What each provider accepts lives in its room
 * (providers/google/gmail-limits.ts, providers/microsoft/graph-limits.ts).
 */

/**
 * A provider's limits may carry public `details` for the 413 (which limit, in bytes), e.g.
 * graph-limits.ts: `{ limit: 'graph_request_4mb', maxMessageBytes }`.
 */
function detailsOf(limits: LimitsPort): Record<string, unknown> | undefined {
  const d = (limits as { details?: unknown }).details;
  return d !== null && typeof d === 'object' ? (d as Record<string, unknown>) : undefined;
}

/** Refuses what the provider would refuse; cheap, runs before composing or scanning. */
export function checkRequestSize(limits: LimitsPort, input: SendSizeInput): void {
  const problem = limits.requestTooLarge(input);
  if (problem) throw new SendRejectedError('message_too_large', problem, detailsOf(limits));
}

/** The exact check on the composed bytes. */
export function checkComposedSize(limits: LimitsPort, mimeBytes: number): void {
  const problem = limits.composedTooLarge(mimeBytes);
  if (problem) throw new SendRejectedError('message_too_large', problem, detailsOf(limits));
}
