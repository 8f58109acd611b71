import { z } from 'zod';
import type { MicrosoftEndpoints } from './microsoft-endpoints.js';

export type GraphLinkKind = 'delta' | 'window';

/** Inbox message paths Graph hands back in `@odata.deltaLink` / `@odata.nextLink` (both spellings). */
const INBOX = "mailfolders(?:/inbox|\\('inbox'\\)|%28%27inbox%27%29)";
const PATHS: Record<GraphLinkKind, RegExp> = {
  delta: new RegExp(`^/v1\\.0/me/${INBOX}/messages/delta$`, 'i'),
  window: new RegExp(`^/v1\\.0/me/${INBOX}/messages$`, 'i'),
};

const linkSchema = z.string().min(1).max(16_384).url();

export class GraphLinkRejectedError extends Error {
  override readonly name = 'GraphLinkRejectedError';
}

/**
 * SSRF guard for links the connector stores and later follows. A deltaLink lives in the database
 * for days; if it were tampered with (or a provider response spoofed), following it blindly would
 * send the mailbox's bearer token anywhere. Only links on the configured Graph origin, on the exact
 * inbox-messages path, carrying a Graph paging token, are accepted.
 */
export class GraphLinkValidator {
  constructor(private readonly endpoints: MicrosoftEndpoints) {}

  /** Returns the parsed URL or throws GraphLinkRejectedError (never echoing the link itself). */
  validate(link: string, kind: GraphLinkKind): URL {
    const parsed = linkSchema.safeParse(link);
    if (!parsed.success) throw new GraphLinkRejectedError('Graph link is not a URL');
    const url = new URL(parsed.data);
    const configured = new URL(this.endpoints.graphBaseUrl);
    const secure = url.protocol === 'https:';
    const sandboxHttp = this.endpoints.allowInsecureGraph && url.protocol === 'http:' && url.origin === configured.origin;
    if (!secure && !sandboxHttp) throw new GraphLinkRejectedError('Graph link must use https');
    if (url.username || url.password) throw new GraphLinkRejectedError('Graph link must not carry credentials');
    if (!this.endpoints.graphLinkHosts.includes(url.host.toLowerCase())) throw new GraphLinkRejectedError('Graph link host is not allowed');
    if (url.hash) throw new GraphLinkRejectedError('Graph link must not have a fragment');
    if (!PATHS[kind].test(url.pathname)) throw new GraphLinkRejectedError(`Graph link is not an inbox ${kind} link`);
    if (kind === 'delta') {
      const hasToken = ['$skiptoken', '$deltatoken', '$skipToken', '$deltaToken'].some((p) => (url.searchParams.get(p) ?? '') !== '');
      if (!hasToken) throw new GraphLinkRejectedError('Graph delta link carries no token');
    }
    return url;
  }

  /** Path + query relative to the versioned Graph root, for `client.api()`. */
  relativePath(url: URL): string {
    return `${url.pathname.replace(/^\/v1\.0/i, '')}${url.search}`;
  }
}

/** Upload-session URLs: https on an Outlook host (or the sandbox origin); no bearer token is sent there. */
export function validateUploadUrl(link: string, endpoints: MicrosoftEndpoints): URL {
  const parsed = linkSchema.safeParse(link);
  if (!parsed.success) throw new GraphLinkRejectedError('upload URL is not a URL');
  const url = new URL(parsed.data);
  const configured = new URL(endpoints.graphBaseUrl);
  const ok = url.protocol === 'https:' || (endpoints.allowInsecureGraph && url.protocol === 'http:' && url.origin === configured.origin);
  if (!ok || url.username || url.password || !endpoints.uploadHosts.includes(url.host.toLowerCase())) throw new GraphLinkRejectedError('upload URL host is not allowed');
  return url;
}
