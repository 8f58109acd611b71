import { ConfidentialClientApplication } from '@azure/msal-node';
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
   * The admin consent URL (Microsoft identity platform `/adminconsent`, v2): an administrator of
   * any organization approves the app's application permissions for the whole tenant, and Entra
   * redirects back with `admin_consent=True&tenant=<id>&state=…`.
   */
  adminConsentUrl(state: string): string {
    const url = new URL(`${this.#origin}/organizations/v2.0/adminconsent`);
    url.searchParams.set('client_id', this.settings.clientId);
    url.searchParams.set('scope', GRAPH_DEFAULT_SCOPE);
    url.searchParams.set('redirect_uri', this.settings.adminConsentRedirectUri);
    url.searchParams.set('state', state);
    return url.toString();
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
