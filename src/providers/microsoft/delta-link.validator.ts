import { z } from 'zod';
import type { MicrosoftEndpoints } from './microsoft-endpoints.js';

export type GraphLinkKind = 'delta' | 'window';

/**
 * The inbox messages paths Graph hands back in `@odata.deltaLink` / `@odata.nextLink`. Graph
 * names the folder the way the request did or by its id (Microsoft's own delta samples:
 * `/me/mailFolders/{id}/messages/delta?$skiptoken=…`), as a path segment or an OData key
 * (`mailFolders('inbox')`), percent-encoded or not, in either casing of `mailFolders`.
 */
const FOLDER_PATH = /^\/v1\.0\/(?:me|users\/([^/()']+))\/mailfolders(?:\/([^/()]+)|\('([^/']+)'\))\/messages(\/delta)?$/i;
/** Graph names a user by its object id (a GUID) or its address (UPN / SMTP), as the request did. */
const USER_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** Exchange folder ids are base64 (standard or URL-safe alphabet); `inbox` is the well-known name. */
const FOLDER_SEGMENT = /^[A-Za-z0-9+/_=-]{1,512}$/;

const linkSchema = z.string().min(1).max(16_384).url();

export class GraphLinkRejectedError extends Error {
  override readonly name = 'GraphLinkRejectedError';
}

/**
 * The link names the inbox by an id the validator was not told about. The caller resolves the
 * inbox's id (`GET /me/mailFolders/inbox?$select=id`) and validates again with it.
 */
export class GraphLinkFolderUnknownError extends GraphLinkRejectedError {
  constructor(readonly folderId: string) {
    super('Graph link names a folder by an id that is not known to be the inbox');
  }
}

/** The OData key punctuation may come percent-encoded; the folder segment is decoded on its own. */
function odataPath(pathname: string): string {
  return pathname.replace(/%28/gi, '(').replace(/%29/gi, ')').replace(/%27/gi, "'");
}

function decodeSegment(segment: string): string | undefined {
  try {
    return decodeURIComponent(segment);
  } catch {
    return undefined;
  }
}

/**
 * SSRF guard for links the connector stores and later follows. A deltaLink lives in the database
 * for days; if it were tampered with (or a provider response spoofed), following it blindly would
 * send the mailbox's bearer token anywhere. Only links on the configured Graph origin, on the
 * inbox-messages path (by name or by the inbox's id), carrying a Graph paging token, are accepted.
 */
export class GraphLinkValidator {
  constructor(private readonly endpoints: MicrosoftEndpoints) {}

  /**
   * Returns the parsed URL or throws GraphLinkRejectedError (never echoing the link itself).
   * `inboxFolderId`: the inbox's Graph id when known; a link naming any other folder id throws
   * GraphLinkFolderUnknownError (unknown id) or GraphLinkRejectedError (another folder).
   * `sharedMailbox`: the address of the shared mailbox the link belongs to. Without it only `/me/…`
   * links pass; with it only `/users/{that address or a user id}/…` links pass (never `/me/…`,
   * which would be the signed-in member's own mailbox).
   */
  validate(link: string, kind: GraphLinkKind, inboxFolderId?: string, sharedMailbox?: string): URL {
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
    const m = FOLDER_PATH.exec(odataPath(url.pathname));
    if (!m || (kind === 'delta') !== (m[4] !== undefined)) throw new GraphLinkRejectedError(`Graph link is not an inbox ${kind} link`);
    if (!ownerMatches(m[1], sharedMailbox)) throw new GraphLinkRejectedError(`Graph link is not a ${kind} link of this mailbox`);
    const folder = decodeSegment(m[2] ?? m[3] ?? '') ?? '';
    if (folder.toLowerCase() !== 'inbox') {
      if (!FOLDER_SEGMENT.test(folder)) throw new GraphLinkRejectedError(`Graph link is not an inbox ${kind} link`);
      if (inboxFolderId === undefined) throw new GraphLinkFolderUnknownError(folder);
      // Exchange ids are case-sensitive; the URL-safe and standard base64 spellings are the same id.
      if (urlSafe(folder) !== urlSafe(inboxFolderId)) throw new GraphLinkRejectedError(`Graph link is not an inbox ${kind} link`);
    }
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

/**
 * `/me/…` for the signed-in user's own mailbox; `/users/{segment}/…` for a shared mailbox, where the
 * segment is its address or a user object id (Graph scopes the token in the link to the mailbox it
 * was issued for, and the member's access is checked again on every call).
 */
function ownerMatches(segment: string | undefined, sharedMailbox: string | undefined): boolean {
  if (sharedMailbox === undefined) return segment === undefined;
  if (segment === undefined) return false;
  const user = decodeSegment(segment);
  if (user === undefined) return false;
  return USER_ID.test(user) || user.toLowerCase() === sharedMailbox.toLowerCase();
}

function urlSafe(id: string): string {
  return id.replace(/\+/g, '-').replace(/\//g, '_');
}
