import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { brandingPatchShape, checkDisplayName, checkLogoUrl, checkSupportUrl, normalizeBranding, pageBranding } from './tenant-branding.js';

const prod = { production: true };
const dev = { production: false };

describe('tenant branding rules', () => {
  it('display name: trimmed printable text of 1–80 characters', () => {
    expect(checkDisplayName('  Acme Support  ')).toEqual({ ok: true, value: 'Acme Support' });
    expect(checkDisplayName(`<script>alert("x")</script> & 'Co'`).ok).toBe(true); // escaped when shown, not refused
    expect(checkDisplayName('Ünïcødé 支持 👩‍💻').ok).toBe(true);
    expect(checkDisplayName('x'.repeat(80)).ok).toBe(true);
    for (const bad of ['', '   ', 'x'.repeat(81), 'Acme\nSupport', 'Acme\u0000', 'Acme\u202Egnp.exe', 'Ac\u2028me', 'Ac\u200Bme']) {
      expect(checkDisplayName(bad), JSON.stringify(bad)).toMatchObject({ ok: false });
    }
  });

  it('logo URL: https only (loopback http outside production), no credentials, a CSP-safe host', () => {
    expect(checkLogoUrl('https://cdn.acme.example/logo.png?v=2', prod)).toEqual({ ok: true, value: 'https://cdn.acme.example/logo.png?v=2' });
    expect(checkLogoUrl('HTTPS://CDN.Acme.Example:8443/a b'.replace(' ', '%20'), prod)).toEqual({ ok: true, value: 'https://cdn.acme.example:8443/a%20b' });
    expect(checkLogoUrl('https://bücher.example/l.svg', prod)).toEqual({ ok: true, value: 'https://xn--bcher-kva.example/l.svg' });
    expect(checkLogoUrl('http://127.0.0.1:9000/l.png', dev).ok).toBe(true);
    expect(checkLogoUrl('http://localhost/l.png', dev).ok).toBe(true);
    const refused: Array<[string, RegExp]> = [
      ['http://127.0.0.1:9000/l.png', /https/],
      ['http://cdn.acme.example/l.png', /https/],
      ['javascript:alert(1)', /javascript: is not allowed/],
      ['data:image/svg+xml,<svg/>', /data: is not allowed/],
      ['https://user:pw@cdn.acme.example/l.png', /user name or password/],
      ['https://user@cdn.acme.example/l.png', /user name or password/],
      ['https://cdn.acme.example/l.png\n', /control characters/],
      [' https://cdn.acme.example/l.png', /spaces/],
      ['java\tscript:alert(1)', /control characters/],
      ['https:\\\\evil.example/l.png', /backslashes/],
      ["https://a;script-src'unsafe-inline'.example/l.png", /host/],
      ['https://[::1]/l.png', /host/],
      ['/relative/logo.png', /absolute/],
      [`https://cdn.acme.example/${'a'.repeat(2048)}`, /2048/],
    ];
    for (const [url, reason] of refused) {
      const r = checkLogoUrl(url, prod);
      expect(r.ok, url).toBe(false);
      if (!r.ok) expect(r.reason, url).toMatch(reason);
    }
  });

  it('support link: https or mailto: one address (subject only)', () => {
    expect(checkSupportUrl('https://help.acme.example/mailbox', prod).ok).toBe(true);
    expect(checkSupportUrl('mailto:help@acme.example', prod)).toEqual({ ok: true, value: 'mailto:help@acme.example' });
    expect(checkSupportUrl('MAILTO:help@acme.example?subject=Mailbox%20connection', prod)).toEqual({ ok: true, value: 'mailto:help@acme.example?subject=Mailbox%20connection' });
    for (const bad of ['mailto:', 'mailto:a@b.example,c@d.example', 'mailto:help@acme.example?cc=boss@acme.example', 'mailto:<a@b.example>', 'javascript:alert(1)', 'tel:+123', 'http://help.acme.example']) {
      expect(checkSupportUrl(bad, prod).ok, bad).toBe(false);
    }
  });

  it('as a zod body: each failure names its field; null clears; values are stored normalized', () => {
    const schema = z.strictObject(brandingPatchShape(prod));
    const r = schema.safeParse({ displayName: 'ok', logoUrl: 'javascript:alert(1)', supportUrl: 'https://user:x@h.example/' });
    expect(r.success).toBe(false);
    expect(r.error!.issues.map((i) => i.path.join('.')).sort()).toEqual(['logoUrl', 'supportUrl']);
    const good = schema.parse({ displayName: '  Acme  ', logoUrl: 'https://CDN.acme.example/l.png', supportUrl: null });
    expect(normalizeBranding(good, prod)).toEqual({ displayName: 'Acme', logoUrl: 'https://cdn.acme.example/l.png', supportUrl: null });
    expect(normalizeBranding({}, prod)).toEqual({});
  });

  it('pages show only what passes today’s rules, and name the logo’s origin for the CSP', () => {
    expect(pageBranding({ displayName: 'Acme', logoUrl: 'https://cdn.acme.example:8443/l.png', supportUrl: 'mailto:help@acme.example' }, prod)).toEqual({
      displayName: 'Acme',
      logo: { url: 'https://cdn.acme.example:8443/l.png', origin: 'https://cdn.acme.example:8443' },
      supportUrl: 'mailto:help@acme.example',
    });
    // Stored by a development process, served by production: dropped, not shown.
    expect(pageBranding({ displayName: null, logoUrl: 'http://localhost:9000/l.png', supportUrl: 'javascript:x' }, prod)).toEqual({ displayName: null, logo: null, supportUrl: null });
  });
});
