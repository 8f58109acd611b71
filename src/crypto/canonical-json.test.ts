import { describe, expect, it } from 'vitest';
import { canonicalJson } from './canonical-json.js';

describe('canonicalJson', () => {
  it('sorts keys at every depth and is independent of insertion order', () => {
    expect(canonicalJson({ b: 1, a: { d: [3, { z: 1, y: 2 }], c: 'x' } })).toBe('{"a":{"c":"x","d":[3,{"y":2,"z":1}]},"b":1}');
    expect(canonicalJson({ x: 1, y: 2 })).toBe(canonicalJson({ y: 2, x: 1 }));
  });

  it('encodes dates, bigints, escapes and unicode deterministically', () => {
    expect(canonicalJson({ at: new Date('2026-11-29T05:00:00Z'), n: 12n, s: 'a"\n\u00e9' })).toBe(
      '{"at":"2026-11-29T05:00:00.000Z","n":12,"s":"a\\"\\n\u00e9"}',
    );
  });

  it('rejects values with no faithful JSON form', () => {
    expect(() => canonicalJson({ n: Number.NaN })).toThrow(TypeError);
    expect(() => canonicalJson({ f: () => 1 })).toThrow(TypeError);
    const circular: Record<string, unknown> = {};
    circular.self = circular;
    expect(() => canonicalJson(circular)).toThrow(/circular/);
  });
});
