import { OAuth2Client } from 'google-auth-library';
import { z } from 'zod';
import type { GoogleEndpoints } from './google-endpoints.js';

/** Pub/Sub push envelope (https://cloud.google.com/pubsub/docs/push#receive_push). */
const pubsubEnvelopeSchema = z.object({
  message: z.object({ data: z.string().max(8192), messageId: z.string().max(200).optional() }),
  subscription: z.string().max(500).optional(),
});
/** `message.data`, base64url JSON: {"emailAddress": "...", "historyId": "..."} (provider-facts §1.1). */
const gmailNotificationSchema = z.object({
  emailAddress: z.string().min(3).max(320),
  historyId: z.union([z.string().regex(/^\d{1,30}$/), z.number().int().nonnegative()]),
});

export interface GooglePushSettings {
  /** GOOGLE_PUBSUB_AUDIENCE, else the push endpoint URL (Pub/Sub's default audience). */
  audience: string;
  /** GOOGLE_PUBSUB_SERVICE_ACCOUNT: the JWT `email` must equal it. Unset → every push is refused. */
  serviceAccount: string | undefined;
  endpoints: Pick<GoogleEndpoints, 'oauth2FederatedSignonPemCertsUrl' | 'oauth2FederatedSignonJwkCertsUrl' | 'issuers'>;
}

/**
 * Gmail push through Pub/Sub: authenticates the push request's OIDC JWT and reads the Gmail
 * notification out of the envelope. Same library and cert handling as Google's own sample:
 * signature, exp and aud checked by verifyIdToken, certificates cached by Cache-Control; the
 * certs URL is configurable so the sandbox can sign push tokens.
 */
export class GooglePushVerifier {
  readonly #client: OAuth2Client;

  constructor(private readonly settings: GooglePushSettings) {
    this.#client = new OAuth2Client({
      endpoints: {
        oauth2FederatedSignonPemCertsUrl: settings.endpoints.oauth2FederatedSignonPemCertsUrl,
        oauth2FederatedSignonJwkCertsUrl: settings.endpoints.oauth2FederatedSignonJwkCertsUrl,
      },
      issuers: settings.endpoints.issuers,
    });
  }

  /**
   * 'missing' when there is no bearer token or no service account is configured, 'rejected' when
   * the token fails verification (provider-facts §1.2: signature + aud, then `email` = the push
   * service account and `email_verified`). Nothing of the token is ever returned or thrown:
   * google-auth-library's messages can embed its payload.
   */
  async authenticate(authorization: string | undefined): Promise<'ok' | 'missing' | 'rejected'> {
    const token = /^Bearer ([A-Za-z0-9._-]+)$/.exec(authorization ?? '')?.[1];
    if (!token || !this.settings.serviceAccount) return 'missing';
    try {
      const ticket = await this.#client.verifyIdToken({ idToken: token, audience: this.settings.audience });
      const claims = ticket.getPayload();
      return claims && claims.email === this.settings.serviceAccount && claims.email_verified === true ? 'ok' : 'rejected';
    } catch {
      return 'rejected';
    }
  }

  /**
   * The mailbox address of a Gmail notification, or undefined for a malformed envelope. The
   * notification's historyId is NOT a cursor (sync reads from the last *stored* one), so it is
   * validated and dropped.
   */
  notifiedAddress(body: unknown): string | undefined {
    const envelope = pubsubEnvelopeSchema.safeParse(body);
    if (!envelope.success) return undefined;
    try {
      return gmailNotificationSchema.parse(JSON.parse(Buffer.from(envelope.data.message.data, 'base64url').toString('utf8'))).emailAddress;
    } catch {
      return undefined;
    }
  }
}
