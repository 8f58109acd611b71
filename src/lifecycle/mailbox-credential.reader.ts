import { isCryptoError } from '../crypto/crypto-error.js';
import type { DataKeyService } from '../crypto/data-key.service.js';
import { MAILBOX_CREDENTIAL_AAD } from '../mailboxes/message-content.js';
import type { ProviderName } from '../providers/mail-provider.port.js';
import { TEARDOWN_SECRETS } from '../providers/provider-modules.js';
import type { MailboxCredential } from '../providers/ports.js';
import type { CredentialReader } from './provider-teardown.port.js';

/**
 * Decrypts `mailboxes.credentialEnc` with the mailbox DEK (AAD: mailboxes/credentialEnc/<id>) and
 * hands the provider room's reader the document: what is inside a credential is the provider's
 * business (`TEARDOWN_SECRETS`), keeping it and shredding it is the purge's.
 */
export class MailboxCredentialReader implements CredentialReader {
  constructor(private readonly dataKeys: DataKeyService) {}

  async read(mailbox: { id: string; provider: ProviderName; credentialEnc: Uint8Array | null }): Promise<MailboxCredential | null> {
    if (!mailbox.credentialEnc) return null;
    let plain: string;
    try {
      plain = (await this.dataKeys.decryptFor({ type: 'mailbox', id: mailbox.id }, mailbox.credentialEnc, MAILBOX_CREDENTIAL_AAD(mailbox.id))).toString('utf8');
    } catch (err) {
      // Shredded already (a resumed purge): nothing left to revoke with.
      if (isCryptoError(err, 'key_destroyed')) return null;
      throw err;
    }
    return { provider: mailbox.provider, secret: TEARDOWN_SECRETS[mailbox.provider](plain) };
  }
}
