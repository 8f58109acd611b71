/**
 * `mailboxes.credentialEnc` holds the credential the mailbox provider's grant port encodes
 * (`GrantPort.encode`/`decode`, src/providers/grant-port.ts: a versioned JSON document whose
 * fields belong to the provider room; an unknown shape fails closed), encrypted under the
 * mailbox DEK with AAD = MAILBOX_CREDENTIAL_AAD. The vault never looks inside it.
 */

/** AAD of `mailboxes.accountIdEnc` (the MSAL homeAccountId), mailbox DEK. */
export const MAILBOX_ACCOUNT_ID_AAD = (mailboxId: string) => ({ table: 'mailboxes', column: 'accountIdEnc', rowId: mailboxId }) as const;
