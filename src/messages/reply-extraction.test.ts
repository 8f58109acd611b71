import { describe, expect, it } from 'vitest';
import { extractReply, findSignature } from './reply-extraction.js';

describe('extractReply', () => {
  it('cuts the quoted history under an "On … wrote:" header split over two lines', () => {
    const r = extractReply('Sounds good, ship it.\n\nOn Mon, Apr 2, 2012 at 6:26 PM, Megan One <megan@example.com>\nwrote:\n\n> Can we ship on Friday?\n', 'Re: ship');
    expect(r.replyText).toBe('Sounds good, ship it.');
    expect(r.signature).toBeNull();
    expect(r.forwarded).toBeNull();
  });

  it('cuts at an Outlook header block and at localized headers planer does not know', () => {
    expect(extractReply('Done.\n\nFrom: Support [mailto:support@example.com]\nSent: Monday, February 24, 2014 1:48 PM\nTo: Homer\nSubject: Ticket\n\nOld text', '').replyText).toBe('Done.');
    expect(extractReply('Fatto.\n\nDa: Company <mailto:q@company.com>\nInviato: martedì 3 gennaio 2017 10:35\nA: someone@example.it\nOggetto: Ciao\n\nOld', '').replyText).toBe('Fatto.');
    expect(extractReply('Привет.\n\nср, 30 апр. 2025 г. в 15:19, John Doe <doe@example.com>:\n\nстарое', '').replyText).toBe('Привет.');
    expect(extractReply('Ok\n\n-------- Message d\'origine --------\nDe : x', '').replyText).toBe('Ok');
  });

  it('keeps a bottom-posted answer (the sender wrote below the quote)', () => {
    const text = 'Hi,\nOn Tue, 2011-03-01 at 18:02 +0530, Abhishek wrote:\n> How do I clear a bucket?\n\nList the keys and delete each.\nThat is all it takes.\n';
    expect(extractReply(text, 'Re: x').replyText).toContain('List the keys and delete each.');
  });

  it('never returns an empty replyText for a non-empty text: an all-quote message is shown whole', () => {
    const text = 'On Mon, Apr 2, 2012 at 6:26 PM, Megan <m@example.com> wrote:\n> only quoted\n> lines here\n';
    const r = extractReply(text, 'Re: x');
    expect(r.replyText).toBe(text.trim());
    expect(extractReply(null, 'x')).toEqual({ replyText: null, signature: null, forwarded: null });
    expect(extractReply('  \n', 'x').replyText).toBe('  \n');
  });

  it('detects the signature as the tail of replyText', () => {
    const cases: Array<[string, string | null]> = [
      ['Hello\n\nSent from my iPhone', 'Sent from my iPhone'],
      ['Hello\n\n-- \nJane Doe\nAcme Support', '-- \nJane Doe\nAcme Support'],
      ['Hi,\n\nCan you help?\n\nBest regards,\nJohn Doe\nCEO', 'Best regards,\nJohn Doe\nCEO'],
      ['Von meinem iPhone gesendet', null], // nothing before it: not a signature
      ['I wanted to discuss this with regards to the payment.\n\nThanks!', null],
    ];
    for (const [text, signature] of cases) {
      const r = extractReply(text, '');
      expect(r.signature, text).toBe(signature);
      if (signature !== null) expect(r.replyText!.endsWith(signature)).toBe(true);
    }
    expect(findSignature('Body\n\n' + 'x'.repeat(200) + '\n-- \nsig')).toBe('-- \nsig');
  });

  it('reports a forwarded message with its sender, date and subject', () => {
    const text = [
      'FYI, see below.',
      '',
      '---------- Forwarded message ---------',
      'From: John Doe <john.doe@acme.com>',
      'Date: Mon, 25 Oct 2021 at 11:17',
      'Subject: Invoice 42',
      'To: Bessie Berry <bessie@acme.com>',
      '',
      'Please pay invoice 42.',
    ].join('\n');
    const r = extractReply(text, 'Fwd: Invoice 42');
    expect(r.forwarded).toEqual({ from: { name: 'John Doe', address: 'john.doe@acme.com' }, date: 'Mon, 25 Oct 2021 at 11:17', subject: 'Invoice 42' });
    // The forwarded message is content: nothing is cut.
    expect(r.replyText).toContain('Please pay invoice 42.');
    expect(extractReply(text.replace('---------- Forwarded message ---------\n', ''), 'Re: Invoice 42').forwarded).toBeNull();
  });

  it('keeps a very long line verbatim (it is hidden from the regexes, not from the reply)', () => {
    const long = 'On ' + 'word, '.repeat(2000) + 'end';
    const r = extractReply(`Intro\n${long}\nOutro\n\nOn Mon, Apr 2, 2012 at 6:26 PM, M <m@example.com> wrote:\n> old`, 'Re: x');
    expect(r.replyText === `Intro\n${long}\nOutro`).toBe(true);
  });

  it('stays fast on pathological bodies (backtracking-prone lines, megabytes of text)', () => {
    const lines = ['abc. skrev x', 'On x, y z', 'On ' + 'w, '.repeat(130), '1 wrote ' + 'a@b '.repeat(90), 'From: a [b', '> On ' + 'x '.repeat(190), 'On ' + 'word, '.repeat(3000)];
    for (const line of lines) {
      const text = 'Hello\n' + Array(Math.ceil((2 * 1024 * 1024) / line.length)).fill(line).join('\n');
      for (const subject of ['Re: x', 'Fwd: x']) {
        // CPU time of this process (forks pool: this file's own), so a busy machine does not count.
        const started = process.cpuUsage();
        const r = extractReply(text, subject);
        const used = process.cpuUsage(started);
        const ms = (used.user + used.system) / 1000;
        // Measured 10-60 ms each on the 2-core machine. Without the bounds in reply-extraction.ts
        // the same bodies cost planer or the regexes seconds to minutes (catastrophic backtracking).
        expect(ms, `${line.slice(0, 20)} (${subject})`).toBeLessThan(3000);
        expect(r.replyText?.length).toBeGreaterThan(0);
      }
    }
  });
});
