import { JWT } from 'google-auth-library';
import { z } from 'zod';
import type { AccessTokenSource } from '../mail-provider.port.js';
import { ProviderError } from '../provider-error.js';
import { mapGoogleError } from './google-error.mapper.js';

/**
 * Google Workspace organization install (issue 15 item 3): a service account with domain-wide
 * delegation reads and sends for mailboxes of the Workspace, each named explicitly, without the
 * users signing in. google-auth-library's JWT client signs the RFC 7523 assertion with the
 * service account key and `sub` = the mailbox, and trades it at Google's token endpoint; no
 * refresh token exists (the client signs a new assertion when the access token expires).
 *
 * The scopes are exactly these two, so the administrator delegates nothing broader: reading mail
 * (raw MIME, history, watch) and sending. Google refuses the token (401 `unauthorized_client`)
 * when the administrator did not delegate both for the service account's client id.
 */
export const GOOGLE_DELEGATED_SCOPES: readonly string[] = Object.freeze([
  'https://www.googleapis.com/auth/gmail.readonly',
  'https://www.googleapis.com/auth/gmail.send',
]);

/** Google's token endpoint: the JWT client posts there and names it as the assertion's `aud`. */
const GOOGLE_TOKEN_URL = 'https://oauth2.googleapis.com/token';

/**
 * The service account key file (JSON from the Google Cloud console / gcloud). External input:
 * validated, and only the fields the JWT client needs are kept.
 */
export const serviceAccountKeySchema = z.object({
  type: z.literal('service_account'),
  client_email: z.email().max(254),
  client_id: z.string().regex(/^\d{1,40}$/),
  private_key_id: z.string().regex(/^[0-9a-f]{20,64}$/i),
  private_key: z.string().max(8192).regex(/^-----BEGIN PRIVATE KEY-----\r?\n[A-Za-z0-9+/=\r\n]+-----END PRIVATE KEY-----\r?\n?$/, { message: 'private_key is not a PEM PKCS #8 key' }),
});
export type ServiceAccountKey = z.output<typeof serviceAccountKeySchema>;

export interface GoogleDelegatedAccessOptions {
  key: ServiceAccountKey;
  /**
   * Where token requests go. The JWT client always posts to Google's endpoint; another URL (the
   * sandbox or a Google-compatible server) is reached by rewriting that one request. The
   * assertion's `aud` stays Google's token URL, as Google requires.
   */
  tokenUrl?: string;
  scopes?: readonly string[];
}

/** One service account's domain-wide delegation; `forMailbox` gives a token source per mailbox. */
export class GoogleDelegatedAccess {
  private readonly clients = new Map<string, JWT>();
  private readonly scopes: string[];

  constructor(private readonly opts: GoogleDelegatedAccessOptions) {
    this.scopes = [...(opts.scopes ?? GOOGLE_DELEGATED_SCOPES)];
  }

  get clientId(): string {
    return this.opts.key.client_id;
  }

  /** Access tokens for `address` (the JWT client caches each until shortly before it expires). */
  forMailbox(address: string): AccessTokenSource {
    const subject = address.toLowerCase();
    return async () => {
      try {
        const { token } = await this.client(subject).getAccessToken();
        if (!token) throw new ProviderError('google', 'transient', 'Google token endpoint answered without an access token');
        return token;
      } catch (err) {
        if (err instanceof ProviderError) throw err;
        // unauthorized_client (scope not delegated) and invalid_grant (no such user, key
        // deleted) are auth_revoked: the mailbox cannot be read until the administrator acts.
        throw mapGoogleError(err, 'oauth.token');
      }
    };
  }

  /** Forget a mailbox's client (and its cached token), e.g. when it is removed. */
  forget(address: string): void {
    this.clients.delete(address.toLowerCase());
  }

  private client(subject: string): JWT {
    let jwt = this.clients.get(subject);
    if (jwt) return jwt;
    jwt = new JWT({
      email: this.opts.key.client_email,
      key: this.opts.key.private_key,
      keyId: this.opts.key.private_key_id,
      scopes: this.scopes,
      subject,
    });
    const target = this.opts.tokenUrl;
    if (target && target !== GOOGLE_TOKEN_URL) {
      jwt.transporter.interceptors.request.add({
        resolved: async (config) => {
          if (String(config.url) === GOOGLE_TOKEN_URL) config.url = new URL(target);
          return config;
        },
      });
    }
    this.clients.set(subject, jwt);
    return jwt;
  }
}
