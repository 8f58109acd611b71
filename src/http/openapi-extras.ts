import { EVENT_TYPES } from '../events/event-types.js';

/**
 * Parts of the OpenAPI document that do not come from the route registry: the health and
 * document routes, the webhook events (OpenAPI 3.1 `webhooks`), the descriptions and examples of
 * the shared schemas, and examples for every request and response body. Completeness is enforced
 * by test/integration/openapi.test.ts (a route, schema or event without a description or an
 * example fails it, and every example is checked against the route's own zod schema).
 */

type Json = Record<string, unknown>;

const T = '2026-12-01T09:30:00.000Z';
const T2 = '2026-12-01T09:31:12.000Z';
const addr = (name: string | null, address: string): Json => ({ name, address });
const attachmentExample = { id: 'att_06H4A1B2C3D4E5F6G7H8J9K0M1', object: 'attachment', filename: 'invoice-1042.pdf', contentType: 'application/pdf', size: 48213, contentId: null, isInline: false, scanStatus: 'clean' };
const messageSummaryExample = {
  id: 'msg_06H4A1B2C3D4E5F6G7H8J9K0M1',
  object: 'message',
  mailboxId: 'mbx_06H49ZQ4Y1R2S3T4V5W6X7Y8Z9',
  threadKey: 'gm:18c2f0a1b2c3d4e5',
  providerThreadId: '18c2f0a1b2c3d4e5',
  direction: 'inbound',
  from: addr('Ada Customer', 'ada@customer.example'),
  to: [addr(null, 'support@acme.example')],
  cc: [],
  subject: 'Order 1042 arrived damaged',
  date: T,
  receivedAt: T,
  origin: 'live',
  isAutoReply: false,
  isBounce: false,
  oversize: false,
  parseError: null,
  sizeBytes: 53120,
  attachments: [attachmentExample],
};
const endpointExample = {
  id: 'we_06H4A0K1M2N3P4Q5R6S7T8V9W0',
  object: 'webhook_endpoint',
  url: 'https://helpdesk.example.com/hooks/mail',
  description: 'ticket intake',
  events: [],
  enabled: true,
  disabledReason: null,
  previousSecretExpiresAt: null,
  createdAt: T,
  updatedAt: T,
};
const deliveryExample = { id: 'dlv_06H4A2B3C4D5E6F7G8H9J0K1M2', endpointId: endpointExample.id, status: 'delivered', attempts: 1, lastStatus: 204, lastAttemptAt: T2, nextAttemptAt: null, deliveredAt: T2 };
const mailboxExample = {
  id: 'mbx_06H49ZQ4Y1R2S3T4V5W6X7Y8Z9',
  object: 'mailbox',
  provider: 'google',
  address: 'support@acme.example',
  access: 'delegated',
  connectedBy: null,
  status: 'active',
  statusReason: null,
  grantedScopes: ['https://www.googleapis.com/auth/gmail.readonly', 'https://www.googleapis.com/auth/gmail.send'],
  sync: { state: 'idle', error: null, backfillCompletedAt: T, lastSyncedAt: T2, lastPushAt: T2, watchExpiresAt: '2026-12-08T09:30:00.000Z' },
  createdAt: T,
  updatedAt: T2,
};

/** Description and example of every named schema (components.schemas). */
export const COMPONENT_DOCS: Record<string, { description: string; example: unknown }> = {
  Error: {
    description: 'Every error answer: a stable machine `code`, a human `message`, the request id and, for validation errors, `details.field`.',
    example: { error: { code: 'validation_error', message: 'body url: Invalid input', requestId: '6f1c2d9e-8a7b-4c3d-9e8f-0a1b2c3d4e5f', details: { field: 'url', location: 'body' } } },
  },
  Mailbox: {
    description:
      'A connected mailbox and its sync state. `address` is null once the mailbox data key is destroyed (purge). A Microsoft 365 shared mailbox has `access: shared_member`, `address` = the shared address and `connectedBy` = the member whose sign-in reads it.',
    example: mailboxExample,
  },
  PurgedMailbox: { description: 'The answer to a disconnect: the purge started (or finished); follow it with the purge receipt.', example: { id: mailboxExample.id, object: 'mailbox', status: 'disconnecting', purgeId: 'prg_06H4B1C2D3E4F5G6H7J8K9M0N1', purgedAt: null } },
  PurgeReceipt: {
    description: 'What a purge did: its trigger and reason, the steps completed, how many rows of each kind were deleted and whether the provider grant was revoked.',
    example: {
      id: 'prg_06H4B1C2D3E4F5G6H7J8K9M0N1',
      object: 'purge',
      mailboxId: mailboxExample.id,
      provider: 'google',
      trigger: 'customer',
      reason: null,
      status: 'completed',
      steps: ['stopped', 'revoked', 'deleted', 'shredded'],
      counts: { messages: 1250, attachments: 310, blobs: 1560, events: 1300 },
      revoke: { status: 'revoked', attempts: 1, error: null, retryPending: false },
      startedAt: T,
      completedAt: T2,
    },
  },
  DataSubjectExport: {
    description: 'Everything stored about one e-mail address across the tenant’s mailboxes (GDPR Art. 15), decrypted.',
    example: {
      object: 'data_subject_export',
      email: 'ada@customer.example',
      generatedAt: T2,
      mailboxes: [],
      messages: [
        {
          id: messageSummaryExample.id,
          mailboxId: mailboxExample.id,
          direction: 'inbound',
          receivedAt: T,
          roles: ['from'],
          content: { internetMessageId: '<CA+1042@mail.customer.example>', from: addr('Ada Customer', 'ada@customer.example'), to: [addr(null, 'support@acme.example')], cc: [], bcc: [], replyTo: [], subject: 'Order 1042 arrived damaged', date: T, text: 'Hello, the parcel arrived damaged.', html: null },
          attachments: [{ id: attachmentExample.id, filename: 'photo.jpg', contentType: 'image/jpeg', size: 120331, scanStatus: 'clean', isInline: false }],
        },
      ],
      unavailable: 0,
    },
  },
  DataSubjectErasure: { description: 'What an erasure deleted (GDPR Art. 17): counts per kind.', example: { object: 'data_subject_erasure', messages: 3, attachments: 1, blobs: 4, messageAddresses: 9, threadRefs: 3 } },
  WebhookEndpoint: { description: 'A URL that receives signed events. `events` empty means every type.', example: endpointExample },
  WebhookEndpointWithSecret: { description: 'An endpoint with its `whsec_` signing secret: only in the answers to create and rotate.', example: { ...endpointExample, secret: 'whsec_MfKQ9r8GKYqXTK8MPTPrwgCKQ3MZKwTq' } },
  Event: {
    description: 'An event in the tenant’s event log with its delivery to each endpoint (`status` summarises them; `no_endpoints` when no endpoint was subscribed).',
    example: { id: 'evt_06H4A3B4C5D6E7F8G9H0J1K2M3', object: 'event', type: 'message.received', mailboxId: mailboxExample.id, sequence: 42, createdAt: T, dispatchedAt: T, status: 'delivered', deliveries: [deliveryExample] },
  },
  WebhookDelivery: { description: 'One event to one endpoint: status, attempts so far, the last HTTP status and when the next retry is due.', example: deliveryExample },
  DeliveryAttempt: { description: 'One HTTP attempt of a delivery: status code, latency, the start of the receiver’s answer, our error code.', example: { id: 'dat_06H4A4B5C6D7E8F9G0H1J2K3M4', attemptNo: 1, statusCode: 204, latencyMs: 83, responseSnippet: null, error: null, createdAt: T2 } },
  MessageSummary: { description: 'A message as listed: headers, flags and attachments, without bodies.', example: messageSummaryExample },
  MessageOrigin: { description: '`backfill`: history imported after connect; `live`: arrived after the sync cursor was taken.', example: 'live' },
  EmailAddress: { description: 'A mailbox address as written in the message (`name` may be null; `address` null when unparseable).', example: addr('Ada Customer', 'ada@customer.example') },
  ParseError: { description: 'Set when the MIME could not be parsed completely: what is shown is what could be read. null otherwise.', example: { code: 'malformed', reason: 'a multipart boundary was never closed' } },
  TenantSettings: {
    description:
      'The tenant’s own settings (`GET`/`PATCH /v1/settings`): how content is presented (`blockRemoteImages`, applied when content is read or a webhook body is built, so it covers mail already stored) and the branding of the hosted connect pages (`displayName`, `logoUrl`, `supportUrl`).',
    example: { object: 'settings', blockRemoteImages: true, displayName: 'Acme Support', logoUrl: 'https://cdn.acme.example/logo.svg', supportUrl: 'mailto:help@acme.example' },
  },
  Attachment: { description: 'An attachment’s metadata. The bytes are served by `GET /v1/attachments/{id}/content` once `scanStatus` is `clean`.', example: attachmentExample },
  Message: {
    description: 'A whole message: headers, text and HTML bodies (the raw HTML and a sanitized `safeHtml`), the reply without quoted history, attachments.',
    example: {
      ...messageSummaryExample,
      internetMessageId: '<CA+1042@mail.customer.example>',
      inReplyTo: null,
      references: [],
      bcc: [],
      replyTo: [],
      text: 'Hello, the parcel arrived damaged. Photo attached.\n\nBest regards,\nAda',
      html: '<p>Hello, the parcel arrived damaged. Photo attached.</p><p>Best regards,<br>Ada</p>',
      safeHtml: '<p>Hello, the parcel arrived damaged. Photo attached.</p><p>Best regards,<br />Ada</p>',
      replyText: 'Hello, the parcel arrived damaged. Photo attached.\n\nBest regards,\nAda',
      signature: 'Best regards,\nAda',
      forwarded: null,
    },
  },
  ForwardedMessage: { description: 'When the message forwards another one: that message’s sender, date and subject. null otherwise.', example: { from: addr('Bob Vendor', 'bob@vendor.example'), date: T, subject: 'Delivery note 1042' } },
  AuditEntry: {
    description: 'One entry of the hash-chained audit log: who did what to which object (ids and counts, never content).',
    example: { id: 'aud_06H4A5B6C7D8E9F0G1H2J3K4M5', object: 'audit_entry', seq: 118, actorType: 'api_key', actorId: 'key_06H3Z0A1B2C3D4E5F6G7H8J9K0', action: 'message.read', targetType: 'message', targetId: messageSummaryExample.id, reason: null, metadata: {}, createdAt: T2, hash: 'a3f1c9e0b7d24f6a8c5e1b3d7f9a2c4e6b8d0f1a3c5e7b9d1f3a5c7e9b1d3f5a' },
  },
  ConnectSession: {
    description: 'A hosted connect session: send the customer to `url`; it is single use and expires. `mailbox` is set when a member connects a Microsoft 365 shared mailbox.',
    example: { id: 'cs_06H4A6B7C8D9E0F1G2H3J4K5M6', object: 'connect_session', url: 'https://connector.example.com/connect/cs_06H4A6B7C8D9E0F1G2H3J4K5M6', expiresAt: '2026-12-01T10:30:00.000Z', provider: null, mailboxId: null, mailbox: null },
  },
  ConnectSessionStatus: {
    description: 'How a connect session ended: `result` and, when connected, the mailbox id; the scopes the customer did not grant.',
    example: { id: 'cs_06H4A6B7C8D9E0F1G2H3J4K5M6', object: 'connect_session', url: 'https://connector.example.com/connect/cs_06H4A6B7C8D9E0F1G2H3J4K5M6', provider: 'google', mailboxId: null, mailbox: null, status: 'completed', result: 'connected', resultMailboxId: mailboxExample.id, missingScopes: [], expiresAt: '2026-12-01T10:30:00.000Z', createdAt: T },
  },
  ReplyRequest: {
    description: 'A reply in the message’s thread: recipients default to the sender (reply) — give `to`/`cc` to change them; text and/or HTML; attachments as base64.',
    example: { text: 'Hi Ada, sorry about that — a replacement is on its way.', cc: ['orders@acme.example'], attachments: [{ filename: 'label.pdf', contentType: 'application/pdf', contentBase64: 'JVBERi0xLjQK' }] },
  },
  SendRequest: {
    description: 'A new message from the mailbox (a new thread): recipients, subject, text and/or HTML, attachments as base64.',
    example: { to: [{ name: 'Ada Customer', address: 'ada@customer.example' }], subject: 'Your replacement for order 1042', text: 'Hi Ada, the replacement was shipped today.' },
  },
  SendAccepted: { description: 'The send was accepted and queued; follow it with `GET /v1/outbound/{id}` or the `message.sent` event.', example: { outboundId: 'out_06H4A7B8C9D0E1F2G3H4J5K6M7', status: 'queued' } },
  Outbound: {
    description: 'A reply or new message being sent: its status, the failure code and reason when it failed, and the stored message once sent.',
    example: { id: 'out_06H4A7B8C9D0E1F2G3H4J5K6M7', object: 'outbound', kind: 'reply', status: 'sent', failure: null, messageId: 'msg_06H4A8B9C0D1E2F3G4H5J6K7M8', mailboxId: mailboxExample.id, threadKey: 'gm:18c2f0a1b2c3d4e5', providerMessageId: '18c2f0b9e8d7c6b5', providerThreadId: '18c2f0a1b2c3d4e5', attempts: 1, createdAt: T, sentAt: T2 },
  },
};

/** The routes outside the registry: health, readiness, metrics and this document. */
export const INFRA_PATHS: Json = {
  '/healthz': {
    get: {
      operationId: 'healthz',
      summary: 'Liveness',
      description: 'Answers 200 while the process runs (no dependency is checked): use it as the liveness probe and container HEALTHCHECK.',
      tags: ['Operations'],
      security: [],
      responses: { 200: { description: 'The process is alive', content: { 'application/json': { schema: { type: 'object', properties: { status: { const: 'ok' } }, required: ['status'] }, example: { status: 'ok' } } } } },
    },
  },
  '/readyz': {
    get: {
      operationId: 'readyz',
      summary: 'Readiness, per component',
      description: 'Checks the database, the job queue, the scanner and recent workers (3 s each). 503 while a required check fails; a failed check names the error code, never a host or message.',
      tags: ['Operations'],
      security: [],
      responses: Object.fromEntries(
        [200, 503].map((code) => [
          code,
          {
            description: code === 200 ? 'Ready' : 'Not ready: see which check failed',
            content: {
              'application/json': {
                schema: {
                  type: 'object',
                  required: ['status', 'checks'],
                  properties: {
                    status: { enum: ['ready', 'not_ready'] },
                    checks: { type: 'object', additionalProperties: { type: 'object', required: ['status'], properties: { status: { enum: ['ok', 'not_configured', 'error'] }, detail: { type: 'string' } } } },
                  },
                },
                example:
                  code === 200
                    ? { status: 'ready', checks: { database: { status: 'ok' }, queue: { status: 'ok' }, scanner: { status: 'ok' }, workers: { status: 'ok' } } }
                    : { status: 'not_ready', checks: { database: { status: 'error', detail: 'unreachable (ECONNREFUSED)' }, queue: { status: 'ok' }, scanner: { status: 'ok' }, workers: { status: 'ok' } } },
              },
            },
          },
        ]),
      ),
    },
  },
  '/metrics': {
    get: {
      operationId: 'metrics',
      summary: 'Prometheus metrics',
      description: 'Process, HTTP, job, sync, webhook and purge metrics in the Prometheus text format. Labels carry routes, job names and outcomes, never ids or content.',
      tags: ['Operations'],
      security: [],
      responses: { 200: { description: 'Metrics', content: { 'text/plain': { schema: { type: 'string' }, example: '# HELP mbc_jobs_total Jobs processed by name and outcome\n# TYPE mbc_jobs_total counter\nmbc_jobs_total{name="sync.mailbox",outcome="done"} 42\n' } } } },
    },
  },
  '/openapi.json': {
    get: {
      operationId: 'openapiDocument',
      summary: 'This OpenAPI 3.1 document',
      description: 'The document every route, schema and webhook event of this API is described in; `/docs` renders it.',
      tags: ['Operations'],
      security: [],
      responses: { 200: { description: 'The OpenAPI document', content: { 'application/json': { schema: { type: 'object' }, example: { openapi: '3.1.0', info: { title: 'Mailbox connector API', version: '0.1.0' } } } } } },
    },
  },
};

const mailboxData = (status: string, reason: string | null, extra: Json = {}): Json => ({ mailboxId: mailboxExample.id, provider: 'google', address: status === 'purged' ? null : 'support@acme.example', status, reason, ...extra });

/** Per event type; a type missing here is listed without description or example, and the OpenAPI test fails. */
const EVENT_DOCS: Record<string, { summary: string; description: string; data: Json } | undefined> = {
  'mailbox.connected': { summary: 'A mailbox was connected (or reconnected)', description: 'Sent when the customer finished the consent and the mailbox is active; sync starts.', data: mailboxData('active', null) },
  'mailbox.reauth_required': {
    summary: 'The provider refused the stored grant: the customer must reconnect',
    description: 'The refresh token was revoked or expired (password change, admin action). Create a reconnect session (`POST /v1/mailboxes/{id}/reconnect`); the mailbox is purged after the grace period.',
    data: mailboxData('reauth_required', 'google refused the stored grant (invalid_grant); the mailbox must be reconnected'),
  },
  'mailbox.disconnected': { summary: 'A mailbox is being disconnected', description: 'After a disconnect, an ops revocation or a grant revoked at the provider: sync stopped and the purge started.', data: mailboxData('disconnecting', 'customer') },
  'mailbox.purged': {
    summary: 'A mailbox’s data was purged: the purge receipt',
    description: 'Every message, attachment and event of the mailbox is deleted and its data key destroyed. `data` is the purge receipt.',
    data: mailboxData('purged', null, { purgeId: 'prg_06H4B1C2D3E4F5G6H7J8K9M0N1', trigger: 'customer', revokeStatus: 'revoked', startedAt: T, completedAt: T2, messages: 1250, attachments: 310 }),
  },
  'mailbox.break_glass_opened': {
    summary: 'An operator opened a break-glass session on the mailbox',
    description: 'Extension: an operator may read messages of this mailbox until `expiresAt`, for the given reason and ticket (docs/data-lifecycle.md).',
    data: mailboxData('active', null, { sessionId: 'bgs_06H4B2C3D4E5F6G7H8J9K0M1N2', operator: 'alice via ops:key_06H3Z0', reason: 'abuse report', ticketRef: 'SEC-311', openedAt: T, expiresAt: '2026-12-01T10:00:00.000Z' }),
  },
  'organization_install.access_changed': {
    summary: 'An organization install’s restriction verdict changed',
    description:
      'Tenant-level (`mailboxId` is null). The restriction probe found that the app can now read a mailbox it was not given (`accessCheck` `unrestricted`, warning `app_access_unrestricted`: the organization should restrict the app with an Exchange application access policy), or that it is restricted again. Once per change, not on every daily probe; no address is included (docs/organization-installs.md).',
    data: { installId: 'oin_01JDZ8Q6T1N5V8X2K4M7P9R3SA', provider: 'microsoft', accessCheck: 'unrestricted', warnings: ['app_access_unrestricted'] },
  },
  'message.received': {
    summary: 'A message arrived in a connected mailbox',
    description: 'The whole message (built when sent, from encrypted storage). Attachment bytes are fetched with `GET /v1/attachments/{id}/content` once clean.',
    data: {
      messageId: messageSummaryExample.id,
      threadKey: messageSummaryExample.threadKey,
      providerThreadId: messageSummaryExample.providerThreadId,
      internetMessageId: '<CA+1042@mail.customer.example>',
      inReplyTo: null,
      references: [],
      from: messageSummaryExample.from,
      to: messageSummaryExample.to,
      cc: [],
      replyTo: [],
      subject: messageSummaryExample.subject,
      date: T,
      text: 'Hello, the parcel arrived damaged. Photo attached.\n\nBest regards,\nAda\n\nOn Mon, Dec 1, 2026 at 9:12 AM, Acme Support <support@acme.example> wrote:\n> Did your order arrive?',
      html: null,
      safeHtml: null,
      replyText: 'Hello, the parcel arrived damaged. Photo attached.\n\nBest regards,\nAda',
      signature: 'Best regards,\nAda',
      forwarded: null,
      isAutoReply: false,
      isBounce: false,
      origin: 'live',
      oversize: false,
      parseError: null,
      attachments: [{ id: attachmentExample.id, filename: 'photo.jpg', contentType: 'image/jpeg', size: 120331, contentId: null, isInline: false, scanStatus: 'pending' }],
    },
  },
  'message.sent': {
    summary: 'A reply or new message was sent',
    description: 'The send succeeded at the provider; `messageId` is the stored copy in the mailbox.',
    data: { outboundId: 'out_06H4A7B8C9D0E1F2G3H4J5K6M7', messageId: 'msg_06H4A8B9C0D1E2F3G4H5J6K7M8', replyToMessageId: messageSummaryExample.id, kind: 'reply', status: 'sent', threadKey: 'gm:18c2f0a1b2c3d4e5', providerMessageId: '18c2f0b9e8d7c6b5', providerThreadId: '18c2f0a1b2c3d4e5', sentAt: T2, failure: null },
  },
  'message.send_failed': {
    summary: 'A reply or new message could not be sent',
    description: 'The send failed for good (after retries for transient errors): `failure.code` says why.',
    data: { outboundId: 'out_06H4A7B8C9D0E1F2G3H4J5K6M7', messageId: null, replyToMessageId: messageSummaryExample.id, kind: 'reply', status: 'failed', threadKey: 'gm:18c2f0a1b2c3d4e5', providerMessageId: null, providerThreadId: null, sentAt: null, failure: { code: 'auth_revoked', reason: 'the mailbox grant was revoked' } },
  },
  'attachment.infected': {
    summary: 'ClamAV found malware in an attachment',
    description: 'The attachment is never served; the message itself stays readable.',
    data: { attachmentId: attachmentExample.id, messageId: messageSummaryExample.id, filename: 'invoice.pdf.exe', contentType: 'application/octet-stream', size: 68, scanStatus: 'infected', signature: 'Eicar-Signature' },
  },
  'attachment.scanned': {
    summary: 'A pending attachment’s scan completed',
    description:
      'An attachment that was `pending` (scanner unavailable, or retrying after a scanner error) got its final status: `clean` (its content is now served), `infected` (also announced by `attachment.infected`, just before) or `unscannable` (never served). Sent once per attachment, never for attachments that were scanned before `message.received`.',
    data: { attachmentId: attachmentExample.id, messageId: messageSummaryExample.id, filename: 'photo.jpg', contentType: 'image/jpeg', size: 120331, contentId: null, isInline: false, previousStatus: 'pending', scanStatus: 'clean', signature: null },
  },
};

/** OpenAPI 3.1 `webhooks`: one entry per event type, the body the ticket service receives. */
export function webhooksSection(): Json {
  const out: Json = {};
  for (const type of EVENT_TYPES) {
    const d = EVENT_DOCS[type];
    if (!d) {
      out[type] = { post: { operationId: `event_${type.replace(/\./g, '_')}`, summary: type, tags: ['Webhook events'], responses: { 200: { description: 'Accepted (any 2xx)' } } } };
      continue;
    }
    out[type] = {
      post: {
        operationId: `event_${type.replace(/\./g, '_')}`,
        summary: d.summary,
        description: `${d.description}\n\nSigned per Standard Webhooks: verify \`webhook-signature\` (\`v1,\` HMAC-SHA256 of \`webhook-id.webhook-timestamp.body\`) before trusting the body; answer 2xx within the timeout, anything else is retried (docs/webhooks.md).`,
        tags: ['Webhook events'],
        security: [],
        parameters: [
          { name: 'webhook-id', in: 'header', required: true, description: 'The event id (use it to de-duplicate).', schema: { type: 'string' }, example: 'evt_06H4A3B4C5D6E7F8G9H0J1K2M3' },
          { name: 'webhook-timestamp', in: 'header', required: true, description: 'Unix seconds when signed; refuse old ones.', schema: { type: 'string' }, example: '1764581400' },
          { name: 'webhook-signature', in: 'header', required: true, description: 'Space-separated `v1,<base64>` signatures (two during a secret rotation).', schema: { type: 'string' }, example: 'v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4=' },
        ],
        requestBody: {
          required: true,
          content: {
            'application/json': {
              schema: {
                type: 'object',
                required: ['id', 'type', 'createdAt', 'tenantId', 'mailboxId', 'sequence', 'data'],
                properties: {
                  id: { type: 'string' },
                  type: { const: type },
                  createdAt: { type: 'string', format: 'date-time' },
                  tenantId: { type: 'string' },
                  mailboxId: { type: ['string', 'null'] },
                  sequence: { type: 'integer', description: 'Increases by one per event of the mailbox, in commit order.' },
                  data: { type: 'object', description: d.summary },
                },
              },
              example: { id: 'evt_06H4A3B4C5D6E7F8G9H0J1K2M3', type, createdAt: T, tenantId: 'ten_06H3Y0A1B2C3D4E5F6G7H8J9K0', mailboxId: mailboxExample.id, sequence: 42, data: d.data },
            },
          },
        },
        responses: { 200: { description: 'Accepted (any 2xx)' }, 410: { description: 'Gone: the endpoint is disabled, nothing more is sent to it' } },
      },
    };
  }
  return out;
}

/**
 * An example value for a JSON schema, composed from the examples authored on the schemas it
 * refers to (COMPONENT_DOCS, `example` metadata), constants, enums and defaults. Used for request
 * and response bodies that have no example of their own.
 */
export function composeExample(schema: unknown, doc: Json, depth = 0): unknown {
  if (!schema || typeof schema !== 'object' || depth > 12) return null;
  const s = schema as Json;
  if (typeof s.$ref === 'string') {
    const name = s.$ref.split('/').pop()!;
    if (COMPONENT_DOCS[name]) return COMPONENT_DOCS[name].example;
    const target = ((doc.components as Json | undefined)?.schemas as Json | undefined)?.[name];
    return composeExample(target, doc, depth + 1);
  }
  if ('example' in s) return s.example;
  if (Array.isArray(s.examples) && s.examples.length) return s.examples[0];
  if ('const' in s) return s.const;
  if (Array.isArray(s.enum) && s.enum.length) return s.enum[0];
  if ('default' in s) return s.default;
  for (const key of ['anyOf', 'oneOf', 'allOf'] as const) {
    const options = s[key];
    if (Array.isArray(options)) {
      const first = options.find((o) => (o as Json).type !== 'null') ?? options[0];
      return composeExample(first, doc, depth + 1);
    }
  }
  const type = Array.isArray(s.type) ? (s.type as string[]).find((t) => t !== 'null') : s.type;
  switch (type) {
    case 'object': {
      const props = (s.properties ?? {}) as Json;
      return Object.fromEntries(Object.entries(props).map(([k, v]) => [k, FIELD_EXAMPLES[k] !== undefined && isPlainString(v) ? FIELD_EXAMPLES[k] : composeExample(v, doc, depth + 1)]));
    }
    case 'array':
      return [composeExample(s.items, doc, depth + 1)];
    case 'integer':
    case 'number':
      return typeof s.minimum === 'number' ? s.minimum : 1;
    case 'boolean':
      return true;
    case 'string':
      return s.format === 'date-time' ? T : s.format === 'uri' ? 'https://helpdesk.example.com/' : s.format === 'email' ? 'ada@customer.example' : 'string';
    default:
      return null;
  }
}

/** Examples of plain string fields by name, for bodies composed without an authored example. */
const FIELD_EXAMPLES: Record<string, string> = {
  email: 'ada@customer.example',
  url: 'https://helpdesk.example.com/hooks/mail',
  returnUrl: 'https://helpdesk.example.com/settings/mailboxes',
  reason: 'ticket OPS-42: the customer asked to disconnect',
  description: 'ticket intake',
  name: 'Acme Support',
  purgeId: 'prg_06H4B1C2D3E4F5G6H7J8K9M0N1',
  mailboxId: mailboxExample.id,
};
const isPlainString = (v: unknown): boolean => !!v && typeof v === 'object' && (v as Json).type === 'string' && !('enum' in (v as Json)) && !('const' in (v as Json)) && !('example' in (v as Json));

/** Fills in `example` on every media type of every operation that has a schema and no example. */
export function addExamples(doc: Json): void {
  for (const item of Object.values((doc.paths ?? {}) as Record<string, Json>)) {
    for (const op of Object.values(item) as Json[]) {
      if (!op || typeof op !== 'object') continue;
      const bodies: Json[] = [];
      const rb = op.requestBody as Json | undefined;
      if (rb?.content) bodies.push(...(Object.values(rb.content as Json) as Json[]));
      for (const r of Object.values((op.responses ?? {}) as Record<string, Json>)) if (r.content) bodies.push(...(Object.values(r.content as Json) as Json[]));
      for (const media of bodies) if (media.schema && !('example' in media) && !('examples' in media)) media.example = composeExample(media.schema, doc);
    }
  }
  const schemas = ((doc.components as Json | undefined)?.schemas ?? {}) as Record<string, Json>;
  for (const [name, schema] of Object.entries(schemas)) {
    const d = COMPONENT_DOCS[name];
    if (!d) continue;
    schema.description ??= d.description;
    if (!('example' in schema) && !('examples' in schema)) schema.examples = [d.example];
  }
}

/** Marks header parameters the server requires although the schema lets them through (for a friendlier error). */
export function markRequiredHeaders(doc: Json, required: Array<{ path: string; method: string; headers: string[] }>): void {
  for (const r of required) {
    const op = ((doc.paths as Record<string, Json>)[r.path]?.[r.method] ?? undefined) as Json | undefined;
    for (const p of (op?.parameters ?? []) as Json[]) if (p.in === 'header' && r.headers.includes(String(p.name).toLowerCase())) p.required = true;
  }
}
