import { pipeline } from 'node:stream/promises';
import { z } from 'zod';
import type { MessageReadService } from '../../messages/message-read.service.js';
import { commonErrors, errorSchema, type RouteRegistry } from '../route-registry.js';

const SAFE_CONTENT_TYPE = /^[a-z0-9][a-z0-9!#$&^_.+-]{0,126}\/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}$/i;

/**
 * `Content-Disposition: attachment` with an ASCII fallback and the RFC 6266/8187 UTF-8 form.
 * The name came from an email: path separators, quotes and control characters are removed so it
 * can neither break the header nor name a path.
 */
export function contentDisposition(filename: string | null): string {
  // eslint-disable-next-line no-control-regex -- stripping control characters is the point
  const cleaned = (filename ?? '').replace(/[\x00-\x1f\x7f/\\]/g, '_').replace(/^\.+/, '').trim().slice(0, 200) || 'attachment';
  const ascii = cleaned.replace(/[^\x20-\x7e]/g, '_').replace(/["%;]/g, '_');
  const encoded = encodeURIComponent(cleaned).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encoded}`;
}

export function registerAttachmentRoutes(routes: RouteRegistry, deps: { messages: MessageReadService }): void {
  routes.add({
    method: 'get',
    path: '/v1/attachments/:id/content',
    operationId: 'getAttachmentContent',
    summary: 'Download an attachment (only when its scan verdict is clean)',
    description:
      'Streams the decrypted bytes as a download. Any verdict other than `clean` (`pending`, `infected`, `error`, `unscannable`) is a 409 `attachment_not_clean` with `details.scanStatus`. The download is audited.',
    tags: ['Messages'],
    auth: 'tenant',
    params: z.strictObject({ id: z.string().min(1).max(64) }),
    responses: {
      200: { description: 'The attachment bytes', schema: z.string().meta({ format: 'binary' }), contentType: 'application/octet-stream' },
      ...commonErrors,
      409: { description: 'Not clean (see details.scanStatus), or the mailbox is being disconnected', schema: errorSchema },
    },
    async handler({ params, principal, res }) {
      const dl = await deps.messages.download({ tenantId: principal.tenantId, actorType: 'api_key', actorId: principal.apiKeyId }, params.id);
      res.status(200);
      res.setHeader('Content-Type', SAFE_CONTENT_TYPE.test(dl.meta.contentType) ? dl.meta.contentType : 'application/octet-stream');
      res.setHeader('Content-Length', String(dl.size));
      res.setHeader('Content-Disposition', contentDisposition(dl.meta.filename));
      // Mail attachments are hostile by default: never sniffed, never rendered as our origin, never cached.
      res.setHeader('X-Content-Type-Options', 'nosniff');
      res.setHeader('Content-Security-Policy', "default-src 'none'; sandbox");
      res.setHeader('Cache-Control', 'private, no-store');
      try {
        await pipeline(dl.stream, res);
      } catch {
        // A chunk failed authentication or the client went away mid-stream: the status line is
        // already sent, so the only honest signal left is cutting the connection short.
        res.destroy();
      }
      return { handled: true };
    },
  });
}
