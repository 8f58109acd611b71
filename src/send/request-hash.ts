import { createHash } from 'node:crypto';

/**
 * Canonical JSON: object keys sorted at every depth, no insignificant whitespace. Two bodies that
 * differ only in key order or formatting hash the same; any difference in a value does not.
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') {
    // JSON.stringify(undefined) is undefined: absent values are dropped like JSON itself does.
    return JSON.stringify(value) ?? 'null';
  }
  if (Array.isArray(value)) return `[${value.map((v) => (v === undefined ? 'null' : canonicalJson(v))).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
}

/**
 * The fingerprint stored with an Idempotency-Key: which operation, on which target, with which
 * body. The same key reused for another endpoint, another message or another body is a
 * different request (409), as with Stripe's idempotency keys.
 */
export function requestHash(operation: 'reply' | 'send', targetId: string, body: unknown): string {
  return createHash('sha256').update(canonicalJson({ v: 1, operation, targetId, body })).digest('hex');
}
