import { describe, it, expect } from 'vitest';
import {
  checkWebhookUrl,
  classifyAddress,
  isAllowListed,
  EgressDeniedError,
  type HostResolver,
  type EgressPolicy,
} from './egress-guard.js';

const PUBLIC_V4 = '93.184.215.14';
const PUBLIC_V6 = '2606:2800:21f:cb07:6820:80da:af6b:8b2c';

function fakeResolver(table: Record<string, string[]>): HostResolver & { calls: string[] } {
  const calls: string[] = [];
  const fn = async (host: string) => {
    calls.push(host);
    const answers = table[host];
    if (!answers) throw Object.assign(new Error('getaddrinfo ENOTFOUND'), { code: 'ENOTFOUND' });
    return answers.map((address) => ({ address, family: (address.includes(':') ? 6 : 4) as 4 | 6 }));
  };
  return Object.assign(fn, { calls });
}

const prod = (resolver: HostResolver, extra: Partial<EgressPolicy> = {}): EgressPolicy => ({
  production: true,
  allowHosts: [],
  resolver,
  ...extra,
});

async function denial(url: string, policy: EgressPolicy): Promise<EgressDeniedError> {
  try {
    await checkWebhookUrl(url, policy);
  } catch (err) {
    expect(err).toBeInstanceOf(EgressDeniedError);
    return err as EgressDeniedError;
  }
  throw new Error(`expected ${url} to be denied`);
}

describe('classifyAddress', () => {
  it.each([
    ['127.0.0.1', 'loopback'],
    ['127.255.1.2', 'loopback'],
    ['10.1.2.3', 'private'],
    ['172.16.0.1', 'private'],
    ['172.31.255.255', 'private'],
    ['192.168.1.1', 'private'],
    ['169.254.169.254', 'link_local'],
    ['0.0.0.0', 'unspecified'],
    ['0.1.2.3', 'unspecified'],
    ['100.64.0.1', 'cgnat'],
    ['192.0.2.5', 'documentation'],
    ['198.18.0.1', 'benchmarking'],
    ['224.0.0.251', 'multicast'],
    ['255.255.255.255', 'broadcast'],
    ['240.0.0.1', 'reserved'],
    ['::1', 'loopback'],
    ['::', 'unspecified'],
    ['fc00::', 'unique_local'],
    ['fd12:3456::1', 'unique_local'],
    ['fe80::1', 'link_local'],
    ['fe80::1%eth0', 'link_local'],
    ['ff02::1', 'multicast'],
    ['2001:db8::1', 'documentation'],
    ['::7f00:1', 'ipv4_compatible'],
    ['64:ff9b:1::a', 'private'],
    ['::ffff:8.8.8.8', 'ipv4_mapped'],
  ])('%s is %s', (address, category) => {
    expect(classifyAddress(address)?.category).toBe(category);
  });

  it('classifies IPv4-mapped addresses by their embedded IPv4, in both spellings', () => {
    expect(classifyAddress('::ffff:127.0.0.1')).toEqual({ category: 'ipv4_mapped', embeddedCategory: 'loopback' });
    expect(classifyAddress('::ffff:7f00:1')).toEqual({ category: 'ipv4_mapped', embeddedCategory: 'loopback' });
    expect(classifyAddress('::ffff:a9fe:a9fe')).toEqual({ category: 'ipv4_mapped', embeddedCategory: 'link_local' });
  });

  it('judges NAT64 and 6to4 addresses by the IPv4 they lead to', () => {
    expect(classifyAddress('64:ff9b::7f00:1')).toEqual({ category: 'nat64', embeddedCategory: 'loopback' });
    expect(classifyAddress('64:ff9b::10.0.0.1')).toEqual({ category: 'nat64', embeddedCategory: 'private' });
    expect(classifyAddress('64:ff9b::808:808')).toBeNull();
    expect(classifyAddress('2002:c0a8:101::1')).toEqual({ category: 'six_to_four', embeddedCategory: 'private' });
    expect(classifyAddress('2002:808:808::1')).toBeNull();
  });

  it('lets public unicast through and refuses IPv6 outside 2000::/3', () => {
    expect(classifyAddress(PUBLIC_V4)).toBeNull();
    expect(classifyAddress('8.8.8.8')).toBeNull();
    expect(classifyAddress(PUBLIC_V6)).toBeNull();
    expect(classifyAddress('4000::1')?.category).toBe('reserved');
    expect(() => classifyAddress('not-an-ip')).toThrow(TypeError);
  });
});

describe('checkWebhookUrl', () => {
  const resolver = fakeResolver({
    'hooks.example.com': [PUBLIC_V4, PUBLIC_V6],
    'evil.example.com': ['127.0.0.1'],
    'mixed.example.com': [PUBLIC_V4, '10.0.0.7'],
    'meta.example.com': ['169.254.169.254'],
    'v6local.example.com': ['::1'],
    'mapped.example.com': ['::ffff:7f00:1'],
    'ula.example.com': ['fd00::5'],
    'dev.internal.test': ['10.9.9.9'],
    localhost: ['127.0.0.1', '::1'],
  });

  it('returns a pinned target with every resolved address for a public host', async () => {
    const target = await checkWebhookUrl('https://Hooks.Example.com./in?x=1#frag', prod(resolver));
    expect(target).toEqual({
      url: 'https://hooks.example.com./in?x=1',
      protocol: 'https:',
      host: 'hooks.example.com',
      port: 443,
      path: '/in?x=1',
      addresses: [
        { address: PUBLIC_V4, family: 4 },
        { address: PUBLIC_V6, family: 6 },
      ],
    });
  });

  it.each([
    ['http://127.0.0.1/', 'loopback'],
    ['http://10.0.0.1/', 'private'],
    ['http://172.16.5.4/', 'private'],
    ['http://192.168.0.10/', 'private'],
    ['http://169.254.169.254/latest/meta-data/', 'link_local'],
    ['http://[::1]/', 'loopback'],
    ['http://[fc00::]/', 'unique_local'],
    ['http://[::ffff:127.0.0.1]/', 'ipv4_mapped'],
    ['http://[::ffff:7f00:1]:8080/', 'ipv4_mapped'],
    ['http://0.0.0.0/', 'unspecified'],
    ['http://[::]/', 'unspecified'],
    ['http://2130706433/', 'loopback'],
    ['http://0x7f.1/', 'loopback'],
    ['http://0177.0.0.1/', 'loopback'],
    ['http://127.1/', 'loopback'],
    ['http://0/', 'unspecified'],
    ['http://100.100.100.200/', 'cgnat'],
  ])('refuses the IP literal in %s (%s) without asking DNS', async (url, category) => {
    const calls = resolver.calls.length;
    const err = await denial(url, { production: false, resolver });
    expect(err.code).toBe('forbidden_address');
    expect(err.category).toBe(category);
    expect(err.message).toContain(category);
    expect(resolver.calls.length).toBe(calls);
  });

  it.each([
    ['evil.example.com', 'loopback'],
    ['mixed.example.com', 'private'],
    ['meta.example.com', 'link_local'],
    ['v6local.example.com', 'loopback'],
    ['mapped.example.com', 'ipv4_mapped'],
    ['ula.example.com', 'unique_local'],
  ])('refuses a host name (%s) resolving to a %s address', async (host, category) => {
    const err = await denial(`https://${host}/hook`, prod(resolver));
    expect(err.code).toBe('forbidden_address');
    expect(err.category).toBe(category);
    expect(err.retryable).toBe(false);
    expect(err.expose).toBe(true);
  });

  it('requires https in production only', async () => {
    expect((await denial('http://hooks.example.com/', prod(resolver))).code).toBe('https_required');
    const dev = await checkWebhookUrl('http://hooks.example.com:8080/', { production: false, resolver });
    expect(dev.port).toBe(8080);
    expect(dev.protocol).toBe('http:');
  });

  it('refuses credentials, other schemes and junk', async () => {
    expect((await denial('https://user:pw@hooks.example.com/', prod(resolver))).code).toBe('credentials_in_url');
    expect((await denial('https://user@hooks.example.com/', prod(resolver))).code).toBe('credentials_in_url');
    expect((await denial('ftp://hooks.example.com/', prod(resolver))).code).toBe('unsupported_scheme');
    expect((await denial('file:///etc/passwd', prod(resolver))).code).toBe('unsupported_scheme');
    expect((await denial('gopher://127.0.0.1:6379/_', prod(resolver))).code).toBe('unsupported_scheme');
    expect((await denial('not a url', prod(resolver))).code).toBe('invalid_url');
    expect((await denial('https://hooks.exa\nmple.com/', prod(resolver))).code).toBe('invalid_url');
    expect((await denial(' https://hooks.example.com/', prod(resolver))).code).toBe('invalid_url');
    expect((await denial('https://hooks.example.com/\t', prod(resolver))).code).toBe('invalid_url');
    expect((await denial('https:///', prod(resolver))).code).toBe('invalid_url');
    expect((await denial('https://hooks.example.com:0/', prod(resolver))).code).toBe('invalid_url');
    expect((await denial(`https://hooks.example.com/${'a'.repeat(3000)}`, prod(resolver))).code).toBe('invalid_url');
  });

  it('reports unresolvable names, marking DNS outages retryable', async () => {
    const missing = await denial('https://nope.example.com/', prod(resolver));
    expect(missing.code).toBe('unresolvable');
    expect(missing.retryable).toBe(false);
    const flaky: HostResolver = async () => {
      throw Object.assign(new Error('temporary'), { code: 'EAI_AGAIN' });
    };
    expect((await denial('https://x.example.com/', prod(flaky))).retryable).toBe(true);
    const hanging: HostResolver = () => new Promise(() => {});
    const slow = await denial('https://x.example.com/', prod(hanging, { resolveTimeoutMs: 20 }));
    expect(slow.code).toBe('unresolvable');
    expect(slow.retryable).toBe(true);
    const empty: HostResolver = async () => [];
    expect((await denial('https://x.example.com/', prod(empty))).code).toBe('unresolvable');
  });

  it('exempts allow-listed dev hosts from the address rules but not from https in production', async () => {
    const dev: EgressPolicy = { production: false, resolver, allowHosts: ['127.0.0.1', 'localhost', '*.internal.test'] };
    expect((await checkWebhookUrl('http://127.0.0.1:3000/h', dev)).addresses).toEqual([{ address: '127.0.0.1', family: 4 }]);
    expect((await checkWebhookUrl('http://localhost:3000/h', dev)).addresses).toHaveLength(2);
    expect((await checkWebhookUrl('http://dev.internal.test/h', dev)).host).toBe('dev.internal.test');
    // the apex of a wildcard and look-alike names are not exempt
    expect((await denial('http://127.0.0.2/', dev)).category).toBe('loopback');
    expect((await denial('http://evil.example.com/', dev)).category).toBe('loopback');
    expect((await denial('http://localhost:3000/', { ...dev, production: true })).code).toBe('https_required');
  });

  it('matches allow-list entries case-insensitively, with brackets and trailing dots', () => {
    expect(isAllowListed('LOCALHOST.', ['localhost'])).toBe(true);
    expect(isAllowListed('::1', ['[::1]'])).toBe(true);
    expect(isAllowListed('a.internal.test', ['*.internal.test'])).toBe(true);
    expect(isAllowListed('internal.test', ['*.internal.test'])).toBe(false);
    expect(isAllowListed('evilinternal.test', ['*.internal.test'])).toBe(false);
  });
});
