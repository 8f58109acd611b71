/**
 * Errors raised by the crypto room. Callers branch on `code`, never on message text.
 *
 * Messages may name a key *version*, a ring *position*, an owner type/id or a table/column, but
 * never key material, plaintext, or anything derived from a secret. None of these is meant for
 * an API caller (`expose = false`): the HTTP layer answers a generic 500 and logs the code.
 */
export type CryptoErrorCode =
  | 'invalid_keyring' // ENCRYPTION_KEYS (or the dev key file) is malformed
  | 'unknown_kek_version' // a wrapped DEK names a KEK version that is not in the ring
  | 'key_destroyed' // the owner's DEK is gone (crypto-shredded, or never created)
  | 'not_destroyable' // refusing to destroy a key whose loss would break the whole system
  | DecryptionFailure;

export type DecryptionFailure =
  | 'truncated' // shorter than header + tag
  | 'bad_magic' // not one of our envelopes at all
  | 'unsupported_format' // an envelope format version this build does not know
  | 'key_version_mismatch' // sealed under another key version than the one offered
  | 'authentication_failed'; // GCM tag check failed: tampered, wrong key, or wrong AAD (indistinguishable by design)

export class CryptoError extends Error {
  override readonly name: string = 'CryptoError';
  readonly code: CryptoErrorCode;
  readonly expose = false;

  constructor(code: CryptoErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

export class KeyringError extends CryptoError {
  override readonly name = 'KeyringError';
  /** 1-based position of the offending entry in the ring, when the problem is one entry. */
  readonly position: number | undefined;

  constructor(message: string, position?: number) {
    super('invalid_keyring', message);
    this.position = position;
  }
}

export class UnknownKekVersionError extends CryptoError {
  override readonly name = 'UnknownKekVersionError';
  readonly kekVersion: number;

  constructor(kekVersion: number, context = '') {
    super(
      'unknown_kek_version',
      `KEK version ${kekVersion} is not in the key ring${context ? ` (${context})` : ''}; ` +
        'add it back to ENCRYPTION_KEYS (as a non-first entry) and retry',
    );
    this.kekVersion = kekVersion;
  }
}

export class DecryptionError extends CryptoError {
  override readonly name = 'DecryptionError';
  declare readonly code: DecryptionFailure;

  constructor(code: DecryptionFailure, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

export class KeyDestroyedError extends CryptoError {
  override readonly name = 'KeyDestroyedError';

  constructor(ownerType: string, ownerId: string) {
    super(
      'key_destroyed',
      `no data key for ${ownerType} ${ownerId}: it was destroyed (crypto-shredded) or never created`,
    );
  }
}

export function isCryptoError(err: unknown, code?: CryptoErrorCode): err is CryptoError {
  return err instanceof CryptoError && (code === undefined || err.code === code);
}
