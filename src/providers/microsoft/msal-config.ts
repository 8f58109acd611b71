import { LogLevel, type Configuration, type ICachePlugin } from '@azure/msal-node';
import type { MicrosoftEndpoints } from './microsoft-endpoints.js';
import { MsalNetworkClient } from './msal-network.client.js';

export interface MsalConfigInput {
  clientId: string;
  /** The app's secret; or `clientCertificate` (client credentials of an organization install). */
  clientSecret?: string;
  /** MSAL `clientCertificate`: hex SHA-256 thumbprint and the PKCS#8 PEM private key. */
  clientCertificate?: { thumbprintSha256: string; privateKey: string; x5c?: string };
  endpoints: MicrosoftEndpoints;
  /** Another tenant on the same authority host (app-only tokens name the customer's directory). */
  authority?: string;
  /** Persists the MSAL cache (the token vault supplies an encrypted, per-mailbox one). */
  cachePlugin?: ICachePlugin;
  /** Receives MSAL's log lines; PII logging stays off so no token or address reaches it. */
  log?: (level: 'error' | 'warn' | 'info' | 'debug', message: string) => void;
}

/** Builds the ConfidentialClientApplication configuration for the public cloud or the sandbox. */
export function buildMsalConfiguration(input: MsalConfigInput): Configuration {
  if (!input.clientId) throw new Error('MICROSOFT_CLIENT_ID is required');
  if (!input.clientSecret && !input.clientCertificate) throw new Error('MICROSOFT_CLIENT_SECRET is required');
  const e = input.endpoints;
  const authority = input.authority ?? e.authority;
  if (!authority.startsWith('https://')) throw new Error('Microsoft authority must be https (MSAL rejects anything else)');
  const log = input.log;
  return {
    auth: {
      clientId: input.clientId,
      ...(input.clientCertificate ? { clientCertificate: input.clientCertificate } : { clientSecret: input.clientSecret }),
      authority,
      ...(e.knownAuthorities ? { knownAuthorities: e.knownAuthorities } : {}),
      ...(e.cloudDiscoveryMetadata ? { cloudDiscoveryMetadata: e.cloudDiscoveryMetadata } : {}),
    },
    ...(input.cachePlugin ? { cache: { cachePlugin: input.cachePlugin } } : {}),
    system: {
      networkClient: new MsalNetworkClient({ extraCaPem: e.extraCaPem }),
      loggerOptions: {
        piiLoggingEnabled: false,
        logLevel: LogLevel.Warning,
        loggerCallback: (level, message, containsPii) => {
          if (containsPii || !log) return;
          const mapped = level === LogLevel.Error ? 'error' : level === LogLevel.Warning ? 'warn' : level === LogLevel.Info ? 'info' : 'debug';
          log(mapped, message);
        },
      },
    },
  };
}
