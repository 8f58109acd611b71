import { BlockList, isIP } from 'node:net';
import { promises as dns } from 'node:dns';

/**
 * SSRF guard for customer-supplied webhook URLs.
 *
 * A webhook URL is attacker-controlled input that makes this service send POST requests from
 * inside our network. The guard decides once, up front, which IP addresses a delivery may
 * connect to, and returns them "pinned": the sender connects only to those addresses (its
 * `lookup` never asks DNS again), so a second, different DNS answer (DNS rebinding) cannot
 * redirect the connection to an internal service. Standard Webhooks sender guidance: "Enforce
 * HTTPS and guard against SSRF" (spec/standard-webhooks.md, provider-facts §6.1).
 *
 * Categories follow the IANA IPv4/IPv6 Special-Purpose Address Registries (RFC 6890 and
 * successors). IPv6 outside global unicast 2000::/3 is refused outright, which also covers
 * ranges nobody has named yet.
 */

export type AddressCategory =
  | 'unspecified'
  | 'loopback'
  | 'private'
  | 'link_local'
  | 'unique_local'
  | 'ipv4_mapped'
  | 'ipv4_compatible'
  | 'nat64'
  | 'six_to_four'
  | 'cgnat'
  | 'documentation'
  | 'benchmarking'
  | 'multicast'
  | 'broadcast'
  | 'reserved';

export type EgressDenyReason =
  | 'invalid_url'
  | 'unsupported_scheme'
  | 'https_required'
  | 'credentials_in_url'
  | 'forbidden_address'
  | 'unresolvable';

export interface ResolvedAddress {
  address: string;
  family: 4 | 6;
}

/** Answers every address the host name resolves to (A and AAAA), in resolver order. */
export type HostResolver = (hostname: string) => Promise<ResolvedAddress[]>;

export interface PinnedTarget {
  /** Normalised URL (no credentials, no fragment) — what the request is for. */
  url: string;
  protocol: 'http:' | 'https:';
  /** Host name without brackets or trailing dot: Host header and TLS SNI. */
  host: string;
  port: number;
  /** Path and query string to request. */
  path: string;
  /** The only addresses a connection for this target may use. Never empty. */
  addresses: ResolvedAddress[];
}

export interface EgressPolicy {
  /** Production requires https. */
  production: boolean;
  /**
   * Hosts exempt from the address rules (development and tests: '127.0.0.1', 'localhost',
   * '*.internal.test'). A `*.` entry matches sub-domains, not the apex. Exemption never lifts
   * the https requirement of production.
   */
  allowHosts?: readonly string[];
  resolver?: HostResolver;
  /** getaddrinfo can hang on a broken resolver; give up after this long. Default 5 s. */
  resolveTimeoutMs?: number;
}

const MAX_URL_LENGTH = 2048;

/**
 * Typed refusal. `message` is public (safe for an API response to the tenant who registered the
 * URL); it names the rule, never resolver internals.
 */
export class EgressDeniedError extends Error {
  override readonly name = 'EgressDeniedError';
  readonly code: EgressDenyReason;
  /** For `forbidden_address`: which rule the address broke. */
  readonly category: AddressCategory | undefined;
  /** For embedding forms (IPv4-mapped, NAT64, 6to4): the category of the embedded IPv4. */
  readonly embeddedCategory: AddressCategory | undefined;
  /** True when trying again later may succeed (a DNS timeout or SERVFAIL), false for policy. */
  readonly retryable: boolean;
  /** A 4xx: the caller supplied the URL, so the reason is exposed to them. */
  readonly expose = true;
  readonly status = 422;

  constructor(
    code: EgressDenyReason,
    message: string,
    opts: { category?: AddressCategory; embeddedCategory?: AddressCategory; retryable?: boolean; cause?: unknown } = {},
  ) {
    super(message, { cause: opts.cause });
    this.code = code;
    this.category = opts.category;
    this.embeddedCategory = opts.embeddedCategory;
    this.retryable = opts.retryable ?? false;
  }
}

// ---------------------------------------------------------------------------------------------
// Address classification

type Rule = [network: string, prefix: number, category: AddressCategory];

const IPV4_RULES: Rule[] = [
  ['0.0.0.0', 8, 'unspecified'], // "this network" (RFC 791); 0.0.0.0 reaches localhost on Linux
  ['127.0.0.0', 8, 'loopback'],
  ['10.0.0.0', 8, 'private'],
  ['172.16.0.0', 12, 'private'],
  ['192.168.0.0', 16, 'private'],
  ['169.254.0.0', 16, 'link_local'], // includes 169.254.169.254 cloud metadata
  ['100.64.0.0', 10, 'cgnat'], // RFC 6598 shared address space
  ['192.0.0.0', 24, 'reserved'], // IETF protocol assignments
  ['192.0.2.0', 24, 'documentation'],
  ['198.51.100.0', 24, 'documentation'],
  ['203.0.113.0', 24, 'documentation'],
  ['198.18.0.0', 15, 'benchmarking'],
  ['192.88.99.0', 24, 'reserved'], // deprecated 6to4 relay anycast
  ['224.0.0.0', 4, 'multicast'],
  ['255.255.255.255', 32, 'broadcast'],
  ['240.0.0.0', 4, 'reserved'],
];

const IPV6_RULES: Rule[] = [
  ['::', 128, 'unspecified'],
  ['::1', 128, 'loopback'],
  ['::ffff:0:0', 96, 'ipv4_mapped'],
  ['::ffff:0:0:0', 96, 'reserved'], // RFC 2765 IPv4-translated
  ['::', 96, 'ipv4_compatible'], // deprecated RFC 4291 §2.5.5.1
  ['64:ff9b:1::', 48, 'private'], // RFC 8215 local-use NAT64
  ['100::', 64, 'reserved'], // discard-only
  ['2001::', 23, 'reserved'], // IETF protocol assignments (Teredo, ORCHID, benchmarking …)
  ['2001:db8::', 32, 'documentation'],
  ['3fff::', 20, 'documentation'], // RFC 9637
  ['fc00::', 7, 'unique_local'],
  ['fe80::', 10, 'link_local'],
  ['fec0::', 10, 'private'], // deprecated site-local
  ['ff00::', 8, 'multicast'],
];

function buildLists(rules: Rule[], family: 'ipv4' | 'ipv6'): [BlockList, AddressCategory][] {
  return rules.map(([network, prefix, category]) => {
    const list = new BlockList();
    list.addSubnet(network, prefix, family);
    return [list, category];
  });
}

const IPV4_LISTS = buildLists(IPV4_RULES, 'ipv4');
const IPV6_LISTS = buildLists(IPV6_RULES, 'ipv6');
const GLOBAL_UNICAST_V6 = new BlockList();
GLOBAL_UNICAST_V6.addSubnet('2000::', 3, 'ipv6');
const NAT64_WELL_KNOWN = new BlockList();
NAT64_WELL_KNOWN.addSubnet('64:ff9b::', 96, 'ipv6');
const SIX_TO_FOUR = new BlockList();
SIX_TO_FOUR.addSubnet('2002::', 16, 'ipv6');

/** Expands an IPv6 address (with optional zone and dotted-quad tail) to 16 bytes. */
function ipv6Bytes(address: string): Uint8Array {
  let text = address.replace(/%.*$/, '');
  const bytes = new Uint8Array(16);
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted) {
    const [a, b, c, d] = dotted[1]!.split('.').map(Number) as [number, number, number, number];
    text = `${text.slice(0, dotted.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = text.includes('::') ? text.split('::') : [text, undefined];
  const headGroups = head ? head.split(':') : [];
  const tailGroups = tail ? tail.split(':') : [];
  const groups =
    tail === undefined
      ? headGroups
      : [...headGroups, ...Array<string>(8 - headGroups.length - tailGroups.length).fill('0'), ...tailGroups];
  groups.forEach((group, i) => {
    const value = parseInt(group, 16);
    bytes[i * 2] = value >> 8;
    bytes[i * 2 + 1] = value & 0xff;
  });
  return bytes;
}

function v4From(bytes: Uint8Array, offset: number): string {
  return `${bytes[offset]}.${bytes[offset + 1]}.${bytes[offset + 2]}.${bytes[offset + 3]}`;
}

export interface AddressVerdict {
  category: AddressCategory;
  embeddedCategory?: AddressCategory;
}

/**
 * Returns why an address must not be contacted, or `null` for a public unicast address.
 * Throws on input that is not an IP address.
 */
export function classifyAddress(address: string): AddressVerdict | null {
  const bare = address.replace(/%.*$/, '');
  const family = isIP(bare);
  if (family === 4) {
    for (const [list, category] of IPV4_LISTS) if (list.check(bare, 'ipv4')) return { category };
    return null;
  }
  if (family !== 6) throw new TypeError('not an IP address');

  const bytes = ipv6Bytes(bare);
  for (const [list, category] of IPV6_LISTS) {
    if (!list.check(bare, 'ipv6')) continue;
    if (category === 'ipv4_mapped') {
      // Rejected regardless: a mapped address reaches the IPv4 stack on a dual-stack socket and
      // is a classic filter bypass. The embedded category tells the user what it pointed at.
      const embedded = classifyAddress(v4From(bytes, 12));
      return embedded ? { category, embeddedCategory: embedded.category } : { category };
    }
    return { category };
  }
  // Translation prefixes embed an IPv4 destination: judge the address they lead to.
  if (NAT64_WELL_KNOWN.check(bare, 'ipv6')) {
    const embedded = classifyAddress(v4From(bytes, 12));
    return embedded ? { category: 'nat64', embeddedCategory: embedded.category } : null;
  }
  if (SIX_TO_FOUR.check(bare, 'ipv6')) {
    const embedded = classifyAddress(v4From(bytes, 2));
    return embedded ? { category: 'six_to_four', embeddedCategory: embedded.category } : null;
  }
  if (!GLOBAL_UNICAST_V6.check(bare, 'ipv6')) return { category: 'reserved' };
  return null;
}

// ---------------------------------------------------------------------------------------------
// URL check

export const systemResolver: HostResolver = async (hostname) => {
  // verbatim: keep the resolver's order (and IPv6 answers) instead of Node re-sorting them.
  const answers = await dns.lookup(hostname, { all: true, verbatim: true });
  return answers.map((a) => ({ address: a.address, family: a.family === 6 ? 6 : 4 }));
};

function normaliseHost(host: string): string {
  return host.toLowerCase().replace(/\.$/, '').replace(/^\[(.*)\]$/, '$1');
}

export function isAllowListed(host: string, allowHosts: readonly string[]): boolean {
  const h = normaliseHost(host);
  return allowHosts.some((entry) => {
    const pattern = normaliseHost(entry.trim());
    if (pattern.startsWith('*.')) return h.endsWith(pattern.slice(1)) && h.length > pattern.length - 1;
    return h === pattern;
  });
}

function describe(verdict: AddressVerdict): string {
  const embedded = verdict.embeddedCategory ? ` (embedding a ${verdict.embeddedCategory} IPv4 address)` : '';
  return `the URL points to a ${verdict.category} address${embedded}; webhooks may only be sent to public addresses`;
}

// DNS failures that say "try later" rather than "no such name".
const TRANSIENT_DNS = new Set(['EAI_AGAIN', 'ESERVFAIL', 'ETIMEOUT', 'ECONNREFUSED', 'resolve_timeout']);

async function resolveWithTimeout(resolver: HostResolver, host: string, timeoutMs: number): Promise<ResolvedAddress[]> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(Object.assign(new Error('resolve timeout'), { code: 'resolve_timeout' })), timeoutMs);
  });
  try {
    return await Promise.race([resolver(host), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Validates a webhook URL and resolves it to the addresses a delivery may connect to.
 * Throws {@link EgressDeniedError}. Call it at endpoint registration (to tell the tenant early)
 * AND before every delivery attempt (DNS may have changed since), then hand the returned target
 * to the sender.
 */
export async function checkWebhookUrl(rawUrl: string, policy: EgressPolicy): Promise<PinnedTarget> {
  if (typeof rawUrl !== 'string' || rawUrl.length === 0 || rawUrl.length > MAX_URL_LENGTH) {
    throw new EgressDeniedError('invalid_url', `the URL must be 1-${MAX_URL_LENGTH} characters`);
  }
  // The WHATWG parser silently strips tabs/newlines and surrounding controls ("https://exa\nmple.com"
  // becomes example.com). Refuse them: what the tenant registered must be what we call.
  // eslint-disable-next-line no-control-regex -- matching control characters is the point
  if (/[\x00-\x20\x7f]/.test(rawUrl)) {
    throw new EgressDeniedError('invalid_url', 'the URL must not contain spaces or control characters');
  }
  let url: URL;
  try {
    url = new URL(rawUrl);
  } catch {
    throw new EgressDeniedError('invalid_url', 'the URL could not be parsed');
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new EgressDeniedError('unsupported_scheme', 'only http and https URLs are accepted');
  }
  if (policy.production && url.protocol !== 'https:') {
    throw new EgressDeniedError('https_required', 'webhook URLs must use https');
  }
  if (url.username !== '' || url.password !== '') {
    // Credentials in the URL end up in logs and in every proxy; use the signing secret instead.
    throw new EgressDeniedError('credentials_in_url', 'the URL must not contain a user name or password');
  }
  // WHATWG URL has already canonicalised IPv4 in decimal/octal/hex/short forms
  // (http://2130706433/, http://0x7f.1/ → 127.0.0.1) and IPv6 literals, so a literal is
  // recognised here whatever spelling the user chose.
  const host = normaliseHost(url.hostname);
  if (host === '') throw new EgressDeniedError('invalid_url', 'the URL has no host');
  const port = url.port === '' ? (url.protocol === 'https:' ? 443 : 80) : Number(url.port);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new EgressDeniedError('invalid_url', 'the URL port is out of range');
  }

  const literalFamily = isIP(host);
  let addresses: ResolvedAddress[];
  if (literalFamily !== 0) {
    addresses = [{ address: host, family: literalFamily as 4 | 6 }];
  } else {
    const resolver = policy.resolver ?? systemResolver;
    let answers: unknown;
    try {
      answers = await resolveWithTimeout(resolver, host, policy.resolveTimeoutMs ?? 5000);
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      const retryable = typeof code === 'string' && TRANSIENT_DNS.has(code);
      throw new EgressDeniedError('unresolvable', 'the URL host name could not be resolved', { retryable, cause: err });
    }
    addresses = Array.isArray(answers)
      ? answers.filter(
          (a): a is ResolvedAddress =>
            typeof a === 'object' && a !== null && isIP(String((a as ResolvedAddress).address).replace(/%.*$/, '')) === (a as ResolvedAddress).family,
        )
      : [];
    if (addresses.length === 0) {
      throw new EgressDeniedError('unresolvable', 'the URL host name has no usable address');
    }
  }

  if (!isAllowListed(host, policy.allowHosts ?? [])) {
    // ANY bad answer rejects the URL: a mixed answer lets an attacker win the connection race.
    for (const { address } of addresses) {
      const verdict = classifyAddress(address);
      if (verdict) {
        // Outside production the refusal names the setting that lifts it (a local receiver while
        // developing); in production the operator's allow-list is none of the tenant's business.
        const hint = policy.production ? '' : ` (for a development receiver, allow the host with WEBHOOK_ALLOWED_HOSTS=${host})`;
        throw new EgressDeniedError('forbidden_address', describe(verdict) + hint, {
          category: verdict.category,
          ...(verdict.embeddedCategory ? { embeddedCategory: verdict.embeddedCategory } : {}),
        });
      }
    }
  }

  url.hash = '';
  return {
    url: url.toString(),
    protocol: url.protocol,
    host,
    port,
    path: `${url.pathname}${url.search}`,
    addresses: addresses.map(({ address, family }) => ({ address, family })),
  };
}
