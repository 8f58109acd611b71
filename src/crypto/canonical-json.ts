// The one canonical JSON of the code base: the audit chain hashes it, and so does the send
// request fingerprint stored with an Idempotency-Key (both must be stable across processes and
// releases; for values parsed from JSON, the two former copies produced the same text).

/**
 * Deterministic JSON: object keys sorted by UTF-16 code units, no whitespace — the same output
 * as RFC 8785 (JCS) for the values we log. Dates become ISO strings (as `JSON.stringify` does via
 * `toJSON`), bigints their decimal digits. Non-finite numbers, functions and symbols are
 * rejected: they have no faithful JSON form and would hash differently once stored.
 */
export function canonicalJson(value: unknown): string {
  return encode(value, new Set());
}

function encode(value: unknown, stack: Set<object>): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'number':
      if (!Number.isFinite(value)) throw new TypeError('canonicalJson: non-finite number');
      return JSON.stringify(value); // -0 → "0", shortest round-trip form otherwise
    case 'bigint':
      return value.toString();
    case 'object':
      break;
    default:
      throw new TypeError(`canonicalJson: cannot encode a ${typeof value}`);
  }
  const obj = value as object;
  if (stack.has(obj)) throw new TypeError('canonicalJson: circular structure');
  const toJSON = (obj as { toJSON?: unknown }).toJSON;
  if (typeof toJSON === 'function') return encode(toJSON.call(obj), stack);
  stack.add(obj);
  try {
    if (Array.isArray(obj)) {
      // As JSON.stringify: undefined array slots become null so positions are kept.
      return `[${obj.map((v) => (v === undefined ? 'null' : encode(v, stack))).join(',')}]`;
    }
    const members = Object.keys(obj)
      .filter((k) => (obj as Record<string, unknown>)[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${encode((obj as Record<string, unknown>)[k], stack)}`);
    return `{${members.join(',')}}`;
  } finally {
    stack.delete(obj);
  }
}
