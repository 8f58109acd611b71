import { JWT } from 'google-auth-library';
import { z } from 'zod';
import type { AccessGrant } from '../grant-port.js';
import type { AccessTokenSource } from '../mail-provider.port.js';
import { ProviderError } from '../provider-error.js';
import { GmailAdapter } from './gmail.adapter.js';
import { GOOGLE_DELEGATED_SCOPES, serviceAccountKeySchema, type ServiceAccountKey } from './google-delegated-access.js';
import { GOOGLE_ENDPOINTS, type GoogleEndpoints } from './google-endpoints.js';
import { mapGoogleError } from './google-error.mapper.js';

/**
 * Google Workspace organization install (issue 15 item 3): what the connector does with the
 * service-account key a Workspace administrator gives it. google-auth-library's JWT client signs
 * the RFC 7523 assertion (`sub` = the mailbox, `aud` = Google's token URL) and trades it at the
 * token endpoint of THIS run's configuration — never at a URL taken from the customer's key file.
 */

/** The one scope broader than the two an install needs that matters most: full mail access. */
export const GOOGLE_BROAD_MAIL_SCOPE = 'https://mail.google.com/';

/** Google's token URL: the `aud` of every assertion, and the `token_uri` of a genuine key file. */
const GOOGLE_TOKEN_URL = GOOGLE_ENDPOINTS.oauth2TokenUrl;

/**
 * Why Google refused a token for a mailbox, from its OAuth error and its fixed error wording
 * (Google Identity, "Using OAuth 2.0 for Server to Server Applications", error table; the sandbox
 * answers the same): these are the `details.reason` values of the API and the mailbox reasons.
 */
export type GoogleDelegationRefusal =
  /** 401 unauthorized_client: the client id is not delegated (or not for every requested scope). */
  | 'delegation_not_granted'
  /** 400 invalid_grant "Invalid email or User ID": the subject is not a user of the Workspace. */
  | 'user_not_found'
  /** 400 invalid_grant for the assertion itself (bad signature, account or key deleted, clock): the key no longer works. */
  | 'key_invalid';

/** A token refusal as a ProviderError (`auth_revoked`), with `reason` one of GoogleDelegationRefusal. */
export function classifyTokenError(err: unknown): ProviderError {
  const mapped = mapGoogleError(err, 'oauth.token');
  if (mapped.kind !== 'auth_revoked') return mapped;
  // Anything else (e.g. admin_policy_enforced: the Workspace restricted Gmail for apps) keeps Google's own reason.
  if (mapped.reason !== 'unauthorized_client' && mapped.reason !== 'invalid_grant') return mapped;
  const description = tokenErrorDescription(err);
  // invalid_grant: "Invalid email or User ID" names the subject; the others ("Invalid JWT
  // Signature.", "Invalid grant: account not found", "Robot is disabled.") the key or its account.
  const reason: GoogleDelegationRefusal =
    mapped.reason === 'unauthorized_client' ? 'delegation_not_granted' : /invalid email or user id/i.test(description) ? 'user_not_found' : 'key_invalid';
  const message =
    reason === 'delegation_not_granted'
      ? 'Google: the service account is not delegated gmail.readonly and gmail.send for this domain (unauthorized_client)'
      : reason === 'user_not_found'
        ? 'Google: no such user in the Workspace (invalid_grant)'
        : 'Google: the service-account key was refused (invalid_grant: deleted key or account, or a bad signature)';
  return new ProviderError('google', 'auth_revoked', message, { status: mapped.status, reason });
}

/** Google's fixed `error_description` (never echoes request content), read by shape. */
function tokenErrorDescription(err: unknown): string {
  const data = (err as { response?: { data?: unknown } } | undefined)?.response?.data;
  const parsed = typeof data === 'string' ? safeJson(data) : data;
  const d = (parsed ?? {}) as { error_description?: unknown };
  return typeof d.error_description === 'string' ? d.error_description.slice(0, 300) : '';
}

function safeJson(s: string): unknown {
  try {
    return JSON.parse(s);
  } catch {
    return undefined;
  }
}

/**
 * The key file as the API receives it: the fields of serviceAccountKeySchema (strictly checked)
 * plus `token_uri`, which must name Google's token endpoint or the one this run is configured
 * with. Other fields of the file (project_id, auth_uri, …) are accepted and dropped.
 */
export function serviceAccountKeyInput(endpoints: GoogleEndpoints) {
  const allowed = new Set([GOOGLE_TOKEN_URL, endpoints.oauth2TokenUrl]);
  return serviceAccountKeySchema
    .extend({ token_uri: z.string().max(2048).refine((u) => allowed.has(u), { message: `token_uri must be ${GOOGLE_TOKEN_URL}` }) })
    .transform(({ token_uri: _tokenUri, ...key }): ServiceAccountKey => key);
}

/** What the verification of a new install found. */
export interface DelegationCheck {
  /** Scopes a token was issued for (always both of GOOGLE_DELEGATED_SCOPES when ok). */
  granted: string[];
  /** `https://mail.google.com/` is delegated too: the key reaches more than the install needs. */
  broadScopeDelegated: boolean;
}

/** One service account key: tokens per mailbox of its domain. */
export class GoogleOrganizationAccess {
  readonly #clients = new Map<string, JWT>();

  constructor(
    private readonly key: ServiceAccountKey,
    private readonly endpoints: GoogleEndpoints,
  ) {}

  get keyId(): string {
    return this.key.private_key_id;
  }

  /** An access token for `subject` with `scopes` (default: exactly gmail.readonly + gmail.send). */
  async token(subject: string, scopes: readonly string[] = GOOGLE_DELEGATED_SCOPES, opts: { forceRefresh?: boolean } = {}): Promise<AccessGrant> {
    // A forced refresh signs a new assertion: a new client has no cached token.
    if (opts.forceRefresh) this.#clients.delete(clientKey(subject, scopes));
    const jwt = this.#client(subject.toLowerCase(), scopes);
    try {
      const { token } = await jwt.getAccessToken();
      if (!token) throw new ProviderError('google', 'transient', 'Google token endpoint answered without an access token');
      const expiry = jwt.credentials.expiry_date;
      return { accessToken: token, expiresAt: new Date(typeof expiry === 'number' ? expiry : Date.now() + 5 * 60_000) };
    } catch (err) {
      if (err instanceof ProviderError) throw err;
      throw classifyTokenError(err);
    }
  }

  tokenSource(subject: string): AccessTokenSource {
    return async () => (await this.token(subject)).accessToken;
  }

  /**
   * Proves the delegation for a new install: a token for `subject` with exactly the two scopes.
   * When refused as not delegated, each scope alone tells `scopes_missing` (one of them is
   * delegated) from `delegation_not_granted` (neither). Then probes the broad mail scope: Google
   * answers unauthorized_client when it is not delegated, which is what an install wants.
   * Throws ProviderError with the refusal as `reason`.
   */
  async verify(subject: string): Promise<DelegationCheck> {
    try {
      await this.token(subject, GOOGLE_DELEGATED_SCOPES, { forceRefresh: true });
    } catch (err) {
      if (err instanceof ProviderError && err.reason === 'delegation_not_granted') {
        const alone = await Promise.all(GOOGLE_DELEGATED_SCOPES.map((s) => this.token(subject, [s]).then(() => true, () => false)));
        if (alone.some(Boolean)) {
          const missing = GOOGLE_DELEGATED_SCOPES.filter((_s, i) => !alone[i]);
          throw new ProviderError('google', 'auth_revoked', `Google: the delegation lacks ${missing.join(' and ')}`, { status: err.status, reason: 'scopes_missing' });
        }
      }
      throw err;
    } finally {
      for (const s of GOOGLE_DELEGATED_SCOPES) this.#clients.delete(clientKey(subject, [s]));
    }
    let broadScopeDelegated = false;
    try {
      await this.token(subject, [GOOGLE_BROAD_MAIL_SCOPE], { forceRefresh: true });
      broadScopeDelegated = true;
    } catch (err) {
      if (!(err instanceof ProviderError) || err.kind !== 'auth_revoked') throw err;
    } finally {
      this.#clients.delete(clientKey(subject, [GOOGLE_BROAD_MAIL_SCOPE]));
    }
    return { granted: [...GOOGLE_DELEGATED_SCOPES], broadScopeDelegated };
  }

  /** The Gmail profile address of `subject` as its delegated token reads it (users.getProfile). */
  async profileAddress(subject: string): Promise<string> {
    return new GmailAdapter({ endpoints: this.endpoints, accessToken: this.tokenSource(subject) }).getAddress();
  }

  /** Forget a mailbox's clients and cached tokens. */
  forget(subject: string): void {
    const prefix = `${subject.toLowerCase()}\u0000`;
    for (const k of this.#clients.keys()) if (k.startsWith(prefix)) this.#clients.delete(k);
  }

  #client(subject: string, scopes: readonly string[]): JWT {
    const k = clientKey(subject, scopes);
    let jwt = this.#clients.get(k);
    if (jwt) return jwt;
    jwt = new JWT({ email: this.key.client_email, key: this.key.private_key, keyId: this.key.private_key_id, scopes: [...scopes], subject });
    // The JWT client posts to Google's token URL (and names it as `aud`, as Google requires);
    // another configured endpoint (the sandbox, a Google-compatible server) gets that one request.
    const target = this.endpoints.oauth2TokenUrl;
    if (target !== GOOGLE_TOKEN_URL) {
      jwt.transporter.interceptors.request.add({
        resolved: async (config) => {
          if (String(config.url) === GOOGLE_TOKEN_URL) config.url = new URL(target);
          return config;
        },
      });
    }
    this.#clients.set(k, jwt);
    if (this.#clients.size > 10_000) this.#clients.delete(this.#clients.keys().next().value as string);
    return jwt;
  }
}

function clientKey(subject: string, scopes: readonly string[]): string {
  return `${subject.toLowerCase()}\u0000${[...scopes].sort().join(' ')}`;
}
