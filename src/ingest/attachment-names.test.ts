import { describe, expect, it } from 'vitest';
import { AttachmentNamer, sanitizeFilename } from './attachment-names.js';

describe('sanitizeFilename (the one documented rule)', () => {
  it('keeps the last path segment, removes control and bidi characters, replaces reserved characters with _', () => {
    expect(sanitizeFilename('C:\\Users\\x\\report.pdf')).toBe('report.pdf');
    expect(sanitizeFilename('../../etc/passwd')).toBe('passwd');
    expect(sanitizeFilename('invoice\u202egpj.exe')).toBe('invoicegpj.exe');
    expect(sanitizeFilename('a\u0000b\u0085c\r\n.txt')).toBe('abc.txt');
    expect(sanitizeFilename('say "hi" <now>?.txt')).toBe('say _hi_ _now__.txt');
    expect(sanitizeFilename('a:b|c*.txt')).toBe('a_b_c_.txt');
    expect(sanitizeFilename('  .hidden  ')).toBe('hidden');
    expect(sanitizeFilename('..')).toBeNull();
    expect(sanitizeFilename('\u202e')).toBeNull();
  });

  it('caps a name at 255 characters and keeps its extension', () => {
    const long = sanitizeFilename('a'.repeat(300) + '.pdf')!;
    expect(long).toHaveLength(255);
    expect(long.endsWith('.pdf')).toBe(true);
    expect(sanitizeFilename('b'.repeat(300))).toHaveLength(255);
  });
});

describe('AttachmentNamer', () => {
  it('names unnamed parts by what they are, numbering repeats, never renaming a given name', () => {
    const n = new AttachmentNamer();
    expect(n.name(null, 'message/rfc822', 'Re: Order 1234')).toBe('Re_ Order 1234.eml');
    expect(n.name(null, 'message/rfc822', null)).toBe('attached-message.eml');
    expect(n.name(null, 'message/global', '')).toBe('attached-message-1.eml');
    expect(n.name(null, 'message/delivery-status')).toBe('delivery-status.txt');
    expect(n.name(null, 'message/global-delivery-status')).toBe('delivery-status-1.txt');
    expect(n.name(null, 'application/pdf')).toBe('attachment.pdf');
    expect(n.name(null, 'image/png')).toBe('image.png');
    expect(n.name(null, 'image/png')).toBe('image-1.png');
    expect(n.name(null, 'image/jpeg')).toBe('image.jpg');
    expect(n.name(null, 'application/x-unknown-thing')).toBe('attachment.bin');
    expect(n.name('photo.png', 'image/png')).toBe('photo.png');
    expect(n.name('photo.png', 'image/png')).toBe('photo.png');
    // A generated name does not take one the sender gave.
    expect(n.name('attachment.txt', 'text/plain')).toBe('attachment.txt');
    expect(n.name(null, 'text/plain')).toBe('attachment-1.txt');
    // A subject that is only unsafe characters gives the fallback.
    expect(n.name(null, 'message/rfc822', '\u202e\u0001')).toBe('attached-message-2.eml');
  });

  it('numbers a long subject name without cutting the number off', () => {
    const n = new AttachmentNamer();
    const a = n.name(null, 'message/rfc822', 'x'.repeat(400));
    const b = n.name(null, 'message/rfc822', 'x'.repeat(400));
    expect(a).not.toBe(b);
    expect(b.endsWith('-1.eml')).toBe(true);
    expect([...b].length).toBeLessThanOrEqual(255);
  });
});
