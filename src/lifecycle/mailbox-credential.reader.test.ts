import { createSecretKey } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { DataKeyService } from '../crypto/data-key.service.js';
import { InMemoryDataKeyStore } from '../crypto/in-memory-data-key.store.js';
import { Keyring } from '../crypto/keyring.js';
import { MAILBOX_CREDENTIAL_AAD } from '../mailboxes/message-content.js';
import { googleTeardownSecret } from '../providers/google/google-teardown.adapter.js';
import { microsoftTeardownSecret } from '../providers/microsoft/microsoft-teardown.adapter.js';
import { MailboxCredentialReader } from './mailbox-credential.reader.js';

describe('MailboxCredentialReader', () => {
  it('reads the token vault format for both providers', async () => {
    const keys = new DataKeyService(new Keyring([{ version: 1, key: createSecretKey(Buffer.alloc(32, 7)) }]), new InMemoryDataKeyStore());
    const reader = new MailboxCredentialReader(keys);
    const seal = (id: string, plain: string) => keys.encryptFor({ type: 'mailbox', id }, plain, MAILBOX_CREDENTIAL_AAD(id));
    const g = await seal('mbx_g', JSON.stringify({ v: 1, provider: 'google', refreshToken: '1//rt' }));
    const m = await seal('mbx_m', JSON.stringify({ v: 1, provider: 'microsoft', msalCache: '{"Account":{}}' }));
    expect(await reader.read({ id: 'mbx_g', provider: 'google', credentialEnc: g })).toEqual({ provider: 'google', secret: '1//rt' });
    expect(await reader.read({ id: 'mbx_m', provider: 'microsoft', credentialEnc: m })).toEqual({ provider: 'microsoft', secret: '{"Account":{}}' });
    expect(await reader.read({ id: 'mbx_x', provider: 'google', credentialEnc: null })).toBeNull();
  });

  it('returns null once the mailbox key is shredded (a resumed purge has nothing left to revoke)', async () => {
    const keys = new DataKeyService(new Keyring([{ version: 1, key: createSecretKey(Buffer.alloc(32, 9)) }]), new InMemoryDataKeyStore());
    const enc = await keys.encryptFor({ type: 'mailbox', id: 'mbx_1' }, 'x', MAILBOX_CREDENTIAL_AAD('mbx_1'));
    await keys.destroy({ type: 'mailbox', id: 'mbx_1' });
    expect(await new MailboxCredentialReader(keys).read({ id: 'mbx_1', provider: 'google', credentialEnc: enc })).toBeNull();
  });

  it('accepts a bare token or an older JSON shape', () => {
    expect(googleTeardownSecret('1//bare')).toBe('1//bare');
    expect(googleTeardownSecret('{"refresh_token":"1//old"}')).toBe('1//old');
    expect(googleTeardownSecret('{not json')).toBe('{not json');
    expect(microsoftTeardownSecret('{"v":1,"provider":"microsoft","msalCache":"{}x","later":true}')).toBe('{}x');
    expect(microsoftTeardownSecret('{"Account":{}}')).toBe('{"Account":{}}');
  });
});
