import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from './config.js';

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

  it('refuses production without ENCRYPTION_KEYS, with the embedded database, or with the sandbox', () => {
    expect(() => loadConfig({ NODE_ENV: 'production', DATABASE_URL: 'postgresql://h/db', PUBLIC_URL: 'https://x.example' })).toThrow(/ENCRYPTION_KEYS/);
    expect(() => loadConfig({ NODE_ENV: 'production', ENCRYPTION_KEYS: key, PUBLIC_URL: 'https://x.example' })).toThrow(/DATABASE_URL/);
    expect(() => loadConfig({ NODE_ENV: 'production', ENCRYPTION_KEYS: key, DATABASE_URL: 'postgresql://h/db', PUBLIC_URL: 'https://x.example', SANDBOX: '1' })).toThrow(/SANDBOX/);
    expect(() => loadConfig({ NODE_ENV: 'production', ENCRYPTION_KEYS: key, DATABASE_URL: 'postgresql://h/db', PUBLIC_URL: 'http://x.example' })).toThrow(/PUBLIC_URL/);
    const ok = loadConfig({ NODE_ENV: 'production', ENCRYPTION_KEYS: key, DATABASE_URL: 'postgresql://h/db', PUBLIC_URL: 'https://x.example/' });
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
});
