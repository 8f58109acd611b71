import { createServer, type Server } from 'node:net';
import { readFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort, startTestService, type TestService } from '../helpers/test-service.js';

// The suite's services listen on ports picked before they start. A CI run once failed because the
// port, handed out by the kernel, was taken meanwhile (EADDRINUSE): these are the two guards.

const listen = (port: number) =>
  new Promise<Server>((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(port, '127.0.0.1', () => resolve(s));
  });
const close = (s: Server) => new Promise<void>((r) => s.close(() => r()));

describe('test service ports', () => {
  const open: Array<() => Promise<void>> = [];
  afterAll(async () => {
    for (const c of open.reverse()) await c();
  });

  it('freePort gives a port below the range outgoing connections take their local ports from, free to listen on', async () => {
    const [ephemeralLow] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    const ports = await Promise.all(Array.from({ length: 20 }, () => freePort()));
    for (const port of ports) {
      expect(port).toBeGreaterThanOrEqual(20_000);
      expect(port).toBeLessThan(Math.min(ephemeralLow!, 32_768));
    }
    const s = await listen(ports[0]!);
    await close(s);
  });

  it('a service whose port was taken before it listened starts on another one and answers there', async () => {
    const taken = await freePort();
    const squatter = await listen(taken);
    open.push(() => close(squatter));
    const svc: TestService = await startTestService({ firstPort: taken, workers: false });
    open.push(() => svc.close());
    expect(svc.port).not.toBe(taken);
    expect(svc.url).toBe(`http://127.0.0.1:${svc.port}`);
    expect(svc.config.http.publicUrl).toBe(svc.url);
    const res = await fetch(`${svc.url}/healthz`);
    expect(res.status).toBe(200);
  });
});
