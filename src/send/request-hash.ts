import { createHash } from 'node:crypto';
import { canonicalJson } from '../crypto/canonical-json.js';

/**
 * The fingerprint stored with an Idempotency-Key: which operation, on which target, with which
 * body. The same key reused for another endpoint, another message or another body is a
 * different request (409), as with Stripe's idempotency keys.
 */
export function requestHash(operation: 'reply' | 'send', targetId: string, body: unknown): string {
  return createHash('sha256').update(canonicalJson({ v: 1, operation, targetId, body })).digest('hex');
}
