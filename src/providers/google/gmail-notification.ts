import { z } from 'zod';

/** Pub/Sub push envelope (https://cloud.google.com/pubsub/docs/push#receive_push). */
const pubsubEnvelopeSchema = z.object({
  message: z.object({ data: z.string().max(8192), messageId: z.string().max(200).optional() }),
  subscription: z.string().max(500).optional(),
});
/** `message.data`, base64url JSON: {"emailAddress": "...", "historyId": "..."} (provider-facts §1.1). */
const gmailNotificationSchema = z.object({
  emailAddress: z.string().min(3).max(320),
  historyId: z.union([z.string().regex(/^\d{1,30}$/), z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER)]),
});

export interface GmailNotification {
  emailAddress: string;
  /** The mailbox's history id when the announced change happened, as a decimal string. */
  historyId: string;
}

/**
 * The Gmail notification in an (already authenticated) Pub/Sub push body, or undefined for a
 * malformed envelope. The historyId is NOT a cursor (sync reads from the last *stored* one); the
 * push intake only compares it with the stored cursor.
 */
export function parseGmailNotification(body: unknown): GmailNotification | undefined {
  const envelope = pubsubEnvelopeSchema.safeParse(body);
  if (!envelope.success) return undefined;
  let data: unknown;
  try {
    data = JSON.parse(Buffer.from(envelope.data.message.data, 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
  const n = gmailNotificationSchema.safeParse(data);
  return n.success ? { emailAddress: n.data.emailAddress, historyId: String(n.data.historyId) } : undefined;
}
