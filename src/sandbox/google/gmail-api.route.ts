import { randomBytes } from 'node:crypto';
import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import type { gmail_v1 } from '@googleapis/gmail';
import { z } from 'zod';
import { GoogleApiError, googleErrors, sendGoogleError } from './google-api-error.js';
import type { AccessGrant, GoogleOAuthStore } from './google-oauth.store.js';
import type { GmailMailboxStore, HistoryEntry, HistoryType, SandboxMailbox, StoredMessage } from './gmail-mailbox.store.js';
import { addressesIn, findNode, headerValue, parseHeaders, splitHeaderBody, toGmailBase64, toGmailPart } from './gmail-mime.js';
import { compileQuery } from './gmail-query.js';
import type { GmailMethod, GmailQuotaMeter } from './gmail-quota.meter.js';

/** messages.send / drafts maxSize in the discovery document: 35 MB. */
export const GMAIL_MAX_MESSAGE_BYTES = 36_700_160;

export interface GmailFaults {
  /** The next N Gmail API requests answer 429 rateLimitExceeded (regardless of quota). */
  rateLimitNext: number;
  /** The next N Gmail API requests answer a 5xx. */
  serverErrorNext: number;
  serverErrorStatus: 500 | 503;
  /** Added to every Gmail API request. */
  latencyMs: number;
}

export interface SentRecord {
  email: string;
  id: string;
  threadId: string;
  requestedThreadId: string | undefined;
  raw: Buffer;
  via: 'json' | 'upload';
  at: number;
}

export interface WatchRecord {
  email: string;
  topicName: string;
  labelIds: string[];
  labelFilterBehavior: 'INCLUDE' | 'EXCLUDE';
  historyId: string;
  expiration: number;
  active: boolean;
  createdAt: number;
  stoppedAt: number | undefined;
}

export interface GmailRouteDeps {
  oauth: GoogleOAuthStore;
  mailboxes: GmailMailboxStore;
  quota: GmailQuotaMeter;
  faults: GmailFaults;
  sent: SentRecord[];
  watches: Map<string, WatchRecord>;
  now: () => number;
  onWatch: (email: string, historyId: string) => void;
}

const S = 'https://www.googleapis.com/auth/';
const FULL = 'https://mail.google.com/';
const READ_SCOPES = [FULL, `${S}gmail.modify`, `${S}gmail.readonly`];
const METADATA_SCOPES = [...READ_SCOPES, `${S}gmail.metadata`];
const SEND_SCOPES = [FULL, `${S}gmail.modify`, `${S}gmail.compose`, `${S}gmail.send`];
const PROFILE_SCOPES = [...METADATA_SCOPES, `${S}gmail.compose`];
// users.settings.sendAs.list in Google's discovery document: gmail.readonly suffices, gmail.send does not.
const SETTINGS_READ_SCOPES = [...READ_SCOPES, `${S}gmail.settings.basic`];

interface Ctx {
  grant: AccessGrant;
  email: string;
}

const asArray = (v: unknown): string[] =>
  v === undefined ? [] : (Array.isArray(v) ? v : [v]).filter((x): x is string => typeof x === 'string');

function pageToken(v: unknown): number | undefined {
  if (typeof v !== 'string' || v === '') return 0;
  const n = Number(Buffer.from(v, 'base64url').toString('utf8'));
  return Number.isSafeInteger(n) && n >= 0 ? n : undefined;
}
const makePageToken = (n: number) => Buffer.from(String(n)).toString('base64url');

function clampMax(v: unknown, dflt: number, max: number): number {
  const n = typeof v === 'string' ? Number(v) : NaN;
  if (!Number.isFinite(n) || n <= 0) return dflt;
  return Math.min(Math.floor(n), max);
}

export function attachmentIdFor(messageId: string, partId: string): string {
  return 'ANGjdJ' + Buffer.from(`${messageId}:${partId}`).toString('base64url');
}

function parseAttachmentId(id: string): { messageId: string; partId: string } | undefined {
  if (!id.startsWith('ANGjdJ')) return undefined;
  const [messageId, partId] = Buffer.from(id.slice(6), 'base64url').toString('utf8').split(':');
  return messageId !== undefined && partId !== undefined ? { messageId, partId } : undefined;
}

function messageResource(m: StoredMessage, format: string, metadataHeaders: string[]): gmail_v1.Schema$Message {
  const base: gmail_v1.Schema$Message = {
    id: m.id,
    threadId: m.threadId,
    labelIds: [...m.labelIds],
    snippet: m.snippet,
    historyId: m.historyId,
    internalDate: String(m.internalDate),
  };
  switch (format) {
    case 'minimal':
      return { ...base, sizeEstimate: m.raw.length };
    case 'raw':
      return { ...base, sizeEstimate: m.raw.length, raw: toGmailBase64(m.raw) };
    case 'metadata': {
      const wanted = metadataHeaders.map((h) => h.toLowerCase());
      const headers = m.root.headers.filter((h) => wanted.length === 0 || wanted.includes(h.name.toLowerCase()));
      return { ...base, payload: { mimeType: m.root.mimeType, headers }, sizeEstimate: m.raw.length };
    }
    default:
      return { ...base, payload: toGmailPart(m.root, (p) => attachmentIdFor(m.id, p)), sizeEstimate: m.raw.length };
  }
}

function historyResource(e: HistoryEntry): gmail_v1.Schema$History {
  const message = { id: e.messageId, threadId: e.threadId };
  const withLabels = { ...message, labelIds: [...e.labelIds] };
  const h: gmail_v1.Schema$History = { id: e.id.toString(), messages: [message] };
  if (e.type === 'messageAdded') h.messagesAdded = [{ message: withLabels }];
  if (e.type === 'messageDeleted') h.messagesDeleted = [{ message: withLabels }];
  if (e.type === 'labelAdded') h.labelsAdded = [{ message: withLabels, labelIds: [...e.changedLabelIds] }];
  if (e.type === 'labelRemoved') h.labelsRemoved = [{ message: withLabels, labelIds: [...e.changedLabelIds] }];
  return h;
}

const ADDRESS_RE = /^[^\s@<>(),;:"]+@[^\s@<>(),;:"]+\.[^\s@<>(),;:"]+$/;

/** Gmail rejects a message whose recipient headers hold something that is not an address. */
function checkRecipients(raw: Buffer): string[] {
  const headers = parseHeaders(splitHeaderBody(raw).headerText);
  for (const name of ['To', 'Cc', 'Bcc']) {
    const value = headerValue(headers, name);
    if (value === undefined) continue;
    for (const segment of value.split(',').map((s) => s.trim()).filter(Boolean)) {
      const addr = /<([^<>]*)>\s*$/.exec(segment)?.[1] ?? segment;
      if (!ADDRESS_RE.test(addr.trim())) throw googleErrors.invalidArgument(`Invalid ${name} header`);
    }
  }
  const rcpts = addressesIn(headers, ['to', 'cc', 'bcc']);
  if (rcpts.length === 0) throw googleErrors.invalidArgument('Recipient address required');
  return rcpts;
}

/**
 * Gmail sends only from the account's own address or a verified send-as alias: any other From
 * address is replaced by the primary address (the display name is kept), as Gmail does.
 */
function enforceFrom(raw: Buffer, mb: SandboxMailbox): Buffer {
  const { headerText } = splitHeaderBody(raw);
  const headers = parseHeaders(headerText);
  const from = addressesIn(headers.filter((h) => h.name.toLowerCase() === 'from'), ['from'])[0];
  const allowed = new Set([mb.email, ...mb.sendAs.filter((a) => a.verificationStatus === 'accepted').map((a) => a.sendAsEmail)]);
  if (from !== undefined && allowed.has(from)) return raw;
  const text = raw.toString('latin1');
  const split = /\r?\n\r?\n/.exec(text);
  const head = split ? text.slice(0, split.index) : text;
  const rest = split ? text.slice(split.index) : '';
  const value = headerValue(headers, 'From') ?? '';
  const name = /^(.*?)<[^<>]*>\s*$/.exec(value)?.[1]?.trim();
  const line = `From: ${name ? `${name} ` : ''}<${mb.email}>`;
  const replaced = /^From:/im.test(head) ? head.replace(/^From:.*(\r?\n[ \t].*)*/im, line) : `${line}\r\n${head}`;
  return Buffer.from(replaced + rest, 'latin1');
}

function ensureMessageId(raw: Buffer): Buffer {
  const { headerText } = splitHeaderBody(raw);
  if (headerValue(parseHeaders(headerText), 'Message-ID') !== undefined) return raw;
  // Gmail adds a Message-ID when the client did not set one; a client-set one is kept.
  const id = `<${randomBytes(16).toString('base64url')}@mail.gmail.com>`;
  return Buffer.concat([Buffer.from(`Message-ID: ${id}\r\n`), raw]);
}

function stripBcc(raw: Buffer): Buffer {
  const text = raw.toString('latin1');
  const split = /\r?\n\r?\n/.exec(text);
  const head = split ? text.slice(0, split.index) : text;
  const rest = split ? text.slice(split.index) : '';
  const kept = head.replace(/^Bcc:.*(\r?\n[ \t].*)*(\r?\n|$)/gim, '');
  return Buffer.from(kept + rest, 'latin1');
}

function parseRelated(body: Buffer, contentType: string): { meta: unknown; message: Buffer } {
  const boundary = /boundary="?([^";]+)"?/i.exec(contentType)?.[1];
  if (!boundary) throw googleErrors.badRequest('Invalid multipart request with 0 mime parts.');
  const text = body.toString('latin1');
  const delim = `--${boundary}`;
  const segments = text.split(delim).slice(1);
  const parts: Array<{ headers: string; body: string }> = [];
  for (const seg of segments) {
    if (seg.startsWith('--')) break;
    const s = seg.replace(/^\r?\n/, '');
    const m = /\r?\n\r?\n/.exec(s);
    if (!m) continue;
    parts.push({ headers: s.slice(0, m.index), body: s.slice(m.index + m[0].length).replace(/\r?\n$/, '') });
  }
  if (parts.length !== 2) throw googleErrors.badRequest(`Invalid multipart request with ${parts.length} mime parts.`);
  let meta: unknown;
  try {
    meta = JSON.parse(Buffer.from(parts[0]!.body, 'latin1').toString('utf8'));
  } catch {
    throw googleErrors.badRequest('Invalid JSON payload received.');
  }
  return { meta, message: Buffer.from(parts[1]!.body, 'latin1') };
}

const sendBody = z.object({ raw: z.string().optional(), threadId: z.string().optional() }).loose();
const watchBody = z.object({
  topicName: z.string().optional(),
  labelIds: z.array(z.string()).optional(),
  labelFilterAction: z.enum(['include', 'exclude']).optional(),
  labelFilterBehavior: z.enum(['INCLUDE', 'EXCLUDE', 'include', 'exclude']).optional(),
});

export function createGmailApiRouter(deps: GmailRouteDeps): Router {
  const { oauth, mailboxes, quota, faults, now } = deps;
  const router = express.Router();

  type Handler = (req: Request, res: Response, ctx: Ctx) => unknown;
  const route = (method: GmailMethod, scopes: string[], handler: Handler) =>
    async (req: Request, res: Response, next: NextFunction) => {
      try {
        if (faults.latencyMs > 0) await new Promise((r) => setTimeout(r, faults.latencyMs));
        if (faults.serverErrorNext > 0) {
          faults.serverErrorNext--;
          throw faults.serverErrorStatus === 503 ? googleErrors.unavailable() : googleErrors.backendError();
        }
        if (faults.rateLimitNext > 0) {
          faults.rateLimitNext--;
          throw googleErrors.rateLimited429(1, new Date(now() + 1000));
        }
        const bearer = /^Bearer\s+(\S+)$/i.exec(req.get('authorization') ?? '')?.[1];
        const grant = bearer ? oauth.validAccess(bearer) : undefined;
        if (!grant) throw googleErrors.unauthenticated();
        const userId = String(req.params.userId ?? '');
        if (userId !== 'me' && userId.toLowerCase() !== grant.email) throw googleErrors.delegationDenied(userId);
        if (!scopes.some((s) => grant.scopes.includes(s))) throw googleErrors.insufficientScopes();
        const decision = quota.charge(grant.email, method);
        if (!decision.ok) {
          const secs = Math.max(1, Math.ceil(decision.retryAfterMs / 1000));
          throw quota.config.overLimitResponse === '403'
            ? googleErrors.userRateLimited403(secs)
            : googleErrors.rateLimited429(secs, new Date(now() + decision.retryAfterMs));
        }
        mailboxes.ensure(grant.email);
        await handler(req, res, { grant, email: grant.email });
      } catch (err) {
        next(err);
      }
    };

  const mailbox = (ctx: Ctx) => mailboxes.ensure(ctx.email);

  router.get('/gmail/v1/users/:userId/profile', route('getProfile', PROFILE_SCOPES, (_req, res, ctx) => {
    const mb = mailbox(ctx);
    const threads = new Set([...mb.messages.values()].map((m) => m.threadId));
    const body: gmail_v1.Schema$Profile = {
      emailAddress: mb.email,
      messagesTotal: mb.messages.size,
      threadsTotal: threads.size,
      historyId: mb.historyId.toString(),
    };
    res.json(body);
  }));

  router.get('/gmail/v1/users/:userId/messages', route('messages.list', METADATA_SCOPES, (req, res, ctx) => {
    const q = typeof req.query.q === 'string' ? req.query.q : undefined;
    if (q && !READ_SCOPES.some((s) => ctx.grant.scopes.includes(s))) {
      throw googleErrors.insufficientScopes();
    }
    const pred = compileQuery(q);
    if (typeof pred !== 'function') throw googleErrors.invalidArgument(pred.error);
    const labelIds = asArray(req.query.labelIds).map((l) => l.toUpperCase());
    const includeSpamTrash = req.query.includeSpamTrash === 'true';
    const offset = pageToken(req.query.pageToken);
    if (offset === undefined) throw googleErrors.invalidArgument('Invalid pageToken');
    const max = clampMax(req.query.maxResults, 100, 500);
    const all = [...mailbox(ctx).messages.values()]
      .filter((m) => includeSpamTrash || !m.labelIds.some((l) => l === 'SPAM' || l === 'TRASH'))
      .filter((m) => labelIds.every((l) => m.labelIds.includes(l)))
      .filter(pred)
      .sort((a, b) => b.internalDate - a.internalDate || (a.id < b.id ? 1 : -1));
    const page = all.slice(offset, offset + max);
    const body: gmail_v1.Schema$ListMessagesResponse = {};
    // Gmail omits `messages` entirely when nothing matches.
    if (page.length > 0) body.messages = page.map((m) => ({ id: m.id, threadId: m.threadId }));
    if (offset + max < all.length) body.nextPageToken = makePageToken(offset + max);
    body.resultSizeEstimate = page.length === 0 ? 0 : all.length;
    res.json(body);
  }));

  router.get('/gmail/v1/users/:userId/messages/:id', route('messages.get', METADATA_SCOPES, (req, res, ctx) => {
    const format = typeof req.query.format === 'string' ? req.query.format.toLowerCase() : 'full';
    if (!['raw', 'full', 'metadata', 'minimal'].includes(format)) throw googleErrors.invalidArgument(`Invalid value at 'format'`);
    const readAll = READ_SCOPES.some((s) => ctx.grant.scopes.includes(s));
    if (!readAll && (format === 'raw' || format === 'full')) {
      throw new GoogleApiError(403, 'PERMISSION_DENIED', 'forbidden', 'global', `Metadata scope doesn't allow format ${format.toUpperCase()}`);
    }
    const m = mailbox(ctx).messages.get(String(req.params.id));
    if (!m) throw googleErrors.notFound();
    res.json(messageResource(m, format, asArray(req.query.metadataHeaders)));
  }));

  router.get(
    '/gmail/v1/users/:userId/messages/:messageId/attachments/:attachmentId',
    route('messages.attachments.get', READ_SCOPES, (req, res, ctx) => {
      const ref = parseAttachmentId(String(req.params.attachmentId));
      const m = mailbox(ctx).messages.get(String(req.params.messageId));
      if (!m || !ref || ref.messageId !== m.id) throw googleErrors.notFound();
      const node = findNode(m.root, ref.partId);
      if (!node || node.children.length > 0) throw googleErrors.notFound();
      const body: gmail_v1.Schema$MessagePartBody = {
        attachmentId: String(req.params.attachmentId),
        size: node.body.length,
        data: toGmailBase64(node.body),
      };
      res.json(body);
    }),
  );

  const send = (ctx: Ctx, rawIn: Buffer, threadId: string | undefined, via: SentRecord['via']) => {
    if (rawIn.length === 0) {
      throw googleErrors.invalidArgument("'raw' RFC822 payload message string or uploading message via /upload/* URL required");
    }
    if (rawIn.length > GMAIL_MAX_MESSAGE_BYTES) throw googleErrors.uploadTooLarge(GMAIL_MAX_MESSAGE_BYTES);
    const rcpts = checkRecipients(rawIn);
    const raw = enforceFrom(ensureMessageId(rawIn), mailbox(ctx));
    const self = rcpts.includes(ctx.email);
    const stored = mailboxes.addMessage(ctx.email, raw, {
      labelIds: self ? ['SENT', 'INBOX', 'UNREAD'] : ['SENT'],
      sendThreadId: threadId ?? null,
    });
    deps.sent.push({ email: ctx.email, id: stored.id, threadId: stored.threadId, requestedThreadId: threadId, raw, via, at: now() });
    // Recipients that are mailboxes of this stand-in receive the message (without Bcc).
    const delivered = stripBcc(raw);
    for (const r of new Set(rcpts)) {
      if (r !== ctx.email && mailboxes.get(r)) mailboxes.addMessage(r, delivered, {});
    }
    const body: gmail_v1.Schema$Message = { id: stored.id, threadId: stored.threadId, labelIds: [...stored.labelIds] };
    return body;
  };

  router.post(
    '/gmail/v1/users/:userId/messages/send',
    express.json({ limit: '60mb' }),
    route('messages.send', SEND_SCOPES, (req, res, ctx) => {
      const parsed = sendBody.safeParse(req.body ?? {});
      if (!parsed.success) throw googleErrors.badRequest('Invalid JSON payload received.');
      const raw = Buffer.from(parsed.data.raw ?? '', 'base64');
      res.json(send(ctx, raw, parsed.data.threadId || undefined, 'json'));
    }),
  );

  router.post(
    '/upload/gmail/v1/users/:userId/messages/send',
    (req, _res, next) => {
      const declared = Number(req.get('content-length') ?? NaN);
      // Refuse before reading when the declared size is already over the 35 MB maxSize
      // (a multipart body may add a little metadata around the message).
      const allowed = GMAIL_MAX_MESSAGE_BYTES + (req.query.uploadType === 'media' ? 0 : 65_536);
      if (Number.isFinite(declared) && declared > allowed) {
        // Answer without buffering the body; drain it so the client can read the answer.
        req.resume();
        return next(googleErrors.uploadTooLarge(GMAIL_MAX_MESSAGE_BYTES));
      }
      next();
    },
    express.raw({ type: () => true, limit: GMAIL_MAX_MESSAGE_BYTES + 65_536 }),
    route('messages.send', SEND_SCOPES, (req, res, ctx) => {
      const uploadType = String(req.query.uploadType ?? '');
      const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
      if (uploadType === 'media') return res.json(send(ctx, body, undefined, 'upload'));
      if (uploadType === 'multipart') {
        const { meta, message } = parseRelated(body, req.get('content-type') ?? '');
        const parsed = sendBody.safeParse(meta);
        if (!parsed.success) throw googleErrors.badRequest('Invalid JSON payload received.');
        return res.json(send(ctx, message, parsed.data.threadId || undefined, 'upload'));
      }
      throw googleErrors.badRequest(`Invalid upload type: ${uploadType || '(none)'}; the sandbox supports media and multipart`);
    }),
  );

  router.get('/gmail/v1/users/:userId/settings/sendAs', route('settings.sendAs.list', SETTINGS_READ_SCOPES, (_req, res, ctx) => {
    const mb = mailbox(ctx);
    const primary: gmail_v1.Schema$SendAs = { sendAsEmail: mb.email, displayName: '', replyToAddress: '', signature: '', isPrimary: true, isDefault: true };
    const aliases = mb.sendAs.map(
      (a): gmail_v1.Schema$SendAs => ({ sendAsEmail: a.sendAsEmail, displayName: a.displayName, replyToAddress: '', signature: '', isDefault: false, treatAsAlias: true, verificationStatus: a.verificationStatus }),
    );
    const body: gmail_v1.Schema$ListSendAsResponse = { sendAs: [primary, ...aliases] };
    res.json(body);
  }));

  router.get('/gmail/v1/users/:userId/history', route('history.list', METADATA_SCOPES, (req, res, ctx) => {
    const mb = mailbox(ctx);
    const startRaw = req.query.startHistoryId;
    if (typeof startRaw !== 'string' || startRaw === '') {
      throw googleErrors.invalidArgument('Required parameter: startHistoryId');
    }
    if (!/^\d+$/.test(startRaw)) throw googleErrors.invalidArgument('Invalid startHistoryId');
    const start = BigInt(startRaw);
    // "Supplying an invalid or out of date startHistoryId typically returns an HTTP 404".
    if (start < mb.historyHorizon) throw googleErrors.notFound();
    let after = start;
    if (typeof req.query.pageToken === 'string' && req.query.pageToken !== '') {
      const t = Buffer.from(req.query.pageToken, 'base64url').toString('utf8');
      if (!/^\d+$/.test(t)) throw googleErrors.invalidArgument('Invalid pageToken');
      after = BigInt(t);
    }
    const types = asArray(req.query.historyTypes) as HistoryType[];
    const labelId = typeof req.query.labelId === 'string' ? req.query.labelId : undefined;
    const max = clampMax(req.query.maxResults, 100, 500);
    const matching = mb.history.filter(
      (e) =>
        e.id > after &&
        (types.length === 0 || types.includes(e.type)) &&
        (!labelId || e.labelIds.includes(labelId) || e.changedLabelIds.includes(labelId)),
    );
    const page = matching.slice(0, max);
    const body: gmail_v1.Schema$ListHistoryResponse = {};
    if (page.length > 0) body.history = page.map(historyResource);
    if (matching.length > max) body.nextPageToken = Buffer.from(page[page.length - 1]!.id.toString()).toString('base64url');
    body.historyId = mb.historyId.toString();
    res.json(body);
  }));

  router.post('/gmail/v1/users/:userId/watch', express.json(), route('watch', METADATA_SCOPES, (req, res, ctx) => {
    const parsed = watchBody.safeParse(req.body ?? {});
    if (!parsed.success) throw googleErrors.badRequest('Invalid JSON payload received.');
    const topicName = parsed.data.topicName ?? '';
    if (!/^projects\/[^/]+\/topics\/[^/]+$/.test(topicName)) {
      throw googleErrors.invalidArgument('Invalid topicName does not match projects/SOME_PROJECT/topics/SOME_TOPIC');
    }
    const mb = mailbox(ctx);
    const behavior = (parsed.data.labelFilterBehavior ?? parsed.data.labelFilterAction ?? 'INCLUDE').toUpperCase() as 'INCLUDE' | 'EXCLUDE';
    const watch: WatchRecord = {
      email: mb.email,
      topicName,
      labelIds: parsed.data.labelIds ?? [],
      labelFilterBehavior: behavior,
      historyId: mb.historyId.toString(),
      // "You must re-call watch at least every 7 days".
      expiration: now() + 7 * 24 * 3600_000,
      active: true,
      createdAt: now(),
      stoppedAt: undefined,
    };
    deps.watches.set(mb.email, watch);
    deps.onWatch(mb.email, watch.historyId);
    const body: gmail_v1.Schema$WatchResponse = { historyId: watch.historyId, expiration: String(watch.expiration) };
    res.json(body);
  }));

  router.post('/gmail/v1/users/:userId/stop', route('stop', METADATA_SCOPES, (_req, res, ctx) => {
    const w = deps.watches.get(ctx.email);
    if (w && w.active) {
      w.active = false;
      w.stoppedAt = now();
    }
    res.status(204).end();
  }));

  return router;
}

/** Express error handler that answers Gmail-style envelopes (also for body-parser 413s). */
export function gmailErrorHandler(err: unknown, _req: Request, res: Response, next: NextFunction): void {
  if (res.headersSent) return next(err);
  if (err instanceof GoogleApiError) return sendGoogleError(res, err);
  const status = (err as { status?: unknown }).status;
  if (status === 413) return sendGoogleError(res, googleErrors.uploadTooLarge(GMAIL_MAX_MESSAGE_BYTES));
  if (typeof status === 'number' && status >= 400 && status < 500) {
    return sendGoogleError(res, googleErrors.badRequest('Invalid JSON payload received.'));
  }
  sendGoogleError(res, googleErrors.backendError());
}
