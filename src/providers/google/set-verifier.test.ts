import { beforeAll, describe, expect, it } from 'vitest';
import { createSigningKey, signJwt as signAnyJwt, type SigningKey } from '../../sandbox/google/google-signing-key.js';
import { SetVerifier, type SetVerificationError, type SetVerifierOptions } from './set-verifier.js';

const AUD = 'client.apps.googleusercontent.com';
const ISS = 'https://accounts.google.com/';
const NOW = new Date('2026-11-29T06:00:00Z');
const EVENTS = { 'https://schemas.openid.net/secevent/oauth/event-type/tokens-revoked': { subject: { subject_type: 'email', email: 'a@example.com' } } };

function verifier(keys: SigningKey[], counter = { fetches: 0 }, over: Partial<SetVerifierOptions> = {}) {
  const fakeFetch = (async () => {
    counter.fetches++;
    return new Response(JSON.stringify({ keys: keys.map((k) => k.jwk) }), { headers: { 'content-type': 'application/json' } });
  }) as typeof fetch;
  return new SetVerifier({ jwksUrl: 'https://issuer.example/jwks', issuers: [ISS], audiences: [AUD], clock: () => NOW, fetch: fakeFetch, ...over });
}

const signJwt = (key: SigningKey, c: Record<string, unknown>) => signAnyJwt(key, c, 'secevent+jwt');
const claims = (over: Record<string, unknown> = {}) => ({ iss: ISS, aud: AUD, iat: Math.floor(NOW.getTime() / 1000), jti: 'j1', events: EVENTS, ...over });
const code = (p: Promise<unknown>) => p.then(() => 'ok', (e: SetVerificationError) => e.code);

describe('SetVerifier', () => {
  let key: SigningKey;
  beforeAll(async () => {
    key = await createSigningKey();
  });

  it('accepts a SET signed by a published key for our audience', async () => {
    const c = await verifier([key]).verify(signJwt(key, claims({ aud: ['other', AUD] })));
    expect(c.jti).toBe('j1');
    expect(Object.keys(c.events)).toEqual(Object.keys(EVENTS));
  });

  it('rejects a forged signature, another issuer or audience, and stale or future tokens', async () => {
    const v = verifier([key]);
    const forger = await createSigningKey();
    // Same kid, other key: the signature does not verify.
    const forged = signJwt({ ...forger, kid: key.kid }, claims());
    expect(await code(v.verify(forged))).toBe('bad_signature');
    expect(await code(v.verify(signJwt(key, claims({ iss: 'https://evil.example/' }))))).toBe('bad_issuer');
    expect(await code(v.verify(signJwt(key, claims({ aud: 'someone-else' }))))).toBe('bad_audience');
    expect(await code(v.verify(signJwt(key, claims({ iat: Math.floor(NOW.getTime() / 1000) - 8 * 86_400 }))))).toBe('stale');
    expect(await code(v.verify(signJwt(key, claims({ iat: Math.floor(NOW.getTime() / 1000) + 3600 }))))).toBe('stale');
    expect(await code(v.verify('a.b'))).toBe('malformed');
  });

  it('refuses alg "none" and other algorithms before looking at keys', async () => {
    const header = Buffer.from(JSON.stringify({ alg: 'none', kid: key.kid })).toString('base64url');
    const body = Buffer.from(JSON.stringify(claims())).toString('base64url');
    expect(await code(verifier([key]).verify(`${header}.${body}.`))).toBe('unsupported_alg');
  });

  it('does not refetch the key set for every unknown kid (at most once a minute)', async () => {
    const counter = { fetches: 0 };
    const v = verifier([key], counter);
    await v.verify(signJwt(key, claims()));
    const stranger = await createSigningKey();
    expect(await code(v.verify(signJwt(stranger, claims())))).toBe('unknown_key');
    expect(await code(v.verify(signJwt(stranger, claims())))).toBe('unknown_key');
    // Both unknown kids arrived within a minute of the last fetch: no fetch storm from forged kids.
    expect(counter.fetches).toBe(1);
  });

  it('checks typ: a JWT typed as anything but secevent+jwt (an ID token) is not a SET; an untyped one is read', async () => {
    const v = verifier([key]);
    expect(await code(v.verify(signAnyJwt(key, claims(), 'JWT')))).toBe('bad_type');
    expect(await code(v.verify(signAnyJwt(key, claims(), 'at+jwt')))).toBe('bad_type');
    expect(await code(v.verify(signAnyJwt(key, claims(), 'application/secevent+jwt')))).toBe('ok');
  });

  it('judges iat on the injected clock, not the wall clock', async () => {
    const past = new Date('2020-01-01T00:00:00Z');
    const token = signJwt(key, claims({ iat: Math.floor(past.getTime() / 1000) }));
    expect(await code(verifier([key], undefined, { clock: () => past }).verify(token))).toBe('ok');
    expect(await code(verifier([key]).verify(token))).toBe('stale');
  });

  it('gives up on a JWKS that does not answer within the timeout (keys_unavailable, the route answers 503)', async () => {
    const hanging = ((_url: unknown, init?: RequestInit) =>
      new Promise((_resolve, reject) => init?.signal?.addEventListener('abort', () => reject(init.signal?.reason)))) as typeof fetch;
    const started = Date.now();
    const v = new SetVerifier({ jwksUrl: 'https://issuer.example/jwks', issuers: [ISS], audiences: [AUD], clock: () => NOW, fetch: hanging, fetchTimeoutMs: 200 });
    expect(await code(v.verify(signJwt(key, claims())))).toBe('keys_unavailable');
    expect(Date.now() - started).toBeLessThan(5000);
    const discovery = new SetVerifier({ discoveryUrl: 'https://issuer.example/.well-known/risc-configuration', issuers: [ISS], audiences: [AUD], clock: () => NOW, fetch: hanging, fetchTimeoutMs: 200 });
    expect(await code(discovery.verify(signJwt(key, claims())))).toBe('keys_unavailable');
  });

  it('requires jti and the events claim', async () => {
    const v = verifier([key]);
    expect(await code(v.verify(signJwt(key, { ...claims(), jti: undefined })))).toBe('malformed');
    expect(await code(v.verify(signJwt(key, { ...claims(), events: undefined })))).toBe('malformed');
  });
});
