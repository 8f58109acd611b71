// Parsing never stalls the event loop: the real service (SANDBOX=1, pg-boss workers, the Google
// stand-in) backfills a mailbox full of pathological messages — a header block of about a megabyte
// (25,000 addresses on separate To: lines, four of them), 999 MIME parts, 990 attachments, deep nesting — while
// this test measures the event-loop delay (perf_hooks.monitorEventLoopDelay) and polls /healthz.
// Parsed on the event loop (before the worker pool) the event loop stalled for over a second per
// header message (8.7 s was seen under load); in the parse worker threads, health answers stay
// well under 1 s.
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GoogleSandbox } from '../../src/sandbox/google/google-sandbox.server.js';
import { generatedPathologicalMessages } from '../helpers/pathological-mail.js';
import { startTestService, type TestService } from '../helpers/test-service.js';
import { connectMailbox } from './connect-helpers.js';

let svc: TestService;
let gs: GoogleSandbox;
let apiKey: string;

beforeAll(async () => {
  svc = await startTestService({ env: { SANDBOX: '1', BACKFILL_DAYS: '7' } });
  gs = svc.services.access.settings.sandbox.google!;
  ({ apiKey } = await svc.createTenant());
}, 60_000);
afterAll(async () => {
  await svc?.close();
});

describe('ingest keeps the event loop free', () => {
  it('backfilling pathological messages leaves /healthz answering well under a second', async () => {
    const email = 'pathological@acme.test';
    gs.createUser(email);
    const messages = generatedPathologicalMessages();
    const ids = messages.map((raw) => gs.deliver(email, raw, { internalDate: Date.now() - 3_600_000 }).id);

    const delay = monitorEventLoopDelay({ resolution: 10 });
    const healthMs: number[] = [];
    let polling = true;
    const poller = (async () => {
      while (polling) {
        const t = performance.now();
        const res = await fetch(`${svc.url}/healthz`);
        await res.arrayBuffer();
        expect(res.status).toBe(200);
        healthMs.push(performance.now() - t);
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    delay.enable();
    let stored = 0;
    try {
      await connectMailbox(svc, apiKey, 'google', email);
      const deadline = Date.now() + 150_000;
      while (stored < messages.length && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 200));
        stored = await svc.core.prisma.message.count({ where: { providerMessageId: { in: ids } } });
      }
    } finally {
      delay.disable();
      polling = false;
      await poller;
    }

    expect(stored).toBe(messages.length);
    // The address-heavy message really was parsed (not cut): its participants are indexed.
    const addresses = await svc.core.prisma.messageAddress.count({ where: { role: 'to' } });
    expect(addresses).toBeGreaterThan(10_000);
    expect(healthMs.length).toBeGreaterThan(10);
    const maxHealth = Math.max(...healthMs);
    const maxDelayMs = delay.max / 1e6;
    console.log(`healthz: ${healthMs.length} polls, max ${maxHealth.toFixed(0)} ms; event-loop delay p99 ${(delay.percentile(99) / 1e6).toFixed(0)} ms, max ${maxDelayMs.toFixed(0)} ms`);
    expect(maxHealth).toBeLessThan(1000);
    expect(maxDelayMs).toBeLessThan(1000);
  }, 180_000);
});
