import { createSecretKey, randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { KeyringError } from './crypto-error.js';
import { DEV_KEYRING_FILE, generateKeyringEntry, Keyring, loadOrCreateDevKeyring, parseKeyring, resolveKeyring } from './keyring.js';

const k32 = () => randomBytes(32).toString('base64');

function parseError(value: string): KeyringError {
  try {
    parseKeyring(value);
  } catch (err) {
    expect(err).toBeInstanceOf(KeyringError);
    return err as KeyringError;
  }
  throw new Error('expected parseKeyring to throw');
}

describe('parseKeyring', () => {
  it('parses versions in order, first entry active, keys usable and distinct', () => {
    const a = randomBytes(32);
    const b = randomBytes(32);
    const ring = parseKeyring(` 3:${a.toString('base64')} , 1:${b.toString('base64url')}`);
    expect(ring.activeVersion).toBe(3);
    expect(ring.versions).toEqual([3, 1]);
    expect(ring.get(3).export().equals(a)).toBe(true);
    expect(ring.get(1).export().equals(b)).toBe(true);
    expect(ring.has(2)).toBe(false);
    expect(() => ring.get(2)).toThrow(/KEK version 2 is not in the key ring/);
  });

  it.each([
    ['empty string', '', /is empty/, undefined],
    ['stray comma', `1:${k32()},`, /entry #2 is empty/, 2],
    ['missing colon', `1:${k32()},${k32()}`, /entry #2 is not of the form/, 2],
    ['version zero', `0:${k32()}`, /entry #1: version must be a positive integer/, 1],
    ['negative version', `-1:${k32()}`, /entry #1: version must be a positive integer/, 1],
    ['non-numeric version', `v1:${k32()}`, /entry #1: version must be a positive integer/, 1],
    ['version above uint32', `4294967296:${k32()}`, /entry #1: version must be a positive integer/, 1],
    ['duplicate version', `2:${k32()},2:${k32()}`, /entry #2: version 2 already used by entry #1/, 2],
    ['not base64', `1:${k32()},2:not*base64!`, /entry #2 \(version 2\): key is not valid base64/, 2],
    ['16-byte key', `1:${randomBytes(16).toString('base64')}`, /entry #1 \(version 1\): key must decode to exactly 32 bytes, got 16/, 1],
    ['33-byte key', `1:${randomBytes(33).toString('base64')}`, /got 33/, 1],
    ['all-zero key', `1:${Buffer.alloc(32).toString('base64')}`, /all zero bytes/, 1],
  ])('rejects %s, naming the position', (_name, value, message, position) => {
    const err = parseError(value);
    expect(err.message).toMatch(message);
    expect(err.position).toBe(position);
    expect(err.code).toBe('invalid_keyring');
  });

  it('never puts key material in the error message', () => {
    const good = k32();
    const short = randomBytes(31).toString('base64');
    for (const value of [`1:${good},2:${short}`, `1:${good},${short}`, `1:${good},1:${good}`, `x:${good}`]) {
      const err = parseError(value);
      expect(err.message).not.toContain(good);
      expect(err.message).not.toContain(short);
      expect(err.message).not.toContain(good.slice(0, 12));
      expect(err.message).not.toContain(short.slice(0, 12));
      expect(err.stack ?? '').not.toContain(good);
    }
  });

  it('does not reveal keys when logged or serialised', () => {
    const key = k32();
    const ring = parseKeyring(`7:${key}`);
    const hex = Buffer.from(key, 'base64').toString('hex');
    for (const text of [inspect(ring, { depth: 10 }), JSON.stringify(ring), String(ring)]) {
      expect(text).not.toContain(key);
      expect(text).not.toContain(hex);
    }
    expect(JSON.parse(JSON.stringify(ring))).toEqual({ activeVersion: 7, versions: [7] });
  });

  it('the constructor refuses bad versions and keys of the wrong size', () => {
    expect(() => new Keyring([{ version: 0, key: createSecretKey(randomBytes(32)) }])).toThrow(KeyringError);
    expect(() => new Keyring([{ version: 1, key: createSecretKey(randomBytes(16)) }])).toThrow(/not a 32-byte secret key/);
    expect(() => new Keyring([])).toThrow(/empty/);
  });

  it('round-trips a generated entry', () => {
    const ring = parseKeyring(`${generateKeyringEntry(5)},${generateKeyringEntry(4)}`);
    expect(ring.versions).toEqual([5, 4]);
  });
});

describe('loadOrCreateDevKeyring / resolveKeyring', () => {
  const dirs: string[] = [];
  const tmp = () => {
    const d = mkdtempSync(join(tmpdir(), 'mbc-keyring-'));
    dirs.push(d);
    return d;
  };
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  it('creates a 0600 key file on first start, warns loudly, and reuses it later', () => {
    const dir = join(tmp(), 'nested', 'data');
    const warnings: string[] = [];
    const first = loadOrCreateDevKeyring(dir, (m) => warnings.push(m));
    const path = join(dir, DEV_KEYRING_FILE);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(warnings.join('\n')).toMatch(/DEVELOPMENT key ring/);
    expect(warnings.join('\n')).toMatch(/ENCRYPTION_KEYS/);

    const second = loadOrCreateDevKeyring(dir, (m) => warnings.push(m));
    expect(second.activeVersion).toBe(first.activeVersion);
    expect(second.activeKey.export().equals(first.activeKey.export())).toBe(true);
    expect(warnings).toHaveLength(2); // warned on every start
    expect(readdirSync(dir)).toEqual([DEV_KEYRING_FILE]); // no temporary files left behind
    for (const w of warnings) expect(w).not.toContain(readFileSync(path, 'utf8').match(/1:(\S+)/)![1]);
  });

  it('warns when the key file is readable by others', () => {
    const dir = tmp();
    writeFileSync(join(dir, DEV_KEYRING_FILE), `# comment\n${generateKeyringEntry(2)}\n${generateKeyringEntry(1)}\n`);
    chmodSync(join(dir, DEV_KEYRING_FILE), 0o644);
    const warnings: string[] = [];
    const ring = loadOrCreateDevKeyring(dir, (m) => warnings.push(m));
    expect(ring.versions).toEqual([2, 1]);
    expect(warnings.some((w) => /readable by other users/.test(w))).toBe(true);
  });

  it('requires ENCRYPTION_KEYS in production and never writes a dev key there', () => {
    const dir = tmp();
    expect(() => resolveKeyring({ encryptionKeys: undefined, nodeEnv: 'production', dataDir: dir, warn: () => {} })).toThrow(
      /ENCRYPTION_KEYS is required when NODE_ENV=production/,
    );
    expect(() => statSync(join(dir, DEV_KEYRING_FILE))).toThrow();
  });

  it('prefers ENCRYPTION_KEYS when set, without touching DATA_DIR', () => {
    const dir = tmp();
    const ring = resolveKeyring({ encryptionKeys: `9:${k32()}`, nodeEnv: 'production', dataDir: dir, warn: () => {} });
    expect(ring.activeVersion).toBe(9);
    expect(() => statSync(join(dir, DEV_KEYRING_FILE))).toThrow();
  });
});
