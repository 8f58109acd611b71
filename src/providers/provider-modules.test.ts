import { describe, expect, it } from 'vitest';
import { GOOGLE_ENDPOINTS } from './google/google-endpoints.js';
import type { ProviderName } from './mail-provider.port.js';
import type { MailPort, PushSources } from './ports.js';
import { buildProviderModules } from './provider-modules.js';

describe('buildProviderModules', () => {
  const asked: Array<{ id: string; provider: ProviderName }> = [];
  const modules = buildProviderModules({
    mail: { forMailbox: (m) => (asked.push(m), { name: m.provider } as MailPort) },
    google: { endpoints: GOOGLE_ENDPOINTS, client: undefined },
    microsoft: { endpoints: undefined, client: undefined, accessToken: undefined },
  });

  it('gives every provider one module holding all its ports, keyed by its own name', () => {
    for (const [key, m] of Object.entries(modules)) {
      expect(m.name).toBe(key);
      expect(m.grant.provider).toBe(key);
      expect(m.teardown.provider).toBe(key);
      expect(m.grant.kinds).toContain('delegated');
    }
    expect([modules.google.displayName, modules.microsoft.displayName]).toEqual(['Google', 'Microsoft']);
  });

  it('mail() binds the mailbox to its own provider; without an OAuth client there is no consent', () => {
    expect(modules.microsoft.mail({ id: 'mbx_1' }).name).toBe('microsoft');
    expect(asked).toEqual([{ id: 'mbx_1', provider: 'microsoft' }]);
    expect(modules.google.grant.consent).toBeUndefined();
  });

  it('push(): Gmail only with a Pub/Sub topic, renewed at least daily; Graph always, planned from its expiration', () => {
    const sources = (gmailTopic: string | undefined): PushSources => ({ gmailWatch: () => ({ watch: () => Promise.reject(new Error('unused')) }), graphSubscriptions: () => ({}) as never, gmailTopic });
    expect(modules.google.push(sources(undefined))).toBeUndefined();
    expect(modules.google.push(sources('projects/p/topics/t'))?.maxRenewalIntervalMs).toBe(86_400_000);
    const graph = modules.microsoft.push(sources(undefined));
    expect(graph?.identified).toBe(true);
    expect(graph?.maxRenewalIntervalMs).toBeUndefined();
  });
});
