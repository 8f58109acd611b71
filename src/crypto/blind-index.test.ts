import { createSecretKey, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { BlindIndex, normalizeEmailAddress, normalizeMessageId } from './blind-index.js';
import { SYSTEM_BLIND_INDEX_OWNER } from './data-key.port.js';
import { DataKeyService } from './data-key.service.js';
import { InMemoryDataKeyStore } from './in-memory-data-key.store.js';
import { parseKeyring } from './keyring.js';

const systemKeyBytes = randomBytes(32);
const index = () => new BlindIndex(createSecretKey(systemKeyBytes));

describe('BlindIndex', () => {
  it('is deterministic across instances (processes) given the same system key', () => {
    expect(index().emailIndex('jane@example.com')).toBe(index().emailIndex('jane@example.com'));
    expect(index().messageIdIndex('<a@b>')).toBe(index().messageIdIndex('<a@b>'));
    expect(index().emailIndex('jane@example.com')).toMatch(/^[0-9a-f]{64}$/);
  });

  it('differs under another system key, so it cannot be precomputed without the key', () => {
    const other = new BlindIndex(createSecretKey(randomBytes(32)));
    expect(other.emailIndex('jane@example.com')).not.toBe(index().emailIndex('jane@example.com'));
  });

  it('matches email addresses case-insensitively and ignoring surrounding space and brackets', () => {
    const bi = index();
    const ref = bi.emailIndex('jane.doe@example.com');
    for (const v of ['Jane.Doe@Example.COM', '  jane.doe@example.com\t', '<JANE.DOE@EXAMPLE.COM>']) expect(bi.emailIndex(v)).toBe(ref);
  });

  it('keeps Gmail dots and plus tags: exact addresses only', () => {
    const bi = index();
    const ref = bi.emailIndex('janedoe@gmail.com');
    expect(bi.emailIndex('jane.doe@gmail.com')).not.toBe(ref);
    expect(bi.emailIndex('janedoe+shop@gmail.com')).not.toBe(ref);
    expect(bi.emailIndex('jane@example.com')).not.toBe(bi.emailIndex('jane@example.org'));
  });

  it('matches an internationalised domain in Unicode and punycode form', () => {
    const bi = index();
    expect(bi.emailIndex('Jürgen@Bücher.de')).toBe(bi.emailIndex('jürgen@xn--bcher-kva.de'));
    // NFC: a precomposed ü and u + combining diaeresis are the same address.
    expect(bi.emailIndex('j\u00fcrgen@example.de')).toBe(bi.emailIndex('ju\u0308rgen@example.de'));
  });

  it('uses a distinct key per purpose: the same string indexes differently as address and Message-ID', () => {
    const bi = index();
    expect(bi.emailIndex('abc@host.example')).not.toBe(bi.messageIdIndex('abc@host.example'));
  });

  it('normalises Message-IDs by stripping brackets and space but keeping case', () => {
    const bi = index();
    expect(bi.messageIdIndex(' <CAF=x1@mail.gmail.com> ')).toBe(bi.messageIdIndex('CAF=x1@mail.gmail.com'));
    expect(bi.messageIdIndex('<CAF=x1@mail.gmail.com>')).not.toBe(bi.messageIdIndex('<caf=x1@mail.gmail.com>'));
    expect(normalizeMessageId('< id@host >')).toBe('id@host');
  });

  it('rejects empty input instead of indexing everything empty together', () => {
    expect(() => normalizeEmailAddress('   ')).toThrow(TypeError);
    expect(() => normalizeEmailAddress('<>')).toThrow(TypeError);
    expect(() => normalizeMessageId('<>')).toThrow(TypeError);
  });

  it('is stable across KEK rotation when built from the system DEK', async () => {
    const store = new InMemoryDataKeyStore();
    const k1 = randomBytes(32).toString('base64');
    const k2 = randomBytes(32).toString('base64');
    const before = new DataKeyService(parseKeyring(`1:${k1}`), store);
    const idx1 = new BlindIndex((await before.getOrCreate(SYSTEM_BLIND_INDEX_OWNER)).key).emailIndex('ops@example.com');
    await new DataKeyService(parseKeyring(`2:${k2},1:${k1}`), store).rotate();
    const after = new DataKeyService(parseKeyring(`2:${k2}`), store);
    const idx2 = new BlindIndex((await after.get(SYSTEM_BLIND_INDEX_OWNER)).key).emailIndex('OPS@example.com');
    expect(idx2).toBe(idx1);
  });
});
