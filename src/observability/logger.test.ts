import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { ProviderError } from '../providers/provider-error.js';
import { createLogger, scrubText, serializeError } from './logger.js';

function capture() {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString('utf8').split('\n').filter(Boolean)) lines.push(JSON.parse(l) as Record<string, unknown>);
      done();
    },
  });
  return { logger: createLogger({ level: 'info', destination: sink }), lines };
}

describe('scrubText (error-message policy)', () => {
  it.each([
    ['Authorization: Bearer abc.def-ghi', 'Bearer [redacted]', 'abc.def-ghi'],
    ['verification of eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl failed', '[redacted-jwt]', 'eyJhbGciOiJSUzI1NiJ9'],
    ['GET /token?code=4/0AeaYSHx&state=s1 failed', 'code=[redacted]', '4/0AeaYSHx'],
    ['refresh_token: "1//0gAbc"', '[redacted]', '1//0gAbc'],
    ['Invalid To header: carla@customer.example', '[email]', 'carla@customer.example'],
    ['key 3f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a leaked', '[redacted]', '3f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a'],
  ])('%s', (input, kept, gone) => {
    const out = scrubText(input);
    expect(out).toContain(kept);
    expect(out).not.toContain(gone);
  });

  it('keeps ordinary diagnostics and cuts long messages', () => {
    expect(scrubText('connect ECONNREFUSED 127.0.0.1:5432')).toBe('connect ECONNREFUSED 127.0.0.1:5432');
    expect(scrubText('x'.repeat(1000)).length).toBeLessThanOrEqual(301);
  });
});

describe('serializeError (allow-list)', () => {
  it('keeps type, code, status, provider kind/reason; drops everything else', () => {
    const err = Object.assign(new Error('Request failed with status code 403'), {
      code: '403',
      config: { headers: { Authorization: 'Bearer secret' }, data: 'raw mail' },
      response: { status: 403, data: { error: { errors: [{ reason: 'insufficientPermissions', message: 'Subject: payroll' }] } } },
    });
    const s = serializeError(err);
    expect(s).toMatchObject({ type: 'Error', code: '403', status: 403, reason: 'insufficientPermissions' });
    expect(JSON.stringify(s)).not.toMatch(/secret|raw mail|payroll/);
    const p = serializeError(new ProviderError('google', 'rate_limited', 'Google history.list: rate limited', { status: 429, reason: 'rateLimitExceeded', retryAfterMs: 1000 }));
    expect(p).toMatchObject({ type: 'ProviderError', kind: 'rate_limited', provider: 'google', status: 429, reason: 'rateLimitExceeded', retryAfterMs: 1000 });
  });

  it('follows causes three levels deep and no further (a cycle ends)', () => {
    const a = new Error('a') as Error & { cause?: unknown };
    const b = new Error('b', { cause: a });
    a.cause = b;
    const s = serializeError(new Error('top', { cause: b }));
    expect(s.cause?.cause?.cause?.message).toBe('b');
    expect(s.cause?.cause?.cause?.cause).toBeUndefined();
  });

  it('takes MSAL errorCode/subError as code/reason', () => {
    const msal = Object.assign(new Error('invalid_grant: AADSTS70000 for ana@contoso.test'), { errorCode: 'invalid_grant', subError: 'bad_token', correlationId: 'c-1' });
    expect(serializeError(msal)).toMatchObject({ code: 'invalid_grant', reason: 'bad_token', message: 'invalid_grant: AADSTS70000 for [email]' });
  });
});

describe('createLogger', () => {
  it('logger.error(err) without a message logs the scrubbed message as msg', () => {
    const { logger, lines } = capture();
    logger.error(Object.assign(new Error('refused Bearer tok123 for ana@acme.test'), { code: 'ECONNREFUSED' }));
    expect(lines[0]!.msg).toBe('refused Bearer [redacted] for [email]');
    expect((lines[0]!.err as { code: string }).code).toBe('ECONNREFUSED');
  });

  it('censors content and credential keys at any depth and case, and errors nested anywhere', () => {
    const { logger, lines } = capture();
    logger.info({ a: { b: { c: { d: { Subject: 'payroll', REFRESH_TOKEN: 'rt' } } } }, list: [{ err: new Error('x Bearer t') }], code: 'oauth-code' }, 'nested');
    const text = JSON.stringify(lines[0]);
    expect(text).not.toMatch(/payroll|"rt"|oauth-code|Bearer t"/);
    expect(text).toContain('"Subject":"[redacted]"');
  });
});
