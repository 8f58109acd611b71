import { describe, it, expect } from 'vitest';
import { checkWebhookUrl, systemResolver, EgressDeniedError } from '../../src/webhooks/egress-guard.js';
import { createWebhookSender } from '../../src/webhooks/webhook-sender.js';

// Uses the real system resolver (getaddrinfo via dns.lookup): 'localhost' resolves from
// /etc/hosts on any machine, so these tests need no network.
describe('egress guard with the system resolver', () => {
  it('resolves localhost to loopback and refuses it when not allow-listed', async () => {
    const answers = await systemResolver('localhost');
    expect(answers.length).toBeGreaterThan(0);
    await expect(checkWebhookUrl('http://localhost:8080/hook', { production: false })).rejects.toMatchObject({
      code: 'forbidden_address',
      category: 'loopback',
    });
  });

  it('passes localhost when it is on the dev allow-list, pinning what DNS answered', async () => {
    const target = await checkWebhookUrl('http://localhost:8080/hook', {
      production: false,
      allowHosts: ['localhost'],
    });
    expect(target.host).toBe('localhost');
    expect(target.addresses.every((a) => a.address === '127.0.0.1' || a.address === '::1')).toBe(true);
  });

  it('reports a name under the reserved .invalid TLD as unresolvable', async () => {
    const err = await checkWebhookUrl('https://no-such-host.invalid/', { production: true }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EgressDeniedError);
    expect((err as EgressDeniedError).code).toBe('unresolvable');
  });

  it('never lets the sender reach a target the guard refused', async () => {
    // The dispatcher's contract: check, then send the pinned target. A refused URL yields no
    // target, so there is nothing the sender could be handed.
    const send = createWebhookSender({ version: 't' });
    const attempt = async (url: string) => {
      const target = await checkWebhookUrl(url, { production: false });
      return send({ target, headers: {}, body: '{}' });
    };
    for (const url of ['http://127.0.0.1:1/', 'http://[::1]:1/', 'http://169.254.169.254/', 'http://0x7f000001/']) {
      await expect(attempt(url)).rejects.toBeInstanceOf(EgressDeniedError);
    }
  });
});
