import { describe, expect, it } from 'vitest';
import { canonicalJson } from '../crypto/canonical-json.js';
import { requestHash } from './request-hash.js';

describe('requestHash', () => {
  it('ignores key order and formatting but not values, targets or operations', () => {
    const a = { text: 'Hello', cc: ['a@example.com'], attachments: [{ filename: 'x.txt', contentType: 'text/plain', contentBase64: 'eA==' }] };
    const b = JSON.parse('{ "attachments": [ { "contentBase64": "eA==", "contentType": "text/plain", "filename": "x.txt" } ], "cc": ["a@example.com"], "text": "Hello" }');
    expect(requestHash('reply', 'msg_1', a)).toBe(requestHash('reply', 'msg_1', b));
    expect(requestHash('reply', 'msg_1', { ...a, text: 'Hello!' })).not.toBe(requestHash('reply', 'msg_1', a));
    expect(requestHash('reply', 'msg_2', a)).not.toBe(requestHash('reply', 'msg_1', a));
    expect(requestHash('send', 'msg_1', a)).not.toBe(requestHash('reply', 'msg_1', a));
    // Array order is meaningful (recipients, attachments).
    expect(requestHash('reply', 'm', { cc: ['a@x.io', 'b@x.io'] })).not.toBe(requestHash('reply', 'm', { cc: ['b@x.io', 'a@x.io'] }));
  });

  it('serialises nested values canonically and drops undefined members', () => {
    expect(canonicalJson({ b: 1, a: { d: [1, 'x', null], c: true }, z: undefined })).toBe('{"a":{"c":true,"d":[1,"x",null]},"b":1}');
  });

  it('gives the same fingerprint as releases before the shared canonicalJson (stored Idempotency-Key hashes stay valid)', () => {
    const body = { text: 'Hello', cc: ['a@example.com'], attachments: [{ filename: 'x.txt', contentType: 'text/plain', contentBase64: 'eA==' }] };
    expect(requestHash('reply', 'msg_1', body)).toBe('85fe1d7f299c46b343281e712cc704dd57c302c4086967128f6ba51f0df425ee');
  });
});
