import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Recipient, UploadSession } from '@microsoft/microsoft-graph-types';
import { z } from 'zod';
import type { SandboxAppAccess } from './sandbox-app-access.js';
import type { SandboxIdentity } from './sandbox-identity.handler.js';
import { BodyTooLargeError, GraphHttpError, headerValue, readBody, sendEmpty, sendGraphError, sendJson } from './sandbox-http.util.js';
import {
  folderIdOf,
  graphId,
  parseMime,
  toGraphMessage,
  type ParsedMime,
  type SandboxMailboxStore,
  type SandboxUser,
  type StoredAttachment,
  type StoredMessage,
} from './sandbox-mailbox.store.js';
import { composeMime } from './sandbox-mime.composer.js';
import { authorizeSubmission, formatAddress, replaceHeaders, type SubmittingActor } from './sandbox-send-as.js';
import type { SandboxSubscriptions } from './sandbox-subscriptions.service.js';
import type { SandboxThrottle } from './sandbox-throttle.js';

/** "Write requests in the Microsoft Graph API have a size limit of 4 MB" (concepts/use-the-api). */
export const GRAPH_WRITE_LIMIT_BYTES = 4 * 1024 * 1024;
/** outlook-large-attachments: upload sessions for 3 MB – 150 MB. */
export const UPLOAD_SESSION_MIN_BYTES = 3 * 1024 * 1024;
export const UPLOAD_SESSION_MAX_BYTES = 150 * 1024 * 1024;
const DEFAULT_DELTA_PAGE = 10;
const DEFAULT_LIST_PAGE = 10;

const deltaTokenSchema = z.object({
  u: z.string(),
  e: z.number().int(),
  s: z.number().int().nonnegative(),
  up: z.number().int().nonnegative().optional(),
  p: z.number().int().nonnegative().optional(),
  f: z.string().optional(),
  sel: z.string().optional(),
  ct: z.string().optional(),
});
type DeltaToken = z.infer<typeof deltaTokenSchema>;

const recipientSchema = z.object({ emailAddress: z.object({ address: z.string().email(), name: z.string().optional() }) });
const itemBodySchema = z.object({ contentType: z.enum(['text', 'html', 'Text', 'HTML', 'Html']).default('text'), content: z.string() });
const jsonMessageSchema = z.object({
  subject: z.string().optional(),
  body: itemBodySchema.optional(),
  toRecipients: z.array(recipientSchema).optional(),
  ccRecipients: z.array(recipientSchema).optional(),
  bccRecipients: z.array(recipientSchema).optional(),
  isRead: z.boolean().optional(),
  attachments: z.array(z.object({ name: z.string(), contentBytes: z.string(), contentType: z.string().optional(), isInline: z.boolean().optional(), contentId: z.string().optional() }).passthrough()).optional(),
}).passthrough();
const fileAttachmentSchema = z.object({
  '@odata.type': z.string().regex(/fileAttachment$/i),
  name: z.string().min(1).max(255),
  contentBytes: z.string(),
  contentType: z.string().optional(),
  isInline: z.boolean().optional(),
  contentId: z.string().optional(),
});
const uploadSessionSchema = z.object({
  AttachmentItem: z.object({
    attachmentType: z.literal('file'),
    name: z.string().min(1).max(255),
    size: z.number().int().nonnegative(),
    contentType: z.string().optional(),
    isInline: z.boolean().optional(),
    contentId: z.string().optional(),
  }),
});

interface UploadSessionState {
  id: string;
  userId: string;
  messageId: string;
  authToken: string;
  name: string;
  size: number;
  contentType: string;
  isInline: boolean;
  contentId: string | undefined;
  chunks: Buffer[];
  offset: number;
  expiresAt: number;
}

export interface SendHook {
  (from: SandboxUser, mime: Buffer, recipients: string[]): void;
}

export interface GraphHandlerDeps {
  store: SandboxMailboxStore;
  identity: SandboxIdentity;
  subscriptions: SandboxSubscriptions;
  throttle: SandboxThrottle;
  baseUrl: () => string;
  now: () => number;
  /** Called after a message is sent, so mail between two sandbox users arrives in the other inbox. */
  onSent: SendHook;
  /** Admin consents and application access policies (app-only tokens); absent: app-only tokens refused. */
  appAccess?: SandboxAppAccess;
}

function isoSeconds(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

const BASE64_RE = /^[A-Za-z0-9+/\r\n]+={0,2}[\r\n]*$/;

function decodeMimeBase64(text: string): Buffer {
  const trimmed = text.trim();
  if (trimmed.length === 0 || !BASE64_RE.test(trimmed)) {
    throw new GraphHttpError(400, 'ErrorMimeContentInvalidBase64String', 'Invalid base64 string for MIME content.');
  }
  return Buffer.from(trimmed, 'base64');
}

/** `message.from` of a JSON sendMail body, when it names one. */
function jsonFromOf(json: unknown): Recipient | undefined {
  const message = (json as { message?: unknown } | undefined)?.message;
  const r = z.object({ from: recipientSchema }).safeParse(message);
  return r.success ? toRecipient(r.data.from) : undefined;
}

function selectFields(obj: Record<string, unknown>, select: string | undefined, extra: Record<string, unknown> = {}): Record<string, unknown> {
  if (!select) return { ...extra, ...obj };
  const wanted = new Set(select.split(',').map((s) => s.trim()).filter(Boolean));
  const out: Record<string, unknown> = { ...extra, '@odata.etag': obj['@odata.etag'], id: obj.id };
  for (const [k, v] of Object.entries(obj)) if (wanted.has(k)) out[k] = v;
  return out;
}

function parseReceivedFilter(filter: string | null): { op: 'ge' | 'gt'; at: number } | undefined {
  if (!filter) return undefined;
  const m = /^\s*receivedDateTime\s+(ge|gt)\s+'?([0-9T:.\-+Z]+)'?\s*$/i.exec(filter);
  if (!m) throw new GraphHttpError(400, 'ErrorInvalidUrlQueryFilter', 'The query filter contains one or more invalid nodes.');
  const at = Date.parse(m[2] ?? '');
  if (Number.isNaN(at)) throw new GraphHttpError(400, 'ErrorInvalidUrlQueryFilter', 'The query filter contains one or more invalid nodes.');
  return { op: (m[1] ?? 'ge').toLowerCase() as 'ge' | 'gt', at };
}

function matchesReceived(m: StoredMessage, f: { op: 'ge' | 'gt'; at: number } | undefined): boolean {
  if (!f) return true;
  const t = Date.parse(m.receivedDateTime);
  return f.op === 'ge' ? t >= f.at : t > f.at;
}

function pageSizeFrom(req: IncomingMessage, fallback: number): number {
  const prefer = headerValue(req, 'prefer') ?? '';
  const m = /odata\.maxpagesize=(\d+)/i.exec(prefer);
  const n = m ? Number(m[1]) : fallback;
  return Math.max(1, Math.min(n, 1000));
}

/** Graph's 403 for a token without the permission the operation needs. */
function accessDenied(): GraphHttpError {
  return new GraphHttpError(403, 'ErrorAccessDenied', 'Access is denied. Check credentials and try again.');
}

/** A granted scope, bare (`Mail.Send`) or as its resource URI (`https://graph.microsoft.com/Mail.Send`). */
function hasScope(scopes: readonly string[], wanted: readonly string[]): boolean {
  return scopes.some((s) => {
    const name = s.slice(s.lastIndexOf('/') + 1).toLowerCase();
    return wanted.some((w) => name === w.toLowerCase());
  });
}

/**
 * The delegated permission a mail write on `rest` (the path after `/me` or `/users/{id}`) needs,
 * per the Graph permission tables: sendMail, reply/replyAll/forward and sending a draft need
 * Mail.Send; creating or changing anything in the mailbox — drafts (POST messages,
 * createReply/createReplyAll/createForward), PATCH/DELETE, attachments and upload sessions —
 * needs Mail.ReadWrite. Reads (GET) and non-mail paths answer undefined.
 */
function delegatedWriteScope(method: string, rest: string): 'Mail.Send' | 'Mail.ReadWrite' | undefined {
  if (method === 'GET' || !/^\/(sendmail|messages|mailfolders)(\/|$|\()/i.test(rest)) return undefined;
  if (/^\/sendmail$/i.test(rest) || /\/messages\/[^/]+\/(reply|replyall|forward|send)$/i.test(rest)) return 'Mail.Send';
  return 'Mail.ReadWrite';
}

function toRecipient(r: z.infer<typeof recipientSchema>): Recipient {
  return { emailAddress: { address: r.emailAddress.address, name: r.emailAddress.name ?? r.emailAddress.address } };
}

/**
 * The Microsoft Graph v1.0 mail surface the connector uses, faithful to the documented
 * behaviour (delta, $value, reply, createReply/send, sendMail, attachments and upload sessions,
 * subscriptions, throttling). https://learn.microsoft.com/graph/api/resources/mail-api-overview
 */
export class SandboxGraph {
  private readonly uploads = new Map<string, UploadSessionState>();

  constructor(private readonly deps: GraphHandlerDeps) {}

  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const clientRequestId = headerValue(req, 'client-request-id');
    let release: (() => void) | undefined;
    try {
      const url = new URL(req.url ?? '/', this.deps.baseUrl());
      if (url.pathname.startsWith('/_upload/')) {
        await this.uploadChunk(req, res, url);
        return;
      }
      if (!url.pathname.startsWith('/v1.0/')) throw new GraphHttpError(400, 'BadRequest', 'Invalid version: only v1.0 is served by the sandbox.');
      const appGrant = this.deps.identity.resolveAccessToken(/^Bearer (.+)$/.exec(headerValue(req, 'authorization') ?? '')?.[1] ?? '');
      if (appGrant?.app) {
        this.deps.throttle.checkFaults(url.pathname);
        await this.routeApp(req, res, url, appGrant.clientId, appGrant.app.roles, (mailboxId) => (release = this.deps.throttle.admit(mailboxId)));
        return;
      }
      const user = this.authenticate(req);
      this.deps.throttle.checkFaults(url.pathname);
      release = this.deps.throttle.admit(user.id);
      if (this.deps.throttle.latencyMs > 0) await new Promise((r) => setTimeout(r, this.deps.throttle.latencyMs));
      await this.route(req, res, url, user);
    } catch (err) {
      if (err instanceof GraphHttpError) sendGraphError(res, err, clientRequestId);
      else if (err instanceof BodyTooLargeError) sendGraphError(res, new GraphHttpError(413, 'RequestEntityTooLarge', 'The request body exceeds the 4 MB limit for Microsoft Graph write requests.'), clientRequestId);
      else sendGraphError(res, new GraphHttpError(500, 'InternalServerError', 'The sandbox failed to process the request.'), clientRequestId);
    } finally {
      release?.();
    }
  }

  private authenticate(req: IncomingMessage): SandboxUser {
    const auth = headerValue(req, 'authorization') ?? '';
    const m = /^Bearer (.+)$/.exec(auth);
    if (!m) throw new GraphHttpError(401, 'InvalidAuthenticationToken', 'Access token is empty.', { 'www-authenticate': 'Bearer realm=""' });
    const grant = this.deps.identity.resolveAccessToken(m[1] ?? '');
    const user = grant ? this.deps.store.findById(grant.userId) : undefined;
    if (!user) throw new GraphHttpError(401, 'InvalidAuthenticationToken', 'Access token has expired or is not yet valid.', { 'www-authenticate': 'Bearer error="invalid_token"' });
    return user;
  }

  private async json(req: IncomingMessage): Promise<unknown> {
    const buf = await readBody(req, GRAPH_WRITE_LIMIT_BYTES);
    if (buf.length === 0) return {};
    try {
      return JSON.parse(buf.toString('utf8'));
    } catch {
      throw new GraphHttpError(400, 'BadRequest', 'Unable to read JSON request payload.');
    }
  }

  private isMimeRequest(req: IncomingMessage): boolean {
    return (headerValue(req, 'content-type') ?? '').toLowerCase().startsWith('text/plain');
  }

  private message(user: SandboxUser, rawId: string): StoredMessage {
    const m = user.messages.get(decodeURIComponent(rawId));
    if (!m) throw new GraphHttpError(404, 'ErrorItemNotFound', 'The specified object was not found in the store.');
    return m;
  }

  /**
   * `/users/{id or address}/…`: the caller's own mailbox, or a shared mailbox the caller is a member of
   * with the delegated `Mail.Read.Shared` (reads) / `Mail.Send.Shared` (sendMail, reply, send) /
   * `Mail.ReadWrite.Shared` (drafts, attachments, changes) scope; on the caller's own mailbox the
   * writes need `Mail.Send` / `Mail.ReadWrite` likewise (delegatedWriteScope). Anything else is
   * Graph's 403 ErrorAccessDenied. The rest of the path is served as `/me/…` on the target mailbox.
   */
  private async route(req: IncomingMessage, res: ServerResponse, url: URL, caller: SandboxUser): Promise<void> {
    const full = url.pathname.slice('/v1.0'.length);
    const method = req.method ?? 'GET';
    const users = /^\/users\/([^/]+)(\/.*)?$/i.exec(full);
    const grant = this.deps.identity.resolveAccessToken((headerValue(req, 'authorization') ?? '').slice(7));
    const scopes = grant?.scopes ?? [];
    const actor: SubmittingActor = { user: caller, scopes, appOnly: false };
    if (!users) {
      const write = delegatedWriteScope(method, full.replace(/^\/me(?=\/|$)/i, ''));
      if (write && /^\/me\//i.test(full) && !hasScope(scopes, [write])) throw accessDenied();
      return this.routeMailbox(req, res, url, caller, full, '/me', actor);
    }
    const key = decodeURIComponent(users[1] ?? '');
    const target = this.deps.store.findByEmail(key) ?? this.deps.store.findById(key);
    if (!target || target.tenantId !== caller.tenantId) throw new GraphHttpError(404, 'ErrorInvalidUser', `The requested user '${key}' is invalid.`);
    const write = delegatedWriteScope(method, users[2] ?? '');
    if (target.id !== caller.id) {
      // Reads: Mail.Read.Shared (or ReadWrite.Shared); writes: the operation's scope with `.Shared`.
      const wanted = write === undefined ? ['Mail.Read.Shared', 'Mail.ReadWrite.Shared'] : write === 'Mail.Send' ? ['Mail.Send.Shared'] : ['Mail.ReadWrite.Shared'];
      if (!target.sharedMembers?.has(caller.id) || !hasScope(scopes, wanted)) throw accessDenied();
    } else if (write && !hasScope(scopes, [write])) throw accessDenied();
    return this.routeMailbox(req, res, url, target, `/me${users[2] ?? ''}`, `/users/${encodeURIComponent(target.email)}`, actor);
  }

  /**
   * App-only (client credentials) calls: no `/me`; `/users/{id or address}/…` with the app role
   * the operation needs — reads Mail.Read (or Mail.ReadWrite), sendMail, reply and draft send Mail.Send,
   * drafts/createReply/attachments Mail.ReadWrite — and only on mailboxes the tenant's application
   * access policy allows (403 ErrorAccessDenied otherwise). Subscriptions on a mailbox's inbox
   * need Mail.Read on it; the app manages only its own subscriptions.
   */
  private async routeApp(req: IncomingMessage, res: ServerResponse, url: URL, clientId: string, roles: string[], admit: (mailboxId: string) => void): Promise<void> {
    const access = this.deps.appAccess;
    if (!access) throw new GraphHttpError(401, 'InvalidAuthenticationToken', 'App-only tokens are not accepted here.');
    const full = url.pathname.slice('/v1.0'.length);
    const method = req.method ?? 'GET';
    if (/^\/me(\/|$)/i.test(full)) throw new GraphHttpError(400, 'BadRequest', '/me request is only valid with delegated authentication flow.');
    const READ = ['Mail.Read', 'Mail.ReadWrite'];
    if (/^\/subscriptions$/i.test(full) && method === 'POST') {
      const body = await this.json(req);
      const resource = typeof (body as { resource?: unknown }).resource === 'string' ? ((body as { resource: string }).resource) : '';
      const owner = /^\/?users\/([^/]+)\//i.exec(resource)?.[1];
      const target = owner === undefined ? undefined : this.findUser(decodeURIComponent(owner));
      if (!target) throw new GraphHttpError(400, 'ExtensionError', 'Operation: Create; Exception: [Status Code: BadRequest; Reason: The resource must name a mailbox (/users/{id}/…) for app-only subscriptions.]');
      access.requireAccess(clientId, roles, target, READ);
      admit(target.id);
      const sub = await this.deps.subscriptions.create(target, clientId, body);
      return sendJson(res, 201, { '@odata.context': `${this.deps.baseUrl()}/v1.0/$metadata#subscriptions/$entity`, ...this.deps.subscriptions.toGraph(sub) });
    }
    let m = /^\/subscriptions\/([^/]+)(\/reauthorize)?$/i.exec(full);
    if (m) {
      const id = decodeURIComponent(m[1] ?? '');
      const sub = this.deps.subscriptions.subscriptions.get(id);
      const target = sub && !sub.deleted && sub.clientId === clientId ? this.deps.store.findById(sub.userId) : undefined;
      if (!target) throw new GraphHttpError(404, 'ResourceNotFound', 'The object was not found.');
      admit(target.id);
      if (m[2] && method === 'POST') {
        this.deps.subscriptions.reauthorize(target, id);
        return sendEmpty(res, 204);
      }
      if (method === 'GET') return sendJson(res, 200, this.deps.subscriptions.toGraph(sub!));
      if (method === 'PATCH') {
        access.requireAccess(clientId, roles, target, READ);
        const s = this.deps.subscriptions.renew(target, id, await this.json(req));
        return sendJson(res, 200, { '@odata.context': `${this.deps.baseUrl()}/v1.0/$metadata#subscriptions/$entity`, ...this.deps.subscriptions.toGraph(s) });
      }
      if (method === 'DELETE') {
        this.deps.subscriptions.delete(target, id);
        return sendEmpty(res, 204);
      }
    }
    m = /^\/users\/([^/]+)(\/.*)?$/i.exec(full);
    if (!m) throw new GraphHttpError(400, 'BadRequest', `Resource not found for the segment '${full.split('/')[1] ?? ''}'.`);
    const key = decodeURIComponent(m[1] ?? '');
    const target = this.findUser(key);
    if (!target) throw new GraphHttpError(404, 'ErrorInvalidUser', `The requested user '${key}' is invalid.`);
    const rest = m[2] ?? '';
    const needed =
      rest === '' || rest === '/'
        ? ['User.Read.All']
        : method === 'GET'
          ? READ
          : /^\/(sendmail|messages\/[^/]+\/(send|reply))$/i.test(rest)
            ? ['Mail.Send']
            : ['Mail.ReadWrite'];
    access.requireAccess(clientId, roles, target, needed);
    admit(target.id);
    return this.routeMailbox(req, res, url, target, `/me${rest}`, `/users/${encodeURIComponent(target.email)}`, { user: target, scopes: roles, appOnly: true });
  }

  private findUser(key: string): SandboxUser | undefined {
    return this.deps.store.findByEmail(key) ?? this.deps.store.findById(key);
  }

  private async routeMailbox(req: IncomingMessage, res: ServerResponse, url: URL, user: SandboxUser, path: string, owner: string, actor: SubmittingActor): Promise<void> {
    const method = req.method ?? 'GET';
    // The inbox by its well-known name or its id, as a segment or an OData key (encoded or not).
    const inboxId = folderIdOf(user, 'inbox').replace(/=/g, '(?:=|%3D)');
    const inbox = `mailfolders(?:/(?:inbox|${inboxId})|(?:\\(|%28)(?:'|%27)(?:inbox|${inboxId})(?:'|%27)(?:\\)|%29))`;
    let m: RegExpExecArray | null;
    if (method === 'GET' && /^\/me\/?$/i.test(path)) return this.me(res, url, user);
    if (method === 'GET' && new RegExp(`^/me/${inbox}$`, 'i').test(path)) return this.inboxFolder(res, user);
    if (method === 'GET' && new RegExp(`^/me/${inbox}/messages/delta$`, 'i').test(path)) return this.delta(req, res, url, user, owner);
    if (method === 'GET' && new RegExp(`^/me/${inbox}/messages$`, 'i').test(path)) return this.list(req, res, url, user, 'inbox');
    if (method === 'GET' && /^\/me\/messages$/i.test(path)) return this.list(req, res, url, user, undefined);
    if (method === 'POST' && /^\/me\/messages$/i.test(path)) return this.createDraft(req, res, user);
    if (method === 'POST' && /^\/me\/sendmail$/i.test(path)) return this.sendMail(req, res, user, actor);
    if ((m = /^\/me\/messages\/([^/]+)\/\$value$/i.exec(path)) && method === 'GET') return this.value(res, user, m[1] ?? '');
    if ((m = /^\/me\/messages\/([^/]+)\/createreply$/i.exec(path)) && method === 'POST') return this.createReply(req, res, user, m[1] ?? '');
    if ((m = /^\/me\/messages\/([^/]+)\/reply$/i.exec(path)) && method === 'POST') return this.reply(req, res, user, m[1] ?? '', actor);
    if ((m = /^\/me\/messages\/([^/]+)\/send$/i.exec(path)) && method === 'POST') return this.sendDraft(req, res, user, m[1] ?? '', actor);
    if ((m = /^\/me\/messages\/([^/]+)\/attachments\/createuploadsession$/i.exec(path)) && method === 'POST') return this.createUploadSession(req, res, user, m[1] ?? '');
    if ((m = /^\/me\/messages\/([^/]+)\/attachments$/i.exec(path))) {
      if (method === 'POST') return this.addAttachment(req, res, user, m[1] ?? '');
      if (method === 'GET') return this.listAttachments(res, user, m[1] ?? '');
    }
    if ((m = /^\/me\/messages\/([^/]+)$/i.exec(path))) {
      if (method === 'GET') return this.getMessage(res, url, user, m[1] ?? '');
      if (method === 'PATCH') return this.patchMessage(req, res, user, m[1] ?? '');
      if (method === 'DELETE') {
        if (!this.deps.store.deleteMessage(user, this.message(user, m[1] ?? '').id)) throw new GraphHttpError(404, 'ErrorItemNotFound', 'The specified object was not found in the store.');
        return sendEmpty(res, 204);
      }
    }
    if (/^\/subscriptions$/i.test(path)) {
      if (method === 'POST') {
        const grant = this.deps.identity.resolveAccessToken((headerValue(req, 'authorization') ?? '').slice(7));
        const sub = await this.deps.subscriptions.create(user, grant?.clientId ?? 'unknown', await this.json(req));
        return sendJson(res, 201, { '@odata.context': `${this.deps.baseUrl()}/v1.0/$metadata#subscriptions/$entity`, ...this.deps.subscriptions.toGraph(sub) });
      }
      if (method === 'GET') {
        const value = [...this.deps.subscriptions.subscriptions.values()].filter((s) => s.userId === user.id && !s.deleted).map((s) => this.deps.subscriptions.toGraph(s));
        return sendJson(res, 200, { '@odata.context': `${this.deps.baseUrl()}/v1.0/$metadata#subscriptions`, value });
      }
    }
    if ((m = /^\/subscriptions\/([^/]+)\/reauthorize$/i.exec(path)) && method === 'POST') {
      this.deps.subscriptions.reauthorize(user, decodeURIComponent(m[1] ?? ''));
      return sendEmpty(res, 204);
    }
    if ((m = /^\/subscriptions\/([^/]+)$/i.exec(path))) {
      const id = decodeURIComponent(m[1] ?? '');
      if (method === 'GET') return sendJson(res, 200, this.deps.subscriptions.toGraph(this.deps.subscriptions.requireOwned(user, id)));
      if (method === 'PATCH') {
        const s = this.deps.subscriptions.renew(user, id, await this.json(req));
        return sendJson(res, 200, { '@odata.context': `${this.deps.baseUrl()}/v1.0/$metadata#subscriptions/$entity`, ...this.deps.subscriptions.toGraph(s) });
      }
      if (method === 'DELETE') {
        this.deps.subscriptions.delete(user, id);
        return sendEmpty(res, 204);
      }
    }
    throw new GraphHttpError(400, 'BadRequest', `Resource not found for the segment '${path.split('/')[1] ?? ''}'.`);
  }

  /**
   * The user resource: the default properties, or the `$select`ed ones (proxyAddresses is not a
   * default property: `SMTP:` = the primary address, `smtp:` = aliases, as Entra ID spells them).
   */
  private me(res: ServerResponse, url: URL, user: SandboxUser): void {
    const [given, ...rest] = user.displayName.split(' ');
    const select = url.searchParams.get('$select');
    if (select) {
      const all: Record<string, unknown> = {
        id: user.id,
        displayName: user.displayName,
        mail: user.email,
        userPrincipalName: user.email,
        proxyAddresses: [`SMTP:${user.email}`, ...user.aliases.map((a) => `smtp:${a}`)],
      };
      const wanted = new Set(select.split(',').map((x) => x.trim()));
      const out: Record<string, unknown> = { '@odata.context': `${this.deps.baseUrl()}/v1.0/$metadata#users(${[...wanted].join(',')})/$entity` };
      for (const [k, v] of Object.entries(all)) if (wanted.has(k)) out[k] = v;
      return sendJson(res, 200, out);
    }
    sendJson(res, 200, {
      '@odata.context': `${this.deps.baseUrl()}/v1.0/$metadata#users/$entity`,
      businessPhones: [],
      displayName: user.displayName,
      givenName: given ?? null,
      jobTitle: null,
      mail: user.email,
      mobilePhone: null,
      officeLocation: null,
      preferredLanguage: 'en-US',
      surname: rest.join(' ') || null,
      userPrincipalName: user.email,
      id: user.id,
    });
  }

  // ---- delta -----------------------------------------------------------------------------

  private encodeToken(t: DeltaToken): string {
    return Buffer.from(JSON.stringify(t)).toString('base64url');
  }

  private decodeToken(raw: string, user: SandboxUser): DeltaToken {
    let parsed: unknown;
    try {
      parsed = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8'));
    } catch {
      throw new GraphHttpError(400, 'BadRequest', 'The delta token is malformed.');
    }
    const t = deltaTokenSchema.safeParse(parsed);
    if (!t.success || t.data.u !== user.id) throw new GraphHttpError(400, 'BadRequest', 'The delta token is malformed.');
    return t.data;
  }

  private deltaUrl(user: SandboxUser, owner: string, param: '$skiptoken' | '$deltatoken', token: string): string {
    // Microsoft's delta samples name the folder by id: /me/mailFolders/{id}/messages/delta?$skiptoken=…
    const folder = user.deltaLinkFolder === 'id' ? `mailFolders/${encodeURIComponent(folderIdOf(user, 'inbox'))}` : "mailFolders('inbox')";
    return `${this.deps.baseUrl()}/v1.0${owner}/${folder}/messages/delta?${param}=${token}`;
  }

  private inboxFolder(res: ServerResponse, user: SandboxUser): void {
    const inbox = [...user.messages.values()].filter((m) => m.folder === 'inbox' && !m.isDraft);
    sendJson(res, 200, {
      '@odata.context': `${this.deps.baseUrl()}/v1.0/$metadata#users('${user.id}')/mailFolders/$entity`,
      id: folderIdOf(user, 'inbox'),
      displayName: 'Inbox',
      parentFolderId: folderIdOf(user, 'msgfolderroot'),
      childFolderCount: 0,
      unreadItemCount: inbox.filter((m) => !m.isRead).length,
      totalItemCount: inbox.length,
      isHidden: false,
    });
  }

  private delta(req: IncomingMessage, res: ServerResponse, url: URL, user: SandboxUser, owner: string): void {
    const skip = url.searchParams.get('$skiptoken');
    const dtok = url.searchParams.get('$deltatoken') ?? url.searchParams.get('$deltaToken');
    let token: DeltaToken;
    if (dtok === 'latest') {
      return sendJson(res, 200, {
        '@odata.context': `${this.deps.baseUrl()}/v1.0/$metadata#Collection(message)`,
        value: [],
        '@odata.deltaLink': this.deltaUrl(user, owner, '$deltatoken', this.encodeToken({ u: user.id, e: user.deltaEpoch, s: user.seq, sel: url.searchParams.get('$select') ?? undefined, ct: url.searchParams.get('changeType') ?? undefined })),
      });
    }
    if (skip !== null || (dtok !== null && dtok !== '')) {
      token = this.decodeToken(skip ?? dtok ?? '', user);
      if (token.e !== user.deltaEpoch) this.deltaExpired(user, owner);
    } else {
      const f = url.searchParams.get('$filter');
      parseReceivedFilter(f);
      token = { u: user.id, e: user.deltaEpoch, s: 0, f: f ?? undefined, sel: url.searchParams.get('$select') ?? undefined, ct: url.searchParams.get('changeType') ?? undefined };
    }
    const upTo = token.up ?? user.seq;
    const pos = token.p ?? 0;
    const filter = parseReceivedFilter(token.f ?? null);
    const wantedKinds = token.ct ? token.ct.split(',').map((s) => s.trim()) : ['created', 'updated', 'deleted'];

    // Collapse the folder's change log in (s, upTo] to one entry per message (delta-query-messages).
    const perMessage = new Map<string, { created: boolean; last: 'created' | 'updated' | 'deleted'; seq: number }>();
    for (const c of user.changes) {
      if (c.seq <= token.s || c.seq > upTo || c.folder !== 'inbox') continue;
      const prev = perMessage.get(c.messageId);
      perMessage.set(c.messageId, { created: (prev?.created ?? false) || c.kind === 'created', last: c.kind, seq: c.seq });
    }
    const items: Array<Record<string, unknown>> = [];
    for (const [id, info] of [...perMessage.entries()].sort((a, b) => a[1].seq - b[1].seq)) {
      const msg = user.messages.get(id);
      const gone = info.last === 'deleted' || !msg || msg.folder !== 'inbox';
      if (gone) {
        // An initial sync has nothing to remove; later rounds report deletions as @removed.
        if (token.s === 0 || info.created || !wantedKinds.includes('deleted')) continue;
        items.push({ '@odata.type': '#microsoft.graph.message', id, '@removed': { reason: 'deleted' } });
        continue;
      }
      const kind = info.created ? 'created' : 'updated';
      if (!wantedKinds.includes(kind) || !matchesReceived(msg, filter)) continue;
      items.push(selectFields(toGraphMessage(msg, user, this.deps.baseUrl()), token.sel, { '@odata.type': '#microsoft.graph.message' }));
    }
    const size = pageSizeFrom(req, DEFAULT_DELTA_PAGE);
    const page = items.slice(pos, pos + size);
    user.deltaRequests.push({ maxPageSize: /odata\.maxpagesize=(\d+)/i.exec(headerValue(req, 'prefer') ?? '')?.[1], returned: page.length });
    const body: Record<string, unknown> = { '@odata.context': `${this.deps.baseUrl()}/v1.0/$metadata#Collection(message)`, value: page };
    if (pos + size < items.length) body['@odata.nextLink'] = this.deltaUrl(user, owner, '$skiptoken', this.encodeToken({ ...token, up: upTo, p: pos + size }));
    else body['@odata.deltaLink'] = this.deltaUrl(user, owner, '$deltatoken', this.encodeToken({ u: user.id, e: user.deltaEpoch, s: upTo, f: token.f, sel: token.sel, ct: token.ct }));
    sendJson(res, 200, body, headerValue(req, 'prefer') ? { 'preference-applied': `odata.maxpagesize=${size}` } : {});
  }

  private deltaExpired(user: SandboxUser, owner: string): never {
    if (user.deltaExpiryMode === 'gone') {
      // "410 (gone) and a Location header containing a request URL with an empty $deltaToken".
      throw new GraphHttpError(410, 'resyncRequired', 'Resync required. Replace any local cached data with the data returned by a new full synchronization.', {
        location: `${this.deps.baseUrl()}/v1.0${owner}/mailFolders('inbox')/messages/delta?$deltatoken=`,
      });
    }
    throw new GraphHttpError(400, 'syncStateNotFound', 'The sync state generation is not found. Sync state may have expired.');
  }

  // ---- reads -----------------------------------------------------------------------------

  private list(req: IncomingMessage, res: ServerResponse, url: URL, user: SandboxUser, folder: 'inbox' | undefined): void {
    const filterText = url.searchParams.get('$filter');
    let predicate: (m: StoredMessage) => boolean = () => true;
    const imid = filterText ? /^\s*internetMessageId\s+eq\s+'((?:[^']|'')*)'\s*$/i.exec(filterText) : null;
    if (imid) {
      const wanted = (imid[1] ?? '').replace(/''/g, "'");
      predicate = (m) => m.internetMessageId === wanted;
    } else {
      const f = parseReceivedFilter(filterText);
      predicate = (m) => matchesReceived(m, f);
    }
    const top = Math.max(1, Math.min(Number(url.searchParams.get('$top') ?? pageSizeFrom(req, DEFAULT_LIST_PAGE)) || DEFAULT_LIST_PAGE, 1000));
    const skip = Math.max(0, Number(url.searchParams.get('$skip') ?? 0) || 0);
    const select = url.searchParams.get('$select') ?? undefined;
    const all = [...user.messages.values()]
      .filter((m) => (folder ? m.folder === folder : true) && predicate(m))
      .sort((a, b) => Date.parse(b.receivedDateTime) - Date.parse(a.receivedDateTime) || (a.id < b.id ? -1 : 1));
    const page = all.slice(skip, skip + top).map((m) => selectFields(toGraphMessage(m, user, this.deps.baseUrl()), select));
    const body: Record<string, unknown> = { '@odata.context': `${this.deps.baseUrl()}/v1.0/$metadata#users('${user.id}')/messages`, value: page };
    if (skip + top < all.length) {
      const next = new URL(url.toString());
      next.searchParams.set('$top', String(top));
      next.searchParams.set('$skip', String(skip + top));
      body['@odata.nextLink'] = `${this.deps.baseUrl()}${next.pathname}?${next.searchParams.toString().replace(/%24/g, '$')}`;
    }
    sendJson(res, 200, body);
  }

  private getMessage(res: ServerResponse, url: URL, user: SandboxUser, rawId: string): void {
    const m = this.message(user, rawId);
    sendJson(res, 200, selectFields(toGraphMessage(m, user, this.deps.baseUrl()), url.searchParams.get('$select') ?? undefined, { '@odata.context': `${this.deps.baseUrl()}/v1.0/$metadata#users('${user.id}')/messages/$entity` }));
  }

  private value(res: ServerResponse, user: SandboxUser, rawId: string): void {
    const m = this.message(user, rawId);
    // Exactly the stored bytes; Graph serves $value as text/plain.
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': String(m.mime.length) });
    res.end(m.mime);
  }

  private listAttachments(res: ServerResponse, user: SandboxUser, rawId: string): void {
    const m = this.message(user, rawId);
    sendJson(res, 200, { '@odata.context': `${this.deps.baseUrl()}/v1.0/$metadata#users('${user.id}')/messages('${m.id}')/attachments`, value: m.attachments.map((a) => this.attachmentJson(a)) });
  }

  private attachmentJson(a: StoredAttachment): Record<string, unknown> {
    return {
      '@odata.type': '#microsoft.graph.fileAttachment',
      id: a.id,
      lastModifiedDateTime: isoSeconds(this.deps.now()),
      name: a.name,
      contentType: a.contentType,
      size: a.size,
      isInline: a.isInline,
      contentId: a.contentId ?? null,
      contentLocation: null,
      contentBytes: a.bytes.toString('base64'),
    };
  }

  // ---- writes ----------------------------------------------------------------------------

  private async parseJsonMessage(user: SandboxUser, body: unknown, defaults: Partial<ParsedMime> = {}): Promise<{ parsed: ParsedMime; mime: Buffer }> {
    const r = jsonMessageSchema.safeParse(body);
    if (!r.success) throw new GraphHttpError(400, 'ErrorInvalidRequest', 'The message payload is invalid.');
    const msg = r.data;
    const attachments: StoredAttachment[] = (msg.attachments ?? []).map((a) => {
      const bytes = Buffer.from(a.contentBytes, 'base64');
      return { id: graphId('AAMkAGAtt'), name: a.name, contentType: a.contentType ?? 'application/octet-stream', size: bytes.length, isInline: a.isInline ?? false, contentId: a.contentId, sha256: createHash('sha256').update(bytes).digest('hex'), bytes };
    });
    const contentType = (msg.body?.contentType ?? 'text').toLowerCase() === 'html' ? 'html' : 'text';
    const parsed: ParsedMime = {
      subject: msg.subject ?? defaults.subject ?? '',
      from: { emailAddress: { address: user.email, name: user.displayName } },
      to: msg.toRecipients?.map(toRecipient) ?? defaults.to ?? [],
      cc: msg.ccRecipients?.map(toRecipient) ?? defaults.cc ?? [],
      replyTo: [],
      internetMessageId: `<${randomBytes(12).toString('hex')}@sandbox.outlook.local>`,
      inReplyTo: defaults.inReplyTo,
      references: defaults.references ?? [],
      date: new Date(this.deps.now()),
      text: contentType === 'text' ? (msg.body?.content ?? defaults.text ?? '') : '',
      html: contentType === 'html' ? (msg.body?.content ?? '') : undefined,
      attachments,
    };
    const mime = await composeMime({
      from: parsed.from,
      to: parsed.to,
      cc: parsed.cc,
      subject: parsed.subject,
      messageId: parsed.internetMessageId ?? '',
      inReplyTo: parsed.inReplyTo,
      references: parsed.references,
      date: parsed.date ?? new Date(this.deps.now()),
      bodyContentType: contentType,
      bodyContent: parsed.html ?? parsed.text,
      attachments,
    });
    return { parsed, mime };
  }

  private async readMimeOrJson(req: IncomingMessage, user: SandboxUser, defaults: Partial<ParsedMime> = {}): Promise<{ parsed: ParsedMime; mime: Buffer; fromClient: boolean; json: unknown }> {
    if (this.isMimeRequest(req)) {
      const text = (await readBody(req, GRAPH_WRITE_LIMIT_BYTES)).toString('latin1');
      const mime = decodeMimeBase64(text);
      return { parsed: await parseMime(mime), mime, fromClient: true, json: undefined };
    }
    const json = await this.json(req);
    const { parsed, mime } = await this.parseJsonMessage(user, (json as { message?: unknown }).message ?? json, defaults);
    return { parsed, mime, fromClient: false, json };
  }

  private async createDraft(req: IncomingMessage, res: ServerResponse, user: SandboxUser): Promise<void> {
    const { parsed, mime, fromClient } = await this.readMimeOrJson(req, user);
    const msg = this.deps.store.addMessage(user, { folder: 'drafts', mime, mimeFromClient: fromClient, parsed, receivedAt: new Date(this.deps.now()), isDraft: true });
    sendJson(res, 201, { '@odata.context': `${this.deps.baseUrl()}/v1.0/$metadata#users('${user.id}')/messages/$entity`, ...toGraphMessage(msg, user, this.deps.baseUrl()) });
  }

  /** The message a createReply / reply body describes: base64 MIME as given, or JSON (comment or message) addressed to the original's sender. */
  private async replyInput(req: IncomingMessage, user: SandboxUser, original: StoredMessage): Promise<{ parsed: ParsedMime; mime: Buffer; fromClient: boolean; references: string[] }> {
    const replyTarget = original.replyTo.length > 0 ? original.replyTo : original.from ? [original.from] : [];
    const references = [...original.references, original.internetMessageId];
    let draftInput: { parsed: ParsedMime; mime: Buffer; fromClient: boolean };
    if (this.isMimeRequest(req)) {
      draftInput = await this.readMimeOrJson(req, user);
    } else {
      const body = (await this.json(req)) as { comment?: unknown; message?: { body?: unknown } };
      // "Specify either a comment or the body property of the message parameter. Specifying both will return an HTTP 400".
      if (typeof body.comment === 'string' && body.message?.body !== undefined) throw new GraphHttpError(400, 'ErrorInvalidRequest', 'Specify either comment or message body, not both.');
      const content = typeof body.comment === 'string' ? body.comment : '';
      const { parsed, mime } = await this.parseJsonMessage(user, { ...(body.message ?? {}), ...(body.message?.body ? {} : { body: { contentType: 'text', content } }) }, {
        subject: /^re:/i.test(original.subject) ? original.subject : `RE: ${original.subject}`,
        to: replyTarget,
        inReplyTo: original.internetMessageId,
        references,
      });
      draftInput = { parsed, mime, fromClient: false };
    }
    return { ...draftInput, references };
  }

  private async createReply(req: IncomingMessage, res: ServerResponse, user: SandboxUser, rawId: string): Promise<void> {
    const original = this.message(user, rawId);
    const { references, ...draftInput } = await this.replyInput(req, user, original);
    const draft = this.deps.store.addMessage(user, {
      folder: 'drafts',
      mime: draftInput.mime,
      mimeFromClient: draftInput.fromClient,
      parsed: draftInput.parsed,
      receivedAt: new Date(this.deps.now()),
      isDraft: true,
      conversationOf: original,
    });
    if (!draft.inReplyTo) {
      draft.inReplyTo = original.internetMessageId;
      draft.references = references;
    }
    sendJson(res, 201, { '@odata.context': `${this.deps.baseUrl()}/v1.0/$metadata#users('${user.id}')/messages/$entity`, ...toGraphMessage(draft, user, this.deps.baseUrl()) });
  }

  /**
   * `POST /messages/{id}/reply` (Mail.Send): sends at once, no draft. The reply joins the
   * original's conversation and is saved to Sent Items; a MIME body is sent as given
   * (In-Reply-To/References added when it lacks them, as createReply does).
   */
  private async reply(req: IncomingMessage, res: ServerResponse, user: SandboxUser, rawId: string, actor: SubmittingActor): Promise<void> {
    const original = this.message(user, rawId);
    const { parsed, mime: given, fromClient, references } = await this.replyInput(req, user, original);
    if (this.recipients(parsed).length === 0) throw new GraphHttpError(400, 'ErrorInvalidRecipients', 'At least one recipient is not valid.');
    const submission = authorizeSubmission(this.deps.store, user, actor, fromClient ? parsed.from : undefined, given);
    let mime = submission.mime;
    if (!parsed.inReplyTo) {
      parsed.inReplyTo = original.internetMessageId;
      parsed.references = references;
      mime = replaceHeaders(mime, { 'In-Reply-To': original.internetMessageId, References: references.join(' ') });
    }
    parsed.from = submission.from;
    const stored = this.deps.store.addMessage(user, { folder: 'sentitems', mime, mimeFromClient: fromClient, parsed, receivedAt: new Date(this.deps.now()), isDraft: false, conversationOf: original });
    stored.sender = submission.sender;
    stored.isRead = true;
    user.sent.push({
      messageId: stored.id,
      via: 'reply',
      conversationId: stored.conversationId,
      internetMessageId: stored.internetMessageId,
      subject: stored.subject,
      inReplyTo: stored.inReplyTo,
      mime,
      attachments: parsed.attachments.map((a) => ({ name: a.name, size: a.size, sha256: a.sha256 })),
      savedToSentItems: true,
      at: new Date(this.deps.now()).toISOString(),
      from: submission.from.emailAddress?.address ?? '',
      sender: submission.sender.emailAddress?.address ?? '',
    });
    this.deps.onSent(user, mime, this.recipients(parsed));
    sendEmpty(res, 202);
  }

  private async patchMessage(req: IncomingMessage, res: ServerResponse, user: SandboxUser, rawId: string): Promise<void> {
    const m = this.message(user, rawId);
    const r = jsonMessageSchema.safeParse(await this.json(req));
    if (!r.success) throw new GraphHttpError(400, 'ErrorInvalidRequest', 'The message payload is invalid.');
    const p = r.data;
    const contentChange = p.subject !== undefined || p.body !== undefined || p.toRecipients !== undefined || p.ccRecipients !== undefined;
    if (contentChange && !m.isDraft) throw new GraphHttpError(400, 'ErrorInvalidPropertyUpdateSentMessage', 'Update operation is invalid for property of a sent message.');
    if (p.subject !== undefined) m.subject = p.subject;
    if (p.body !== undefined) {
      m.bodyContentType = p.body.contentType.toLowerCase() === 'html' ? 'html' : 'text';
      m.bodyContent = p.body.content;
    }
    if (p.toRecipients) m.toRecipients = p.toRecipients.map(toRecipient);
    if (p.ccRecipients) m.ccRecipients = p.ccRecipients.map(toRecipient);
    if (p.isRead !== undefined) m.isRead = p.isRead;
    if (contentChange) m.mimeStale = true;
    this.deps.store.touch(user, m);
    sendJson(res, 200, { '@odata.context': `${this.deps.baseUrl()}/v1.0/$metadata#users('${user.id}')/messages/$entity`, ...toGraphMessage(m, user, this.deps.baseUrl()) });
  }

  private async addAttachment(req: IncomingMessage, res: ServerResponse, user: SandboxUser, rawId: string): Promise<void> {
    const m = this.message(user, rawId);
    const r = fileAttachmentSchema.safeParse(await this.json(req));
    if (!r.success) throw new GraphHttpError(400, 'ErrorInvalidRequest', 'The attachment payload is invalid.');
    const bytes = Buffer.from(r.data.contentBytes, 'base64');
    const att: StoredAttachment = {
      id: graphId('AAMkAGAtt'),
      name: r.data.name,
      contentType: r.data.contentType ?? 'application/octet-stream',
      size: bytes.length,
      isInline: r.data.isInline ?? false,
      contentId: r.data.contentId,
      sha256: createHash('sha256').update(bytes).digest('hex'),
      bytes,
    };
    m.attachments.push(att);
    m.mimeStale = true;
    this.deps.store.touch(user, m);
    sendJson(res, 201, { '@odata.context': `${this.deps.baseUrl()}/v1.0/$metadata#users('${user.id}')/messages('${m.id}')/attachments/$entity`, ...this.attachmentJson(att) });
  }

  private async createUploadSession(req: IncomingMessage, res: ServerResponse, user: SandboxUser, rawId: string): Promise<void> {
    const m = this.message(user, rawId);
    const r = uploadSessionSchema.safeParse(await this.json(req));
    if (!r.success) throw new GraphHttpError(400, 'ErrorInvalidRequest', 'AttachmentItem is required.');
    const item = r.data.AttachmentItem;
    if (item.size < UPLOAD_SESSION_MIN_BYTES) throw new GraphHttpError(400, 'ErrorAttachmentSizeShouldNotBeLessThanMinimumSize', 'Attachment size must be greater than the minimum size.');
    if (item.size > UPLOAD_SESSION_MAX_BYTES) throw new GraphHttpError(400, 'ErrorAttachmentSizeShouldNotBeGreaterThanMaximumSize', 'Attachment size must not be greater than the maximum size.');
    const session: UploadSessionState = {
      id: randomUUID(),
      userId: user.id,
      messageId: m.id,
      authToken: randomBytes(24).toString('base64url'),
      name: item.name,
      size: item.size,
      contentType: item.contentType ?? 'application/octet-stream',
      isInline: item.isInline ?? false,
      contentId: item.contentId,
      chunks: [],
      offset: 0,
      expiresAt: this.deps.now() + 15 * 60_000,
    };
    this.uploads.set(session.id, session);
    const body: UploadSession & Record<string, unknown> = {
      '@odata.context': `${this.deps.baseUrl()}/v1.0/$metadata#microsoft.graph.uploadSession`,
      uploadUrl: `${this.deps.baseUrl()}/_upload/${session.id}?authtoken=${session.authToken}`,
      expirationDateTime: new Date(session.expiresAt).toISOString(),
      nextExpectedRanges: ['0-'],
    };
    sendJson(res, 201, body);
  }

  private async uploadChunk(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const id = url.pathname.slice('/_upload/'.length);
    const s = this.uploads.get(id);
    if (req.method !== 'PUT') throw new GraphHttpError(405, 'MethodNotAllowed', 'Upload URLs accept PUT only.');
    if (!s || url.searchParams.get('authtoken') !== s.authToken || s.expiresAt <= this.deps.now()) throw new GraphHttpError(404, 'ErrorItemNotFound', 'The upload session was not found or has expired.');
    // The upload URL carries its own auth token; sending the bearer token as well is rejected.
    if (headerValue(req, 'authorization')) throw new GraphHttpError(401, 'InvalidAuthenticationToken', 'Do not send an Authorization header to the upload URL.');
    const release = this.deps.throttle.admit(s.userId);
    try {
      const range = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(headerValue(req, 'content-range') ?? '');
      const body = await readBody(req, GRAPH_WRITE_LIMIT_BYTES);
      if (!range) throw new GraphHttpError(400, 'InvalidContentRange', 'Content-Range is required.');
      const [start, end, total] = [Number(range[1]), Number(range[2]), Number(range[3])];
      if (total !== s.size || start !== s.offset || end < start || end - start + 1 !== body.length || end >= s.size) {
        throw new GraphHttpError(416, 'InvalidRange', `The range is not satisfiable; next expected range is ${s.offset}-.`);
      }
      s.chunks.push(body);
      s.offset = end + 1;
      if (s.offset < s.size) {
        sendJson(res, 200, { expirationDateTime: new Date(s.expiresAt).toISOString(), nextExpectedRanges: [`${s.offset}-`] });
        return;
      }
      this.uploads.delete(s.id);
      const user = this.deps.store.findById(s.userId);
      const msg = user?.messages.get(s.messageId);
      if (!user || !msg) throw new GraphHttpError(404, 'ErrorItemNotFound', 'The message was not found.');
      const bytes = Buffer.concat(s.chunks);
      const att: StoredAttachment = { id: graphId('AAMkAGAtt'), name: s.name, contentType: s.contentType, size: bytes.length, isInline: s.isInline, contentId: s.contentId, sha256: createHash('sha256').update(bytes).digest('hex'), bytes };
      msg.attachments.push(att);
      msg.mimeStale = true;
      this.deps.store.touch(user, msg);
      sendEmpty(res, 201, { location: `${this.deps.baseUrl()}/v1.0/Users('${user.id}')/Messages('${msg.id}')/Attachments('${att.id}')` });
    } finally {
      release();
    }
  }

  private async finalMime(m: StoredMessage): Promise<Buffer> {
    if (!m.mimeStale) return m.mime;
    return composeMime({
      from: m.from,
      to: m.toRecipients,
      cc: m.ccRecipients,
      subject: m.subject,
      messageId: m.internetMessageId,
      inReplyTo: m.inReplyTo,
      references: m.references,
      date: new Date(this.deps.now()),
      bodyContentType: m.bodyContentType,
      bodyContent: m.bodyContent,
      attachments: m.attachments,
    });
  }

  private recipients(m: StoredMessage | ParsedMime): string[] {
    const to = 'toRecipients' in m ? m.toRecipients : m.to;
    const cc = 'ccRecipients' in m ? m.ccRecipients : m.cc;
    return [...to, ...cc].map((r) => r.emailAddress?.address ?? '').filter(Boolean);
  }

  private async sendDraft(req: IncomingMessage, res: ServerResponse, user: SandboxUser, rawId: string, actor: SubmittingActor): Promise<void> {
    await readBody(req, GRAPH_WRITE_LIMIT_BYTES);
    const m = this.message(user, rawId);
    if (!m.isDraft) throw new GraphHttpError(400, 'ErrorInvalidOperation', 'Only draft messages can be sent.');
    if (this.recipients(m).length === 0) throw new GraphHttpError(400, 'ErrorInvalidRecipients', 'At least one recipient is not valid.');
    // Exchange checks From at submission; a refused draft stays in Drafts, unsent.
    const submission = authorizeSubmission(this.deps.store, user, actor, m.from, await this.finalMime(m));
    const mime = submission.mime;
    m.from = submission.from;
    m.sender = submission.sender;
    m.mime = mime;
    m.mimeStale = false;
    m.isDraft = false;
    m.isRead = true;
    m.sentDateTime = isoSeconds(this.deps.now());
    this.deps.store.moveTo(user, m, 'sentitems');
    user.sent.push({
      messageId: m.id,
      via: 'draftSend',
      conversationId: m.conversationId,
      internetMessageId: m.internetMessageId,
      subject: m.subject,
      inReplyTo: m.inReplyTo,
      mime,
      attachments: m.attachments.map((a) => ({ name: a.name, size: a.size, sha256: a.sha256 })),
      savedToSentItems: true,
      at: new Date(this.deps.now()).toISOString(),
      from: submission.from.emailAddress?.address ?? '',
      sender: submission.sender.emailAddress?.address ?? '',
    });
    this.deps.onSent(user, mime, this.recipients(m));
    sendEmpty(res, 202);
  }

  private async sendMail(req: IncomingMessage, res: ServerResponse, user: SandboxUser, actor: SubmittingActor): Promise<void> {
    const input = await this.readMimeOrJson(req, user);
    const { parsed, fromClient, json } = input;
    const save = fromClient ? true : (json as { saveToSentItems?: unknown }).saveToSentItems !== false;
    if (this.recipients(parsed).length === 0) throw new GraphHttpError(400, 'ErrorInvalidRecipients', 'At least one recipient is not valid.');
    const jsonFrom = fromClient ? undefined : jsonFromOf(json);
    const submission = authorizeSubmission(this.deps.store, user, actor, fromClient ? parsed.from : jsonFrom, input.mime);
    // A JSON message was composed with the mailbox as From: write the checked From into it.
    const mime = jsonFrom ? replaceHeaders(submission.mime, { From: formatAddress(submission.from) }) : submission.mime;
    parsed.from = submission.from;
    let messageId: string | undefined;
    let conversationId: string;
    if (save) {
      const stored = this.deps.store.addMessage(user, { folder: 'sentitems', mime, mimeFromClient: fromClient, parsed, receivedAt: new Date(this.deps.now()), isDraft: false });
      stored.sender = submission.sender;
      messageId = stored.id;
      conversationId = stored.conversationId;
    } else {
      conversationId = this.deps.store.findConversationParent(user, parsed)?.conversationId ?? graphId('AAQkAD');
    }
    user.sent.push({
      messageId,
      via: 'sendMail',
      conversationId,
      internetMessageId: parsed.internetMessageId ?? '',
      subject: parsed.subject,
      inReplyTo: parsed.inReplyTo,
      mime,
      attachments: parsed.attachments.map((a) => ({ name: a.name, size: a.size, sha256: a.sha256 })),
      savedToSentItems: save,
      at: new Date(this.deps.now()).toISOString(),
      from: submission.from.emailAddress?.address ?? '',
      sender: submission.sender.emailAddress?.address ?? '',
    });
    this.deps.onSent(user, mime, this.recipients(parsed));
    sendEmpty(res, 202);
  }
}

