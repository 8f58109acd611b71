import { describe, it, expect } from 'vitest';
import { Webhook } from 'standardwebhooks';
import {
  generateWebhookSecret,
  parseWebhookSecret,
  isValidWebhookSecret,
  webhookSecretSchema,
  InvalidWebhookSecretError,
} from './webhook-secret.js';

const b64 = (n: number, fill = 7) => Buffer.alloc(n, fill).toString('base64');

describe('webhook secrets', () => {
  it('generates distinct whsec_ secrets carrying 32 random bytes', () => {
    const a = generateWebhookSecret();
    const b = generateWebhookSecret();
    expect(a).toMatch(/^whsec_[A-Za-z0-9+/]+=*$/);
    expect(a).not.toBe(b);
    expect(parseWebhookSecret(a)).toHaveLength(32);
  });

  it('uses the injected randomness', () => {
    const secret = generateWebhookSecret((n) => Buffer.alloc(n, 1));
    expect(secret).toBe(`whsec_${b64(32, 1)}`);
  });

  it('is accepted by the standardwebhooks reference library', () => {
    const secret = generateWebhookSecret();
    const wh = new Webhook(secret);
    const sig = wh.sign('msg_1', new Date(), '{}');
    expect(sig).toMatch(/^v1,/);
  });

  it('accepts keys from 24 to 64 bytes and rejects the rest with a reason', () => {
    expect(isValidWebhookSecret(`whsec_${b64(24)}`)).toBe(true);
    expect(isValidWebhookSecret(`whsec_${b64(64)}`)).toBe(true);
    const problem = (s: string) => {
      try {
        parseWebhookSecret(s);
        return 'ok';
      } catch (err) {
        expect(err).toBeInstanceOf(InvalidWebhookSecretError);
        return (err as InvalidWebhookSecretError).problem;
      }
    };
    expect(problem(`whsec_${b64(23)}`)).toBe('too_short');
    expect(problem(`whsec_${b64(65)}`)).toBe('too_long');
    expect(problem(b64(32))).toBe('missing_prefix');
    expect(problem('whsec_not*base64!')).toBe('not_base64');
    expect(problem('whsec_')).toBe('not_base64');
    // base64url alphabet is not what the spec and the reference library use
    expect(problem(`whsec_${Buffer.alloc(32, 0xfb).toString('base64url')}`)).toBe('not_base64');
  });

  it('never echoes the secret in errors or zod issues', () => {
    const bad = `whsec_${b64(10)}`;
    const parsed = webhookSecretSchema.safeParse(bad);
    expect(parsed.success).toBe(false);
    expect(JSON.stringify(parsed.error?.issues)).not.toContain(b64(10));
    expect(() => parseWebhookSecret(bad)).toThrow(/too_short/);
    try {
      parseWebhookSecret(bad);
    } catch (err) {
      expect(String((err as Error).message)).not.toContain(b64(10));
    }
    expect(webhookSecretSchema.safeParse(generateWebhookSecret()).success).toBe(true);
  });
});
