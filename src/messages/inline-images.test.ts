import { describe, expect, it } from 'vitest';
import { rewriteCidUrls } from './inline-images.js';

const urls = new Map([
  ['image001.png@01DA0001.ABCDEF00', 'https://c.example/v1/attachments/att_1/content'],
  ['logo&co@x', 'https://c.example/v1/attachments/att_2/content'],
]);

describe('rewriteCidUrls', () => {
  it('rewrites quoted, unquoted, percent-encoded and differently-cased references to this message’s parts', () => {
    expect(rewriteCidUrls('<img src="cid:image001.png@01DA0001.ABCDEF00">', urls)).toBe('<img src="https://c.example/v1/attachments/att_1/content">');
    expect(rewriteCidUrls("<img src=cid:image001.png@01DA0001.ABCDEF00 alt=x><IMG SRC='CID:image001.png%4001DA0001.ABCDEF00'>", urls)).toBe(
      "<img src=https://c.example/v1/attachments/att_1/content alt=x><IMG SRC='https://c.example/v1/attachments/att_1/content'>",
    );
    expect(rewriteCidUrls('<td style="background:url(cid:image001.png@01da0001.abcdef00)">', urls)).toBe('<td style="background:url(https://c.example/v1/attachments/att_1/content)">');
    // safeHtml's canonical form escapes & as &amp;.
    expect(rewriteCidUrls('<img src="cid:logo&amp;co@x" />', urls)).toBe('<img src="https://c.example/v1/attachments/att_2/content" />');
  });

  it('leaves references to parts this message does not have, and plain text, alone', () => {
    const html = '<img src="cid:other@y"><p>cid: is a URL scheme</p><img src="cid:%E0%A4%A">';
    expect(rewriteCidUrls(html, urls)).toBe(html);
    expect(rewriteCidUrls(html, new Map())).toBe(html);
  });
});
