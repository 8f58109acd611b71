import { describe, expect, it } from 'vitest';
import { constantTimeEqual, generateToken, hashApiKey, isWellFormedToken, redactToken, sha256Hex } from './secret-compare.js';

describe('constantTimeEqual', () => {
  it('compares strings and buffers of any length', () => {
    expect(constantTimeEqual('whsec_abc', 'whsec_abc')).toBe(true);
    expect(constantTimeEqual('whsec_abc', 'whsec_abd')).toBe(false);
    expect(constantTimeEqual('short', 'a much longer candidate value')).toBe(false);
    expect(constantTimeEqual('', '')).toBe(true);
    expect(constantTimeEqual(Buffer.from('abc'), 'abc')).toBe(true);
    expect(constantTimeEqual(new Uint8Array([1, 2]), new Uint8Array([1, 2, 0]))).toBe(false);
  });
});

describe('sha256Hex / hashApiKey', () => {
  it('matches the SHA-256 test vector', () => {
    expect(sha256Hex('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    expect(hashApiKey('abc')).toBe(sha256Hex('abc'));
  });
});

describe('generateToken', () => {
  it('produces prefixed base62 tokens of fixed length that are unique', () => {
    const tokens = new Set<string>();
    for (let i = 0; i < 200; i++) {
      const t = generateToken('mbc_live_');
      expect(t).toMatch(/^mbc_live_[0-9A-Za-z]+$/);
      expect(t).toHaveLength('mbc_live_'.length + 43 + 6);
      expect(isWellFormedToken(t, 'mbc_live_')).toBe(true);
      tokens.add(t);
    }
    expect(tokens.size).toBe(200);
  });

  it('keeps full width even when the random bytes start with zeros', () => {
    const t = generateToken('mbc_test_', 32, (n) => Buffer.alloc(n));
    expect(t).toHaveLength('mbc_test_'.length + 43 + 6);
    expect(isWellFormedToken(t, 'mbc_test_')).toBe(true);
  });

  it('detects typos, truncation and the wrong prefix via the checksum and shape', () => {
    const t = generateToken('mbc_live_');
    const body = t.slice('mbc_live_'.length);
    const typo = `mbc_live_${body[0] === 'a' ? 'b' : 'a'}${body.slice(1)}`;
    expect(isWellFormedToken(typo, 'mbc_live_')).toBe(false);
    expect(isWellFormedToken(t.slice(0, -1), 'mbc_live_')).toBe(false);
    expect(isWellFormedToken(t.replace('mbc_live_', 'mbc_test_'), 'mbc_live_')).toBe(false);
    expect(isWellFormedToken(t.replace('mbc_live_', 'mbc_test_'), 'mbc_test_')).toBe(false); // prefix is in the checksum
  });

  it('refuses weak sizes and odd prefixes', () => {
    expect(() => generateToken('mbc_live_', 16)).toThrow(RangeError);
    expect(() => generateToken('mbc-live')).toThrow(TypeError);
  });

  it('redacts to prefix and last four characters', () => {
    const t = generateToken('mbc_live_');
    const hint = redactToken(t, 'mbc_live_');
    expect(hint).toBe(`mbc_live_…${t.slice(-4)}`);
    expect(hint).not.toContain(t.slice(9, 20));
  });
});
