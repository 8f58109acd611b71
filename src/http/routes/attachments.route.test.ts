import { describe, expect, it } from 'vitest';
import { contentDisposition } from './attachments.route.js';

describe('contentDisposition', () => {
  it('gives an ASCII fallback and the RFC 8187 UTF-8 name', () => {
    expect(contentDisposition('Rechnung März.pdf')).toBe(`attachment; filename="Rechnung M_rz.pdf"; filename*=UTF-8''Rechnung%20M%C3%A4rz.pdf`);
  });

  it('cannot be used to name a path or break the header', () => {
    const h = contentDisposition('../../etc/passwd"\r\nSet-Cookie: a=b');
    expect(h).not.toMatch(/[\r\n]/);
    expect(h).not.toContain('/');
    expect(h.split('"')).toHaveLength(3); // exactly one quoted string
  });

  it('names a file even when the email gave none', () => {
    expect(contentDisposition(null)).toBe(`attachment; filename="attachment"; filename*=UTF-8''attachment`);
    expect(contentDisposition('...')).toContain('filename="attachment"');
  });
});
