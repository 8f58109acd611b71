import { createHash, createSign, generateKeyPairSync, type KeyObject } from 'node:crypto';

/**
 * The stand-in's RS256 key. Google publishes its ID-token / Pub/Sub-push signing keys at
 * https://www.googleapis.com/oauth2/v1/certs (PEM, keyed by `kid`) and /oauth2/v3/certs (JWKS);
 * google-auth-library's verifyIdToken fetches one of those, so serving our public key there lets
 * the real verification code path run unchanged.
 */
export interface SigningKey {
  readonly kid: string;
  readonly privateKey: KeyObject;
  /** SPKI PEM. Google serves X.509 certificates; node's verifier accepts either, and SPKI needs no CA. */
  readonly publicPem: string;
  readonly jwk: { kty: string; n: string; e: string; kid: string; alg: 'RS256'; use: 'sig' };
}

export function createSigningKey(): SigningKey {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const publicPem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
  const kid = createHash('sha1').update(publicPem).digest('hex');
  const exported = publicKey.export({ format: 'jwk' });
  return {
    kid,
    privateKey,
    publicPem,
    jwk: { kty: 'RSA', n: String(exported.n), e: String(exported.e), kid, alg: 'RS256', use: 'sig' },
  };
}

export function signJwt(key: SigningKey, claims: Record<string, unknown>): string {
  const header = { alg: 'RS256', kid: key.kid, typ: 'JWT' };
  const encode = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const signingInput = `${encode(header)}.${encode(claims)}`;
  const signature = createSign('RSA-SHA256').update(signingInput).end().sign(key.privateKey).toString('base64url');
  return `${signingInput}.${signature}`;
}

/** OIDC `at_hash`: left half of SHA-256 of the access token, base64url (OIDC Core 3.1.3.6). */
export function accessTokenHash(accessToken: string): string {
  const digest = createHash('sha256').update(accessToken).digest();
  return digest.subarray(0, digest.length / 2).toString('base64url');
}
