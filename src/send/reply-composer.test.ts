import { describe, it, expect } from 'vitest';
import { Readable } from 'node:stream';
import { simpleParser, type AddressObject, type ParsedMail } from 'mailparser';
import {
  composeReply,
  composeNew,
  replySubject,
  buildReferences,
  MessageCompositionError,
  type ComposerDeps,
  type ReplyInput,
} from './reply-composer.js';

const fixedDeps: ComposerDeps = {
  now: () => new Date('2026-04-02T10:30:00Z'),
  randomBytes: (n) => Buffer.alloc(n, 0xab),
};

const original: ReplyInput['original'] = {
  messageId: '<orig-3@customer.example>',
  references: ['<root-1@customer.example>', '<mid-2@helpdesk.example>'],
  subject: 'Order #123 arrived broken',
  from: [{ name: 'Carla Customer', address: 'carla@customer.example' }],
  replyTo: [],
  to: [{ address: 'support@helpdesk.example' }],
  cc: [],
};

const base: ReplyInput = {
  mailbox: { address: 'support@helpdesk.example', displayName: 'Acme Support' },
  original,
  body: { text: 'We are sorry — a replacement is on its way.' },
  bccDelivery: 'smtp_envelope',
};

const addresses = (field: AddressObject | AddressObject[] | undefined) =>
  (Array.isArray(field) ? field : field ? [field] : []).flatMap((f) => f.value.map((v) => v.address));

async function parse(mime: Buffer): Promise<ParsedMail> {
  return simpleParser(mime);
}

async function rejection(promise: Promise<unknown>): Promise<MessageCompositionError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(MessageCompositionError);
  return err as MessageCompositionError;
}

describe('composeReply', () => {
  it('produces a threaded reply that round-trips through mailparser', async () => {
    const composed = await composeReply(base, fixedDeps);
    const mail = await parse(composed.mime);

    expect(composed.messageId).toBe(`<${new Date('2026-04-02T10:30:00Z').getTime().toString(36)}.${'ab'.repeat(16)}@helpdesk.example>`);
    expect(mail.messageId).toBe(composed.messageId);
    expect(mail.from?.value).toEqual([{ name: 'Acme Support', address: 'support@helpdesk.example' }]);
    expect(addresses(mail.to)).toEqual(['carla@customer.example']);
    expect(mail.subject).toBe('Re: Order #123 arrived broken');
    expect(mail.inReplyTo).toBe('<orig-3@customer.example>');
    expect(mail.references).toEqual(['<root-1@customer.example>', '<mid-2@helpdesk.example>', '<orig-3@customer.example>']);
    expect(mail.date?.toISOString()).toBe('2026-04-02T10:30:00.000Z');
    expect(mail.text?.trim()).toBe('We are sorry — a replacement is on its way.');
    expect(composed.headers.references).toHaveLength(3);
    expect(composed.mime.toString('latin1')).toMatch(/\r\nSubject: /);
    expect(composed.mime.toString('latin1')).not.toMatch(/[^\r]\n/);
  });

  it('replies to Reply-To when present, and to the original recipients when the original was our own', async () => {
    const viaReplyTo = await composeReply(
      { ...base, original: { ...original, replyTo: ['"Orders" <orders@customer.example>'] } },
      fixedDeps,
    );
    expect(addresses((await parse(viaReplyTo.mime)).to)).toEqual(['orders@customer.example']);

    const ownMessage = await composeReply(
      {
        ...base,
        original: {
          ...original,
          from: 'Acme Support <SUPPORT@helpdesk.example>',
          to: [{ address: 'carla@customer.example' }, { address: 'support@helpdesk.example' }],
        },
      },
      fixedDeps,
    );
    expect(addresses((await parse(ownMessage.mime)).to)).toEqual(['carla@customer.example']);

    const explicit = await composeReply({ ...base, to: ['boss@customer.example'] }, fixedDeps);
    expect(explicit.headers.to).toEqual([{ address: 'boss@customer.example' }]);
  });

  it('skips unusable addresses of the inbound original but fails when no recipient is left', async () => {
    const messy = await composeReply(
      { ...base, original: { ...original, replyTo: ['undisclosed-recipients:;', 'not an address'], from: ['Carla <carla@customer.example>'] } },
      fixedDeps,
    );
    expect(messy.headers.to).toEqual([{ name: 'Carla', address: 'carla@customer.example' }]);

    const err = await rejection(composeReply({ ...base, original: { ...original, from: ['garbage'], replyTo: [] } }, fixedDeps));
    expect(err.code).toBe('no_recipients');
  });

  it('keeps Bcc out of the MIME for SMTP but in the envelope', async () => {
    const composed = await composeReply({ ...base, cc: ['cc@partner.example'], bcc: ['audit@helpdesk.example'] }, fixedDeps);
    const mail = await parse(composed.mime);
    expect(composed.mime.toString()).not.toMatch(/^Bcc:/im);
    expect(mail.bcc).toBeUndefined();
    expect(addresses(mail.cc)).toEqual(['cc@partner.example']);
    expect(composed.bccInHeader).toBe(false);
    expect(composed.envelope).toEqual({
      from: 'support@helpdesk.example',
      to: ['carla@customer.example', 'cc@partner.example', 'audit@helpdesk.example'],
    });
  });

  it('keeps the Bcc header for provider APIs that take recipients from the headers (Gmail, Graph MIME)', async () => {
    const composed = await composeReply(
      { ...base, bcc: ['audit@helpdesk.example'], bccDelivery: 'provider_headers' },
      fixedDeps,
    );
    const mail = await parse(composed.mime);
    expect(addresses(mail.bcc)).toEqual(['audit@helpdesk.example']);
    expect(composed.bccInHeader).toBe(true);
  });

  it('does not send a recipient two copies', async () => {
    const composed = await composeReply(
      { ...base, cc: ['CARLA@customer.example', 'x@partner.example'], bcc: ['x@partner.example', 'y@partner.example'] },
      fixedDeps,
    );
    expect(composed.headers.cc).toEqual([{ address: 'x@partner.example' }]);
    expect(composed.headers.bcc).toEqual([{ address: 'y@partner.example' }]);
  });

  it('encodes non-ASCII subjects, names and IDN domains', async () => {
    const composed = await composeReply(
      {
        ...base,
        mailbox: { address: 'hilfe@bücher.example', displayName: 'Bücher-Support 📚' },
        original: { ...original, subject: 'AW: Größe ändern — 注文', from: [{ name: 'Zoë Ünal', address: 'zoe@example.com' }] },
        body: { html: '<p>Grüße</p>' },
      },
      fixedDeps,
    );
    const raw = composed.mime.toString('latin1');
    // headers stay 7-bit: encoded-words and punycode
    const headerBlock = raw.slice(0, raw.indexOf('\r\n\r\n'));
    expect([...headerBlock].every((c) => c.charCodeAt(0) < 0x80)).toBe(true);
    expect(headerBlock).toContain('xn--bcher-kva.example');
    const mail = await parse(composed.mime);
    expect(mail.subject).toBe('Re: Größe ändern — 注文');
    expect(mail.from?.value[0]?.name).toBe('Bücher-Support 📚');
    expect(mail.to && !Array.isArray(mail.to) ? mail.to.value[0]?.name : undefined).toBe('Zoë Ünal');
    expect(mail.html).toContain('Grüße');
    expect(composed.messageId).toMatch(/@xn--bcher-kva\.example>$/);
  });

  it('uses messageIdDomain when given', async () => {
    const composed = await composeReply({ ...base, messageIdDomain: 'mail.connector.example' }, fixedDeps);
    expect(composed.messageId).toMatch(/@mail\.connector\.example>$/);
  });

  it('carries attachments from buffers and streams', async () => {
    const composed = await composeReply(
      {
        ...base,
        attachments: [
          { filename: 'Rechnung März.pdf', contentType: 'application/pdf', content: Buffer.from('%PDF-1.7 test') },
          { filename: 'log.txt', contentType: 'text/plain', content: Readable.from([Buffer.from('line 1\n'), Buffer.from('line 2\n')]) },
        ],
      },
      fixedDeps,
    );
    const mail = await parse(composed.mime);
    expect(mail.attachments.map((a) => [a.filename, a.contentType, a.content.toString()])).toEqual([
      ['Rechnung März.pdf', 'application/pdf', '%PDF-1.7 test'],
      ['log.txt', 'text/plain', 'line 1\nline 2\n'],
    ]);
  });

  it('threads without In-Reply-To when the original had no Message-ID', async () => {
    const composed = await composeReply({ ...base, original: { ...original, messageId: null, references: [] } }, fixedDeps);
    const mail = await parse(composed.mime);
    expect(mail.inReplyTo).toBeUndefined();
    expect(mail.references).toBeUndefined();
  });

  it('rejects injection attempts before composing, without echoing them', async () => {
    const attempts: ReplyInput[] = [
      { ...base, cc: ['x@partner.example\r\nBcc: spy@evil.test'] },
      { ...base, to: [{ name: 'Eve\r\nBcc: spy@evil.test', address: 'eve@evil.test' }] },
      { ...base, mailbox: { address: 'support@helpdesk.example', displayName: 'Acme\nBcc: spy@evil.test' } },
      { ...base, bcc: 'spy@evil.test\u0000' },
      { ...base, original: { ...original, messageId: '<a@b>\r\nBcc: spy@evil.test' } },
      {
        ...base,
        attachments: [{ filename: 'a\r\nContent-Type: text/html', contentType: 'text/plain', content: Buffer.from('x') }],
      },
      { ...base, attachments: [{ filename: 'a.txt', contentType: 'text/plain\r\nX: y', content: Buffer.from('x') }] },
    ];
    for (const attempt of attempts) {
      const err = await rejection(composeReply(attempt, fixedDeps));
      expect(err.code).toBe('invalid_message');
      expect(err.message).not.toContain('spy@evil.test');
      expect(err.issues.length).toBeGreaterThan(0);
    }
  });

  it('rejects empty bodies, missing bcc decision, path-like filenames and file/url content', async () => {
    expect((await rejection(composeReply({ ...base, body: { text: '  ', html: '' } }, fixedDeps))).issues[0]?.path).toBe('body');
    const { bccDelivery: _omit, ...noDecision } = base;
    await rejection(composeReply(noDecision as ReplyInput, fixedDeps));
    await rejection(
      composeReply({ ...base, attachments: [{ filename: '../../etc/passwd', contentType: 'text/plain', content: Buffer.from('x') }] }, fixedDeps),
    );
    await rejection(
      composeReply(
        { ...base, attachments: [{ filename: 'a', contentType: 'text/plain', content: '/etc/passwd' as unknown as Buffer }] },
        fixedDeps,
      ),
    );
  });
});

describe('composeNew', () => {
  it('builds a new message without threading headers', async () => {
    const composed = await composeNew(
      {
        mailbox: { address: 'support@helpdesk.example' },
        to: 'Carla <carla@customer.example>, dan@customer.example',
        subject: 'Ihre Bestellung',
        body: { text: 'Hallo', html: '<p>Hallo</p>' },
        bccDelivery: 'provider_headers',
      },
      fixedDeps,
    );
    const mail = await parse(composed.mime);
    expect(addresses(mail.to)).toEqual(['carla@customer.example', 'dan@customer.example']);
    expect(mail.subject).toBe('Ihre Bestellung');
    expect(mail.inReplyTo).toBeUndefined();
    expect(mail.text?.trim()).toBe('Hallo');
    expect(mail.html).toContain('<p>Hallo</p>');
    expect(mail.from?.value).toEqual([{ name: '', address: 'support@helpdesk.example' }]);
  });

  it('rejects a subject with a line break and a message without recipients', async () => {
    const input = { mailbox: { address: 'support@helpdesk.example' }, body: { text: 'x' }, bccDelivery: 'smtp_envelope' as const };
    expect((await rejection(composeNew({ ...input, to: ['a@customer.example'], subject: 'Hi\r\nBcc: spy@evil.test' }, fixedDeps))).issues[0]?.path).toBe('subject');
    expect((await rejection(composeNew({ ...input, subject: 'Hi' }, fixedDeps))).code).toBe('no_recipients');
  });
});

describe('replySubject', () => {
  it.each([
    ['Order broken', 'Re: Order broken'],
    ['Re: Order broken', 'Re: Order broken'],
    ['RE: Order broken', 'Re: Order broken'],
    ['re:Order broken', 'Re: Order broken'],
    ['AW: Bestellung', 'Re: Bestellung'],
    ['Sv: Bestilling', 'Re: Bestilling'],
    ['Antw: Bestelling', 'Re: Bestelling'],
    ['Re[2]: Order', 'Re: Order'],
    ['Re: Re: Order', 'Re: Re: Order'],
    ['Fwd: Order', 'Re: Fwd: Order'],
    ['Reminder: pay', 'Re: Reminder: pay'],
    ['', 'Re:'],
    [null, 'Re:'],
  ])('%j → %j', (input, expected) => expect(replySubject(input)).toBe(expected));
});

describe('buildReferences', () => {
  it('appends the Message-ID, drops duplicates and junk, and brackets bare ids', () => {
    expect(buildReferences(['<a@x> <b@x>', 'b@x', 'junk', '<c@x>\r\n'], '<c@x>')).toEqual(['<a@x>', '<b@x>', '<c@x>']);
  });

  it('keeps the first and the latest ids when the chain is long', () => {
    const chain = Array.from({ length: 40 }, (_, i) => `<m${i}@x>`);
    const kept = buildReferences(chain, '<last@x>');
    expect(kept).toHaveLength(20);
    expect(kept[0]).toBe('<m0@x>');
    expect(kept.at(-1)).toBe('<last@x>');
    expect(kept.at(-2)).toBe('<m39@x>');
  });
});
