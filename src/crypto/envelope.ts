import { createCipheriv, createDecipheriv, randomBytes, type KeyObject } from 'node:crypto';
import { DecryptionError } from './crypto-error.js';

/**
 * Envelope format, version 1 (all integers big-endian):
 *
 *   offset  size  field
 *   0       1     magic 0xC7 (marks "one of our envelopes")
 *   1       1     format version (1)
 *   2       4     key version (uint32): the DEK version (or KEK version for wrapped DEKs)
 *   6       12    random nonce (96 bits, the size GCM is specified for)
 *   18      n     AES-256-GCM ciphertext
 *   18+n    16    GCM tag
 *
 * The 6 header bytes are authenticated together with the caller's AAD, so flipping the format
 * or key version cannot make a ciphertext decrypt under another interpretation.
 *
 * Random 96-bit nonces are safe here because every key is per owner and encrypts far fewer than
 * the 2^32 messages NIST SP 800-38D allows per key with random nonces.
 */
export const ENVELOPE_MAGIC = 0xc7;
export const ENVELOPE_FORMAT_V1 = 1;
const HEADER_BYTES = 6;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
/** Bytes an envelope adds to its plaintext. */
export const ENVELOPE_OVERHEAD = HEADER_BYTES + NONCE_BYTES + TAG_BYTES;

/** A symmetric key plus the version number written into (and checked against) the envelope. */
export interface EnvelopeKey {
  readonly version: number;
  readonly key: KeyObject;
}

/**
 * Where a ciphertext lives. It is bound into the GCM tag, so a ciphertext copied to another
 * table, column or row does not decrypt there.
 */
export interface Aad {
  readonly table: string;
  readonly column: string;
  readonly rowId: string;
}

const AAD_DOMAIN = Buffer.from('mbc.aad.v1', 'ascii');

/**
 * Canonical, unambiguous encoding: domain tag, then each field as uint32 length + UTF-8 bytes.
 * Length prefixes mean ("a:b","c") and ("a","b:c") can never encode to the same bytes.
 */
export function encodeAad(aad: Aad): Buffer {
  const parts: Buffer[] = [AAD_DOMAIN];
  for (const [name, value] of [
    ['table', aad.table],
    ['column', aad.column],
    ['rowId', aad.rowId],
  ] as const) {
    // An empty field almost always means a caller forgot to pass the row id: refuse loudly
    // rather than seal many rows under the same context.
    if (typeof value !== 'string' || value === '') throw new TypeError(`AAD ${name} must be a non-empty string`);
    const bytes = Buffer.from(value, 'utf8');
    const len = Buffer.alloc(4);
    len.writeUInt32BE(bytes.length);
    parts.push(len, bytes);
  }
  return Buffer.concat(parts);
}

function assertKeyVersion(version: number): void {
  if (!Number.isInteger(version) || version < 1 || version > 0xffff_ffff) {
    throw new TypeError('key version must be a positive uint32');
  }
}

// Inputs are typed `Uint8Array` because that is what Prisma returns for `Bytes` (a Buffer is one).
export function encrypt(key: EnvelopeKey, plaintext: Uint8Array | string, aad: Aad): Buffer {
  assertKeyVersion(key.version);
  const header = Buffer.alloc(HEADER_BYTES);
  header.writeUInt8(ENVELOPE_MAGIC, 0);
  header.writeUInt8(ENVELOPE_FORMAT_V1, 1);
  header.writeUInt32BE(key.version, 2);
  const nonce = randomBytes(NONCE_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key.key, nonce, { authTagLength: TAG_BYTES });
  cipher.setAAD(Buffer.concat([header, encodeAad(aad)]));
  const data = typeof plaintext === 'string' ? Buffer.from(plaintext, 'utf8') : plaintext;
  const body = Buffer.concat([cipher.update(data), cipher.final()]);
  return Buffer.concat([header, nonce, body, cipher.getAuthTag()]);
}

/**
 * Reads the key version from an envelope header without decrypting, so a caller holding several
 * key versions can pick the right one. Throws `DecryptionError` for anything that is not a
 * well-formed envelope of a known format.
 */
export function readKeyVersion(blob: Uint8Array): number {
  if (!((blob as unknown) instanceof Uint8Array)) {
    throw new DecryptionError('truncated', 'ciphertext is not a byte buffer');
  }
  if (blob.length < ENVELOPE_OVERHEAD) {
    throw new DecryptionError('truncated', `ciphertext is ${blob.length} bytes, shorter than the ${ENVELOPE_OVERHEAD}-byte envelope`);
  }
  if (blob[0] !== ENVELOPE_MAGIC) throw new DecryptionError('bad_magic', 'ciphertext does not start with the envelope magic byte');
  if (blob[1] !== ENVELOPE_FORMAT_V1) {
    throw new DecryptionError('unsupported_format', `unsupported envelope format version ${blob[1]}`);
  }
  return Buffer.from(blob.buffer, blob.byteOffset, blob.length).readUInt32BE(2);
}

export function decrypt(key: EnvelopeKey, blob: Uint8Array, aad: Aad): Buffer {
  const version = readKeyVersion(blob);
  if (version !== key.version) {
    throw new DecryptionError(
      'key_version_mismatch',
      `ciphertext was sealed with key version ${version}, but key version ${key.version} was offered`,
    );
  }
  const buf = Buffer.from(blob.buffer, blob.byteOffset, blob.length);
  const header = buf.subarray(0, HEADER_BYTES);
  const nonce = buf.subarray(HEADER_BYTES, HEADER_BYTES + NONCE_BYTES);
  const body = buf.subarray(HEADER_BYTES + NONCE_BYTES, buf.length - TAG_BYTES);
  const tag = buf.subarray(buf.length - TAG_BYTES);
  const associated = Buffer.concat([header, encodeAad(aad)]);
  try {
    const decipher = createDecipheriv('aes-256-gcm', key.key, nonce, { authTagLength: TAG_BYTES });
    decipher.setAAD(associated);
    decipher.setAuthTag(tag);
    return Buffer.concat([decipher.update(body), decipher.final()]);
  } catch {
    // Node's own message ("Unsupported state or unable to authenticate data") carries no secret,
    // but we do not chain it: nothing downstream needs it and it keeps the log line short.
    throw new DecryptionError(
      'authentication_failed',
      `ciphertext failed authentication for ${aad.table}.${aad.column} (tampered, wrong key, or wrong row)`,
    );
  }
}
