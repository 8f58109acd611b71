import { createSecretKey, hkdfSync, randomBytes, type KeyObject } from 'node:crypto';
import { closeSync, existsSync, fsyncSync, linkSync, mkdirSync, openSync, readFileSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { KeyringError, UnknownKekVersionError } from './crypto-error.js';

/** Size of every KEK and DEK: AES-256. */
export const KEY_BYTES = 32;

/** Largest version we accept: versions travel as uint32 in envelope headers. */
const MAX_VERSION = 0xffff_ffff;

/** Name of the development key file under DATA_DIR. */
export const DEV_KEYRING_FILE = 'encryption-keys';

/**
 * The master keys (KEKs) that wrap data keys, by version. The first entry of ENCRYPTION_KEYS is
 * the active one (new wrappings use it); the others only unwrap until `keys rotate` has moved
 * every DEK off them.
 *
 * Safe rollout of a new KEK across several processes: first deploy it as a *second* entry
 * everywhere (every process can then unwrap with it), then move it to the front, then run
 * `keys rotate`, and only then drop the old entry. Dropping a version that still wraps a DEK makes
 * that owner's data unreadable until the key is put back.
 *
 * Keys are held as KeyObjects and the class hides its fields, so logging or serialising a Keyring
 * by accident prints versions only.
 */
export class Keyring {
  readonly #keys: ReadonlyMap<number, KeyObject>;
  readonly activeVersion: number;
  /** All versions, active first, in ring order. */
  readonly versions: readonly number[];

  constructor(entries: ReadonlyArray<{ version: number; key: KeyObject }>) {
    if (entries.length === 0) throw new KeyringError('key ring is empty');
    const keys = new Map<number, KeyObject>();
    for (const { version, key } of entries) {
      if (!Number.isInteger(version) || version < 1 || version > MAX_VERSION) {
        throw new KeyringError('key versions must be positive integers below 2^32');
      }
      if (key.type !== 'secret' || key.symmetricKeySize !== KEY_BYTES) {
        throw new KeyringError(`key version ${version} is not a ${KEY_BYTES}-byte secret key`);
      }
      if (keys.has(version)) throw new KeyringError(`key version ${version} appears twice`);
      keys.set(version, key);
    }
    this.#keys = keys;
    this.versions = Object.freeze(entries.map((e) => e.version));
    this.activeVersion = entries[0]!.version;
  }

  has(version: number): boolean {
    return this.#keys.has(version);
  }

  /** The KEK for `version`; throws `UnknownKekVersionError` if the ring does not hold it. */
  get(version: number): KeyObject {
    const key = this.#keys.get(version);
    if (!key) throw new UnknownKekVersionError(version);
    return key;
  }

  get activeKey(): KeyObject {
    return this.get(this.activeVersion);
  }

  toJSON(): { activeVersion: number; versions: readonly number[] } {
    return { activeVersion: this.activeVersion, versions: this.versions };
  }

  [inspect.custom](): string {
    return `Keyring { activeVersion: ${this.activeVersion}, versions: [${this.versions.join(', ')}] }`;
  }
}

const VERSION_RE = /^[1-9][0-9]{0,9}$/;
// Standard base64 (what `openssl rand -base64 32` prints) or base64url, padding optional.
const BASE64_RE = /^(?:[A-Za-z0-9+/]+|[A-Za-z0-9_-]+)={0,2}$/;

/**
 * Parses `version:base64(32 bytes)[,version:base64…]`. Whitespace around entries is ignored.
 * Errors name the 1-based entry position and, once parsed, its version, but never echo the entry:
 * a malformed entry is most likely a key pasted wrongly.
 */
export function parseKeyring(value: string, source = 'ENCRYPTION_KEYS'): Keyring {
  const raw = value.trim();
  if (raw === '') throw new KeyringError(`${source} is empty`);
  const entries: Array<{ version: number; key: KeyObject }> = [];
  const seen = new Map<number, number>();
  raw.split(',').forEach((part, index) => {
    const position = index + 1;
    const entry = part.trim();
    const where = `${source} entry #${position}`;
    if (entry === '') throw new KeyringError(`${where} is empty (stray comma?)`, position);
    const colon = entry.indexOf(':');
    if (colon < 0) throw new KeyringError(`${where} is not of the form version:base64key`, position);
    const versionText = entry.slice(0, colon).trim();
    const keyText = entry.slice(colon + 1).trim();
    if (!VERSION_RE.test(versionText) || Number(versionText) > MAX_VERSION) {
      throw new KeyringError(`${where}: version must be a positive integer below 2^32`, position);
    }
    const version = Number(versionText);
    const firstAt = seen.get(version);
    if (firstAt !== undefined) {
      throw new KeyringError(`${where}: version ${version} already used by entry #${firstAt}`, position);
    }
    seen.set(version, position);
    if (!BASE64_RE.test(keyText)) {
      throw new KeyringError(`${where} (version ${version}): key is not valid base64`, position);
    }
    const bytes = Buffer.from(keyText, keyText.includes('-') || keyText.includes('_') ? 'base64url' : 'base64');
    try {
      if (bytes.length !== KEY_BYTES) {
        throw new KeyringError(
          `${where} (version ${version}): key must decode to exactly ${KEY_BYTES} bytes, got ${bytes.length}`,
          position,
        );
      }
      // An all-zero key is a placeholder that slipped into config, not a key.
      if (bytes.every((b) => b === 0)) {
        throw new KeyringError(`${where} (version ${version}): key is all zero bytes`, position);
      }
      entries.push({ version, key: createSecretKey(bytes) });
    } finally {
      bytes.fill(0); // createSecretKey copied it
    }
  });
  return new Keyring(entries);
}

/**
 * A ring of keys derived from `ring` with HKDF-SHA-256 under `info`, one per version (same version
 * numbers, same active one), for a purpose that must not use the master keys themselves.
 */
export function deriveKeyring(ring: Keyring, info: string): Keyring {
  return new Keyring(
    ring.versions.map((version) => ({
      version,
      key: createSecretKey(Buffer.from(hkdfSync('sha256', ring.get(version).export(), Buffer.alloc(0), info, KEY_BYTES))),
    })),
  );
}

/** A fresh `version:base64` entry, e.g. for `keys generate` or the development key file. */
export function generateKeyringEntry(version: number, random: (n: number) => Buffer = randomBytes): string {
  if (!Number.isInteger(version) || version < 1 || version > MAX_VERSION) {
    throw new KeyringError('key version must be a positive integer below 2^32');
  }
  return `${version}:${random(KEY_BYTES).toString('base64')}`;
}

/**
 * Development only: reads `<dataDir>/encryption-keys`, creating it (mode 0600) with a generated
 * ring on first use. Warns on every start, because whoever can read that file next to the
 * database can read all the data.
 */
export function loadOrCreateDevKeyring(dataDir: string, warn: (message: string) => void): Keyring {
  const path = join(dataDir, DEV_KEYRING_FILE);
  mkdirSync(dataDir, { recursive: true });
  const created = createKeyFileOnce(path);
  const mode = statSync(path).mode & 0o777;
  if ((mode & 0o077) !== 0) {
    warn(`${path} is readable by other users (mode ${mode.toString(8)}); run: chmod 600 ${path}`);
  }
  const content = readFileSync(path, 'utf8')
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'))
    .join(',');
  const ring = parseKeyring(content, path);
  warn(
    `ENCRYPTION_KEYS is not set: ${created ? 'generated' : 'using'} a DEVELOPMENT key ring at ${path}. ` +
      'Anyone who can read that file can decrypt all stored mail and tokens. ' +
      'Set ENCRYPTION_KEYS (required when NODE_ENV=production).',
  );
  return ring;
}

/**
 * Writes a fresh ring to a temporary file, then hard-links it into place. `link` fails if the
 * target exists, so two processes starting at once agree on one ring, and a crash mid-write can
 * never leave a half-written key file behind (which would otherwise block every later start).
 */
function createKeyFileOnce(path: string): boolean {
  if (existsSync(path)) return false;
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  const fd = openSync(tmp, 'wx', 0o600);
  try {
    writeSync(
      fd,
      '# Development key ring generated by mailbox-connector. NOT FOR PRODUCTION.\n' +
        '# Same format as ENCRYPTION_KEYS (one entry per line allowed). Losing this file loses the data.\n' +
        `${generateKeyringEntry(1)}\n`,
    );
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  try {
    linkSync(tmp, path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  } finally {
    unlinkSync(tmp);
  }
}

/**
 * The start-up policy from CONTRACT.md in one place: ENCRYPTION_KEYS if set; otherwise fail in
 * production, or fall back to the development key file with a warning.
 */
export function resolveKeyring(opts: {
  encryptionKeys: string | undefined;
  nodeEnv: string | undefined;
  dataDir: string;
  warn: (message: string) => void;
}): Keyring {
  if (opts.encryptionKeys !== undefined && opts.encryptionKeys.trim() !== '') {
    return parseKeyring(opts.encryptionKeys);
  }
  if (opts.nodeEnv === 'production') {
    throw new KeyringError('ENCRYPTION_KEYS is required when NODE_ENV=production');
  }
  return loadOrCreateDevKeyring(opts.dataDir, opts.warn);
}
