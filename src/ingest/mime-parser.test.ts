import { createReadStream } from 'node:fs';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import type { AttachmentMeta, AttachmentSink, AttachmentSinkResult } from './attachment-sink.port.js';
import { InMemoryAttachmentSink } from './in-memory-attachment-sink.js';
import { AttachmentSinkError, MimeSourceError } from './mime-parse.errors.js';
import { parseMime, sanitizeFilename } from './mime-parser.js';

const FIXTURES = new URL('../../fixtures/mime/', import.meta.url);
const fixture = (name: string): Readable => createReadStream(new URL(name, FIXTURES));
const fromText = (text: string, chunk = 7): Readable => {
  const buf = Buffer.from(text.replace(/\n/g, '\r\n'));
  return Readable.from(
    (function* () {
      for (let i = 0; i < buf.length; i += chunk) yield buf.subarray(i, i + chunk);
    })(),
  );
};

const multipart = (parts: string[]): string =>
  [
    'From: Sender <Sender@Example.COM>',
    'To: support@helpdesk.example',
    'Subject: with attachments',
    'Message-ID: <multi@example.com>',
    'Date: Mon, 2 Feb 2026 10:00:00 +0000',
    'MIME-Version: 1.0',
    'Content-Type: multipart/mixed; boundary="zz"',
    '',
    '--zz',
    'Content-Type: text/plain; charset=utf-8',
    '',
    'hello there',
    ...parts.flatMap((p) => ['--zz', p]),
    '--zz--',
    '',
  ].join('\n');

const attachmentPart = (name: string, content: Buffer): string =>
  [
    `Content-Type: application/octet-stream; name="${name}"`,
    `Content-Disposition: attachment; filename="${name}"`,
    'Content-Transfer-Encoding: base64',
    '',
    content.toString('base64').replace(/.{76}/g, '$&\n'),
  ].join('\n');

describe('parseMime: headers and bodies', () => {
  it('decodes Shift_JIS bodies, encoded-word subjects and filenames; normalizes thread headers', async () => {
    const sink = new InMemoryAttachmentSink();
    const m = await parseMime(fixture('shift-jis-base64.eml'), { attachmentSink: sink });
    expect(m.parseError).toBeNull();
    expect(m.subject).toBe('請求書について');
    expect(m.text).toContain('お問い合わせありがとうございます');
    expect(m.messageId).toBe('sjis-001@example.jp');
    expect(m.inReplyTo).toBe('ticket-42@helpdesk.example');
    expect(m.references).toEqual(['ticket-41@helpdesk.example', 'ticket-42@helpdesk.example']);
    expect(m.attachments).toHaveLength(1);
    expect(m.attachments[0]).toMatchObject({ filename: '請求書.pdf', contentType: 'application/pdf', status: 'stored' });
    expect(sink.stored.get(m.attachments[0]!.id!)!.content.toString()).toBe('%PDF-1.4 fake pdf for tests\n');
  });

  it('decodes a raw 8-bit Windows-1252 body and subject', async () => {
    const m = await parseMime(fixture('windows-1252-8bit.eml'), { attachmentSink: new InMemoryAttachmentSink() });
    expect(m.subject).toBe('Facture – café € 12');
    expect(m.text).toContain('café coûte 12 € – merci “beaucoup”');
    expect(m.from).toEqual({ name: 'Renée François', address: 'Renee@example.fr' });
  });

  it('synthesizes a stable Message-ID, falls back on the received date, and cleans References', async () => {
    const receivedAt = new Date('2026-02-10T00:00:00Z');
    const parse = () =>
      parseMime(fixture('no-message-id-bad-date.eml'), { attachmentSink: new InMemoryAttachmentSink(), receivedAt });
    const [a, b] = await Promise.all([parse(), parse()]);
    expect(a.messageIdSynthetic).toBe(true);
    expect(a.messageId).toBe(b.messageId);
    expect(a.messageId).toMatch(/@synthetic\.mailbox-connector\.invalid$/);
    expect(a.date).toEqual(receivedAt);
    expect(a.dateSource).toBe('received');
    expect(a.warnings).toContain('date_unparsable');
    expect(a.inReplyTo).toBe('parent@example.com');
    expect(a.references).toEqual(['root@example.com', 'parent@example.com']);
    // Groups are flattened, domains lower-cased, local parts kept.
    expect(a.to.map((x) => x.address)).toEqual(['a@example.com', 'b@example.com', 'c@example.com']);
    expect(a.from).toEqual({ name: 'Weird, Person', address: 'Weird@example.com' });
  });

  it('uses the injected clock when neither the header nor a receive time gives a date', async () => {
    const now = new Date('2030-01-01T00:00:00Z');
    const m = await parseMime(fromText('Subject: x\nDate: garbage\n\nbody\n'), {
      attachmentSink: new InMemoryAttachmentSink(),
      now: () => now,
    });
    expect(m.date).toEqual(now);
    expect(m.dateSource).toBe('now');
  });

  it('caps text and html and says so', async () => {
    const big = 'x'.repeat(5000);
    const m = await parseMime(fromText(`Subject: big\nContent-Type: text/plain\n\n${big}\n`, 1024), {
      attachmentSink: new InMemoryAttachmentSink(),
      maxTextChars: 1000,
    });
    expect(m.text).toHaveLength(1000);
    expect(m.warnings).toContain('text_truncated');
  });

  it('drops a self reference so a message cannot thread onto itself', async () => {
    const m = await parseMime(
      fromText('Message-ID: <self@x>\nIn-Reply-To: <self@x>\nReferences: <a@x> <self@x>\nSubject: s\n\nb\n'),
      { attachmentSink: new InMemoryAttachmentSink() },
    );
    expect(m.references).toEqual(['a@x']);
    expect(m.inReplyTo).toBeNull();
  });
});

describe('parseMime: attachments', () => {
  it('streams each attachment once, in order, with metadata, size and SHA-256', async () => {
    const one = Buffer.from('first attachment bytes');
    const two = Buffer.alloc(200_000, 7);
    const sink = new InMemoryAttachmentSink();
    const m = await parseMime(
      fromText(multipart([attachmentPart('one.txt', one), attachmentPart('../../evil\u202e.exe', two)]), 4096),
      { attachmentSink: sink },
    );
    expect(m.attachments.map((a) => [a.ordinal, a.filename, a.sizeBytes, a.status])).toEqual([
      [0, 'one.txt', one.length, 'stored'],
      [1, 'evil.exe', two.length, 'stored'],
    ]);
    expect(m.attachments[1]!.sha256).toBe(createHash('sha256').update(two).digest('hex'));
    expect(sink.stored.get(m.attachments[1]!.id!)!.content.equals(two)).toBe(true);
    expect(m.text).toContain('hello there');
  });

  it('reports inline related images with their Content-ID', async () => {
    const text = [
      'Subject: inline',
      'MIME-Version: 1.0',
      'Content-Type: multipart/related; boundary="r"',
      '',
      '--r',
      'Content-Type: text/html',
      '',
      '<img src="cid:logo@x">',
      '--r',
      'Content-Type: image/png',
      'Content-ID: <logo@x>',
      'Content-Disposition: inline; filename="logo.png"',
      'Content-Transfer-Encoding: base64',
      '',
      Buffer.from('png').toString('base64'),
      '--r--',
      '',
    ].join('\n');
    const m = await parseMime(fromText(text), { attachmentSink: new InMemoryAttachmentSink() });
    expect(m.attachments[0]).toMatchObject({ contentId: 'logo@x', related: true, contentDisposition: 'inline' });
    // cid: links stay links: inlining would copy attachment bytes into the HTML.
    expect(m.html).toContain('cid:logo@x');
  });

  it('stops reading an oversize message, keeps headers and finished attachments, flags the cut one', async () => {
    const small = Buffer.from('small one');
    const large = Buffer.alloc(300_000, 1);
    let pulled = 0;
    const body = Buffer.from(multipart([attachmentPart('small.txt', small), attachmentPart('large.bin', large)]).replace(/\n/g, '\r\n'));
    const source = Readable.from(
      (function* () {
        for (let i = 0; i < body.length; i += 8192) {
          pulled += 8192;
          yield body.subarray(i, i + 8192);
        }
      })(),
    );
    const m = await parseMime(source, { attachmentSink: new InMemoryAttachmentSink(), maxBytes: 100_000 });
    expect(m.oversize).toBe(true);
    expect(m.subject).toBe('with attachments');
    expect(m.messageId).toBe('multi@example.com');
    expect(m.attachments.map((a) => [a.filename, a.status])).toEqual([
      ['small.txt', 'stored'],
      ['large.bin', 'truncated'],
    ]);
    expect(source.destroyed).toBe(true);
    expect(pulled).toBeLessThan(body.length / 2); // the rest of the body was never read
  });

  it('keeps headers when the limit is hit inside the very first chunk', async () => {
    const m = await parseMime(fromText('Subject: tiny limit\nMessage-ID: <t@x>\n\n' + 'y'.repeat(5000), 65536), {
      attachmentSink: new InMemoryAttachmentSink(),
      maxBytes: 100,
    });
    expect(m).toMatchObject({ oversize: true, subject: 'tiny limit', messageId: 't@x', messageIdSynthetic: false });
  });

  it('aborts with AttachmentSinkError when storage fails, so the sync job retries', async () => {
    const failing: AttachmentSink = {
      async put(): Promise<AttachmentSinkResult> {
        throw new Error('blob store down');
      },
    };
    await expect(
      parseMime(fromText(multipart([attachmentPart('a.bin', Buffer.alloc(50_000))]), 1024), { attachmentSink: failing }),
    ).rejects.toBeInstanceOf(AttachmentSinkError);
  });

  it('drains an attachment the sink did not read, and still finishes the message', async () => {
    const lazy: AttachmentSink = {
      async put(meta: AttachmentMeta): Promise<AttachmentSinkResult> {
        return { id: `skipped-${meta.ordinal}` };
      },
    };
    const m = await parseMime(fromText(multipart([attachmentPart('a.bin', Buffer.alloc(100_000, 3))]), 2048), {
      attachmentSink: lazy,
    });
    expect(m.attachments[0]).toMatchObject({ id: 'skipped-0', status: 'stored', sizeBytes: 100_000 });
    expect(m.text).toContain('hello there');
  });

  it('throws MimeSourceError (without content) when the provider stream breaks', async () => {
    const broken = new Readable({
      read() {
        this.push(Buffer.from('Subject: secret subject\r\n\r\npartial body'));
        this.destroy(new Error('socket hang up'));
      },
    });
    const error = await parseMime(broken, { attachmentSink: new InMemoryAttachmentSink() }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MimeSourceError);
    expect(String((error as Error).message)).not.toContain('secret');
  });
});

describe('parseMime: hostile input', () => {
  it('flags a header block over the 1 MiB limit instead of throwing', async () => {
    const huge = 'X-Junk: ' + 'a'.repeat(1_200_000) + '\n';
    const m = await parseMime(fromText(`Subject: huge\n${huge}\nbody\n`, 65536), {
      attachmentSink: new InMemoryAttachmentSink(),
    });
    expect(m.parseError).toBe('limit_exceeded');
    expect(m.messageId).toBeTruthy();
  });

  it('returns a result for an empty input', async () => {
    const m = await parseMime(Readable.from([]), { attachmentSink: new InMemoryAttachmentSink() });
    expect(m.messageIdSynthetic).toBe(true);
    expect(m.sizeBytes).toBe(0);
  });
});

describe('sanitizeFilename', () => {
  it('strips paths, control and bidi characters', () => {
    expect(sanitizeFilename('C:\\Users\\x\\report.pdf')).toBe('report.pdf');
    expect(sanitizeFilename('../../etc/passwd')).toBe('passwd');
    expect(sanitizeFilename('invoice\u202egpj.exe')).toBe('invoicegpj.exe');
    expect(sanitizeFilename('..')).toBeNull();
    expect(sanitizeFilename('a'.repeat(300))).toHaveLength(255);
  });
});
