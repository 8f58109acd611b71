import { createHmac, createSecretKey, hkdfSync, KeyObject } from 'node:crypto';
import { domainToASCII } from 'node:url';

/** Purposes with their own derived key, so an index of one kind never matches another kind. */
export type BlindIndexPurpose = 'email-address' | 'message-id';

/** The HMAC key of each purpose (derived from the system DEK). */
export type BlindIndexKeys = Readonly<Record<BlindIndexPurpose, KeyObject>>;

// Fixed HKDF salt: the input key is already uniformly random (a DEK), so the salt only
// separates this use from any other future derivation from the same key (RFC 5869 §3.1).
const HKDF_SALT = Buffer.from('mbc.blind-index.v1', 'ascii');

/**
 * Deterministic keyed hashes (HMAC-SHA256, hex) for exact-match lookups over encrypted columns:
 * "which mailboxes/messages involve jane@example.com" without storing the address in clear.
 *
 * Keys are derived with HKDF-SHA256 from the `system` DEK (`SYSTEM_BLIND_INDEX_OWNER`), so the
 * index is the same in every process and survives KEK rotation (which never changes DEK bytes).
 * Build it once at start: `new BlindIndex((await dataKeys.getOrCreate(SYSTEM_BLIND_INDEX_OWNER)).key)`.
 */
export class BlindIndex {
  readonly #keys: ReadonlyMap<BlindIndexPurpose, KeyObject>;

  /**
   * From the system DEK (the keys are derived here), or from the derived keys of another instance
   * (`derivedKeys`): a parse worker thread of the same process computes the same indexes off the
   * event loop (KeyObjects are cloned across threads by postMessage; the bytes never leave the
   * process).
   */
  constructor(systemKey: KeyObject | BlindIndexKeys) {
    if (!(systemKey instanceof KeyObject)) {
      this.#keys = new Map([
        ['email-address', systemKey['email-address']],
        ['message-id', systemKey['message-id']],
      ]);
      return;
    }
    const ikm = systemKey.export();
    try {
      const derive = (purpose: BlindIndexPurpose): KeyObject =>
        createSecretKey(Buffer.from(hkdfSync('sha256', ikm, HKDF_SALT, Buffer.from(purpose, 'ascii'), 32)));
      this.#keys = new Map([
        ['email-address', derive('email-address')],
        ['message-id', derive('message-id')],
      ]);
    } finally {
      ikm.fill(0);
    }
  }

  /** The derived per-purpose keys, for `new BlindIndex(keys)` in a worker thread of this process. */
  get derivedKeys(): BlindIndexKeys {
    return { 'email-address': this.#keys.get('email-address')!, 'message-id': this.#keys.get('message-id')! };
  }

  /** Index of an email address after `normalizeEmailAddress`. */
  emailIndex(address: string): string {
    return this.#mac('email-address', normalizeEmailAddress(address));
  }

  /** Index of a Message-ID after `normalizeMessageId`. */
  messageIdIndex(messageId: string): string {
    return this.#mac('message-id', normalizeMessageId(messageId));
  }

  #mac(purpose: BlindIndexPurpose, value: string): string {
    return createHmac('sha256', this.#keys.get(purpose)!).update(value, 'utf8').digest('hex');
  }
}

/**
 * Trim, Unicode NFC, lower-case the whole address, and write an internationalised domain in its
 * ASCII (punycode) form so `bücher.de` and `xn--bcher-kva.de` match.
 *
 * Lower-casing the local part is technically lossy (RFC 5321 lets it be case-sensitive) but no
 * real mailbox provider treats it so, and for erasure requests over-matching case variants is the
 * safe side. Gmail's dots and `+tags` are deliberately KEPT: they are Gmail-only rules (wrong for
 * every other domain, and Workspace domains are not recognisable by name), and a data subject
 * asking about `a+shop@` has not necessarily asked about `a@`. Lookups are exact.
 */
export function normalizeEmailAddress(address: string): string {
  let value = address.trim().normalize('NFC');
  if (value.startsWith('<') && value.endsWith('>')) value = value.slice(1, -1).trim();
  if (value === '') throw new TypeError('email address is empty');
  const at = value.lastIndexOf('@');
  if (at <= 0 || at === value.length - 1) return value.toLowerCase();
  const local = value.slice(0, at).toLowerCase();
  const domain = value.slice(at + 1).toLowerCase();
  // domainToASCII returns '' for something that is not a valid domain; keep it as typed then.
  const ascii = domainToASCII(domain);
  return `${local}@${ascii === '' ? domain : ascii}`;
}

/**
 * Trim and strip one pair of angle brackets (`<id@host>` → `id@host`). Case is kept: RFC 5322
 * Message-IDs are compared literally, and providers echo them byte for byte.
 */
export function normalizeMessageId(messageId: string): string {
  let value = messageId.trim();
  if (value.startsWith('<') && value.endsWith('>')) value = value.slice(1, -1).trim();
  if (value === '') throw new TypeError('Message-ID is empty');
  return value;
}
