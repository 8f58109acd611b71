import { z } from 'zod';

/**
 * The decrypted form of `mailboxes.credentialEnc` (mailbox DEK, AAD = MAILBOX_CREDENTIAL_AAD).
 * Versioned: a reader meeting an unknown shape fails closed instead of guessing.
 */
export const mailboxCredentialSchema = z.discriminatedUnion('provider', [
  z.strictObject({ v: z.literal(1), provider: z.literal('google'), refreshToken: z.string().min(1), sandbox: z.literal(true).optional() }),
  /** The whole serialized MSAL cache of this one account (access + refresh token, id token, account). */
  z.strictObject({ v: z.literal(1), provider: z.literal('microsoft'), msalCache: z.string().min(2), sandbox: z.literal(true).optional() }),
]);
/**
 * `sandbox: true` marks a grant issued by a stand-in (SANDBOX=1). Stand-ins keep their users in
 * memory, so such a grant means nothing to a restarted stand-in or to the real provider; the
 * marker lets the connector say so (`reauth_required`, reason `sandbox_reset`) instead of failing
 * on every sync. Real grants never carry it.
 */
export type MailboxCredential = z.infer<typeof mailboxCredentialSchema>;

/** AAD of `mailboxes.accountIdEnc` (the MSAL homeAccountId), mailbox DEK. */
export const MAILBOX_ACCOUNT_ID_AAD = (mailboxId: string) => ({ table: 'mailboxes', column: 'accountIdEnc', rowId: mailboxId }) as const;

export function encodeCredential(c: MailboxCredential): Buffer {
  return Buffer.from(JSON.stringify(mailboxCredentialSchema.parse(c)), 'utf8');
}

export function decodeCredential(plain: Buffer): MailboxCredential {
  return mailboxCredentialSchema.parse(JSON.parse(plain.toString('utf8')));
}
