import { describe, expect, it } from 'vitest';
import { createSigningKey, signJwt, type SigningKey } from '../sandbox/google/google-signing-key.js';
import { SetVerifier, type SetVerificationError } from './set-verifier.js';

const AUD = 'client.apps.googleusercontent.com';
const ISS = 'https://accounts.google.com/';
const NOW = new Date('2026-11-29T06:00:00Z');
const EVENTS = { 'https://schemas.openid.net/secevent/oauth/event-type/tokens-revoked': { subject: { subject_type: 'email', email: 'a@example.com' } } };

function verifier(keys: SigningKey[], counter = { fetches: 0 }) {
  const fakeFetch = (async () => {
    counter.fetches++;
    return new Response(JSON.stringify({ keys: keys.map((k) => k.jwk) }), { headers: { 'content-type': 'application/json' } });
  }) as typeof fetch;
  return new SetVerifier({ jwksUrl: 'https://issuer.example/jwks', issuers: [ISS], audiences: [AUD], clock: () => NOW, fetch: fakeFetch });
}

const claims = (over: Record<string, unknown> = {}) => ({ iss: ISS, aud: AUD, iat: Math.floor(NOW.getTime() / 1000), jti: 'j1', events: EVENTS, ...over });
const code = (p: Promise<unknown>) => p.then(() => 'ok', (e: SetVerificationError) => e.code);

describe('SetVerifier', () => {
  const key = createSigningKey();

  it('accepts a SET signed by a published key for our audience', async () => {
    const c = await verifier([key]).verify(signJwt(key, claims({ aud: ['other', AUD] })));
    expect(c.jti).toBe('j1');
    expect(Object.keys(c.events)).toEqual(Object.keys(EVENTS));
  });

  it('rejects a forged signature, another issuer or audience, and stale or future tokens', async () => {
    const v = verifier([key]);
    const forger = createSigningKey();
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
    const stranger = createSigningKey();
    expect(await code(v.verify(signJwt(stranger, claims())))).toBe('unknown_key');
    expect(await code(v.verify(signJwt(stranger, claims())))).toBe('unknown_key');
    // Both unknown kids arrived within a minute of the last fetch: no fetch storm from forged kids.
    expect(counter.fetches).toBe(1);
  });
});
