import { createPublicKey, verify as verifySignature, type JsonWebKey, type KeyObject } from 'node:crypto';
import { z } from 'zod';

/**
 * Verifies a Security Event Token (RFC 8417: a signed JWT) from Google Cross-Account Protection
 * (provider-facts §2.3). google-auth-library's verifier insists on an `exp` claim, which SETs do
 * not carry, so the RS256 check is done here with node:crypto against the issuer's JWKS.
 *
 * Checked: alg RS256 with a known `kid`, signature, `iss` in the accepted list, `aud` = our OAuth
 * client id, `iat` not in the future (beyond skew) and not older than `maxAgeMs`, `jti` present.
 */
export interface SetVerifierOptions {
  /** JWKS URL (sandbox: the Google stand-in's /oauth2/v3/certs). When absent, `discoveryUrl` is read. */
  jwksUrl?: string | undefined;
  /** RISC discovery document (https://accounts.google.com/.well-known/risc-configuration): its `jwks_uri` is used. */
  discoveryUrl?: string;
  issuers: string[];
  audiences: string[];
  clock: () => Date;
  fetch?: typeof fetch;
  /** Reject events older than this (Google retries delivery for a while). Default 7 days. */
  maxAgeMs?: number;
  /** JWKS cache lifetime. Default 1 hour; an unknown kid forces a refresh at most once a minute. */
  jwksTtlMs?: number;
}

export class SetVerificationError extends Error {
  override readonly name = 'SetVerificationError';
  constructor(
    readonly code: 'malformed' | 'unsupported_alg' | 'unknown_key' | 'bad_signature' | 'bad_issuer' | 'bad_audience' | 'stale' | 'keys_unavailable',
    message: string,
  ) {
    super(message);
  }
}

const headerSchema = z.object({ alg: z.string(), kid: z.string().min(1), typ: z.string().optional() });
const subjectSchema = z
  .object({ subject_type: z.string(), iss: z.string().optional(), sub: z.string().optional(), email: z.string().optional(), token: z.string().optional() })
  .loose();
export const setClaimsSchema = z.object({
  iss: z.string(),
  aud: z.union([z.string(), z.array(z.string())]),
  iat: z.number(),
  jti: z.string().min(1).max(256),
  events: z.record(z.string(), z.object({ subject: subjectSchema.optional(), reason: z.string().optional(), state: z.string().optional() }).loose()),
});
export type SetClaims = z.infer<typeof setClaimsSchema>;

const jwksSchema = z.object({ keys: z.array(z.object({ kid: z.string(), kty: z.string() }).loose()) });
const discoverySchema = z.object({ jwks_uri: z.url() }).loose();
const SKEW_MS = 5 * 60_000;

export class SetVerifier {
  private keys = new Map<string, KeyObject>();
  private fetchedAt = 0;
  private lastAttempt = 0;
  private readonly fetch: typeof fetch;

  constructor(private readonly opts: SetVerifierOptions) {
    this.fetch = opts.fetch ?? fetch;
  }

  async verify(jwt: string): Promise<SetClaims> {
    const parts = jwt.trim().split('.');
    if (parts.length !== 3) throw new SetVerificationError('malformed', 'not a compact JWS');
    const [h, p, s] = parts as [string, string, string];
    const header = headerSchema.safeParse(decodeJson(h));
    if (!header.success) throw new SetVerificationError('malformed', 'bad JOSE header');
    if (header.data.alg !== 'RS256') throw new SetVerificationError('unsupported_alg', `alg ${header.data.alg} is not accepted`);
    const key = await this.key(header.data.kid);
    const ok = verifySignature('RSA-SHA256', Buffer.from(`${h}.${p}`), key, Buffer.from(s, 'base64url'));
    if (!ok) throw new SetVerificationError('bad_signature', 'signature does not verify');
    const claims = setClaimsSchema.safeParse(decodeJson(p));
    if (!claims.success) throw new SetVerificationError('malformed', 'claims are not a security event token');
    const c = claims.data;
    if (!this.opts.issuers.includes(c.iss)) throw new SetVerificationError('bad_issuer', 'issuer not accepted');
    const aud = Array.isArray(c.aud) ? c.aud : [c.aud];
    if (!aud.some((a) => this.opts.audiences.includes(a))) throw new SetVerificationError('bad_audience', 'audience is not this client');
    const now = this.opts.clock().getTime();
    const iatMs = c.iat * 1000;
    if (iatMs > now + SKEW_MS || iatMs < now - (this.opts.maxAgeMs ?? 7 * 86_400_000)) throw new SetVerificationError('stale', 'iat out of range');
    return c;
  }

  private async key(kid: string): Promise<KeyObject> {
    const now = Date.now();
    const stale = now - this.fetchedAt >= (this.opts.jwksTtlMs ?? 3600_000);
    // An unknown kid may be a rotation: refresh, but at most once a minute, so a forged kid
    // cannot turn every request into a fetch.
    if (stale || (!this.keys.has(kid) && now - this.lastAttempt > 60_000)) {
      this.lastAttempt = now;
      await this.refresh();
    }
    const key = this.keys.get(kid);
    if (!key) throw new SetVerificationError('unknown_key', 'signing key not published by the issuer');
    return key;
  }

  private async refresh(): Promise<void> {
    try {
      let url = this.opts.jwksUrl;
      if (!url) {
        if (!this.opts.discoveryUrl) throw new Error('no JWKS or discovery URL');
        url = discoverySchema.parse(await (await this.fetch(this.opts.discoveryUrl)).json()).jwks_uri;
      }
      const res = await this.fetch(url);
      if (!res.ok) throw new Error(`JWKS answered ${res.status}`);
      const jwks = jwksSchema.parse(await res.json());
      const keys = new Map<string, KeyObject>();
      for (const k of jwks.keys) {
        if (k.kty !== 'RSA') continue;
        keys.set(k.kid, createPublicKey({ key: k as JsonWebKey, format: 'jwk' }));
      }
      this.keys = keys;
      this.fetchedAt = Date.now();
    } catch (err) {
      throw new SetVerificationError('keys_unavailable', `could not load the issuer's keys: ${err instanceof Error ? err.message : 'error'}`);
    }
  }
}

function decodeJson(segment: string): unknown {
  try {
    return JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
}
