import { describe, expect, it } from 'vitest';
import { microsoftEndpoints, sandboxMicrosoftEndpoints } from './microsoft-endpoints.js';
import { buildMsalConfiguration } from './msal-config.js';
import { MsalNetworkClient } from './msal-network.client.js';

const sandbox = sandboxMicrosoftEndpoints({
  authority: 'https://127.0.0.1:4443/tid',
  graphBaseUrl: 'http://127.0.0.1:4080',
  caCertPem: '-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n',
  msal: { knownAuthorities: ['127.0.0.1:4443'], cloudDiscoveryMetadata: '{"api-version":"1.1"}' },
});

describe('buildMsalConfiguration', () => {
  it('uses the public cloud authority without discovery overrides in production', () => {
    const c = buildMsalConfiguration({ clientId: 'id', clientSecret: 'secret', endpoints: microsoftEndpoints('contoso.onmicrosoft.com') });
    expect(c.auth).toMatchObject({ clientId: 'id', authority: 'https://login.microsoftonline.com/contoso.onmicrosoft.com' });
    expect(c.auth.knownAuthorities).toBeUndefined();
    expect(c.auth.cloudDiscoveryMetadata).toBeUndefined();
    expect(c.system?.networkClient).toBeInstanceOf(MsalNetworkClient);
    expect(c.system?.loggerOptions?.piiLoggingEnabled).toBe(false);
  });

  it('passes knownAuthorities, discovery metadata and the cache plugin for the sandbox', () => {
    const cachePlugin = { beforeCacheAccess: async () => undefined, afterCacheAccess: async () => undefined };
    const c = buildMsalConfiguration({ clientId: 'id', clientSecret: 'secret', endpoints: sandbox, cachePlugin });
    expect(c.auth).toMatchObject({ authority: 'https://127.0.0.1:4443/tid', knownAuthorities: ['127.0.0.1:4443'], cloudDiscoveryMetadata: '{"api-version":"1.1"}' });
    expect(c.cache?.cachePlugin).toBe(cachePlugin);
  });

  it('fails fast on a missing setting or a non-https authority, naming the setting', () => {
    expect(() => buildMsalConfiguration({ clientId: '', clientSecret: 's', endpoints: sandbox })).toThrow(/MICROSOFT_CLIENT_ID/);
    expect(() => buildMsalConfiguration({ clientId: 'i', clientSecret: '', endpoints: sandbox })).toThrow(/MICROSOFT_CLIENT_SECRET/);
    expect(() => buildMsalConfiguration({ clientId: 'i', clientSecret: 's', endpoints: { ...sandbox, authority: 'http://127.0.0.1:1/t' } })).toThrow(/https/);
  });

  it('an organization install: a certificate instead of the secret, and the customer directory as authority on the same host', () => {
    const clientCertificate = { thumbprintSha256: 'ab'.repeat(32), privateKey: '-----BEGIN PRIVATE KEY-----\nx\n-----END PRIVATE KEY-----\n' };
    const c = buildMsalConfiguration({ clientId: 'id', clientCertificate, endpoints: sandbox, authority: 'https://127.0.0.1:4443/72f988bf-86f1-41af-91ab-2d7cd011db47' });
    expect(c.auth).toMatchObject({ clientCertificate, authority: 'https://127.0.0.1:4443/72f988bf-86f1-41af-91ab-2d7cd011db47', knownAuthorities: ['127.0.0.1:4443'] });
    expect(c.auth.clientSecret).toBeUndefined();
    expect(() => buildMsalConfiguration({ clientId: 'id', endpoints: sandbox })).toThrow(/MICROSOFT_CLIENT_SECRET/);
  });

  it('the network client refuses plain http (MSAL would send the client secret)', async () => {
    await expect(new MsalNetworkClient().sendPostRequestAsync('http://127.0.0.1:1/token', { body: 'client_secret=x' })).rejects.toMatchObject({ code: 'insecure_url' });
  });
});

describe('sandboxMicrosoftEndpoints', () => {
  it('allows plain http Graph only on loopback', () => {
    expect(sandbox).toMatchObject({ graphBaseUrl: 'http://127.0.0.1:4080', graphLinkHosts: ['127.0.0.1:4080'], allowInsecureGraph: true });
    expect(() => sandboxMicrosoftEndpoints({ authority: 'https://a/t', graphBaseUrl: 'http://graph.example', caCertPem: '', msal: { knownAuthorities: [], cloudDiscoveryMetadata: '' } })).toThrow(/loopback/);
    expect(microsoftEndpoints().allowInsecureGraph).toBe(false);
  });
});
