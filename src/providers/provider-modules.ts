import { gmailLimits } from './google/gmail-limits.js';
import type { GoogleEndpoints } from './google/google-endpoints.js';
import type { GoogleOAuthClient } from './google/google-oauth.client.js';
import { GoogleTeardownAdapter } from './google/google-teardown.adapter.js';
import type { ProviderName } from './mail-provider.port.js';
import { graphLimits } from './microsoft/graph-limits.js';
import type { MicrosoftEndpoints } from './microsoft/microsoft-endpoints.js';
import { MicrosoftTeardownAdapter, type MicrosoftAccessTokenSource } from './microsoft/microsoft-teardown.adapter.js';
import type { LimitsPort, ProviderModule } from './ports.js';

/** Send limits need no configuration: the same for every run. */
export const PROVIDER_LIMITS: Readonly<Record<ProviderName, LimitsPort>> = Object.freeze({ google: gmailLimits, microsoft: graphLimits });

export interface ProviderModulesInput {
  google: { endpoints: GoogleEndpoints; grant: Pick<GoogleOAuthClient, 'refresh'> | undefined };
  microsoft: { endpoints: MicrosoftEndpoints | undefined; accessToken: MicrosoftAccessTokenSource | undefined };
}

/** One ProviderModule per provider, bound to this run's endpoints and grant clients. */
export function buildProviderModules(input: ProviderModulesInput): Record<ProviderName, ProviderModule> {
  return {
    google: { name: 'google', limits: gmailLimits, teardown: new GoogleTeardownAdapter({ endpoints: input.google.endpoints, grant: input.google.grant }) },
    microsoft: { name: 'microsoft', limits: graphLimits, teardown: new MicrosoftTeardownAdapter(input.microsoft) },
  };
}
