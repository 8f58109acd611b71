import { z } from 'zod';
import { messageContentSchema } from '../../mailboxes/message-content.js';
import { actorOf } from '../auth-context.js';
import { commonErrors, errorSchema, type RouteRegistry } from '../route-registry.js';

// Lenient on purpose: a subject's address is matched through the blind index exactly as ingest
// normalised it, so anything with a local part and a domain is a valid question.
const subjectEmail = z.string().trim().min(3).max(320).regex(/^[^\s@]+@[^\s@]+$/, 'must be an email address');


export const dataSubjectExportSchema = z
  .object({
    object: z.literal('data_subject_export'),
    email: z.string(),
    generatedAt: z.string(),
    mailboxes: z.array(z.object({ id: z.string(), provider: z.string(), status: z.string(), connectedAt: z.string() })),
    messages: z.array(
      z.object({
        id: z.string(),
        mailboxId: z.string(),
        direction: z.string(),
        receivedAt: z.string(),
        roles: z.array(z.string()),
        content: messageContentSchema
          .pick({ internetMessageId: true, from: true, to: true, cc: true, bcc: true, replyTo: true, subject: true, date: true, text: true, html: true })
          .loose(),
        attachments: z.array(z.object({ id: z.string(), filename: z.string().nullable(), contentType: z.string(), size: z.number(), scanStatus: z.string(), isInline: z.boolean() })),
      }),
    ),
    unavailable: z.number(),
  })
  .meta({ id: 'DataSubjectExport' });

export const dataSubjectErasureSchema = z
  .object({
    object: z.literal('data_subject_erasure'),
    messages: z.number(),
    attachments: z.number(),
    blobs: z.number(),
    messageAddresses: z.number(),
    threadRefs: z.number(),
  })
  .meta({ id: 'DataSubjectErasure' });

export interface DataSubjectRouteDeps {
  export(tenantId: string, email: string, actor: { actorType: 'api_key' | 'ops'; actorId: string }): Promise<z.infer<typeof dataSubjectExportSchema>>;
  erase(tenantId: string, email: string, actor: { actorType: 'api_key' | 'ops'; actorId: string }): Promise<z.infer<typeof dataSubjectErasureSchema>>;
}

/** GDPR access and erasure for one address across the tenant's mailboxes. Both are audited. */
export function registerDataSubjectRoutes(routes: RouteRegistry, deps: DataSubjectRouteDeps): void {
  routes.add({
    method: 'get',
    path: '/v1/data-subjects/export',
    operationId: 'exportDataSubject',
    summary: 'Everything stored from or to one address, across the tenant’s mailboxes',
    description:
      'Everything stored about one e-mail address across the tenant’s mailboxes, decrypted (GDPR access request). Audited. 413 when the export is larger than one answer may carry.',
    tags: ['Data subjects'],
    auth: 'tenant',
    query: z.strictObject({ email: subjectEmail }),
    responses: {
      200: { description: 'The export', schema: dataSubjectExportSchema },
      ...commonErrors,
      413: { description: 'Too many messages for one synchronous export (`export_too_large`)', schema: errorSchema },
    },
    async handler({ query, principal, res }) {
      const body = await deps.export(principal.tenantId, query.email, actorOf(principal));
      // Personal data: never cached by an intermediary.
      res.setHeader('cache-control', 'no-store');
      return { status: 200, body };
    },
  });

  routes.add({
    method: 'post',
    path: '/v1/data-subjects/erase',
    operationId: 'eraseDataSubject',
    summary: 'Delete every stored message from or to one address (with attachments) and return counts',
    description:
      'Deletes every message to or from one e-mail address in the tenant’s mailboxes, with its attachments (GDPR erasure). Audited; the answer counts what was deleted.',
    tags: ['Data subjects'],
    auth: 'tenant',
    body: z.strictObject({ email: subjectEmail }),
    responses: { 200: { description: 'What was deleted', schema: dataSubjectErasureSchema }, ...commonErrors },
    async handler({ body, principal }) {
      return { status: 200, body: await deps.erase(principal.tenantId, body.email, actorOf(principal)) };
    },
  });
}
