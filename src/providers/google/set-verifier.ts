import { createRemoteJWKSet, customFetch, errors, jwtVerify, type JWTVerifyGetKey } from 'jose';
import { z } from 'zod';

/**
 * Verifies a Security Event Token (RFC 8417: a signed JWT) from Google Cross-Account Protection
 * (provider-facts §2.3) with `jose` against the issuer's JWKS. google-auth-library's verifier
 * insists on an `exp` claim, which SETs do not carry.
 *
 * Checked: alg RS256 with a published `kid`, signature, `typ` (when present it must be
 * `secevent+jwt`, RFC 8417 §2.3: an ID token or other JWT is never read as a SET), `iss` in the
 * accepted list, `aud` = our OAuth client id, `iat` not in the future (beyond skew) and not older
 * than `maxAgeMs` on the injected clock, `jti` present, and the `events` claim.
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
  /** Longest wait for the discovery document or the JWKS. Default 5 s. */
  fetchTimeoutMs?: number;
}

export class SetVerificationError extends Error {
  override readonly name = 'SetVerificationError';
  constructor(
    readonly code: 'malformed' | 'unsupported_alg' | 'unknown_key' | 'bad_signature' | 'bad_type' | 'bad_issuer' | 'bad_audience' | 'stale' | 'keys_unavailable',
    message: string,
  ) {
    super(message);
  }
}

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

const discoverySchema = z.object({ jwks_uri: z.url() }).loose();
const SKEW_SECONDS = 5 * 60;
/** RFC 8417 §2.3 / RFC 8725 §3.11: explicit typing of SETs. */
const SET_TYPES = new Set(['secevent+jwt', 'application/secevent+jwt']);

export class SetVerifier {
  private jwks: JWTVerifyGetKey | undefined;
  private readonly fetch: typeof fetch;
  private readonly timeoutMs: number;

  constructor(private readonly opts: SetVerifierOptions) {
    this.fetch = opts.fetch ?? fetch;
    this.timeoutMs = opts.fetchTimeoutMs ?? 5000;
  }

  async verify(jwt: string): Promise<SetClaims> {
    const keys = await this.keySet();
    let verified: Awaited<ReturnType<typeof jwtVerify>>;
    try {
      verified = await jwtVerify(jwt.trim(), keys, {
        algorithms: ['RS256'],
        issuer: this.opts.issuers,
        audience: this.opts.audiences,
        currentDate: this.opts.clock(),
        clockTolerance: SKEW_SECONDS,
        maxTokenAge: Math.floor((this.opts.maxAgeMs ?? 7 * 86_400_000) / 1000),
        requiredClaims: ['iss', 'aud', 'iat', 'jti'],
      });
    } catch (err) {
      throw toVerificationError(err);
    }
    const typ = verified.protectedHeader.typ;
    if (typ !== undefined && !SET_TYPES.has(typ.toLowerCase())) throw new SetVerificationError('bad_type', 'typ is not secevent+jwt');
    const claims = setClaimsSchema.safeParse(verified.payload);
    if (!claims.success) throw new SetVerificationError('malformed', 'claims are not a security event token');
    return claims.data;
  }

  /** jose's remote key set: cached for jwksTtlMs, refetched for an unknown kid at most once a minute, with a timeout. */
  private async keySet(): Promise<JWTVerifyGetKey> {
    if (this.jwks) return this.jwks;
    let url = this.opts.jwksUrl;
    try {
      if (!url) {
        if (!this.opts.discoveryUrl) throw new Error('no JWKS or discovery URL');
        const res = await this.fetch(this.opts.discoveryUrl, { signal: AbortSignal.timeout(this.timeoutMs), redirect: 'error' });
        if (!res.ok) throw new Error(`discovery answered ${res.status}`);
        url = discoverySchema.parse(await res.json()).jwks_uri;
      }
    } catch (err) {
      throw new SetVerificationError('keys_unavailable', `could not load the issuer's keys: ${err instanceof Error ? err.message : 'error'}`);
    }
    const fetchImpl = this.fetch;
    this.jwks = createRemoteJWKSet(new URL(url), {
      timeoutDuration: this.timeoutMs,
      cooldownDuration: 60_000,
      cacheMaxAge: this.opts.jwksTtlMs ?? 3600_000,
      [customFetch]: (input, init) => fetchImpl(input, init),
    });
    return this.jwks;
  }
}

function toVerificationError(err: unknown): SetVerificationError {
  if (err instanceof SetVerificationError) return err;
  if (err instanceof errors.JOSEAlgNotAllowed || err instanceof errors.JOSENotSupported) return new SetVerificationError('unsupported_alg', 'alg is not accepted');
  if (err instanceof errors.JWKSNoMatchingKey || err instanceof errors.JWKSMultipleMatchingKeys) return new SetVerificationError('unknown_key', 'signing key not published by the issuer');
  if (err instanceof errors.JWSSignatureVerificationFailed) return new SetVerificationError('bad_signature', 'signature does not verify');
  if (err instanceof errors.JWTExpired) return new SetVerificationError('stale', 'token expired');
  if (err instanceof errors.JWTClaimValidationFailed) {
    if (err.claim === 'iss') return new SetVerificationError('bad_issuer', 'issuer not accepted');
    if (err.claim === 'aud') return new SetVerificationError('bad_audience', 'audience is not this client');
    if (err.claim === 'iat' || err.claim === 'nbf') return new SetVerificationError('stale', 'iat out of range');
    return new SetVerificationError('malformed', `claim ${err.claim} is missing or invalid`);
  }
  if (err instanceof errors.JWKSTimeout || err instanceof errors.JWKSInvalid) return new SetVerificationError('keys_unavailable', "could not load the issuer's keys");
  if (err instanceof errors.JOSEError) return new SetVerificationError('malformed', 'not a valid JWS');
  // A network failure fetching the key set.
  return new SetVerificationError('keys_unavailable', `could not load the issuer's keys: ${err instanceof Error ? err.name : 'error'}`);
}
