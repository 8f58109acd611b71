// SANDBOX=1 is for trying the connector on one machine: a webhook receiver on loopback is allowed
// by default (said once in the log at start), and where a URL is refused, the 422 names the
// setting that would allow it.
import { afterEach, describe, expect, it } from 'vitest';
import { startTestService, type TestService } from '../helpers/test-service.js';

let svc: TestService | undefined;
afterEach(async () => {
  await svc?.close();
  svc = undefined;
});

const LOOPBACK_LINE = 'SANDBOX=1: webhook receivers on this machine are allowed';

describe('webhook receivers on loopback', () => {
  it('with SANDBOX=1 and no WEBHOOK_ALLOWED_HOSTS: accepted, and the start log says so once', async () => {
    svc = await startTestService({ env: { SANDBOX: '1', WEBHOOK_ALLOWED_HOSTS: '' }, workers: false });
    const t = await svc.createTenant();
    for (const url of ['http://127.0.0.1:9999/hooks', 'http://localhost:9999/hooks', 'http://[::1]:9999/hooks']) {
      const res = await svc.api(t.apiKey, 'POST', '/v1/webhook-endpoints', { url });
      expect(res.status, `${url}: ${JSON.stringify(res.body)}`).toBe(201);
    }
    // Not every private address: only this machine.
    const lan = await svc.api(t.apiKey, 'POST', '/v1/webhook-endpoints', { url: 'http://10.1.2.3/hooks' });
    expect(lan.status).toBe(422);
    expect(svc.logs.filter((l) => l.includes(LOOPBACK_LINE))).toHaveLength(1);
  });

  it('an explicit WEBHOOK_ALLOWED_HOSTS replaces the sandbox default', async () => {
    svc = await startTestService({ env: { SANDBOX: '1', WEBHOOK_ALLOWED_HOSTS: 'hooks.internal.test' }, workers: false });
    const t = await svc.createTenant();
    const res = await svc.api(t.apiKey, 'POST', '/v1/webhook-endpoints', { url: 'http://127.0.0.1:9999/hooks' });
    expect(res.status).toBe(422);
    expect(svc.logs.some((l) => l.includes(LOOPBACK_LINE))).toBe(false);
  });

  it('without SANDBOX: refused with 422 url_not_allowed naming WEBHOOK_ALLOWED_HOSTS and the host to put in it', async () => {
    svc = await startTestService({ env: { WEBHOOK_ALLOWED_HOSTS: '' }, workers: false });
    const t = await svc.createTenant();
    const res = await svc.api(t.apiKey, 'POST', '/v1/webhook-endpoints', { url: 'http://127.0.0.1:9999/hooks' });
    expect(res.status).toBe(422);
    expect(res.body.error.code).toBe('url_not_allowed');
    expect(res.body.error.message).toContain('WEBHOOK_ALLOWED_HOSTS=127.0.0.1');
    expect(svc.logs.some((l) => l.includes(LOOPBACK_LINE))).toBe(false);
  });
});
