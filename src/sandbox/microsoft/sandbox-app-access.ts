import { createHash, createPublicKey, verify, constants, type KeyObject } from 'node:crypto';
import { GraphHttpError } from './sandbox-http.util.js';
import type { SandboxUser } from './sandbox-mailbox.store.js';

/** Application permissions (app roles) of Microsoft Graph the stand-in knows. */
export const GRAPH_APP_ROLES = ['Mail.Read', 'Mail.ReadWrite', 'Mail.Send', 'User.Read.All'] as const;

export interface AdminConsent {
  /** The application permissions granted for the whole tenant (Graph app roles). */
  roles: string[];
  /** Who approved (sandbox address). */
  consentedBy: string;
  at: string;
}

/**
 * Organization-wide (app-only) access of the stand-in's one tenant:
 *
 *  - Admin consent: an administrator grants an application its requested Graph application
 *    permissions once for the tenant (`/{tenant}/v2.0/adminconsent`). Without it the
 *    client-credentials grant fails like Entra's (AADSTS7000229, no service principal).
 *  - Application access policy (Exchange Online `New-ApplicationAccessPolicy -AccessRight
 *    RestrictAccess`, or RBAC for applications with a management scope): when one exists for an
 *    app, app-only calls reach only the named mailboxes; any other mailbox answers Graph's 403
 *    `ErrorAccessDenied` ("Blocked by tenant configured AppOnly AccessPolicy settings"). Without a
 *    policy the app reads every mailbox of the tenant — as in Exchange.
 *  - Certificates registered on the app, for `client_assertion` (private_key_jwt) authentication.
 */
export class SandboxAppAccess {
  readonly consents = new Map<string, AdminConsent>();
  readonly #policies = new Map<string, Set<string>>();
  readonly #certificates = new Map<string, Array<{ key: KeyObject; x5tS256: string }>>();

  grantConsent(clientId: string, roles: string[], consentedBy: string, now: number): void {
    this.consents.set(clientId, { roles: [...new Set(roles)], consentedBy, at: new Date(now).toISOString() });
  }

  revokeConsent(clientId: string): boolean {
    return this.consents.delete(clientId);
  }

  /** Restricts the app to these mailboxes (user ids); `undefined` removes the policy (all mailboxes). */
  setPolicy(clientId: string, userIds: string[] | undefined): void {
    if (userIds === undefined) this.#policies.delete(clientId);
    else this.#policies.set(clientId, new Set(userIds));
  }

  allows(clientId: string, mailbox: SandboxUser): boolean {
    const policy = this.#policies.get(clientId);
    return policy === undefined || policy.has(mailbox.id);
  }

  /** The 403 Exchange answers when a policy keeps the app out of a mailbox, or the role is missing. */
  requireAccess(clientId: string, roles: readonly string[], mailbox: SandboxUser, needed: readonly string[]): void {
    if (!roles.some((r) => needed.includes(r))) throw new GraphHttpError(403, 'ErrorAccessDenied', 'Access is denied. Check credentials and try again.');
    if (!this.allows(clientId, mailbox)) {
      throw new GraphHttpError(403, 'ErrorAccessDenied', 'Access to OData is disabled: [RAOP] : Blocked by tenant configured AppOnly AccessPolicy settings.');
    }
  }

  /** Registers a certificate on the app (`replace`: instead of the ones it has, like uploading a new one and deleting the old). */
  registerCertificate(clientId: string, certificatePem: string, opts: { replace?: boolean } = {}): void {
    const list = opts.replace ? [] : (this.#certificates.get(clientId) ?? []);
    list.push({ key: createPublicKey(certificatePem), x5tS256: Buffer.from(certificateThumbprintSha256(certificatePem), 'hex').toString('base64url') });
    this.#certificates.set(clientId, list);
  }

  /**
   * Verifies a `client_assertion` (RFC 7523 JWT signed with the app's certificate key, as MSAL
   * builds it, https://learn.microsoft.com/entra/identity-platform/certificate-credentials): the
   * header's `x5t#S256` (or legacy SHA-1 `x5t`, not accepted here) names a registered certificate,
   * the signature (RS256 or PS256) verifies with that certificate's key, `iss` = `sub` = client id,
   * `aud` = the token endpoint, `exp` in the future (and `nbf` not), a `jti` present. (Not
   * single use: MSAL signs one assertion and reuses it until it expires, which Entra accepts.)
   * Returns an error description, or undefined when valid.
   */
  checkAssertion(clientId: string, assertion: string, tokenEndpoint: string, now: number): string | undefined {
    const registered = this.#certificates.get(clientId);
    if (!registered?.length) return 'No certificate is registered on the application.';
    const [h, p, s] = assertion.split('.');
    if (!h || !p || !s) return 'The client assertion is malformed.';
    let header: { alg?: string; 'x5t#S256'?: string };
    let claims: { iss?: string; sub?: string; aud?: string | string[]; exp?: number; nbf?: number; jti?: string };
    try {
      header = JSON.parse(Buffer.from(h, 'base64url').toString('utf8')) as typeof header;
      claims = JSON.parse(Buffer.from(p, 'base64url').toString('utf8')) as typeof claims;
    } catch {
      return 'The client assertion is malformed.';
    }
    if (header.alg !== 'RS256' && header.alg !== 'PS256') return 'The client assertion uses an unsupported algorithm.';
    const keys = registered.filter((c) => c.x5tS256 === header['x5t#S256']).map((c) => c.key);
    if (keys.length === 0) return `The certificate with identifier used to sign the client assertion is not registered on application. [Reason - The key was not found., Thumbprint of key used by client: '${String(header['x5t#S256'] ?? '')}']`;
    const data = Buffer.from(`${h}.${p}`);
    const sig = Buffer.from(s, 'base64url');
    const ok = keys.some((key) =>
      header.alg === 'PS256'
        ? verify('sha256', data, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST }, sig)
        : verify('RSA-SHA256', data, key, sig),
    );
    if (!ok) return 'The client assertion signature is invalid.';
    const aud = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
    if (claims.iss !== clientId || claims.sub !== clientId) return 'The client assertion issuer or subject is not the application.';
    if (!aud.includes(tokenEndpoint)) return 'The client assertion audience is not this token endpoint.';
    if (typeof claims.exp !== 'number' || claims.exp * 1000 <= now) return 'The client assertion has expired.';
    if (typeof claims.nbf === 'number' && claims.nbf * 1000 > now + 300_000) return 'The client assertion is not valid yet.';
    if (typeof claims.jti !== 'string' || claims.jti.length === 0) return 'The client assertion has no jti.';
    return undefined;
  }
}

/** SHA-256 thumbprint (hex) of a PEM certificate, as MSAL's `thumbprintSha256` wants it. */
export function certificateThumbprintSha256(certificatePem: string): string {
  const der = Buffer.from(certificatePem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
  return createHash('sha256').update(der).digest('hex');
}
