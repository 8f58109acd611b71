import { createSecretKey, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { BlindIndex } from '../crypto/blind-index.js';
import { decrypt } from '../crypto/envelope.js';
import { ATTACHMENT_FILENAME_AAD, decodeMessageContent, MESSAGE_CONTENT_AAD } from '../mailboxes/message-content.js';
import { InMemoryAttachmentSink } from './in-memory-attachment-sink.js';
import { ADDRESS_CHUNK_ROWS, encodeParsed, type EncodeSpec } from './message-encoder.js';
import { MimeParsePool, parseInProcess } from './parse-pool.js';
import { threadCandidates } from './threading.js';

const blind = new BlindIndex(createSecretKey(randomBytes(32)));
const dek = { version: 3, key: createSecretKey(randomBytes(32)) };
const spec: EncodeSpec = { dek, blindKeys: blind.derivedKeys };
const pool = new MimeParsePool({ threads: 1 });
afterAll(() => pool.close());

function mail(to: string[]): Buffer {
  return Buffer.from(
    [
      'From: Jane Customer <jane@example.com>',
      `To: ${to.join(',\r\n ')}`,
      'Subject: Printer on fire',
      'Date: Fri, 04 Dec 2026 10:00:00 +0000',
      'Message-ID: <m2@example.com>',
      'In-Reply-To: <m1@example.com>',
      'References: <m0@example.com> <m1@example.com>',
      'MIME-Version: 1.0',
      'Content-Type: multipart/mixed; boundary="zz"',
      '',
      '--zz',
      'Content-Type: text/plain',
      '',
      'It is still burning.',
      '--zz',
      'Content-Type: text/plain; name="log.txt"',
      'Content-Disposition: attachment; filename="log.txt"',
      '',
      'smoke',
      '--zz--',
      '',
    ].join('\r\n'),
  );
}

const parse = (raw: Buffer) => parseInProcess(Readable.from([raw]), { attachmentSink: new InMemoryAttachmentSink() });

describe('encodeParsed: a parsed message in its stored form', () => {
  it('encrypts the content under the mailbox key with the new row id as AAD, and indexes participants and thread candidates', async () => {
    const parsed = await parse(mail(['support@helpdesk.example', 'SUPPORT@helpdesk.example', 'bob@example.org']));
    const { message, encoded } = encodeParsed(parsed, spec);

    const content = decodeMessageContent(decrypt(dek, encoded.contentEnc, MESSAGE_CONTENT_AAD(encoded.id)));
    expect(content.subject).toBe('Printer on fire');
    expect(content.from).toEqual({ name: 'Jane Customer', address: 'jane@example.com' });
    expect(content.text).toContain('still burning');
    expect(content.replyText).toContain('still burning');
    // Sealed for this row only.
    expect(() => decrypt(dek, encoded.contentEnc, MESSAGE_CONTENT_AAD('msg_other'))).toThrow();

    // One row per (role, address): the upper-case duplicate normalises to the same index.
    const [chunk] = encoded.addresses;
    expect(encoded.addresses).toHaveLength(1);
    expect(chunk!.roles.split(',')).toEqual(['from', 'to', 'to']);
    expect(chunk!.indexes.split(',')).toEqual(['jane@example.com', 'support@helpdesk.example', 'bob@example.org'].map((a) => blind.emailIndex(a)));
    expect(new Set(chunk!.ids.split(',')).size).toBe(3);

    expect(encoded.messageIdIndex).toBe(blind.messageIdIndex('m2@example.com'));
    expect(encoded.threadIndexes).toEqual(threadCandidates(parsed).map((id) => blind.messageIdIndex(id)));
    const [att] = encoded.attachments;
    expect(decrypt(dek, att!.filenameEnc!, ATTACHMENT_FILENAME_AAD(att!.rowId)).toString()).toBe('log.txt');

    // The summary carries no bodies or address lists: those only travel encrypted.
    expect(Object.keys(message).sort()).toEqual(['attachments', 'date', 'inReplyTo', 'messageId', 'messageIdSynthetic', 'oversize', 'parseError', 'references', 'sizeBytes', 'warnings']);
  });

  it('cuts a long participant list into chunks of at most ADDRESS_CHUNK_ROWS', async () => {
    const to = Array.from({ length: 5000 }, (_, i) => `user${i}@example.net`);
    const { encoded } = encodeParsed(await parse(mail(to)), spec);
    expect(encoded.addresses.map((c) => c.count)).toEqual([ADDRESS_CHUNK_ROWS, ADDRESS_CHUNK_ROWS, 5001 - 2 * ADDRESS_CHUNK_ROWS]);
    for (const c of encoded.addresses) {
      expect(c.ids.split(',')).toHaveLength(c.count);
      expect(c.roles.split(',')).toHaveLength(c.count);
      expect(c.indexes.split(',')).toHaveLength(c.count);
    }
    expect(encoded.addresses.at(-1)!.indexes.split(',').at(-1)).toBe(blind.emailIndex('user4999@example.net'));
  });

  it('in the parse worker thread (keys cloned into it) gives what in-process encoding gives', async () => {
    const raw = mail(['support@helpdesk.example']);
    const local = encodeParsed(await parse(raw), spec);
    const remote = await pool.parse.encoded!(Readable.from([raw]), { attachmentSink: new InMemoryAttachmentSink() }, spec);
    const open = (e: typeof local.encoded) => decodeMessageContent(decrypt(dek, e.contentEnc, MESSAGE_CONTENT_AAD(e.id)));
    expect(open(remote.encoded)).toEqual(open(local.encoded));
    expect(remote.encoded.addresses.map((c) => c.indexes)).toEqual(local.encoded.addresses.map((c) => c.indexes));
    expect(remote.encoded.threadIndexes).toEqual(local.encoded.threadIndexes);
    expect(remote.message.attachments.map((a) => a.filename)).toEqual(['log.txt']);
  });
});
