import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { ClamdScanner } from './clamd.scanner.js';
import { NullScanner } from './null.scanner.js';
import { createScanner } from './scanner.factory.js';

describe('createScanner', () => {
  it('falls back to NullScanner (pending, never clean) when clamd is not configured', async () => {
    const { scanner, configured } = createScanner({});
    expect(configured).toBe(false);
    expect(scanner).toBeInstanceOf(NullScanner);
    expect(await scanner.scan(Readable.from([Buffer.from('x')]))).toEqual({ status: 'not_configured' });
    expect(await scanner.ping()).toBe(false);
  });

  it('builds a clamd client from a socket or host+port', () => {
    expect(createScanner({ socket: '/run/clamd.sock' }).scanner).toBeInstanceOf(ClamdScanner);
    expect(createScanner({ host: 'clamd', port: 3310 })).toMatchObject({ configured: true });
  });
});
