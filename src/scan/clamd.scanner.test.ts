import { createServer, type Server } from 'node:net';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { ClamdScanner, parseReply } from './clamd.scanner.js';

describe('parseReply (clamd wire replies, clamd/scanner.c)', () => {
  it('maps each reply to a verdict', () => {
    expect(parseReply('stream: OK\0')).toEqual({ status: 'clean' });
    expect(parseReply('stream: Eicar-Test-Signature.UNOFFICIAL FOUND\0')).toEqual({
      status: 'infected',
      signature: 'Eicar-Test-Signature.UNOFFICIAL',
    });
    expect(parseReply('INSTREAM size limit exceeded. ERROR\0')).toEqual({ status: 'error', reason: 'too_large' });
    expect(parseReply('')).toEqual({ status: 'error', reason: 'protocol' });
    expect(parseReply('stream: lstat() failed ERROR')).toEqual({ status: 'error', reason: 'protocol' });
  });

  it('never lets a reply that is not exactly "stream: OK" count as clean', () => {
    for (const reply of ['stream: OKAY', 'OK', 'stream: ok', 'PONG', 'stream: OK FOUND']) {
      expect(parseReply(reply).status).not.toBe('clean');
    }
  });
});

describe('ClamdScanner failure modes (fake clamd on a unix socket)', () => {
  const servers: Server[] = [];
  afterEach(() => servers.splice(0).forEach((s) => s.close()));

  function fakeClamd(onConnection: Parameters<typeof createServer>[1]): string {
    const path = join(mkdtempSync(join(tmpdir(), 'fake-clamd-')), 's');
    const server = createServer(onConnection!);
    server.listen(path);
    servers.push(server);
    return path;
  }

  it('answers unreachable when nothing listens', async () => {
    const scanner = new ClamdScanner({ socket: join(tmpdir(), 'no-such-clamd.sock') });
    expect(await scanner.scan(Readable.from([Buffer.from('x')]))).toEqual({ status: 'error', reason: 'unreachable' });
    expect(await scanner.ping()).toBe(false);
  });

  it('answers timeout when clamd accepts but never replies', async () => {
    const socket = fakeClamd((conn) => conn.resume());
    const scanner = new ClamdScanner({ socket, idleTimeoutMs: 200, scanTimeoutMs: 400 });
    const started = Date.now();
    expect(await scanner.scan(Readable.from([Buffer.from('hello')]))).toEqual({ status: 'error', reason: 'timeout' });
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  it('drains the content even when it gives up early, so a teed reader is not stalled', async () => {
    const scanner = new ClamdScanner({ socket: join(tmpdir(), 'no-such-clamd.sock') });
    const content = Readable.from([Buffer.alloc(1000), Buffer.alloc(1000)]);
    await scanner.scan(content);
    await new Promise((r) => setImmediate(r));
    expect(content.readableEnded).toBe(true);
  });

  it('rejects a config without socket or port, naming the problem', () => {
    expect(() => new ClamdScanner({})).toThrow(/socket path or a TCP port/);
  });
});
