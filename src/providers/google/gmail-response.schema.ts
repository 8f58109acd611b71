import { z } from 'zod';

/**
 * What the adapter relies on in Gmail responses. Validated because a provider response is
 * external input; unknown fields pass through untouched.
 */
const numericString = z.string().regex(/^\d+$/);

export const gmailProfileSchema = z.object({
  emailAddress: z.string().min(3),
  historyId: numericString,
});

export const gmailHistoryListSchema = z.object({
  history: z
    .array(
      z.object({
        id: numericString,
        messagesAdded: z
          .array(
            z.object({
              message: z.object({ id: z.string().min(1), threadId: z.string().optional(), labelIds: z.array(z.string()).optional() }),
            }),
          )
          .optional(),
      }),
    )
    .optional(),
  nextPageToken: z.string().optional(),
  historyId: numericString,
});

export const gmailMessageListSchema = z.object({
  messages: z.array(z.object({ id: z.string().min(1), threadId: z.string().optional() })).optional(),
  nextPageToken: z.string().optional(),
});

/** messages.get format=minimal (the raw message itself is read as a stream: gmail-raw-stream.ts). */
export const gmailMinimalMessageSchema = z.object({
  id: z.string().min(1),
  threadId: z.string().optional(),
  labelIds: z.array(z.string()).optional(),
  sizeEstimate: z.number().int().nonnegative().optional(),
  internalDate: numericString.optional(),
});

export const gmailSendResponseSchema = z.object({
  id: z.string().min(1).optional(),
  threadId: z.string().optional(),
});

export const gmailWatchResponseSchema = z.object({
  historyId: numericString,
  expiration: numericString,
});

/**
 * users.settings.sendAs.list: the primary address and custom "from" aliases. `verificationStatus`
 * (`accepted` | `pending`) "only applies to custom from aliases" (Gmail API reference); the
 * primary entry has none.
 */
export const gmailSendAsListSchema = z.object({
  sendAs: z
    .array(
      z.object({
        sendAsEmail: z.string().min(3),
        displayName: z.string().optional(),
        isPrimary: z.boolean().optional(),
        verificationStatus: z.string().optional(),
      }),
    )
    .optional(),
});
