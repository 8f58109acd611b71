import { z } from 'zod';
import type { Response } from 'express';
import type { JsonPage, MessageReadService, Reader } from '../../messages/message-read.service.js';
import { MESSAGE_ORIGINS, messageSchema, messageSummarySchema } from '../../messages/message-view.js';
import { InvalidCursorError } from '../api-error.js';
import type { TenantPrincipal } from '../auth-context.js';
import { decodeCursor, encodeCursor, paginationQuery } from '../pagination.js';
import { commonErrors, errorSchema, type RouteRegistry } from '../route-registry.js';

const idParams = z.strictObject({ id: z.string().min(1).max(64) });

/** Keyset position for newest-first order: `<receivedAt ms>:<id>` inside the opaque cursor. */
function decodePosition(cursor: string | undefined): { receivedAt: Date; id: string } | undefined {
  const raw = decodeCursor(cursor);
  if (raw === undefined) return undefined;
  const m = /^(\d{1,15}):(.+)$/.exec(raw);
  if (!m) throw new InvalidCursorError();
  return { receivedAt: new Date(Number(m[1])), id: m[2]! };
}

/** The list filters both message lists share: page size, keyset position, thread, origin. */
function listOptions(query: { cursor?: string | undefined; limit: number; threadKey?: string | undefined; origin?: (typeof MESSAGE_ORIGINS)[number] | undefined }) {
  const before = decodePosition(query.cursor);
  return {
    limit: query.limit,
    ...(before ? { before } : {}),
    ...(query.threadKey ? { threadKey: query.threadKey } : {}),
    ...(query.origin ? { origin: query.origin } : {}),
  };
}

/**
 * One page of a newest-first list (`limit + 1` rows were read): `{"object":"list","data":[…],"nextCursor":…}`
 * with the summaries' JSON as built (off the event loop when large) — the bytes res.json sent for
 * the same page; the cursor is the last shown row's position.
 */
function sendPage(res: Response, page: JsonPage): void {
  const cursor = page.more && page.last ? encodeCursor(`${page.last.receivedAt.getTime()}:${page.last.id}`) : null;
  const parts: Buffer[] = [Buffer.from('{"object":"list","data":[', 'utf8')];
  page.items.forEach((item, i) => parts.push(...(i > 0 ? [COMMA, item] : [item])));
  parts.push(Buffer.from(`],"nextCursor":${JSON.stringify(cursor)}}`, 'utf8'));
  res.status(200).set('Content-Type', 'application/json; charset=utf-8').send(Buffer.concat(parts));
}

const COMMA = Buffer.from(',', 'utf8');

function readerOf(principal: TenantPrincipal): Reader {
  return { tenantId: principal.tenantId, actorType: 'api_key', actorId: principal.apiKeyId };
}

export const contentReadErrors = {
  ...commonErrors,
  409: { description: 'The mailbox is being disconnected (its content is no longer served)', schema: errorSchema },
} as const;

/** Where an attachment's content is served (absolute, from PUBLIC_URL): what `?inline=urls` puts in place of `cid:`. */
export function attachmentContentUrl(publicUrl: string, attachmentId: string): string {
  return `${publicUrl.replace(/\/+$/, '')}/v1/attachments/${encodeURIComponent(attachmentId)}/content`;
}

export function registerMessageRoutes(routes: RouteRegistry, deps: { messages: MessageReadService; publicUrl: string }): void {
  routes.add({
    method: 'get',
    path: '/v1/mailboxes/:id/messages',
    operationId: 'listMessages',
    summary: 'List a mailbox’s stored messages, newest first',
    description:
      'Summaries (no bodies); fetch one message for its text and html. Ordered by received time, newest first. `origin=live` lists only mail that arrived after the mailbox was connected (no imported history), `origin=backfill` only the imported history. The read is audited.',
    tags: ['Messages'],
    auth: 'tenant',
    params: idParams,
    query: paginationQuery.extend({
      threadKey: z.string().min(1).max(200).optional(),
      origin: z.enum(MESSAGE_ORIGINS).optional().meta({ description: 'Only messages of this origin (`backfill` or `live`)' }),
    }),
    responses: {
      200: { description: 'A page of messages', schema: z.object({ object: z.literal('list'), data: z.array(messageSummarySchema), nextCursor: z.string().nullable() }) },
      ...contentReadErrors,
    },
    async handler({ params, query, principal, res }) {
      sendPage(res, await deps.messages.listJson(readerOf(principal), params.id, listOptions(query)));
      return { handled: true };
    },
  });

  routes.add({
    method: 'get',
    path: '/v1/messages',
    operationId: 'listTenantMessages',
    summary: 'List the messages of all the tenant’s mailboxes, newest first',
    description:
      'Summaries (no bodies) across every mailbox whose content is served (not disconnecting or purged), or one (`mailboxId`). `origin=live` lists only mail that arrived after its mailbox was connected — what a helpdesk may auto-reply to —, `origin=backfill` only imported history. Ordered by received time, newest first. The read is audited.',
    tags: ['Messages'],
    auth: 'tenant',
    query: paginationQuery.extend({
      mailboxId: z.string().min(1).max(64).optional(),
      threadKey: z.string().min(1).max(200).optional(),
      origin: z.enum(MESSAGE_ORIGINS).optional().meta({ description: 'Only messages of this origin (`backfill` or `live`)' }),
    }),
    responses: {
      200: { description: 'A page of messages', schema: z.object({ object: z.literal('list'), data: z.array(messageSummarySchema), nextCursor: z.string().nullable() }) },
      ...contentReadErrors,
    },
    async handler({ query, principal, res }) {
      sendPage(res, await deps.messages.listForTenantJson(readerOf(principal), { ...listOptions(query), ...(query.mailboxId ? { mailboxId: query.mailboxId } : {}) }));
      return { handled: true };
    },
  });

  routes.add({
    method: 'get',
    path: '/v1/messages/:id',
    operationId: 'getMessage',
    summary: 'Get one message, decrypted, with its attachments’ metadata',
    description:
      'The read is audited (who, what, when). `inline=urls` rewrites the `cid:` references in `html` and `safeHtml` that name one of this message’s attachments to that attachment’s absolute content URL (`GET /v1/attachments/:id/content`, which needs the API key and serves only clean attachments); the default `inline=cid` leaves them as received.',
    tags: ['Messages'],
    auth: 'tenant',
    params: idParams,
    query: z.strictObject({
      inline: z.enum(['cid', 'urls']).default('cid').meta({ description: '`urls`: `cid:` references to this message’s attachments become their content URLs' }),
    }),
    responses: { 200: { description: 'The message', schema: messageSchema }, ...contentReadErrors },
    async handler({ params, query, principal, res }) {
      const reader = readerOf(principal);
      const opts = query.inline === 'urls' ? { inlineImageUrl: (id: string) => attachmentContentUrl(deps.publicUrl, id) } : {};
      // The JSON is built off the event loop when the message is large: sent as bytes, exactly what res.json would send.
      const json = await deps.messages.getJson(reader, params.id, opts);
      res.status(200).set('Content-Type', 'application/json; charset=utf-8').send(json);
      return { handled: true };
    },
  });
}
