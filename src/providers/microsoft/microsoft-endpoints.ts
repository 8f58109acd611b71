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
  /** Only the sandbox serves Graph over plain http on loopback. */
  allowInsecureGraph: boolean;
}

export const MICROSOFT_LOGIN_ORIGIN = 'https://login.microsoftonline.com';
export const MICROSOFT_GRAPH_ORIGIN = 'https://graph.microsoft.com';

/**
 * The Microsoft clouds (https://learn.microsoft.com/graph/deployments): each Graph host with the
 * Entra authority host that issues its tokens. MSAL knows these authorities itself (instance discovery).
 */
export const MICROSOFT_CLOUDS: ReadonlyArray<{ name: string; authorityHosts: readonly string[]; graphHost: string }> = [
  { name: 'global', authorityHosts: ['login.microsoftonline.com'], graphHost: 'graph.microsoft.com' },
  { name: 'US Government L4', authorityHosts: ['login.microsoftonline.us'], graphHost: 'graph.microsoft.us' },
  { name: 'US Government L5 (DOD)', authorityHosts: ['login.microsoftonline.us'], graphHost: 'dod-graph.microsoft.us' },
  { name: 'China (21Vianet)', authorityHosts: ['login.chinacloudapi.cn', 'login.partner.microsoftonline.cn'], graphHost: 'microsoftgraph.chinacloudapi.cn' },
];

export class MicrosoftCloudError extends Error {
  override readonly name = 'MicrosoftCloudError';
  constructor(
    readonly setting: 'MICROSOFT_TENANT' | 'MICROSOFT_AUTHORITY_HOST' | 'MICROSOFT_GRAPH_HOST',
    message: string,
  ) {
    super(message);
  }
}

/**
 * Endpoints of a Microsoft cloud. `tenant` is a tenant id, a verified domain, or
 * `common`/`organizations`; `cloud` picks a national cloud by its hosts (default: the global one).
 * Only the documented host pairs are accepted: a token from one cloud is useless in another, and
 * the Graph host is the allowlist for every delta/next link the connector follows.
 */
export function microsoftEndpoints(tenant = 'common', cloud: { authorityHost?: string; graphHost?: string } = {}): MicrosoftEndpoints {
  if (!/^[A-Za-z0-9.-]+$/.test(tenant)) throw new MicrosoftCloudError('MICROSOFT_TENANT', 'MICROSOFT_TENANT must be a tenant id, domain, common or organizations');
  const authorityHost = (cloud.authorityHost ?? 'login.microsoftonline.com').toLowerCase();
  const graphHost = (cloud.graphHost ?? (authorityHost === 'login.microsoftonline.com' ? 'graph.microsoft.com' : MICROSOFT_CLOUDS.find((c) => c.authorityHosts.includes(authorityHost))?.graphHost ?? '')).toLowerCase();
  const known = MICROSOFT_CLOUDS.find((c) => c.graphHost === graphHost);
  if (!known) {
    throw new MicrosoftCloudError('MICROSOFT_GRAPH_HOST', `MICROSOFT_GRAPH_HOST must be one of ${MICROSOFT_CLOUDS.map((c) => c.graphHost).join(', ')}`);
  }
  if (!known.authorityHosts.includes(authorityHost)) {
    throw new MicrosoftCloudError('MICROSOFT_AUTHORITY_HOST', `MICROSOFT_AUTHORITY_HOST must be ${known.authorityHosts.join(' or ')} for Graph host ${graphHost} (${known.name})`);
  }
  return {
    authority: `https://${authorityHost}/${tenant}`,
    graphBaseUrl: `https://${graphHost}`,
    graphVersion: 'v1.0',
    knownAuthorities: undefined,
    cloudDiscoveryMetadata: undefined,
    extraCaPem: undefined,
    graphLinkHosts: [graphHost],
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
    allowInsecureGraph: graph.protocol === 'http:',
  };
}
