// What a ticket shows (issue 13, items 4-8): every attachment named, TNEF unpacked, name-only
// addresses, undeclared 8-bit headers decoded, text attachments kept as attachments, and headers
// salvaged when a parser limit is hit.
import { Readable } from 'node:stream';
import iconv from 'iconv-lite';
import { describe, expect, it } from 'vitest';
import { InMemoryAttachmentSink } from './in-memory-attachment-sink.js';
import { parseMime, type ParsedMessage } from './mime-parser.js';

const CRLF = '\r\n';
const bytesOf = (parts: Array<string | Buffer>): Buffer => Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'latin1') : p)));
async function parse(raw: Buffer | string, chunk = 4096): Promise<{ m: ParsedMessage; sink: InMemoryAttachmentSink }> {
  const buf = typeof raw === 'string' ? Buffer.from(raw.replace(/\r?\n/g, CRLF)) : raw;
  const sink = new InMemoryAttachmentSink();
  const m = await parseMime(
    Readable.from(
      (function* () {
        for (let i = 0; i < buf.length; i += chunk) yield buf.subarray(i, i + chunk);
      })(),
    ),
    { attachmentSink: sink },
  );
  return { m, sink };
}
const names = (m: ParsedMessage) => m.attachments.map((a) => a.filename);
const head = ['From: Ada <ada@customer.example>', 'To: support@helpdesk.example', 'Subject: test', 'Message-ID: <t@customer.example>', 'Date: Mon, 2 Feb 2026 10:00:00 +0000', 'MIME-Version: 1.0'];

describe('name-only addresses', () => {
  it('keeps a From without an address as {name, address: null}, and name-only recipients', async () => {
    const { m } = await parse(['From: MAILER-DAEMON (Mail Delivery System)', 'To: a@b.example, "Only Name"', 'Subject: Undelivered Mail', '', 'x', ''].join('\n'));
    expect(m.from).toEqual({ name: 'MAILER-DAEMON (Mail Delivery System)', address: null });
    expect(m.to).toEqual([
      { name: '', address: 'a@b.example' },
      { name: 'Only Name', address: null },
    ]);
    const quoted = await parse(['From: "Mail Delivery System"', 'Subject: x', '', 'x', ''].join('\n'));
    expect(quoted.m.from).toEqual({ name: 'Mail Delivery System', address: null });
    const empty = await parse(['From: <>', 'Subject: x', '', 'x', ''].join('\n'));
    expect(empty.m.from).toBeNull();
  });
});

describe('every attachment has a name', () => {
  it('names attached messages by their subject, delivery reports and unnamed parts by their type', async () => {
    const png = Buffer.from('89504e470d0a1a0a', 'hex').toString('base64');
    const { m, sink } = await parse(
      [
        ...head,
        'Content-Type: multipart/mixed; boundary="b"',
        '',
        '--b',
        'Content-Type: text/plain',
        '',
        'see attached',
        '--b',
        'Content-Type: message/rfc822',
        '',
        'From: x@y.example',
        'Subject: =?utf-8?Q?Your_order_=E2=84=961234?=',
        '',
        'inner body',
        '--b',
        'Content-Type: message/global-delivery-status',
        '',
        'Reporting-MTA: dns; mx.example',
        '--b',
        'Content-Type: application/pdf',
        'Content-Transfer-Encoding: base64',
        '',
        Buffer.from('%PDF-1.4').toString('base64'),
        '--b',
        'Content-Type: image/png',
        'Content-Transfer-Encoding: base64',
        '',
        png,
        '--b',
        'Content-Type: image/png',
        'Content-Transfer-Encoding: base64',
        '',
        png,
        '--b',
        'Content-Type: message/rfc822',
        '',
        'From: x@y.example',
        '',
        'no subject',
        '--b--',
        '',
      ].join('\n'),
      // Small chunks: the attached message's header arrives in pieces.
      7,
    );
    expect(names(m)).toEqual(['Your order №1234.eml', 'delivery-status.txt', 'attachment.pdf', 'image.png', 'image-1.png', 'attached-message.eml']);
    // The read-ahead for the subject loses nothing: the sink got the whole attached message.
    const eml = [...sink.stored.values()][0]!;
    expect(eml.content.toString()).toContain('inner body');
    expect(eml.content.toString().startsWith('From: x@y.example')).toBe(true);
    expect(m.attachments[0]!.sha256).toBe(eml.sha256);
    expect(m.attachments[0]!.sizeBytes).toBe(eml.content.length);
  });
});

// A two-file TNEF stream (see tnef.test.ts for the format).
function attribute(level: number, id: number, data: Buffer): Buffer {
  const h = Buffer.alloc(9);
  h.writeUInt8(level, 0);
  h.writeUInt32LE(id, 1);
  h.writeUInt32LE(data.length, 5);
  return Buffer.concat([h, data, Buffer.alloc(2)]);
}
function winmail(files: Array<[string, string]>): Buffer {
  const start = Buffer.alloc(6);
  start.writeUInt32LE(0x223e9f78, 0);
  return Buffer.concat([
    start,
    ...files.flatMap(([name, content]) => [attribute(2, 0x00069002, Buffer.alloc(14)), attribute(2, 0x00018010, Buffer.from(`${name}\0`)), attribute(2, 0x0006800f, Buffer.from(content))]),
  ]);
}
const tnefMessage = (dat: Buffer, type = 'application/ms-tnef') =>
  [...head, 'Content-Type: multipart/mixed; boundary="b"', '', '--b', 'Content-Type: text/plain', '', 'body', '--b', `Content-Type: ${type}; name="winmail.dat"`, 'Content-Disposition: attachment; filename="winmail.dat"', 'Content-Transfer-Encoding: base64', '', dat.toString('base64').replace(/.{76}/g, '$&\n'), '--b--', ''].join('\n');

describe('TNEF (winmail.dat)', () => {
  it('is unpacked: each file stored (and scanned by the sink) as an attachment, winmail.dat itself not listed', async () => {
    const { m, sink } = await parse(tnefMessage(winmail([['report.pdf', '%PDF-1.4 report'], ['notes.txt', 'hello']])));
    expect(names(m)).toEqual(['report.pdf', 'notes.txt']);
    expect(m.attachments.map((a) => [a.contentType, a.ordinal, a.status, a.sizeBytes])).toEqual([
      ['application/octet-stream', 0, 'stored', 15],
      ['application/octet-stream', 1, 'stored', 5],
    ]);
    expect([...sink.stored.values()].map((s) => s.content.toString())).toEqual(['%PDF-1.4 report', 'hello']);
    expect(m.attachments[1]!.sha256).toBe([...sink.stored.values()][1]!.sha256);
  });

  it('recognises winmail.dat relabelled application/octet-stream', async () => {
    const { m } = await parse(tnefMessage(winmail([['a.txt', 'a']]), 'application/octet-stream'));
    expect(names(m)).toEqual(['a.txt']);
  });

  it('keeps a winmail.dat that is not valid TNEF as it came', async () => {
    const broken = Buffer.from('not tnef at all');
    const { m, sink } = await parse(tnefMessage(broken));
    expect(names(m)).toEqual(['winmail.dat']);
    expect([...sink.stored.values()][0]!.content.equals(broken)).toBe(true);
  });
});

describe('undeclared 8-bit header bytes', () => {
  it('decodes raw GB2312 subject, display name and file name (body charset declared)', async () => {
    const gb = (s: string) => iconv.encode(s, 'gb2312');
    const raw = bytesOf([
      'From: "', gb('张伟'), '" <zhang@example.cn>\r\n',
      'To: support@helpdesk.example\r\n',
      'Subject: ', gb('关于会议的通知'), '\r\n',
      'Message-ID: <gb@example.cn>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n',
      '--b\r\nContent-Type: text/plain; charset=gb2312\r\nContent-Transfer-Encoding: 8bit\r\n\r\n', gb('您好'), '\r\n',
      '--b\r\nContent-Type: application/octet-stream; name="', gb('报价单.xls'), '"\r\nContent-Disposition: attachment; filename="', gb('报价单.xls'), '"\r\n\r\nxls\r\n',
      '--b--\r\n',
    ]);
    const { m } = await parse(raw);
    expect(m.subject).toBe('关于会议的通知');
    expect(m.from).toEqual({ name: '张伟', address: 'zhang@example.cn' });
    expect(m.text?.trim()).toBe('您好');
    expect(names(m)).toEqual(['报价单.xls']);
  });

  it('decodes a raw Shift_JIS subject next to an ISO-2022-JP body, and keeps RFC 6532 UTF-8 and encoded words', async () => {
    const raw = bytesOf(['From: a@b.jp\r\nSubject: ', iconv.encode('請求書', 'shift_jis'), '\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=iso-2022-jp\r\n\r\nbody\r\n']);
    expect((await parse(raw)).m.subject).toBe('請求書');
    const utf8 = bytesOf(['From: a@b.example\r\nSubject: ', Buffer.from('Grüße 会議', 'utf8'), '\r\n\r\nx\r\n']);
    expect((await parse(utf8)).m.subject).toBe('Grüße 会議');
    const encoded = bytesOf(['From: a@b.example\r\nSubject: =?iso-8859-1?Q?caf=E9?=\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\nContent-Disposition: attachment; filename*=iso-8859-1\'\'caf%E9.txt\r\n\r\nx\r\n--b--\r\n']);
    const e = (await parse(encoded)).m;
    expect(e.subject).toBe('café');
    expect(names(e)).toEqual(['café.txt']);
  });
});

describe('attachments stay attachments', () => {
  it('lists a text part with a file name, and a second text/html alternative, instead of merging them into the body', async () => {
    const { m, sink } = await parse(
      [
        ...head,
        'Content-Type: multipart/mixed; boundary="b"',
        '',
        '--b',
        'Content-Type: multipart/alternative; boundary="a"',
        '',
        '--a',
        'Content-Type: text/plain',
        '',
        'the body',
        '--a',
        'Content-Type: text/html',
        '',
        '<p>the body</p>',
        '--a',
        'Content-Type: text/html',
        '',
        '<p>another rendering</p>',
        '--a--',
        '--b',
        'Content-Type: text/plain; name="notes.txt"',
        'Content-Disposition: inline; filename="notes.txt"',
        '',
        'private notes',
        '--b',
        'Content-Type: text/html',
        'Content-Disposition: attachment',
        '',
        '<p>saved page</p>',
        '--b--',
        '',
      ].join('\n'),
    );
    expect(m.text?.trim()).toBe('the body');
    expect(m.html).toBe('<p>the body</p>');
    expect(names(m)).toEqual(['attachment.html', 'notes.txt', 'attachment-1.html']);
    expect([...sink.stored.values()].map((s) => s.content.toString().trim())).toEqual(['<p>another rendering</p>', 'private notes', '<p>saved page</p>']);
  });

  it('still joins the html fragments Apple Mail writes around inline images, and keeps a root text part with a name as the body', async () => {
    const { m } = await parse(
      [...head, 'Content-Type: multipart/mixed; boundary="b"', '', '--b', 'Content-Type: text/html', '', '<p>one</p>', '--b', 'Content-Type: image/png', 'Content-Disposition: inline', '', 'png', '--b', 'Content-Type: text/html', '', '<p>two</p>', '--b--', ''].join('\n'),
    );
    expect(m.html).toContain('<p>one</p>');
    expect(m.html).toContain('<p>two</p>');
    expect(names(m)).toEqual(['image.png']);
    const root = await parse([...head, 'Content-Type: text/plain; name="body.txt"', '', 'root body', ''].join('\n'));
    expect(root.m.text?.trim()).toBe('root body');
    expect(root.m.attachments).toEqual([]);
  });
});

describe('parser limits: headers salvaged, never a blank message, never a hang', () => {
  it('salvages From, To, Cc, Subject, Date and Message-ID from a header block over 1 MiB', async () => {
    const lines = ['From: Sender <sender@example.com>', 'Subject: huge header', 'Message-ID: <huge@example.com>', 'Date: Mon, 2 Feb 2026 10:00:00 +0000', 'Cc: cc@example.com'];
    for (let i = 0, size = 0; size < 1_100_000; i++) {
      const line = `To: "User ${i}" <user${i}@example.com>, "Other ${i}" <o${i}@example.com>`;
      lines.push(line);
      size += line.length + 2;
    }
    const { m } = await parse([...lines, '', 'body', ''].join('\n'), 65536);
    expect(m.parseError).toBe('limit_exceeded');
    expect(m.from).toEqual({ name: 'Sender', address: 'sender@example.com' });
    expect(m.subject).toBe('huge header');
    expect(m.messageId).toBe('huge@example.com');
    expect(m.messageIdSynthetic).toBe(false);
    expect(m.dateSource).toBe('header');
    expect(m.cc).toEqual([{ name: '', address: 'cc@example.com' }]);
    expect(m.to.length).toBeGreaterThan(100);
  });

  it('finishes (limit_exceeded, headers kept) when more than 1,000 parts are attachments', { timeout: 60_000 }, async () => {
    const parts: string[] = [];
    for (let i = 0; i < 1001; i++) parts.push('--zz', 'Content-Type: application/octet-stream', `Content-Disposition: attachment; filename="f${i}.bin"`, '', `part ${i}`);
    const { m } = await parse([...head, 'Content-Type: multipart/mixed; boundary="zz"', '', ...parts, '--zz--', ''].join('\n'), 65536);
    expect(m.parseError).toBe('limit_exceeded');
    expect(m.subject).toBe('test');
    // The attachments streamed before the splitter hit its limit are kept.
    expect(m.attachments.length).toBeGreaterThan(0);
    expect(m.attachments.every((a, i) => a.filename === `f${i}.bin`)).toBe(true);
  });
});
