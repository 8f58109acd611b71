import { z } from 'zod';

/** Every event type the connector emits (CONTRACT.md "Webhooks to the ticket service"). */
export const EVENT_TYPES = [
  'mailbox.connected',
  'mailbox.reauth_required',
  'mailbox.disconnected',
  'mailbox.purged',
  /** Extension (docs/data-lifecycle.md): an operator opened a break-glass session on the mailbox. */
  'mailbox.break_glass_opened',
  'message.received',
  'message.sent',
  'message.send_failed',
  'attachment.infected',
  /** A `pending` attachment's scan completed later (rescan): its final status, clean, infected or unscannable. */
  'attachment.scanned',
  /** Tenant-level (no mailbox): an organization install's restriction verdict changed (docs/organization-installs.md). */
  'organization_install.access_changed',
] as const;

export type EventType = (typeof EVENT_TYPES)[number];
export const eventTypeSchema = z.enum(EVENT_TYPES);

/**
 * Ids an event points at. Payloads are built from these at send time, so the outbox never holds
 * mail content: `message.received` needs `messageId`; `message.sent`/`message.send_failed` need
 * `outboundId`; `attachment.infected` and `attachment.scanned` need `attachmentId`; mailbox events need nothing beyond
 * the event's own `mailboxId`.
 */
export const eventRefsSchema = z.strictObject({
  messageId: z.string().min(1).max(64).optional(),
  outboundId: z.string().min(1).max(64).optional(),
  attachmentId: z.string().min(1).max(64).optional(),
  purgeId: z.string().min(1).max(64).optional(),
});
export type EventRefs = z.infer<typeof eventRefsSchema>;

/**
 * Small non-content facts that must outlive a mailbox purge (reason, trigger, provider, purge
 * receipt id). Encrypted with the TENANT key, so shredding the mailbox key leaves them readable.
 * Flat scalars only and at most 2 KB: this is not a place for mail content.
 */
const scalar = z.union([z.string().max(500), z.number(), z.boolean(), z.null()]);
export const eventDataSchema = z
  .record(z.string().regex(/^[a-zA-Z][a-zA-Z0-9_]{0,39}$/), z.union([scalar, z.array(z.string().max(200)).max(20)]))
  .refine((d) => Buffer.byteLength(JSON.stringify(d)) <= 2048, 'event data must be at most 2 KB');
export type EventData = z.infer<typeof eventDataSchema>;

/** Which refs each type requires; checked when the event is appended so a bad call fails loudly. */
export const REQUIRED_REFS: Record<EventType, ReadonlyArray<keyof EventRefs>> = {
  'mailbox.connected': [],
  'mailbox.reauth_required': [],
  'mailbox.disconnected': [],
  'mailbox.purged': [],
  'mailbox.break_glass_opened': [],
  'message.received': ['messageId'],
  'message.sent': ['outboundId'],
  'message.send_failed': ['outboundId'],
  'attachment.infected': ['attachmentId'],
  'attachment.scanned': ['attachmentId'],
  'organization_install.access_changed': [],
};
