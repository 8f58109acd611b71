import { ConfidentialClientApplication, CryptoProvider } from '@azure/msal-node';
import { ProviderError } from '../provider-error.js';
import { mapGraphError } from './graph-error.mapper.js';
import type { MicrosoftEndpoints } from './microsoft-endpoints.js';
import { buildMsalConfiguration } from './msal-config.js';

/** The app's own credential for client credentials: a secret, or a certificate (recommended by Microsoft). */
export type MicrosoftAppCredential =
  | { kind: 'secret'; clientSecret: string }
  /** `thumbprintSha256`: hex SHA-256 of the certificate's DER; `privateKeyPem`: PKCS#8 PEM. */
  | { kind: 'certificate'; thumbprintSha256: string; privateKeyPem: string; x5c?: string };

export interface MicrosoftAppTokenSettings {
  clientId: string;
  credential: MicrosoftAppCredential;
  endpoints: MicrosoftEndpoints;
  /** `<PUBLIC_URL>/oauth/microsoft/admin-consent`, registered on the Entra app as a redirect URI. */
  adminConsentRedirectUri: string;
}

export interface AppToken {
  accessToken: string;
  expiresAt: Date;
  /** The application permissions (Graph app roles) the token carries: what the admin granted. */
  roles: string[];
  /** The directory (Entra tenant id) the token was issued for. */
  directoryId: string;
}

/**
 * What the administrator's sign-in proved (ID token, authorization code + PKCE, `organizations`
 * authority): the directory they signed in to and the directory roles they hold there.
 */
export interface VerifiedAdminSignIn {
  /** `tid`, checked against `iss`. */
  directoryId: string;
  /** `wids`: the Entra role template ids of the signed-in user; undefined when the token carries no `wids` claim. */
  roleTemplateIds: string[] | undefined;
}

/**
 * The Entra built-in roles that can grant admin consent for Microsoft Graph **application**
 * permissions (role template ids, Microsoft Entra built-in roles reference): Global
 * Administrator and Privileged Role Administrator. (Application Administrator and Cloud
 * Application Administrator can consent for other apps, but not to application permissions of
 * Microsoft Graph, which is what an install asks for.)
 */
export const GRAPH_APP_CONSENT_ROLES = {
  globalAdministrator: '62e90394-69f5-4237-9190-012177145e10',
  privilegedRoleAdministrator: 'e8611ab8-c189-46e8-94e1-60213ab1f814',
} as const;

/** The application permissions an organization install asks for, and needs. */
export const ORGANIZATION_APP_ROLES = ['Mail.Read', 'Mail.Send'] as const;
const GRAPH_DEFAULT_SCOPE = 'https://graph.microsoft.com/.default';
const TENANT_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Entra tenant ids are GUIDs; anything else in an admin-consent callback is refused. */
export function isDirectoryId(value: string): boolean {
  return TENANT_ID.test(value);
}

/**
 * App-only (client credentials) tokens for organization installs, through
 * `ConfidentialClientApplication.acquireTokenByClientCredential`
 * (https://learn.microsoft.com/entra/identity-platform/v2-oauth2-client-creds-grant-flow).
 *
 * One MSAL application per customer directory: the authority must name the tenant (not
 * `common`), and MSAL's in-memory app-token cache then serves every mailbox of that tenant until
 * the token is near expiry. Nothing of it is persisted: an app token can always be fetched again
 * with the app's own credential, which is configuration, not customer data.
 */
export class MicrosoftAppTokenClient {
  readonly #apps = new Map<string, ConfidentialClientApplication>();

  constructor(
    private readonly settings: MicrosoftAppTokenSettings,
    private readonly log?: (level: 'error' | 'warn' | 'info' | 'debug', message: string) => void,
  ) {
    if (!settings.clientId) throw new Error('MICROSOFT_CLIENT_ID is required');
    if (settings.credential.kind === 'secret' && !settings.credential.clientSecret) throw new Error('MICROSOFT_CLIENT_SECRET is required');
  }

  /** The authority host (scheme + host[:port]) of the configured cloud or stand-in. */
  get #origin(): string {
    return new URL(this.settings.endpoints.authority).origin;
  }

  /**
   * The admin consent URL (Microsoft identity platform `/adminconsent`, v2) for one directory:
   * the administrator who signed in (verified ID token) approves the app's application
   * permissions for that tenant, and Entra redirects back with `admin_consent=True&tenant=<id>&state=…`.
   */
  adminConsentUrl(state: string, directoryId: string): string {
    if (!isDirectoryId(directoryId)) throw new ProviderError('microsoft', 'invalid_request', 'not an Entra tenant id', { reason: 'invalid_directory_id' });
    const url = new URL(`${this.#origin}/${directoryId}/v2.0/adminconsent`);
    url.searchParams.set('client_id', this.settings.clientId);
    url.searchParams.set('scope', GRAPH_DEFAULT_SCOPE);
    url.searchParams.set('redirect_uri', this.settings.adminConsentRedirectUri);
    url.searchParams.set('state', state);
    return url.toString();
  }

  /** A fresh MSAL application on the `organizations` authority (work or school accounts), no cache kept. */
  #signInApp(): ConfidentialClientApplication {
    const c = this.settings.credential;
    return new ConfidentialClientApplication(
      buildMsalConfiguration({
        clientId: this.settings.clientId,
        ...(c.kind === 'secret' ? { clientSecret: c.clientSecret } : { clientCertificate: { thumbprintSha256: c.thumbprintSha256, privateKey: c.privateKeyPem, ...(c.x5c ? { x5c: c.x5c } : {}) } }),
        endpoints: this.settings.endpoints,
        authority: `${this.#origin}/organizations`,
        ...(this.log ? { log: this.log } : {}),
      }),
    );
  }

  /** PKCE codes and a nonce for one administrator sign-in. */
  async signInSecrets(): Promise<{ codeVerifier: string; codeChallenge: string; nonce: string }> {
    const crypto = new CryptoProvider();
    const { verifier, challenge } = await crypto.generatePkceCodes();
    return { codeVerifier: verifier, codeChallenge: challenge, nonce: crypto.createNewGuid() };
  }

  /**
   * Step 1 of an install: the administrator signs in (authorization code + PKCE, `openid
   * profile`, `organizations` authority) so the connector learns — from a verified ID token, not
   * from an unsigned redirect — which directory they administer. The redirect URI is the
   * admin-consent one: the code comes back there with `code` + `state`.
   */
  async adminSignInUrl(input: { state: string; nonce: string; codeChallenge: string }): Promise<string> {
    try {
      return await this.#signInApp().getAuthCodeUrl({
        scopes: ['openid', 'profile'],
        redirectUri: this.settings.adminConsentRedirectUri,
        state: input.state,
        nonce: input.nonce,
        codeChallenge: input.codeChallenge,
        codeChallengeMethod: 'S256',
        prompt: 'select_account',
      });
    } catch (err) {
      throw mapGraphError(err, 'token');
    }
  }

  /**
   * Redeems the sign-in code (PKCE verifier; MSAL checks the returned `state` and the ID token's
   * `nonce`) and verifies the ID token's claims: `aud` is this app, `tid` is a directory id,
   * `iss` is this cloud's issuer for that very `tid`, not expired. The token came straight from
   * the token endpoint over TLS (OpenID Connect Core 3.1.3.7: TLS server validation may stand in
   * for the signature check). Throws `invalid_request` (reason `id_token_invalid`) otherwise.
   */
  async redeemAdminSignIn(input: { code: string; codeVerifier: string; nonce: string; state: string; returnedState: string }): Promise<VerifiedAdminSignIn> {
    let result;
    try {
      result = await this.#signInApp().acquireTokenByCode(
        { code: input.code, codeVerifier: input.codeVerifier, redirectUri: this.settings.adminConsentRedirectUri, scopes: ['openid', 'profile'], nonce: input.nonce, state: input.state },
        { code: input.code, state: input.returnedState },
      );
    } catch (err) {
      throw mapGraphError(err, 'token');
    }
    const claims = (result?.idTokenClaims ?? {}) as { aud?: unknown; iss?: unknown; tid?: unknown; exp?: unknown; nonce?: unknown; wids?: unknown };
    const bad = (why: string) => new ProviderError('microsoft', 'invalid_request', `the administrator's ID token is not valid: ${why}`, { reason: 'id_token_invalid' });
    if (claims.nonce !== input.nonce) throw bad('nonce');
    if (claims.aud !== this.settings.clientId) throw bad('audience');
    if (typeof claims.tid !== 'string' || !isDirectoryId(claims.tid)) throw bad('tenant');
    if (claims.iss !== `${this.#origin}/${claims.tid}/v2.0`) throw bad('issuer');
    if (typeof claims.exp !== 'number' || claims.exp * 1000 <= Date.now()) throw bad('expired');
    const roleTemplateIds = Array.isArray(claims.wids) ? claims.wids.filter((w): w is string => typeof w === 'string').map((w) => w.toLowerCase()) : undefined;
    return { directoryId: claims.tid.toLowerCase(), roleTemplateIds };
  }

  #app(directoryId: string): ConfidentialClientApplication {
    if (!isDirectoryId(directoryId)) throw new ProviderError('microsoft', 'invalid_request', 'not an Entra tenant id', { reason: 'invalid_directory_id' });
    let app = this.#apps.get(directoryId);
    if (app) return app;
    const c = this.settings.credential;
    const config = buildMsalConfiguration({
      clientId: this.settings.clientId,
      ...(c.kind === 'secret' ? { clientSecret: c.clientSecret } : { clientCertificate: { thumbprintSha256: c.thumbprintSha256, privateKey: c.privateKeyPem, ...(c.x5c ? { x5c: c.x5c } : {}) } }),
      endpoints: this.settings.endpoints,
      authority: `${this.#origin}/${directoryId}`,
      ...(this.log ? { log: this.log } : {}),
    });
    app = new ConfidentialClientApplication(config);
    this.#apps.set(directoryId, app);
    return app;
  }

  /**
   * An app-only Graph token for the directory. A directory that never consented (or removed the
   * app) answers `invalid_client` (AADSTS7000229): `auth_revoked`, reason `admin_consent_missing`.
   */
  async acquire(directoryId: string, opts: { forceRefresh?: boolean } = {}): Promise<AppToken> {
    const app = this.#app(directoryId);
    let result;
    try {
      result = await app.acquireTokenByClientCredential({ scopes: [GRAPH_DEFAULT_SCOPE], skipCache: opts.forceRefresh ?? false });
    } catch (err) {
      const mapped = mapGraphError(err, 'token');
      const code = (err as { errorCode?: string }).errorCode ?? '';
      const text = `${code} ${(err as { errorMessage?: string }).errorMessage ?? ''}`;
      // The connector's own credential refused (certificate not registered / assertion invalid,
      // wrong or expired secret): an operator problem, not the organization's — the mailboxes
      // stay as they are and the call is retried once the configuration is fixed.
      if (/AADSTS(700027|7000215|7000222|700024)\b/.test(text)) {
        this.log?.('error', 'Microsoft refused the app credential (MICROSOFT_CLIENT_CERTIFICATE_PATH / MICROSOFT_CLIENT_SECRET)');
        throw new ProviderError('microsoft', 'transient', 'Microsoft refused the connector app credential (certificate or secret)', { reason: 'app_credential_rejected', cause: err });
      }
      if (/7000229|invalid_client|unauthorized_client|90002/.test(text)) {
        throw new ProviderError('microsoft', 'auth_revoked', 'the organization has not consented to the app (or removed it)', { reason: 'admin_consent_missing', cause: err });
      }
      throw mapped;
    }
    if (!result?.accessToken) throw new ProviderError('microsoft', 'transient', 'Microsoft returned no app token', { reason: 'no_token' });
    return { accessToken: result.accessToken, expiresAt: result.expiresOn ?? new Date(Date.now() + 3_600_000), roles: rolesOf(result.accessToken), directoryId };
  }
}

/**
 * The `roles` claim of an app token. The token came straight from the token endpoint over TLS
 * (no third party handed it to us), so its claims are read without verifying the signature —
 * only to report which application permissions the administrator granted.
 */
export function rolesOf(accessToken: string): string[] {
  const payload = accessToken.split('.')[1];
  if (!payload) return [];
  try {
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { roles?: unknown };
    return Array.isArray(claims.roles) ? claims.roles.filter((r): r is string => typeof r === 'string') : [];
  } catch {
    return [];
  }
}
