/**
 * Where the connector finds Entra ID and Microsoft Graph. Production uses the public cloud; tests
 * and demos point at the local stand-in. The Graph origin also defines which deltaLink /
 * nextLink / upload URLs the connector will ever follow (see delta-link.validator.ts).
 */
export interface MicrosoftEndpoints {
  /** `https://login.microsoftonline.com/<tenant>` (MSAL accepts https authorities only). */
  authority: string;
  /** Graph root without version, e.g. `https://graph.microsoft.com`. */
  graphBaseUrl: string;
  graphVersion: 'v1.0';
  /** MSAL `knownAuthorities`; set for a non-Microsoft host so MSAL skips instance discovery. */
  knownAuthorities: string[] | undefined;
  /** MSAL `cloudDiscoveryMetadata` JSON; with knownAuthorities it means no outside calls. */
  cloudDiscoveryMetadata: string | undefined;
  /** Extra CA (PEM) to trust for the authority (the sandbox's self-signed certificate). */
  extraCaPem: string | undefined;
  /** Hosts (host[:port]) whose delta/next links the connector follows. */
  graphLinkHosts: string[];
  /** Hosts that serve attachment upload-session URLs (Outlook, not graph.microsoft.com). */
  uploadHosts: string[];
  /** Only the sandbox serves Graph over plain http on loopback. */
  allowInsecureGraph: boolean;
}

export const MICROSOFT_LOGIN_ORIGIN = 'https://login.microsoftonline.com';
export const MICROSOFT_GRAPH_ORIGIN = 'https://graph.microsoft.com';

/** Public-cloud endpoints. `tenant` is a tenant id, a verified domain, or `common`/`organizations`. */
export function microsoftEndpoints(tenant = 'common'): MicrosoftEndpoints {
  if (!/^[A-Za-z0-9.-]+$/.test(tenant)) throw new Error('MICROSOFT_TENANT must be a tenant id, domain, common or organizations');
  return {
    authority: `${MICROSOFT_LOGIN_ORIGIN}/${tenant}`,
    graphBaseUrl: MICROSOFT_GRAPH_ORIGIN,
    graphVersion: 'v1.0',
    knownAuthorities: undefined,
    cloudDiscoveryMetadata: undefined,
    extraCaPem: undefined,
    graphLinkHosts: ['graph.microsoft.com'],
    // outlook-large-attachments: uploadUrl points at outlook.office.com (or office365.com).
    uploadHosts: ['outlook.office.com', 'outlook.office365.com'],
    allowInsecureGraph: false,
  };
}

export interface SandboxEndpointInfo {
  authority: string;
  graphBaseUrl: string;
  caCertPem: string;
  msal: { knownAuthorities: string[]; cloudDiscoveryMetadata: string };
}

/** Endpoints of a running Microsoft stand-in (`startMicrosoftSandbox` returns everything needed). */
export function sandboxMicrosoftEndpoints(info: SandboxEndpointInfo): MicrosoftEndpoints {
  const graph = new URL(info.graphBaseUrl);
  if (!['127.0.0.1', 'localhost', '[::1]'].includes(graph.hostname)) throw new Error('sandbox Graph must be on loopback');
  return {
    authority: info.authority,
    graphBaseUrl: graph.origin,
    graphVersion: 'v1.0',
    knownAuthorities: info.msal.knownAuthorities,
    cloudDiscoveryMetadata: info.msal.cloudDiscoveryMetadata,
    extraCaPem: info.caCertPem,
    graphLinkHosts: [graph.host],
    uploadHosts: [graph.host],
    allowInsecureGraph: graph.protocol === 'http:',
  };
}
