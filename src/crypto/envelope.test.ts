import { createSecretKey, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { DecryptionError } from './crypto-error.js';
import { decrypt, encodeAad, encrypt, ENVELOPE_OVERHEAD, readKeyVersion, type Aad, type EnvelopeKey } from './envelope.js';

const key = (version = 1): EnvelopeKey => ({ version, key: createSecretKey(randomBytes(32)) });
const aad: Aad = { table: 'messages', column: 'subject', rowId: 'msg_1' };

function failure(fn: () => unknown): DecryptionError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(DecryptionError);
    return err as DecryptionError;
  }
  throw new Error('expected decryption to fail');
}

describe('envelope', () => {
  it('round-trips strings, binary and empty plaintext', () => {
    const k = key();
    expect(decrypt(k, encrypt(k, 'Grüße, Ticket #42', aad), aad).toString('utf8')).toBe('Grüße, Ticket #42');
    const bin = randomBytes(4096);
    expect(decrypt(k, encrypt(k, bin, aad), aad).equals(bin)).toBe(true);
    expect(decrypt(k, encrypt(k, Buffer.alloc(0), aad), aad).length).toBe(0);
  });

  it('writes the documented header and hides the plaintext', () => {
    const k = key(258);
    const plain = 'the quick brown fox jumps over the lazy dog';
    const blob = encrypt(k, plain, aad);
    expect(blob[0]).toBe(0xc7);
    expect(blob[1]).toBe(1);
    expect(blob.readUInt32BE(2)).toBe(258);
    expect(readKeyVersion(blob)).toBe(258);
    expect(blob.length).toBe(Buffer.byteLength(plain) + ENVELOPE_OVERHEAD);
    expect(blob.includes(Buffer.from('brown fox'))).toBe(false);
  });

  it('uses a fresh nonce each time: same plaintext, different ciphertext', () => {
    const k = key();
    const a = encrypt(k, 'same', aad);
    const b = encrypt(k, 'same', aad);
    expect(a.equals(b)).toBe(false);
    expect(a.subarray(6, 18).equals(b.subarray(6, 18))).toBe(false);
  });

  it('fails closed when any single byte is flipped (header, nonce, ciphertext, tag)', () => {
    const k = key();
    const blob = encrypt(k, 'confidential body', aad);
    const codes = new Set<string>();
    for (let i = 0; i < blob.length; i++) {
      const tampered = Buffer.from(blob);
      tampered[i]! ^= 0x01;
      const err = failure(() => decrypt(k, tampered, aad));
      codes.add(err.code);
      // Every region is covered: 0 magic, 1 format, 2-5 key version, 6-17 nonce, body, last 16 tag.
      if (i === 0) expect(err.code).toBe('bad_magic');
      else if (i === 1) expect(err.code).toBe('unsupported_format');
      else if (i < 6) expect(err.code).toBe('key_version_mismatch');
      else expect(err.code).toBe('authentication_failed');
    }
    expect(codes).toEqual(new Set(['bad_magic', 'unsupported_format', 'key_version_mismatch', 'authentication_failed']));
  });

  it('fails closed on truncation and on a header-only blob', () => {
    const k = key();
    const blob = encrypt(k, 'x', aad);
    expect(failure(() => decrypt(k, blob.subarray(0, blob.length - 1), aad)).code).toBe('authentication_failed');
    expect(failure(() => decrypt(k, blob.subarray(0, 20), aad)).code).toBe('truncated');
    expect(failure(() => decrypt(k, Buffer.alloc(0), aad)).code).toBe('truncated');
  });

  it.each<[string, Aad]>([
    ['another row', { ...aad, rowId: 'msg_2' }],
    ['another column', { ...aad, column: 'body' }],
    ['another table', { ...aad, table: 'outbound' }],
  ])('does not decrypt when moved to %s', (_name, other) => {
    const k = key();
    expect(failure(() => decrypt(k, encrypt(k, 'secret', aad), other)).code).toBe('authentication_failed');
  });

  it('encodes AAD unambiguously: shifting a separator between fields changes it', () => {
    const k = key();
    const a: Aad = { table: 'a', column: 'b:c', rowId: 'd' };
    const b: Aad = { table: 'a:b', column: 'c', rowId: 'd' };
    expect(encodeAad(a).equals(encodeAad(b))).toBe(false);
    expect(failure(() => decrypt(k, encrypt(k, 's', a), b)).code).toBe('authentication_failed');
  });

  it('refuses an empty AAD field instead of sealing many rows under one context', () => {
    expect(() => encrypt(key(), 's', { ...aad, rowId: '' })).toThrow(TypeError);
  });

  it('rejects the wrong key, and an offered key version the blob was not sealed with', () => {
    const blob = encrypt(key(1), 'secret', aad);
    expect(failure(() => decrypt(key(1), blob, aad)).code).toBe('authentication_failed');
    expect(failure(() => decrypt(key(2), blob, aad)).code).toBe('key_version_mismatch');
  });

  it('rejects an unknown format version even if everything else is intact', () => {
    const k = key();
    const blob = encrypt(k, 'secret', aad);
    blob[1] = 2;
    const err = failure(() => decrypt(k, blob, aad));
    expect(err.code).toBe('unsupported_format');
    expect(err.message).toMatch(/format version 2/);
  });

  it('never puts key bytes or plaintext in an error message', () => {
    const k = key();
    const raw = k.key.export();
    const blob = encrypt(k, 'top secret words', aad);
    blob[blob.length - 1]! ^= 0xff;
    const err = failure(() => decrypt(k, blob, aad));
    for (const s of [raw.toString('hex'), raw.toString('base64'), 'top secret']) expect(err.message).not.toContain(s);
  });

  it('accepts a Uint8Array (what Prisma returns for Bytes)', () => {
    const k = key();
    const blob = encrypt(k, 'from prisma', aad);
    const view = new Uint8Array(blob.buffer.slice(blob.byteOffset, blob.byteOffset + blob.length));
    expect(decrypt(k, view, aad).toString()).toBe('from prisma');
  });
});
