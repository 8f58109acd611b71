import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { missing } from '../../../test/helpers/requirements.js';
import { corpusDir } from '../../../test/helpers/shared-dir.js';
import { GraphLinkFolderUnknownError, GraphLinkRejectedError, GraphLinkValidator } from './delta-link.validator.js';
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

  it('accepts the inbox named by its id (the form in Microsoft’s delta samples) once the inbox id is known', () => {
    const id = 'AAMkAGVmMDEzMTM4LTZmYWUtNDdkNC1hMDZiLTU1OGY5OTZhYmY4OAAuAAAAAAAiQ8W967B7TKBjgx9rVEURAQAiIsqMbYjsT5e-T7KzowPTAAAAAAFNAAA=';
    const formsOf = (id: string): string[] => [
      `https://graph.microsoft.com/v1.0/me/mailFolders/${id}/messages/delta?$skiptoken=abc`,
      `https://graph.microsoft.com/v1.0/me/mailfolders/${encodeURIComponent(id)}/messages/delta?$deltatoken=abc`,
      `https://graph.microsoft.com/v1.0/me/mailFolders('${id}')/messages/delta?$deltatoken=abc`,
      `https://graph.microsoft.com/v1.0/me/MAILFOLDERS%28%27${encodeURIComponent(id)}%27%29/messages/delta?%24skiptoken=abc`,
      // the standard-base64 spelling of the same id
      `https://graph.microsoft.com/v1.0/me/mailFolders/${encodeURIComponent(id.replace(/-/g, '+'))}/messages/delta?$skiptoken=abc`,
    ];
    const forms = formsOf(id);
    for (const link of forms) {
      // Unknown id: the caller is told to resolve the inbox id, not that the link expired.
      expect(() => prod.validate(link, 'delta'), link).toThrow(GraphLinkFolderUnknownError);
      expect(prod.validate(link, 'delta', id).pathname, link).toContain('/messages/delta');
    }
    // Another folder's id is rejected outright, in every form, even next to a known inbox id.
    const other = 'AAMkAGVmMDEzMTM4LTZmYWUtNDdkNC1hMDZiLTU1OGY5OTZhYmY4OAAuAAAAAAAiQ8W967B7TKBjgx9rVEURAQAiIsqMbYjsT5e-T7KzowPTAAAAAAFOAAA=';
    for (const link of formsOf(other)) {
      const err = (() => {
        try {
          prod.validate(link, 'delta', id);
        } catch (e) {
          return e;
        }
        return undefined;
      })();
      expect(err, link).toBeInstanceOf(GraphLinkRejectedError);
      expect(err, link).not.toBeInstanceOf(GraphLinkFolderUnknownError);
    }
    // Well-known names other than the inbox are never mistaken for an id.
    expect(() => prod.validate("https://graph.microsoft.com/v1.0/me/mailFolders('sentitems')/messages/delta?$deltatoken=abc", 'delta', id)).toThrow(GraphLinkRejectedError);
    // Path tricks inside the folder segment are not an id.
    for (const seg of ['..%2Fmessages', 'inbox%2F..%2Fsentitems', 'a%00b', '%E0%A4%A']) {
      expect(() => prod.validate(`https://graph.microsoft.com/v1.0/me/mailFolders/${seg}/messages/delta?$deltatoken=abc`, 'delta', id), seg).toThrow(GraphLinkRejectedError);
    }
  });

  it('accepts the national-cloud Graph host it is configured for and no other', () => {
    const usGov = new GraphLinkValidator({ ...microsoftEndpoints(), graphBaseUrl: 'https://graph.microsoft.us', graphLinkHosts: ['graph.microsoft.us'] });
    expect(usGov.validate("https://graph.microsoft.us/v1.0/me/mailFolders('inbox')/messages/delta?$deltatoken=abc", 'delta').host).toBe('graph.microsoft.us');
    expect(() => usGov.validate("https://graph.microsoft.com/v1.0/me/mailFolders('inbox')/messages/delta?$deltatoken=abc", 'delta')).toThrow(GraphLinkRejectedError);
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

describe('GraphLinkValidator for a shared mailbox', () => {
  const shared = 'support@contoso.example';
  const base = 'https://graph.microsoft.com/v1.0';
  it("accepts /users/{address}/ (any casing, percent-encoded) and /users/{object id}/ links for the shared mailbox", () => {
    expect(() => prod.validate(`${base}/users/${shared}/mailFolders('inbox')/messages/delta?$deltatoken=abc`, 'delta', undefined, shared)).not.toThrow();
    expect(() => prod.validate(`${base}/users/Support%40Contoso.example/mailFolders/inbox/messages/delta?$skiptoken=abc`, 'delta', undefined, shared)).not.toThrow();
    expect(() => prod.validate(`${base}/users/6e0c6f6d-0b7a-4b62-9f3a-2f1f0e6f4a11/mailFolders('inbox')/messages/delta?$deltatoken=abc`, 'delta', undefined, shared)).not.toThrow();
    expect(() => prod.validate(`${base}/users/${shared}/mailFolders('inbox')/messages?$skip=10`, 'window', undefined, shared)).not.toThrow();
  });
  it("rejects /me/ links (the member's own mailbox) and links of another address for a shared mailbox", () => {
    expect(() => prod.validate(`${base}/me/mailFolders('inbox')/messages/delta?$deltatoken=abc`, 'delta', undefined, shared)).toThrow(GraphLinkRejectedError);
    expect(() => prod.validate(`${base}/users/ceo@contoso.example/mailFolders('inbox')/messages/delta?$deltatoken=abc`, 'delta', undefined, shared)).toThrow(GraphLinkRejectedError);
    expect(() => prod.validate(`${base}/users/${shared}/mailFolders('sentitems')/messages/delta?$deltatoken=abc`, 'delta', undefined, shared)).toThrow(GraphLinkRejectedError);
  });
  it('keeps /users/… links out of a mailbox connected as the signed-in user', () => {
    expect(() => prod.validate(`${base}/users/${shared}/mailFolders('inbox')/messages/delta?$deltatoken=abc`, 'delta')).toThrow(GraphLinkRejectedError);
  });
});

/**
 * Links as Graph really issues them: Microsoft's documentation samples (graph-mocks, MIT) and a
 * recorded real `messages/delta` response (graph-api-recorded, AGPL: read from ../shared in place,
 * never copied into this repository).
 */
describe('GraphLinkValidator on recorded and documented Graph links', () => {
  const mocksPath = join(corpusDir(), 'graph-mocks', 'graph-v1_0-mail-proxy-mocks.json');
  const recordedPath = join(corpusDir(), 'graph-api-recorded', 'twentyhq-twenty', 'messages-delta.json');
  const absent = [mocksPath, recordedPath].find((p) => !existsSync(p));
  if (missing('shared corpus (graph-mocks, graph-api-recorded)', absent ? `${absent} does not exist (set SHARED_DIR or MAIL_CORPUS_DIR)` : null)) return;

  interface Mock { request: { url: string; exampleUrl?: string; method: string }; response: { body?: Record<string, unknown> } }
  const mocks = (JSON.parse(readFileSync(mocksPath, 'utf8')) as { mocks: Mock[] }).mocks;

  it('the documented messages/delta sample names the folder by id; its nextLink is followed for the inbox id only', () => {
    const sample = mocks.find((m) => m.request.method === 'GET' && /\/mailFolders\/\*\/messages\/delta$/.test(m.request.url));
    expect(sample).toBeDefined();
    const requestUrl = sample?.request.exampleUrl ?? '';
    const folderId = /\/mailFolders\/([^/]+)\/messages\/delta$/.exec(requestUrl)?.[1] ?? '';
    expect(folderId).toMatch(/^AAMk/);
    // The sample's nextLink is a template ({id}, {_skipToken_}): fill it in as Graph does.
    const template = String(sample?.response.body?.['@odata.nextLink']);
    expect(template).toContain('/mailFolders/{id}/messages/delta?$skiptoken=');
    const nextLink = template.replace('{id}', folderId).replace('{_skipToken_}', 'MS0xMjM0NTY3OA.AbC-_x');
    expect(() => prod.validate(nextLink, 'delta')).toThrow(GraphLinkFolderUnknownError);
    expect(prod.validate(nextLink, 'delta', folderId).searchParams.get('$skiptoken')).toBe('MS0xMjM0NTY3OA.AbC-_x');
    expect(() => prod.validate(nextLink, 'delta', `${folderId.slice(0, -4)}AAB=`)).toThrow(GraphLinkRejectedError);
    // The request URL itself is a valid link shape once it carries a token.
    expect(prod.validate(`${requestUrl}?$deltatoken=x`, 'delta', folderId).host).toBe('graph.microsoft.com');
  });

  it('the folder-level delta sample (mailFolders/delta) is not an inbox messages link', () => {
    const folders = mocks.find((m) => m.request.method === 'GET' && /\/mailFolders\/delta$/.test(m.request.url));
    const link = String(folders?.response.body?.['@odata.nextLink']).replace('{_skipToken_}', 'abc');
    expect(link).toContain('/mailFolders/delta?$skiptoken=');
    expect(() => prod.validate(link, 'delta', 'inbox')).toThrow(GraphLinkRejectedError);
  });

  it('the recorded real deltaLink: accepted on the Graph version the connector speaks, with its real token', () => {
    const recorded = JSON.parse(readFileSync(recordedPath, 'utf8')) as Record<string, unknown>;
    const link = String(recorded['@odata.deltaLink']);
    expect(link).toMatch(/^https:\/\/graph\.microsoft\.com\/beta\/me\/mailFolders\('inbox'\)\/messages\/delta\?\$skiptoken=/);
    // Recorded from a beta request; the connector requests v1.0, whose links carry v1.0.
    expect(() => prod.validate(link, 'delta')).toThrow(GraphLinkRejectedError);
    const v1 = link.replace('/beta/', '/v1.0/');
    const url = prod.validate(v1, 'delta');
    expect(url.searchParams.get('$skiptoken')).toBe(new URL(link).searchParams.get('$skiptoken'));
    expect(prod.relativePath(url)).toBe(v1.slice('https://graph.microsoft.com/v1.0'.length));
    // The same link on another host, or for another user, is refused.
    expect(() => prod.validate(v1.replace('graph.microsoft.com', 'graph.microsoft.com.evil.test'), 'delta')).toThrow(GraphLinkRejectedError);
    expect(() => prod.validate(v1.replace('/me/', '/users/other@contoso.com/'), 'delta')).toThrow(GraphLinkRejectedError);
  });
});
