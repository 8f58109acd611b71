import { simpleParser, type AddressObject } from 'mailparser';
import { describe, expect, it } from 'vitest';
import { formatAddress, replaceHeaders } from './sandbox-send-as.js';

describe('replaceHeaders (the stand-in rewriting From / adding Sender as Exchange does)', () => {
  it('replaces a folded From, adds Sender, keeps every other header and the body byte for byte', async () => {
    const body = 'Line one\r\n\r\nLine three with a From: in the body\r\n';
    const mime = Buffer.from(`Subject: Hi\r\nFrom: "A very long display name that was folded"\r\n <alias@contoso.test>\r\nTo: c@customer.example\r\nMessage-ID: <m1@x>\r\n\r\n${body}`, 'latin1');
    const out = replaceHeaders(mime, { From: formatAddress({ emailAddress: { address: 'alice@contoso.test', name: 'Alice' } }), Sender: 'dana@contoso.test' });
    const text = out.toString('latin1');
    expect(text.endsWith(`\r\n\r\n${body}`)).toBe(true);
    expect(text).not.toContain('alias@contoso.test');
    const parsed = await simpleParser(out);
    expect((parsed.from as AddressObject).value[0]).toMatchObject({ name: 'Alice', address: 'alice@contoso.test' });
    expect((parsed.headers.get('sender') as AddressObject).value[0]?.address).toBe('dana@contoso.test');
    expect(parsed.subject).toBe('Hi');
    expect(parsed.messageId).toBe('<m1@x>');
  });

  it('handles LF-only messages and encodes a non-ASCII display name', async () => {
    const out = replaceHeaders(Buffer.from('From: x@contoso.test\nSubject: Hi\n\nbody\n'), { From: formatAddress({ emailAddress: { address: 'support@contoso.test', name: 'Südwest Support' } }) });
    expect(out.toString('latin1')).toMatch(/^From: =\?UTF-8\?B\?[A-Za-z0-9+/=]+\?= <support@contoso\.test>\nSubject: Hi\n\nbody\n$/);
    expect(((await simpleParser(out)).from as AddressObject).value[0]?.name).toBe('Südwest Support');
  });
});
