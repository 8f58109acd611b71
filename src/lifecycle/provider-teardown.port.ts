import type { MailboxCredential } from '../providers/ports.js';
import type { ProviderName } from '../providers/mail-provider.port.js';

/** Reads (decrypts) a mailbox's stored credential; null when none is stored or its key is gone. */
export interface CredentialReader {
  read(mailbox: { id: string; provider: ProviderName; credentialEnc: Uint8Array | null }): Promise<MailboxCredential | null>;
}
