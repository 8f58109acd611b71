import { describe, expect, it } from 'vitest';
import { GraphLinkRejectedError, GraphLinkValidator, validateUploadUrl } from './delta-link.validator.js';
import { microsoftEndpoints, sandboxMicrosoftEndpoints } from './microsoft-endpoints.js';

const prod = new GraphLinkValidator(microsoftEndpoints('contoso.onmicrosoft.com'));
const sandboxEndpoints = sandboxMicrosoftEndpoints({
  authority: 'https://127.0.0.1:4443/tenant',
  graphBaseUrl: 'http://127.0.0.1:4080',
  caCertPem: 'pem',
  msal: { knownAuthorities: ['127.0.0.1:4443'], cloudDiscoveryMetadata: '{}' },
});
const sandbox = new GraphLinkValidator(sandboxEndpoints);

describe('GraphLinkValidator', () => {
  it('accepts the inbox delta links Graph hands out, in both path spellings', () => {
    for (const link of [
      "https://graph.microsoft.com/v1.0/me/mailFolders('inbox')/messages/delta?$deltatoken=abc",
      'https://graph.microsoft.com/v1.0/me/mailfolders/inbox/messages/delta?$skiptoken=abc',
      'https://graph.microsoft.com/v1.0/me/mailFolders%28%27Inbox%27%29/messages/delta?%24deltatoken=abc',
    ]) {
      expect(prod.validate(link, 'delta').host).toBe('graph.microsoft.com');
    }
  });

  it('rejects other hosts, http, credentials, other paths, other versions and token-less links', () => {
    const bad = [
      "https://evil.example/v1.0/me/mailFolders('inbox')/messages/delta?$deltatoken=abc",
      "http://graph.microsoft.com/v1.0/me/mailFolders('inbox')/messages/delta?$deltatoken=abc",
      "https://user:pw@graph.microsoft.com/v1.0/me/mailFolders('inbox')/messages/delta?$deltatoken=abc",
      "https://graph.microsoft.com.evil.example/v1.0/me/mailFolders('inbox')/messages/delta?$deltatoken=abc",
      "https://graph.microsoft.com/v1.0/me/mailFolders('sentitems')/messages/delta?$deltatoken=abc",
      "https://graph.microsoft.com/v1.0/users/someone-else/mailFolders('inbox')/messages/delta?$deltatoken=abc",
      "https://graph.microsoft.com/beta/me/mailFolders('inbox')/messages/delta?$deltatoken=abc",
      "https://graph.microsoft.com/v1.0/me/mailFolders('inbox')/messages/delta",
      "https://graph.microsoft.com/v1.0/me/mailFolders('inbox')/messages/delta?$deltatoken=",
      'not a url',
      '',
    ];
    for (const link of bad) expect(() => prod.validate(link, 'delta'), link).toThrow(GraphLinkRejectedError);
  });

  it('allows plain http only for the configured sandbox origin', () => {
    expect(() => sandbox.validate("http://127.0.0.1:4080/v1.0/me/mailFolders('inbox')/messages/delta?$deltatoken=x", 'delta')).not.toThrow();
    expect(() => sandbox.validate("http://127.0.0.1:4081/v1.0/me/mailFolders('inbox')/messages/delta?$deltatoken=x", 'delta')).toThrow(GraphLinkRejectedError);
    expect(() => sandbox.validate("https://graph.microsoft.com/v1.0/me/mailFolders('inbox')/messages/delta?$deltatoken=x", 'delta')).toThrow(GraphLinkRejectedError);
  });

  it('validates window links separately from delta links and gives a client path', () => {
    const url = prod.validate("https://graph.microsoft.com/v1.0/me/mailFolders('inbox')/messages?$top=10&$skip=10", 'window');
    expect(prod.relativePath(url)).toBe("/me/mailFolders('inbox')/messages?$top=10&$skip=10");
    expect(() => prod.validate("https://graph.microsoft.com/v1.0/me/mailFolders('inbox')/messages?$skip=10", 'delta')).toThrow(GraphLinkRejectedError);
  });

  it('never echoes the link in the error', () => {
    let message = '';
    try {
      prod.validate('https://evil.example/secret-path?token=abc', 'delta');
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message).not.toBe('');
    expect(message).not.toContain('evil');
    expect(message).not.toContain('abc');
  });
});

describe('validateUploadUrl', () => {
  it('accepts Outlook upload hosts over https and the sandbox origin, nothing else', () => {
    expect(validateUploadUrl("https://outlook.office.com/api/v2.0/Users('a')/Messages('b')/AttachmentSessions('c')?authtoken=x", microsoftEndpoints()).host).toBe('outlook.office.com');
    expect(() => validateUploadUrl('https://evil.example/upload', microsoftEndpoints())).toThrow(GraphLinkRejectedError);
    expect(() => validateUploadUrl('http://outlook.office.com/upload', microsoftEndpoints())).toThrow(GraphLinkRejectedError);
    expect(validateUploadUrl('http://127.0.0.1:4080/_upload/abc?authtoken=x', sandboxEndpoints).port).toBe('4080');
  });
});
