import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * Constant-time equality for secrets of any length (API keys, webhook signatures, OAuth state).
 * Both sides are hashed first so `timingSafeEqual` always compares 32 bytes: neither the
 * content nor the *length* of the expected secret leaks through timing.
 */
export function constantTimeEqual(a: string | Uint8Array, b: string | Uint8Array): boolean {
  return timingSafeEqual(sha256(a), sha256(b));
}

export function sha256Hex(input: string | Uint8Array): string {
  return sha256(input).toString('hex');
}

/**
 * What we store for an API key or other bearer token: its SHA-256. Tokens carry ≥ 192 random
 * bits, so a plain fast hash is enough (no salt/KDF needed — that is for low-entropy passwords),
 * and it lets us look a key up by hash with a unique index.
 */
export function hashApiKey(token: string): string {
  return sha256Hex(token);
}

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const PREFIX_RE = /^[a-z][a-z0-9]*(?:_[a-z0-9]+)*_$/;
const CHECKSUM_CHARS = 6; // holds a 32-bit checksum (62^6 > 2^32): typos and truncation are caught before any lookup

/**
 * A recognisable bearer token: `<prefix><base62 random><base62 checksum>`, e.g.
 * `mbc_live_3x9…Qk2f1a`. Base62 keeps it one double-clickable word; the prefix lets secret
 * scanners and humans tell what leaked; the checksum (truncated SHA-256 of prefix + body) lets
 * `isWellFormedToken` reject garbage cheaply.
 */
export function generateToken(
  prefix: string,
  bytes = 32,
  random: (n: number) => Buffer = randomBytes,
): string {
  if (!PREFIX_RE.test(prefix)) throw new TypeError('token prefix must look like "abc_" or "abc_live_"');
  if (!Number.isInteger(bytes) || bytes < 24 || bytes > 64) throw new RangeError('token must have 24 to 64 random bytes');
  const body = toBase62(random(bytes), base62Length(bytes));
  return `${prefix}${body}${checksum(prefix, body)}`;
}

/** Shape and checksum check; says nothing about whether the token is valid for anyone. */
export function isWellFormedToken(token: string, prefix: string, bytes = 32): boolean {
  const bodyLength = base62Length(bytes);
  if (typeof token !== 'string' || !token.startsWith(prefix)) return false;
  if (token.length !== prefix.length + bodyLength + CHECKSUM_CHARS) return false;
  const body = token.slice(prefix.length, prefix.length + bodyLength);
  if (![...body].every((c) => BASE62.includes(c))) return false;
  return constantTimeEqual(token.slice(prefix.length + bodyLength), checksum(prefix, body));
}

/** A display hint safe for lists and logs: prefix + last 4 characters (`mbc_live_…f1a9`). */
export function redactToken(token: string, prefix: string): string {
  const tail = token.length > prefix.length + 8 ? token.slice(-4) : '';
  return `${token.startsWith(prefix) ? prefix : ''}…${tail}`;
}

function sha256(input: string | Uint8Array): Buffer {
  return createHash('sha256').update(input).digest();
}

function base62Length(bytes: number): number {
  return Math.ceil((bytes * 8) / Math.log2(62));
}

/** Fixed-width base62 (left-padded), so every token of a kind has the same length. */
function toBase62(buf: Uint8Array, width: number): string {
  let n = BigInt(`0x${Buffer.from(buf).toString('hex') || '0'}`);
  let out = '';
  while (n > 0n) {
    out = BASE62[Number(n % 62n)]! + out;
    n /= 62n;
  }
  return out.padStart(width, '0');
}

function checksum(prefix: string, body: string): string {
  const digest = sha256(`${prefix}${body}`);
  return toBase62(digest.subarray(0, 4), CHECKSUM_CHARS);
}
