import { z } from 'zod';
import { idempotencyKeySchema, newMessageBodySchema, replyBodySchema } from '../../send/send-request.schema.js';
import type { AcceptedSend, SendRequestActor, SendRequestService } from '../../send/send-request.service.js';
import { ApiError } from '../api-error.js';
import { commonErrors, errorSchema, type RouteRegistry } from '../route-registry.js';

const acceptedSchema = z
  .object({ outboundId: z.string(), status: z.literal('queued') })
  .meta({ id: 'SendAccepted' });

// Checked in the handler (not as a required header) so a missing key gets its own clear 400.
const headersSchema = z.object({ 'idempotency-key': z.string().optional() });

const sendErrors = {
  ...commonErrors,
  409: { description: 'Idempotency-Key reused with a different request, or the mailbox cannot send', schema: errorSchema },
  413: { description: 'Over the provider’s size limit (`message_too_large`) or the request body limit', schema: errorSchema },
  422: { description: 'An attachment is infected (`attachment_infected`), no usable recipient, or `from` is not a verified send-as address of the mailbox nor a usable delegated address (`from_not_allowed`)', schema: errorSchema },
  503: { description: 'Scanner, queue or the provider’s send-as list unavailable: retry with the same Idempotency-Key', schema: errorSchema },
} as const;

function idempotencyKey(raw: string | undefined): string {
  if (raw === undefined || raw === '') {
    throw new ApiError('idempotency_key_required', 'the Idempotency-Key header is required: send a unique key per message (e.g. a UUID) and reuse it on retries');
  }
  const parsed = idempotencyKeySchema.safeParse(raw);
  if (!parsed.success) throw new ApiError('invalid_idempotency_key', 'Idempotency-Key must be 1-255 visible ASCII characters');
  return parsed.data;
}

function answer(result: AcceptedSend): { status: number; body: unknown; headers: Record<string, string> } {
  return {
    status: result.status,
    body: result.body,
    headers: { Location: `/v1/outbound/${result.body.outboundId}`, ...(result.replayed ? { 'Idempotent-Replayed': 'true' } : {}) },
  };
}

export function registerSendRoutes(routes: RouteRegistry, deps: { requests: SendRequestService; bodyLimit: string }): void {
  // Both sends: tenant key, `:id`, a required Idempotency-Key, the send body limit, the same answers.
  const addSend = <B extends z.ZodType>(spec: {
    path: string;
    operationId: string;
    summary: string;
    description: string;
    body: B;
    accept(actor: SendRequestActor, key: string, id: string, rawBody: unknown, body: z.output<B>): Promise<AcceptedSend>;
  }): void =>
    routes.add({
      method: 'post',
      path: spec.path,
      operationId: spec.operationId,
      summary: spec.summary,
      description: spec.description,
      tags: ['Sending'],
      auth: 'tenant',
      params: z.strictObject({ id: z.string().min(1).max(64) }),
      headers: headersSchema,
      requiredHeaders: ['idempotency-key'],
      body: spec.body,
      bodyLimit: deps.bodyLimit,
      responses: { 202: { description: 'Queued (or the replayed first answer)', schema: acceptedSchema }, ...sendErrors },
      async handler({ params, headers, body, principal, req }) {
        const key = idempotencyKey(headers['idempotency-key']);
        return answer(await spec.accept({ tenantId: principal.tenantId, apiKeyId: principal.apiKeyId }, key, params.id, req.body, body));
      },
    });

  addSend({
    path: '/v1/messages/:id/reply',
    operationId: 'replyToMessage',
    summary: 'Reply to a stored message through its mailbox',
    description:
      'Threaded reply (same Gmail thread / Graph conversation, In-Reply-To and References set). Requires `Idempotency-Key`: the same key with the same body returns the same answer and never sends twice; with another body it is a 409.',
    body: replyBodySchema,
    accept: (...args) => deps.requests.reply(...args),
  });
  addSend({
    path: '/v1/mailboxes/:id/send',
    operationId: 'sendFromMailbox',
    summary: 'Send a new message (not a reply) from a mailbox',
    description:
      'A new message (a new thread) from the mailbox. Requires `Idempotency-Key`: the same key with the same body returns the same answer and never sends twice; with another body it is a 409. Attachments are scanned before anything is sent.',
    body: newMessageBodySchema,
    accept: (...args) => deps.requests.send(...args),
  });
}
