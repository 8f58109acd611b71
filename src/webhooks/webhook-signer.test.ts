import { describe, it, expect } from 'vitest';
import { Webhook } from 'standardwebhooks';
import { signWebhook, WebhookSigningError } from './webhook-signer.js';
import { generateWebhookSecret } from './webhook-secret.js';

const body = JSON.stringify({ id: 'evt_1', type: 'message.received', data: { subject: 'héllo' } });

describe('signWebhook', () => {
  it('produces headers the standardwebhooks library verifies', () => {
    const secret = generateWebhookSecret();
    const headers = signWebhook({ msgId: 'evt_1', timestamp: new Date(), body, secrets: [secret] });
    expect(headers['webhook-id']).toBe('evt_1');
    expect(headers['webhook-timestamp']).toMatch(/^\d+$/);
    expect(headers['webhook-signature']).toMatch(/^v1,[A-Za-z0-9+/]+=*$/);
    expect(new Webhook(secret).verify(body, { ...headers })).toEqual(JSON.parse(body));
  });

  it('signs the exact bytes of a Buffer body identically to the string form', () => {
    const secret = generateWebhookSecret();
    const ts = new Date('2026-01-01T00:00:00Z');
    const fromString = signWebhook({ msgId: 'evt_2', timestamp: ts, body, secrets: [secret] });
    const fromBuffer = signWebhook({
      msgId: 'evt_2',
      timestamp: ts,
      body: Buffer.from(body, 'utf8'),
      secrets: [secret],
    });
    expect(fromBuffer).toEqual(fromString);
    expect(fromString['webhook-timestamp']).toBe('1767225600');
  });

  it('signs with every secret during rotation so both verify', () => {
    const next = generateWebhookSecret();
    const previous = generateWebhookSecret();
    const headers = signWebhook({
      msgId: 'evt_3',
      timestamp: new Date(),
      body,
      secrets: [next, previous, next],
    });
    expect(headers['webhook-signature'].split(' ')).toHaveLength(2);
    expect(() => new Webhook(next).verify(body, { ...headers })).not.toThrow();
    expect(() => new Webhook(previous).verify(body, { ...headers })).not.toThrow();
  });

  it('fails verification for a tampered body, another secret or a replayed old timestamp', () => {
    const secret = generateWebhookSecret();
    const headers = signWebhook({ msgId: 'evt_4', timestamp: new Date(), body, secrets: [secret] });
    expect(() => new Webhook(secret).verify(body.replace('héllo', 'hello'), { ...headers })).toThrow();
    expect(() => new Webhook(generateWebhookSecret()).verify(body, { ...headers })).toThrow();
    expect(() =>
      new Webhook(secret).verify(body, { ...headers, 'webhook-id': 'evt_other' }),
    ).toThrow();
    const old = signWebhook({
      msgId: 'evt_4',
      timestamp: new Date(Date.now() - 10 * 60_000),
      body,
      secrets: [secret],
    });
    expect(() => new Webhook(secret).verify(body, { ...old })).toThrow(/timestamp/i);
  });

  it('refuses ids that would break the dot-delimited signed content or the header', () => {
    const secrets = [generateWebhookSecret()];
    const ts = new Date();
    expect(() => signWebhook({ msgId: 'a.b', timestamp: ts, body, secrets })).toThrow(WebhookSigningError);
    expect(() => signWebhook({ msgId: 'a\r\nb', timestamp: ts, body, secrets })).toThrow(WebhookSigningError);
    expect(() => signWebhook({ msgId: '', timestamp: ts, body, secrets })).toThrow(WebhookSigningError);
    expect(() => signWebhook({ msgId: 'ok', timestamp: ts, body, secrets: [] })).toThrow(WebhookSigningError);
    expect(() => signWebhook({ msgId: 'ok', timestamp: new Date(NaN), body, secrets })).toThrow(WebhookSigningError);
    expect(() => signWebhook({ msgId: 'ok', timestamp: ts, body, secrets: ['whsec_short'] })).toThrow(/webhook secret/);
  });
});
