import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, loadDotEnv } from './config.js';

const key = `1:${Buffer.alloc(32, 7).toString('base64')}`;

describe('loadConfig', () => {
  it('gives the embedded defaults for an empty development environment', () => {
    const c = loadConfig({});
    expect(c.database).toEqual({ url: undefined, dataDir: './data', embedded: true });
    expect(c.http.port).toBe(8080);
    expect(c.http.publicUrl).toBe('http://localhost:8080');
    expect(c.clamd).toEqual({ kind: 'none' });
    expect(c.sync.backfillDays).toBe(7);
  });

  it('puts the key store in a database of its own: derived on the same server, or KEYSTORE_URL, never the data database', () => {
    expect(loadConfig({}).keystore).toEqual({ url: undefined, derived: false });
    expect(loadConfig({ DATABASE_URL: 'postgresql://u:p@db.internal:5433/mail' }).keystore).toEqual({ url: 'postgresql://u:p@db.internal:5433/mail_keystore', derived: true });
    expect(loadConfig({ DATABASE_URL: 'postgresql://u@db/mail', KEYSTORE_URL: 'postgresql://k@keys/vault' }).keystore).toEqual({ url: 'postgresql://k@keys/vault', derived: false });
    const refuse = (env: Record<string, string>) => {
      try {
        loadConfig(env);
      } catch (e) {
        return e as ConfigError;
      }
      throw new Error('accepted');
    };
    const same = refuse({ DATABASE_URL: 'postgresql://u@db/mail', KEYSTORE_URL: 'postgresql://other:secret@DB:5432/mail' });
    expect(same.variable).toBe('KEYSTORE_URL');
    expect(same.message).toMatch(/another database/);
    expect(same.message).not.toContain('secret');
    expect(refuse({ KEYSTORE_URL: 'postgresql://k@keys/vault' }).message).toMatch(/needs DATABASE_URL/);
    expect(refuse({ DATABASE_URL: 'postgresql://u@db/mail', KEYSTORE_URL: 'mysql://k@keys/vault' }).variable).toBe('KEYSTORE_URL');
  });

  it('names the bad variable in one line, without echoing its value', () => {
    const err = (() => {
      try {
        loadConfig({ PORT: 'eighty', GOOGLE_CLIENT_SECRET: 'shh' });
      } catch (e) {
        return e as ConfigError;
      }
    })();
    expect(err).toBeInstanceOf(ConfigError);
    expect(err!.variable).toBe('PORT');
    expect(err!.message).toMatch(/^invalid configuration: PORT /);
    expect(err!.message).not.toContain('eighty');
    expect(err!.message.split('\n')).toHaveLength(1);
    expect(() => loadConfig({ DATABASE_URL: 'mysql://x/y' })).toThrow(/DATABASE_URL/);
    expect(() => loadConfig({ LOG_LEVEL: 'loud' })).toThrow(/LOG_LEVEL/);
  });

  it('refuses production without ENCRYPTION_KEYS or AUDIT_HMAC_KEYS, with the embedded database, or with the sandbox', () => {
    const AUDIT_HMAC_KEYS = `1:${Buffer.alloc(32, 7).toString('base64')}`;
    expect(() => loadConfig({ NODE_ENV: 'production', DATABASE_URL: 'postgresql://h/db', PUBLIC_URL: 'https://x.example', AUDIT_HMAC_KEYS })).toThrow(/ENCRYPTION_KEYS/);
    expect(() => loadConfig({ NODE_ENV: 'production', ENCRYPTION_KEYS: key, DATABASE_URL: 'postgresql://h/db', PUBLIC_URL: 'https://x.example' })).toThrow(/AUDIT_HMAC_KEYS is required/);
    expect(() => loadConfig({ NODE_ENV: 'production', ENCRYPTION_KEYS: key, AUDIT_HMAC_KEYS: '1:short', DATABASE_URL: 'postgresql://h/db', PUBLIC_URL: 'https://x.example' })).toThrow(/invalid configuration: AUDIT_HMAC_KEYS entry #1/);
    expect(() => loadConfig({ NODE_ENV: 'production', ENCRYPTION_KEYS: key, AUDIT_HMAC_KEYS, PUBLIC_URL: 'https://x.example' })).toThrow(/DATABASE_URL/);
    expect(() => loadConfig({ NODE_ENV: 'production', ENCRYPTION_KEYS: key, AUDIT_HMAC_KEYS, DATABASE_URL: 'postgresql://h/db', PUBLIC_URL: 'https://x.example', SANDBOX: '1' })).toThrow(/SANDBOX/);
    expect(() => loadConfig({ NODE_ENV: 'production', ENCRYPTION_KEYS: key, AUDIT_HMAC_KEYS, DATABASE_URL: 'postgresql://h/db', PUBLIC_URL: 'http://x.example' })).toThrow(/PUBLIC_URL/);
    const ok = loadConfig({ NODE_ENV: 'production', ENCRYPTION_KEYS: key, AUDIT_HMAC_KEYS, DATABASE_URL: 'postgresql://h/db', PUBLIC_URL: 'https://x.example/' });
    expect(ok.audit.anchorFile).toBe(path.join('./data', 'audit-anchors.jsonl'));
    expect(ok.production).toBe(true);
    expect(ok.http.publicUrl).toBe('https://x.example');
  });

  it('requires pairs of variables to come together', () => {
    expect(() => loadConfig({ CLAMD_HOST: 'clamd' })).toThrow(/CLAMD_PORT/);
    expect(loadConfig({ CLAMD_HOST: 'clamd', CLAMD_PORT: '3310' }).clamd).toMatchObject({ kind: 'tcp', host: 'clamd', port: 3310 });
    expect(loadConfig({ CLAMD_SOCKET: '/run/clamd.sock' }).clamd).toMatchObject({ kind: 'socket', socket: '/run/clamd.sock' });
    expect(() => loadConfig({ GOOGLE_CLIENT_ID: 'id' })).toThrow(/GOOGLE_CLIENT_SECRET/);
    expect(() => loadConfig({ MICROSOFT_CLIENT_ID: 'id' })).toThrow(/MICROSOFT_CLIENT_SECRET/);
    expect(() => loadConfig({ GOOGLE_PUBSUB_TOPIC: 'projects/p/topics/t' })).toThrow(/GOOGLE_PUBSUB_AUDIENCE/);
  });

  it('refuses a GMAIL_API_URL with a path (the Gmail client would silently call its origin instead)', () => {
    for (const url of ['https://proxy.example/gmail-api/', 'https://proxy.example/gmail-api', 'https://proxy.example/?x=1', 'https://user:pw@proxy.example/']) {
      expect(() => loadConfig({ GMAIL_API_URL: url })).toThrow(/GMAIL_API_URL must be an origin only .*https:\/\/proxy\.example\/gmail\/v1/);
    }
    expect(loadConfig({ GMAIL_API_URL: 'https://proxy.example' }).google.gmailApiUrl).toBe('https://proxy.example');
    expect(loadConfig({ GMAIL_API_URL: 'http://127.0.0.1:8443/' }).google.gmailApiUrl).toBe('http://127.0.0.1:8443/');
  });

  it('rejects a malformed ENCRYPTION_KEYS itself (not only later, when the key ring is built), naming the entry, not the key', () => {
    const cases = ['1:short', 'abc', `1:${Buffer.alloc(32, 7).toString('base64')},`, `0:${Buffer.alloc(32, 7).toString('base64')}`];
    for (const value of cases) {
      let err: unknown;
      try {
        loadConfig({ ENCRYPTION_KEYS: value });
      } catch (e) {
        err = e;
      }
      expect(err, value).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).variable).toBe('ENCRYPTION_KEYS');
      expect((err as ConfigError).message).toMatch(/^invalid configuration: ENCRYPTION_KEYS entry #\d/);
      expect((err as ConfigError).message).not.toContain('short');
    }
    expect(loadConfig({ ENCRYPTION_KEYS: key }).encryptionKeys).toBe(key);
  });
});

describe('loadDotEnv', () => {
  it('sets what the environment lacks, keeps what it has (even empty), and says which names it set', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'mbc-dotenv-'));
    try {
      const file = path.join(dir, '.env');
      writeFileSync(file, ['# comment', 'PORT=9090', 'LOG_LEVEL=debug', 'PUBLIC_URL="https://x.example"', 'export DATA_DIR=./elsewhere', 'GOOGLE_CLIENT_ID=from-file', ''].join('\n'));
      const env: NodeJS.ProcessEnv = { LOG_LEVEL: 'warn', GOOGLE_CLIENT_ID: '' };
      const loaded = loadDotEnv(file, env);
      expect(loaded?.path).toBe(file);
      expect(loaded?.applied.sort()).toEqual(['DATA_DIR', 'PORT', 'PUBLIC_URL']);
      expect(env).toEqual({ LOG_LEVEL: 'warn', GOOGLE_CLIENT_ID: '', PORT: '9090', PUBLIC_URL: 'https://x.example', DATA_DIR: './elsewhere' });
      expect(loadConfig(env).http).toMatchObject({ port: 9090, publicUrl: 'https://x.example' });
      expect(loadDotEnv(path.join(dir, 'missing.env'), env)).toBeUndefined();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
