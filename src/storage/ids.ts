import { randomBytes } from 'node:crypto';

/**
 * Prefixed, time-sortable ids (`msg_01JD…`), in the spirit of Stripe's: the prefix says what an id
 * is in a log line or a support ticket, and sorting by id sorts by creation time, which is what
 * keyset ("cursor") pagination needs. 48 bits of milliseconds + 80 random bits, Crockford base32.
 */
export const ID_PREFIXES = {
  tenant: 'ten',
  apiKey: 'key',
  dataKey: 'dek',
  mailbox: 'mbx',
  connectSession: 'cs',
  message: 'msg',
  messageAddress: 'mad',
  attachment: 'att',
  blob: 'blb',
  event: 'evt',
  webhookEndpoint: 'we',
  delivery: 'dlv',
  deliveryAttempt: 'dat',
  outbound: 'out',
  audit: 'aud',
  purge: 'prg',
  breakGlass: 'bgs',
  workerHeartbeat: 'wkr',
  organizationInstall: 'oin',
} as const;

export type IdKind = keyof typeof ID_PREFIXES;

const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

function encodeBase32(bytes: Uint8Array): string {
  let out = '';
  let buffer = 0;
  let bits = 0;
  for (const byte of bytes) {
    buffer = (buffer << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += ALPHABET[(buffer >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += ALPHABET[(buffer << (5 - bits)) & 31];
  return out;
}

export function newId(kind: IdKind, now: number = Date.now()): string {
  const bytes = new Uint8Array(16);
  let ms = now;
  for (let i = 5; i >= 0; i--) {
    bytes[i] = ms % 256;
    ms = Math.floor(ms / 256);
  }
  bytes.set(random10(), 6);
  return `${ID_PREFIXES[kind]}_${encodeBase32(bytes)}`;
}

// Random bits come from a pooled CSPRNG buffer: one randomBytes call per 409 ids instead of one
// each (a message listing 25,000 participants needs as many ids).
let randomPool = Buffer.alloc(0);
let randomOffset = 0;
function random10(): Buffer {
  if (randomOffset + 10 > randomPool.length) {
    randomPool = randomBytes(4096);
    randomOffset = 0;
  }
  const out = randomPool.subarray(randomOffset, randomOffset + 10);
  randomOffset += 10;
  return out;
}

const ID_PATTERN = /^[a-z]{2,4}_[0-9A-HJKMNP-TV-Z]{26}$/;

/** True when `value` looks like an id of `kind` (cheap pre-check before a database lookup). */
export function isId(kind: IdKind, value: string): boolean {
  return ID_PATTERN.test(value) && value.startsWith(`${ID_PREFIXES[kind]}_`);
}
