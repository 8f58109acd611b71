import { z } from 'zod';
import { isCryptoError } from '../crypto/crypto-error.js';
import type { DataKeyService } from '../crypto/data-key.service.js';
import { MAILBOX_CREDENTIAL_AAD } from '../mailboxes/message-content.js';
import type { ProviderName } from '../providers/mail-provider.port.js';
import type { MailboxCredential } from '../providers/ports.js';
import type { CredentialReader } from './provider-teardown.port.js';

// The token vault stores `{v:1, provider, refreshToken | msalCache}` (src/oauth/mailbox-credential.ts).
// A purge must still revoke what it can if that shape grows, so unknown fields are tolerated and a
// bare token is accepted too.
const microsoftCredentialJson = z.object({ msalCache: z.string().min(2) }).loose();
const googleCredentialJson = z.union([
  z.object({ refreshToken: z.string().min(1) }).loose(),
  z.object({ refresh_token: z.string().min(1) }).loose(),
]);

/** Decrypts `mailboxes.credentialEnc` with the mailbox DEK (AAD: mailboxes/credentialEnc/<id>). */
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
    if (mailbox.provider === 'microsoft') return { provider: 'microsoft', secret: msalCache(plain) };
    return { provider: 'google', secret: googleRefreshToken(plain) };
  }
}

export function googleRefreshToken(plain: string): string {
  const trimmed = plain.trim();
  if (trimmed.startsWith('{')) {
    try {
      const parsed = googleCredentialJson.safeParse(JSON.parse(trimmed));
      if (parsed.success) return 'refreshToken' in parsed.data ? String(parsed.data.refreshToken) : String(parsed.data.refresh_token);
    } catch {
      // not JSON after all: treat as the token itself
    }
  }
  return trimmed;
}

function msalCache(plain: string): string {
  try {
    const parsed = microsoftCredentialJson.safeParse(JSON.parse(plain));
    if (parsed.success) return parsed.data.msalCache;
  } catch {
    // not the vault's JSON document: the cache itself
  }
  return plain;
}
