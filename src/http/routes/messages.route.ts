import { z } from 'zod';
import type { MessageReadService, Reader } from '../../messages/message-read.service.js';
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

/** One page of a newest-first list fetched with `limit + 1` rows; the cursor is the last row's position. */
function newestFirstPage<T extends { id: string; receivedAt: string }>(rows: T[], limit: number): { object: 'list'; data: T[]; nextCursor: string | null } {
  const data = rows.slice(0, limit);
  const last = data[data.length - 1];
  return { object: 'list', data, nextCursor: rows.length > limit && last ? encodeCursor(`${Date.parse(last.receivedAt)}:${last.id}`) : null };
}

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
    async handler({ params, query, principal }) {
      const rows = await deps.messages.list(readerOf(principal), params.id, listOptions(query));
      return { status: 200, body: newestFirstPage(rows, query.limit) };
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
    async handler({ query, principal }) {
      const rows = await deps.messages.listForTenant(readerOf(principal), { ...listOptions(query), ...(query.mailboxId ? { mailboxId: query.mailboxId } : {}) });
      return { status: 200, body: newestFirstPage(rows, query.limit) };
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
    async handler({ params, query, principal }) {
      const reader = readerOf(principal);
      const opts = query.inline === 'urls' ? { inlineImageUrl: (id: string) => attachmentContentUrl(deps.publicUrl, id) } : {};
      const msg = await deps.messages.get(reader, params.id, opts);
      return { status: 200, body: msg };
    },
  });
}
