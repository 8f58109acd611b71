import { createHash, createSign, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { selfSignedCertificate } from '../self-signed-certificate.js';

/**
 * The stand-in's RS256 key. Google publishes its ID-token / Pub/Sub-push signing keys at
 * https://www.googleapis.com/oauth2/v1/certs (PEM, keyed by `kid`) and /oauth2/v3/certs (JWKS);
 * google-auth-library's verifyIdToken fetches one of those, so serving our public key there lets
 * the real verification code path run unchanged.
 */
export interface SigningKey {
  readonly kid: string;
  readonly privateKey: KeyObject;
  /** Self-signed X.509 certificate PEM, the format Google serves at /oauth2/v1/certs. */
  readonly certificatePem: string;
  readonly jwk: { kty: string; n: string; e: string; kid: string; alg: 'RS256'; use: 'sig' };
}

export async function createSigningKey(): Promise<SigningKey> {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  const kid = createHash('sha1').update(spki).digest('hex');
  const now = Date.now();
  const { certPem: certificatePem } = await selfSignedCertificate({
    commonName: 'federated-signon.system.gserviceaccount.com',
    keyPair: { privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString() },
    notBefore: new Date(now - 3600_000),
    notAfter: new Date(now + 14 * 24 * 3600_000),
  });
  const exported = publicKey.export({ format: 'jwk' });
  return {
    kid,
    privateKey,
    certificatePem,
    jwk: { kty: 'RSA', n: String(exported.n), e: String(exported.e), kid, alg: 'RS256', use: 'sig' },
  };
}

/** `typ`: `JWT` for ID tokens and Pub/Sub push tokens, `secevent+jwt` for security event tokens (RFC 8417). */
export function signJwt(key: SigningKey, claims: Record<string, unknown>, typ = 'JWT'): string {
  const header = { alg: 'RS256', kid: key.kid, typ };
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
