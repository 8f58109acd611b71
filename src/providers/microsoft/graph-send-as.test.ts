import { describe, expect, it } from 'vitest';
import { ProviderError } from '../provider-error.js';
import { SEND_AS_DENIED, sendAsDenied, smtpProxyAddresses } from './graph-send-as.js';

describe('smtpProxyAddresses', () => {
  it('keeps SMTP (primary) and smtp (alias) entries, drops other address types and duplicates, adds mail when absent', () => {
    expect(smtpProxyAddresses(['SMTP:Alice@contoso.test', 'smtp:sales@contoso.test', 'X500:/o=ExchangeLabs/cn=alice', 'SIP:alice@contoso.test', 'smtp:SALES@contoso.test', 'smtp:not-an-address'], 'alice@contoso.test')).toEqual([
      { address: 'Alice@contoso.test', displayName: undefined, isPrimary: true, verified: true },
      { address: 'sales@contoso.test', displayName: undefined, isPrimary: false, verified: true },
    ]);
    expect(smtpProxyAddresses([], 'bob@contoso.test')).toEqual([{ address: 'bob@contoso.test', displayName: undefined, isPrimary: true, verified: true }]);
    expect(smtpProxyAddresses([], null)).toEqual([]);
  });
});

describe('sendAsDenied', () => {
  it('turns only a 403 ErrorSendAsDenied into the send_as_denied reason; other errors pass through unchanged', () => {
    const denied = sendAsDenied(new ProviderError('microsoft', 'invalid_request', 'Graph rejected the request (403 ErrorSendAsDenied)', { status: 403, reason: 'ErrorSendAsDenied' }));
    expect(denied).toMatchObject({ kind: 'invalid_request', status: 403, reason: SEND_AS_DENIED });
    const accessDenied = new ProviderError('microsoft', 'auth_revoked', 'Graph denied access (ErrorAccessDenied)', { status: 403, reason: 'ErrorAccessDenied' });
    expect(sendAsDenied(accessDenied)).toBe(accessDenied);
    const plain = new Error('x');
    expect(sendAsDenied(plain)).toBe(plain);
  });
});
