import { gmailLimits } from './google/gmail-limits.js';
import type { GoogleEndpoints } from './google/google-endpoints.js';
import { googleGrantPort } from './google/google-grant.js';
import type { GoogleOAuthClient } from './google/google-oauth.client.js';
import { GoogleTeardownAdapter, googleTeardownSecret } from './google/google-teardown.adapter.js';
import type { CredentialKindPort } from './grant-port.js';
import type { ProviderName } from './mail-provider.port.js';
import { graphLimits } from './microsoft/graph-limits.js';
import type { MicrosoftEndpoints } from './microsoft/microsoft-endpoints.js';
import { microsoftGrantPort } from './microsoft/microsoft-grant.js';
import type { MicrosoftOAuthClient } from './microsoft/microsoft-oauth.client.js';
import { MicrosoftTeardownAdapter, microsoftTeardownSecret, type MicrosoftAccessTokenSource } from './microsoft/microsoft-teardown.adapter.js';
import type { LimitsPort, MailPort, ProviderModule } from './ports.js';
import { PUSH_PORTS } from './push-ports.js';

/** Send limits need no configuration: the same for every run. */
export const PROVIDER_LIMITS: Readonly<Record<ProviderName, LimitsPort>> = Object.freeze({ google: gmailLimits, microsoft: graphLimits });

/**
 * What a disconnect needs from a stored credential document (Google: the refresh token to revoke;
 * Microsoft: the MSAL cache for the subscription DELETE), read tolerantly so that a purge still
 * revokes what it can when the document's shape grows. Configuration-free, like the limits.
 */
export const TEARDOWN_SECRETS: Readonly<Record<ProviderName, (stored: string) => string>> = Object.freeze({
  google: googleTeardownSecret,
  microsoft: microsoftTeardownSecret,
});

export interface ProviderModulesInput {
  /** Mail adapters bound to the token vault (MailProviderFactory fits; may be bound after this call). */
  mail: { forMailbox(mailbox: { id: string; provider: ProviderName }): MailPort };
  /** `client`: the OAuth client when Google is configured in this run. */
  /** `organizationToken`: access tokens of organization-install mailboxes (the token vault), for users.stop. */
  /** `kinds` (both providers): credential kinds beside `delegated` — the organization installs' (organizationMailAccess). */
  google: { endpoints: GoogleEndpoints; client: GoogleOAuthClient | undefined; organizationToken?: (mailbox: { id: string }) => Promise<string>; kinds?: CredentialKindPort[] };
  microsoft: { endpoints: MicrosoftEndpoints | undefined; client: MicrosoftOAuthClient | undefined; accessToken: MicrosoftAccessTokenSource | undefined; kinds?: CredentialKindPort[] };
}

/** One ProviderModule per provider, bound to this run's endpoints and grant clients. */
export function buildProviderModules(input: ProviderModulesInput): Record<ProviderName, ProviderModule> {
  return {
    google: {
      name: 'google',
      displayName: 'Google',
      limits: gmailLimits,
      teardown: new GoogleTeardownAdapter({ endpoints: input.google.endpoints, grant: input.google.client, ...(input.google.organizationToken ? { organizationToken: input.google.organizationToken } : {}) }),
      grant: googleGrantPort({ client: input.google.client, endpoints: input.google.endpoints, kinds: input.google.kinds ?? [] }),
      mail: (mailbox) => input.mail.forMailbox({ id: mailbox.id, provider: 'google' }),
      push: PUSH_PORTS.google,
    },
    microsoft: {
      name: 'microsoft',
      displayName: 'Microsoft',
      limits: graphLimits,
      teardown: new MicrosoftTeardownAdapter({ endpoints: input.microsoft.endpoints, accessToken: input.microsoft.accessToken }),
      grant: microsoftGrantPort({ client: input.microsoft.client, kinds: input.microsoft.kinds ?? [] }),
      mail: (mailbox) => input.mail.forMailbox({ id: mailbox.id, provider: 'microsoft' }),
      push: PUSH_PORTS.microsoft,
    },
  };
}
