import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../config/config.js';
import { GraphLinkRejectedError, GraphLinkValidator } from './delta-link.validator.js';
import { MicrosoftCloudError, microsoftEndpoints } from './microsoft-endpoints.js';

describe('microsoftEndpoints: national clouds', () => {
  it('defaults to the global cloud', () => {
    expect(microsoftEndpoints('contoso.com')).toMatchObject({ authority: 'https://login.microsoftonline.com/contoso.com', graphBaseUrl: 'https://graph.microsoft.com', graphLinkHosts: ['graph.microsoft.com'] });
  });

  it('US Government and China: authority, Graph host and link allowlist follow the cloud', () => {
    const gov = microsoftEndpoints('tenant-id', { authorityHost: 'login.microsoftonline.us', graphHost: 'graph.microsoft.us' });
    expect(gov).toMatchObject({ authority: 'https://login.microsoftonline.us/tenant-id', graphBaseUrl: 'https://graph.microsoft.us', graphLinkHosts: ['graph.microsoft.us'] });
    const links = new GraphLinkValidator(gov);
    expect(links.validate("https://graph.microsoft.us/v1.0/me/mailFolders('inbox')/messages/delta?$deltatoken=x", 'delta').host).toBe('graph.microsoft.us');
    // A global-cloud link is not followed with a US Government token.
    expect(() => links.validate("https://graph.microsoft.com/v1.0/me/mailFolders('inbox')/messages/delta?$deltatoken=x", 'delta')).toThrow(GraphLinkRejectedError);
    // The authority host alone picks its cloud's Graph host.
    expect(microsoftEndpoints('t', { authorityHost: 'login.chinacloudapi.cn' }).graphBaseUrl).toBe('https://microsoftgraph.chinacloudapi.cn');
    expect(microsoftEndpoints('t', { authorityHost: 'LOGIN.MICROSOFTONLINE.US', graphHost: 'dod-graph.microsoft.us' })).toMatchObject({ authority: 'https://login.microsoftonline.us/t', graphBaseUrl: 'https://dod-graph.microsoft.us', graphLinkHosts: ['dod-graph.microsoft.us'] });
  });

  it('refuses unknown hosts and mismatched pairs, naming the setting', () => {
    const fail = (cloud: { authorityHost?: string; graphHost?: string }) => {
      try {
        microsoftEndpoints('t', cloud);
      } catch (e) {
        return e as MicrosoftCloudError;
      }
      throw new Error('accepted');
    };
    expect(fail({ graphHost: 'graph.evil.example' }).setting).toBe('MICROSOFT_GRAPH_HOST');
    expect(fail({ authorityHost: 'login.evil.example' }).setting).toBe('MICROSOFT_GRAPH_HOST');
    expect(fail({ authorityHost: 'login.microsoftonline.com', graphHost: 'graph.microsoft.us' }).setting).toBe('MICROSOFT_AUTHORITY_HOST');
    expect(fail({ graphHost: 'https://graph.microsoft.us' }).setting).toBe('MICROSOFT_GRAPH_HOST');
  });

  it('is checked when the configuration is loaded', () => {
    expect(loadConfig({ MICROSOFT_AUTHORITY_HOST: 'login.microsoftonline.us', MICROSOFT_GRAPH_HOST: 'graph.microsoft.us' }).microsoft).toMatchObject({ authorityHost: 'login.microsoftonline.us', graphHost: 'graph.microsoft.us' });
    let err: unknown;
    try {
      loadConfig({ MICROSOFT_GRAPH_HOST: 'graph.microsoft.us' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toContain('MICROSOFT_AUTHORITY_HOST');
  });
});
