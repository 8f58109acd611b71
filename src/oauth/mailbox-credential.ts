import { z } from 'zod';

/**
 * The decrypted form of `mailboxes.credentialEnc` (mailbox DEK, AAD = MAILBOX_CREDENTIAL_AAD).
 * Versioned: a reader meeting an unknown shape fails closed instead of guessing.
 */
export const mailboxCredentialSchema = z.discriminatedUnion('provider', [
  z.strictObject({ v: z.literal(1), provider: z.literal('google'), refreshToken: z.string().min(1) }),
  /** The whole serialized MSAL cache of this one account (access + refresh token, id token, account). */
  z.strictObject({ v: z.literal(1), provider: z.literal('microsoft'), msalCache: z.string().min(2) }),
]);
export type MailboxCredential = z.infer<typeof mailboxCredentialSchema>;

/** AAD of `mailboxes.accountIdEnc` (the MSAL homeAccountId), mailbox DEK. */
export const MAILBOX_ACCOUNT_ID_AAD = (mailboxId: string) => ({ table: 'mailboxes', column: 'accountIdEnc', rowId: mailboxId }) as const;

export function encodeCredential(c: MailboxCredential): Buffer {
  return Buffer.from(JSON.stringify(mailboxCredentialSchema.parse(c)), 'utf8');
}

export function decodeCredential(plain: Buffer): MailboxCredential {
  return mailboxCredentialSchema.parse(JSON.parse(plain.toString('utf8')));
}
