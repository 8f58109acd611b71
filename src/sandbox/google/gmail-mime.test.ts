import { describe, expect, it } from 'vitest';
import { normalizeSubject, parseMime, referencedIds, snippetOf, toGmailPart } from './gmail-mime.js';

const raw = Buffer.from(
  [
    'Subject: Re: RE: Fwd: Hello',
    'References: <a@x> <b@y>',
    'In-Reply-To: <b@y>',
    'Content-Type: multipart/mixed; boundary=zz',
    '',
    '--zz',
    'Content-Type: text/plain; charset=iso-8859-1',
    'Content-Transfer-Encoding: quoted-printable',
    '',
    'Gr=FC=DFe <b>&',
    '--zz',
    'Content-Type: image/png',
    'Content-ID: <img1>',
    'Content-Transfer-Encoding: base64',
    '',
    'iVBORw0KGgo=',
    '--zz--',
    '',
  ].join('\r\n'),
  'latin1',
);

describe('gmail-mime', () => {
  it('builds Gmail part ids, decoded sizes, UTF-8 data and attachment ids', () => {
    const part = toGmailPart(parseMime(raw), (p) => `att-${p}`);
    expect(part.partId).toBe('');
    expect(part.body).toEqual({ size: 0 });
    const [text, image] = part.parts!;
    expect(text!.partId).toBe('0');
    expect(text!.body!.size).toBe(10); // ISO-8859-1 bytes as sent
    expect(Buffer.from(text!.body!.data!, 'base64url').toString('utf8')).toBe('Grüße <b>&');
    expect(image!.body).toEqual({ attachmentId: 'att-1', size: 8 });
  });

  it('extracts references, normalises subjects and escapes the snippet like Gmail', () => {
    const root = parseMime(raw);
    expect(referencedIds(root.headers)).toEqual(['a@x', 'b@y', 'b@y']);
    expect(normalizeSubject('Re: RE: Fwd: Hello')).toBe('hello');
    expect(normalizeSubject('AW:  hello')).toBe('hello');
    expect(snippetOf(root)).toBe('Grüße &lt;b&gt;&amp;');
  });
});
