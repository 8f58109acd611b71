import { Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { z } from 'zod';
import type { AccessTokenSource, ChangePage, MailProvider, RawMessage, SendAsAddress, SendRequest, SendResult, SyncCursor, WindowPage } from '../mail-provider.port.js';
import { isProviderError, ProviderError, unexpectedResponse } from '../provider-error.js';
import { ConcurrencyLimiter } from './concurrency-limiter.js';
import { GraphLinkFolderUnknownError, GraphLinkRejectedError, GraphLinkValidator } from './delta-link.validator.js';
import { createGraphClient } from './graph-client.factory.js';
import { GraphRequestRunner, type GraphRunnerOptions } from './graph-request.runner.js';
import type { MicrosoftEndpoints } from './microsoft-endpoints.js';
import { readOwnSmtpAddresses, sendAsDenied } from './graph-send-as.js';

/** "Write requests in the Microsoft Graph API have a size limit of 4 MB" (concepts/use-the-api). */
export const GRAPH_WRITE_LIMIT_BYTES = 4 * 1024 * 1024;
/**
 * The largest RFC 5322 message the connector can send through Graph: sendMail and reply take it
 * as base64 in one request, which must stay under the 4 MB write limit (1 KiB kept for slack).
 * Larger messages would need a draft with upload sessions, i.e. Mail.ReadWrite, which the
 * connector does not ask for (scope-policy.ts).
 */
export const GRAPH_MAX_MIME_BYTES = Math.floor(((GRAPH_WRITE_LIMIT_BYTES - 1024) * 3) / 4);
/**
 * Delta pages hold 10 messages unless the request prefers more (delta-query-messages: page size
 * via `Prefer: odata.maxpagesize={x}`). Graph treats the preference as an upper bound and caps it
 * at its own maximum, which the docs do not state for messages; 1,000 matches the largest `$top`
 * Outlook list calls accept. The walk selects ids only, so a big page is cheap; incremental pages
 * stay at 50 so the cursor is committed often.
 */
const DEFAULT_WALK_PAGE = 1000;
const DEFAULT_DELTA_PAGE = 50;

export interface GraphAdapterOptions {
  endpoints: MicrosoftEndpoints;
  accessToken: AccessTokenSource;
  /** Share one limiter per mailbox across every adapter instance of that mailbox. */
  limiter?: ConcurrencyLimiter;
  /** `Prefer: odata.maxpagesize` for incremental delta pages (each id is fetched before the next page). */
  deltaPageSize?: number;
  /** `Prefer: odata.maxpagesize` for the connect/resync walk to "now", which only collects the deltaLink. */
  walkPageSize?: number;
  windowPageSize?: number;
  /**
   * How currentCursor finds "now": `walk` follows delta to its end selecting ids only (works on
   * every Graph deployment); `latest` asks for `$deltatoken=latest` (one call).
   */
  cursorStrategy?: 'walk' | 'latest';
  runner?: GraphRunnerOptions;
  /**
   * A Microsoft 365 shared mailbox the signed-in member reads and sends from (delegated
   * `Mail.Read.Shared` / `Mail.Send.Shared`): every mail path is `/users/{address}/…` instead of
   * `${this.root}/…`, and Graph's 403 on it becomes `auth_revoked` with reason `shared_mailbox_access_denied`.
   */
  sharedMailbox?: string;
  /**
   * The token is app-only (an organization install's client credentials, application permissions
   * Mail.Read + Mail.Send): sends go through `/users/{mailbox}/…` like a shared mailbox's (a reply
   * with `…/messages/{id}/reply`, which the Mail.Send application role allows), no send-as
   * addresses are listed, and `runner.refineError` is kept as given.
   */
  appOnly?: boolean;
}

/** Graph's answer when the member lost (or never had) access to the shared mailbox. */
export const SHARED_MAILBOX_ACCESS_DENIED = 'shared_mailbox_access_denied';

const deltaPageSchema = z.object({
  value: z.array(z.object({ id: z.string().min(1), receivedDateTime: z.string().optional(), '@removed': z.unknown().optional() }).passthrough()),
  '@odata.nextLink': z.string().optional(),
  '@odata.deltaLink': z.string().optional(),
});
const listPageSchema = z.object({
  value: z.array(z.object({ id: z.string().min(1) }).passthrough()),
  '@odata.nextLink': z.string().optional(),
});
const meSchema = z.object({ mail: z.string().nullable().optional(), userPrincipalName: z.string().optional() });
const recipientSchema = z.object({ emailAddress: z.object({ address: z.string().optional() }).passthrough().nullish() }).passthrough();
const messageMetaSchema = z.object({ id: z.string().min(1), conversationId: z.string().optional(), receivedDateTime: z.string().optional() });
const folderSchema = z.object({ id: z.string().regex(/^[A-Za-z0-9+/_=-]{1,512}$/) });

function enc(s: string): string {
  return encodeURIComponent(s);
}

/** Parse a Graph answer; a malformed one is a ProviderError (`unexpected_response`), never a ZodError. */
function parseGraph<T>(schema: z.ZodType<T>, body: unknown, operation: string): T {
  const r = schema.safeParse(body);
  if (!r.success) throw unexpectedResponse('microsoft', operation, { issues: r.error.issues });
  return r.data;
}

function invalid(message: string, reason: string): ProviderError {
  return new ProviderError('microsoft', 'invalid_request', message, { reason });
}

/**
 * MailProvider for one Microsoft 365 mailbox over Microsoft Graph v1.0, through the real
 * `@microsoft/microsoft-graph-client`. Inbox sync uses per-folder delta
 * (https://learn.microsoft.com/graph/delta-query-messages), raw MIME comes from `$value`.
 *
 * Sending needs only Mail.Send (Mail.Send.Shared on a shared mailbox), the scope the connector
 * holds: a new message is `POST {root}/sendMail` and a reply `POST {root}/messages/{id}/reply`,
 * both with the base64 MIME as the body (outlook-send-mime-message), so no draft is created —
 * createReply, `POST /messages` and attachment upload sessions all need Mail.ReadWrite. The
 * whole request must fit Graph's 4 MB write limit (GRAPH_MAX_MIME_BYTES); the API refuses larger
 * messages up front (graph-limits.ts).
 */
export class GraphAdapter implements MailProvider {
  readonly name = 'microsoft' as const;
  private readonly runner: GraphRequestRunner;
  /** `/me` or `/users/{shared address}`: the mailbox every mail path names. */
  private readonly root: string;
  private readonly links: GraphLinkValidator;
  private readonly deltaPageSize: number;
  private readonly walkPageSize: number;
  private readonly windowPageSize: number;
  /** The inbox's Graph id, once a link named the folder by id (carried in the cursor after that). */
  private inboxFolderId: string | undefined;

  constructor(private readonly options: GraphAdapterOptions) {
    const limiter = options.limiter ?? new ConcurrencyLimiter(4);
    if (limiter.max > 4) throw new Error('Outlook allows at most 4 concurrent requests per mailbox');
    const shared = options.sharedMailbox;
    this.root = shared === undefined ? '/me' : `/users/${encodeURIComponent(shared)}`;
    const refineError = shared === undefined || options.appOnly ? options.runner?.refineError : sharedAccessDenied;
    this.runner = new GraphRequestRunner(createGraphClient(options.endpoints, options.accessToken), limiter, { ...options.runner, refineError });
    this.links = new GraphLinkValidator(options.endpoints);
    this.deltaPageSize = options.deltaPageSize ?? DEFAULT_DELTA_PAGE;
    this.walkPageSize = options.walkPageSize ?? DEFAULT_WALK_PAGE;
    this.windowPageSize = options.windowPageSize ?? 100;
  }

  get limiter(): ConcurrencyLimiter {
    return this.runner.limiter;
  }

  async getAddress(): Promise<string> {
    const me = parseGraph(meSchema, await this.runner.json({ method: 'GET', path: '/me?$select=mail,userPrincipalName', operation: 'read', idempotent: true }), '/me');
    const address = me.mail ?? me.userPrincipalName;
    if (!address) throw new ProviderError('microsoft', 'invalid_request', 'Graph /me has neither mail nor userPrincipalName', { reason: 'no_address' });
    return address;
  }

  /**
   * The connect check for a shared mailbox: reads its inbox folder as the member. Throws
   * `auth_revoked` / `shared_mailbox_access_denied` (403) or `not_found` (404, no such mailbox).
   */
  async checkMailboxAccess(): Promise<void> {
    this.inboxFolderId = await this.resolveInboxFolderId();
  }

  private get initialDeltaPath(): string {
    // changeType=created: only additions matter to the inbox sync; $select=id keeps pages tiny.
    return `${this.root}/mailFolders/inbox/messages/delta?changeType=created&$select=id,receivedDateTime`;
  }

  private async deltaPage(path: string, pageSize: number): Promise<z.infer<typeof deltaPageSchema>> {
    const body = await this.runner.json({
      method: 'GET',
      path,
      headers: { Prefer: `odata.maxpagesize=${pageSize}` },
      operation: 'delta',
      idempotent: true,
    });
    const page = parseGraph(deltaPageSchema, body, 'messages/delta');
    if (!page['@odata.nextLink'] && !page['@odata.deltaLink']) throw unexpectedResponse('microsoft', 'messages/delta', { issues: [{ path: ['@odata.deltaLink'] }] });
    return page;
  }

  private async checkedLink(link: string, kind: 'delta' | 'window'): Promise<URL> {
    try {
      return this.links.validate(link, kind, this.inboxFolderId, this.options.sharedMailbox);
    } catch (err) {
      if (err instanceof GraphLinkFolderUnknownError && this.inboxFolderId === undefined) {
        // Graph may name the folder by id in the links it hands back; learn the inbox's id once.
        this.inboxFolderId = await this.resolveInboxFolderId();
        return this.checkedLink(link, kind);
      }
      if (err instanceof GraphLinkRejectedError) {
        // A link we refuse to follow cannot be resumed: start over from a window resync.
        throw new ProviderError('microsoft', kind === 'delta' ? 'cursor_expired' : 'invalid_request', err.message, { reason: 'link_rejected', cause: err });
      }
      throw err;
    }
  }

  private async resolveInboxFolderId(): Promise<string> {
    const body = await this.runner.json({ method: 'GET', path: `${this.root}/mailFolders/inbox?$select=id`, operation: 'read', idempotent: true });
    return parseGraph(folderSchema, body, 'mailFolders/inbox').id;
  }

  private cursor(link: string): SyncCursor {
    return { v: 1, provider: 'microsoft', link, ...(this.inboxFolderId === undefined ? {} : { inboxFolderId: this.inboxFolderId }) };
  }

  async currentCursor(): Promise<SyncCursor> {
    if (this.options.cursorStrategy === 'latest') {
      const page = await this.deltaPage(`${this.initialDeltaPath}&$deltatoken=latest`, this.walkPageSize);
      const link = page['@odata.deltaLink'] ?? page['@odata.nextLink'] ?? '';
      await this.checkedLink(link, 'delta');
      return this.cursor(link);
    }
    let path = this.initialDeltaPath;
    for (let pages = 0; pages < 100_000; pages += 1) {
      const page = await this.deltaPage(path, this.walkPageSize);
      if (page['@odata.deltaLink']) {
        await this.checkedLink(page['@odata.deltaLink'], 'delta');
        return this.cursor(page['@odata.deltaLink']);
      }
      path = this.links.relativePath(await this.checkedLink(page['@odata.nextLink'] ?? '', 'delta'));
    }
    throw new ProviderError('microsoft', 'transient', 'Graph delta did not finish', { reason: 'delta_unbounded' });
  }

  async listChanges(cursor: SyncCursor): Promise<ChangePage> {
    if (cursor.provider !== 'microsoft') throw invalid('cursor belongs to another provider', 'wrong_provider');
    this.inboxFolderId ??= cursor.inboxFolderId;
    const url = await this.checkedLink(cursor.link, 'delta');
    const page = await this.deltaPage(this.links.relativePath(url), this.deltaPageSize);
    const next = page['@odata.nextLink'];
    const nextLink = next ?? page['@odata.deltaLink'] ?? '';
    // Validate before the caller stores it: a stored link is followed later with the token attached.
    await this.checkedLink(nextLink, 'delta');
    const added = page.value
      .filter((m) => m['@removed'] === undefined)
      .map((m, i) => ({ id: m.id, at: m.receivedDateTime ? Date.parse(m.receivedDateTime) : Number.NaN, i }))
      .sort((a, b) => (Number.isNaN(a.at) || Number.isNaN(b.at) ? a.i - b.i : a.at - b.at || a.i - b.i));
    const seen = new Set<string>();
    const ids: string[] = [];
    for (const m of added) if (!seen.has(m.id)) { seen.add(m.id); ids.push(m.id); }
    return { addedMessageIds: ids, nextCursor: this.cursor(nextLink), hasMore: next !== undefined };
  }

  async listWindow(since: Date, pageToken?: string): Promise<WindowPage> {
    let path: string;
    if (pageToken) path = this.links.relativePath(await this.checkedLink(pageToken, 'window'));
    else {
      const filter = enc(`receivedDateTime ge ${since.toISOString()}`);
      path = `${this.root}/mailFolders/inbox/messages?$filter=${filter}&$select=id,receivedDateTime&$orderby=${enc('receivedDateTime desc')}&$top=${this.windowPageSize}`;
    }
    const body = parseGraph(listPageSchema, await this.runner.json({ method: 'GET', path, operation: 'read', idempotent: true }), 'mailFolders/inbox/messages');
    const next = body['@odata.nextLink'];
    if (next) await this.checkedLink(next, 'window');
    return { messageIds: body.value.map((m) => m.id), nextPageToken: next };
  }

  async fetchRaw(providerMessageId: string): Promise<RawMessage> {
    const id = enc(providerMessageId);
    const meta = parseGraph(
      messageMetaSchema,
      await this.runner.json({ method: 'GET', path: `${this.root}/messages/${id}?$select=id,conversationId,receivedDateTime`, operation: 'read', idempotent: true }),
      'messages/{id}',
    );
    const res = await this.runner.raw({ method: 'GET', path: `${this.root}/messages/${id}/$value`, operation: 'read', idempotent: true });
    if (!res.body) throw new ProviderError('microsoft', 'transient', 'Graph $value had no body', { reason: 'empty_value' });
    const length = Number(res.headers.get('content-length') ?? Number.NaN);
    return {
      providerMessageId: meta.id,
      providerThreadId: meta.conversationId,
      raw: Readable.fromWeb(res.body as unknown as WebReadableStream<Uint8Array>),
      sizeEstimate: Number.isFinite(length) ? length : undefined,
      receivedAt: meta.receivedDateTime ? new Date(meta.receivedDateTime) : undefined,
      labelIds: [],
    };
  }

  async findByInternetMessageId(internetMessageId: string): Promise<string | undefined> {
    const found = await this.findMessage(internetMessageId);
    return found?.id;
  }

  private async findMessage(internetMessageId: string): Promise<{ id: string; conversationId: string | undefined; from: string | undefined } | undefined> {
    // OData string literal: single quotes doubled; then URL-encoded so '+' and '#' survive.
    const filter = enc(`internetMessageId eq '${internetMessageId.replace(/'/g, "''")}'`);
    const body = await this.runner.json({ method: 'GET', path: `${this.root}/messages?$filter=${filter}&$select=id,conversationId,isDraft,from`, operation: 'read', idempotent: true });
    // A malformed answer must not read as "not sent": the sender would send the message again.
    const parsed = parseGraph(z.object({ value: z.array(z.object({ id: z.string().min(1), conversationId: z.string().optional(), isDraft: z.boolean().optional(), from: recipientSchema.nullish() })) }), body, 'messages?$filter');
    const hit = parsed.value.find((m) => m.isDraft !== true) ?? undefined;
    return hit ? { id: hit.id, conversationId: hit.conversationId, from: hit.from?.emailAddress?.address ?? undefined } : undefined;
  }

  /**
   * The mailbox's SMTP addresses (graph-send-as.ts): its proxyAddresses when the token is the
   * mailbox owner's own (`/me`); a shared mailbox through a member or an organization install
   * lists none (reading another user's proxyAddresses needs User.Read.All), so only the
   * mailbox's own address is accepted there.
   */
  async listSendAs(): Promise<SendAsAddress[]> {
    if (this.options.sharedMailbox !== undefined || this.options.appOnly) return [];
    return readOwnSmtpAddresses(this.runner);
  }

  async send(req: SendRequest): Promise<SendResult> {
    try {
      return await this.sendWithFallback(req);
    } catch (err) {
      // Exchange refused the From (ErrorSendAsDenied): permanent, with a reason of its own.
      throw sendAsDenied(err);
    }
  }

  private async sendWithFallback(req: SendRequest): Promise<SendResult> {
    try {
      return await this.sendOnce(req);
    } catch (err) {
      // Exchange item ids change when a message is moved to another folder, so reply on the
      // stored id can 404 although the conversation is alive. Nothing was sent then; the MIME
      // still carries In-Reply-To/References, so send it as a message of its own.
      if (!isProviderError(err, 'not_found') || req.replyToProviderMessageId === undefined) throw err;
      const { replyToProviderMessageId: _unused, ...plain } = req;
      return this.sendOnce(plain);
    }
  }

  private async sendOnce(req: SendRequest): Promise<SendResult> {
    if (req.mime.length === 0) throw invalid('MIME is empty', 'empty_mime');
    if (req.mime.length > GRAPH_MAX_MIME_BYTES) {
      // The API refuses these before queueing (graph-limits.ts); a job queued before that check is refused here, permanently.
      throw invalid('the message exceeds Graph’s 4 MB request limit for sendMail and reply', 'message_too_large');
    }
    const body = req.mime.toString('base64');
    if (req.replyToProviderMessageId) {
      // reply takes MIME as base64 text/plain like sendMail (Mail.Send), keeps the original's
      // conversation and saves a copy in Sent Items; 202 with no body.
      await this.runner.noContent({ method: 'POST', path: `${this.root}/messages/${enc(req.replyToProviderMessageId)}/reply`, body, contentType: 'text/plain', operation: 'send', idempotent: false });
    } else {
      // sendMail accepts MIME as base64 text/plain (user-sendmail); answers 202 with no body.
      await this.runner.noContent({ method: 'POST', path: `${this.root}/sendMail`, body, contentType: 'text/plain', operation: 'send', idempotent: false });
    }
    const sent = await this.findMessage(req.internetMessageId).catch(() => undefined);
    // The Sent Items copy's From shows what Exchange sent (an alias may have been rewritten).
    return { providerMessageId: sent?.id, providerThreadId: sent?.conversationId, ...(sent?.from ? { sentFrom: sent.from } : {}) };
  }
}

/** A 403 on a shared mailbox: the member's access is gone (or was never given); a new consent does not help until it is back. */
function sharedAccessDenied(err: ProviderError): ProviderError {
  if (err.status !== 403 || err.kind !== 'auth_revoked') return err;
  return new ProviderError('microsoft', 'auth_revoked', 'The signed-in member has no access to the shared mailbox (Graph 403)', {
    status: 403,
    reason: SHARED_MAILBOX_ACCESS_DENIED,
    cause: err,
  });
}
