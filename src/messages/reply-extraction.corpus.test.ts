// Reply extraction's shortcuts give what the libraries give without them, on the shared corpus:
// - planer with its splitter patterns anchored (planer-splitters.ts) gives the same reply text as
//   planer as shipped, on every text and on lines built to have a splitter at, after and across
//   the start of planer's four-line window;
// - email-forward-parser does not read the body for a non-empty subject that is not a forward,
//   so findForwarded skips preparing it then.
import EmailForwardParser from 'email-forward-parser';
import { createRequire } from 'node:module';
import planer from 'planer';
import { afterEach, describe, expect, it } from 'vitest';
import { listCorpusMessages } from '../../test/corpus/corpus-files.js';
import { corpusMissingReason, missing } from '../../test/helpers/requirements.js';
import { InMemoryAttachmentSink } from '../ingest/in-memory-attachment-sink.js';
import { parseMime } from '../ingest/mime-parser.js';
import { anchoredSplitters, originalSplitters, useSplitters } from './planer-splitters.js';
import { extractReply } from './reply-extraction.js';

/** `fn` with planer's table set to `patterns`; the anchored table is put back after. */
function withSplitters<T>(patterns: readonly RegExp[], fn: () => T): T {
  useSplitters(patterns);
  try {
    return fn();
  } finally {
    useSplitters(anchoredSplitters);
  }
}

const both = (text: string, subject = ''): [string, string] => [
  withSplitters(originalSplitters, () => JSON.stringify([planer.extractFromPlain(text), extractReply(text, subject)])),
  JSON.stringify([planer.extractFromPlain(text), extractReply(text, subject)]),
];

describe('planer with anchored splitter patterns', () => {
  afterEach(() => useSplitters(anchoredSplitters));

  it('is what planer runs, and anchors every one of its six patterns', () => {
    expect(originalSplitters).toHaveLength(6);
    expect(anchoredSplitters.map((p) => p.source.startsWith('^'))).toEqual([true, true, true, true, true, true]);
    expect(originalSplitters.some((p) => p.source.startsWith('^'))).toBe(false);
    // Installed by importing reply-extraction: planer's own table holds the anchored patterns.
    const table = (createRequire(import.meta.url)('planer/lib/regexes.js') as { SPLITTER_PATTERNS: RegExp[] }).SPLITTER_PATTERNS;
    expect(table).toEqual(anchoredSplitters);
    expect(table.every((p, i) => p === anchoredSplitters[i])).toBe(true);
    // A splitter line cuts the quote with the anchored table installed (it is planer's table).
    expect(planer.extractFromPlain('Thanks!\n\n-----Original Message-----\nFrom: a@b.c\n\nold')).toBe('Thanks!');
  });

  it('cuts and keeps the same lines as the shipped patterns where a splitter starts, follows text or spans lines', () => {
    const headers = [
      '-----Original Message-----',
      'On Mon, Apr 2, 2012 at 6:26 PM, Megan <m@example.com> wrote:',
      'On Mon, Apr 2, 2012 at 6:26 PM, Megan <m@example.com>\nwrote:',
      'Am 24.11.2017 um 16:32 schrieb Hans <h@example.de>:',
      'From: Support [mailto:support@example.com]\nSent: Monday, February 24, 2014 1:48 PM',
      '12/03/2014 10:00, bob@example.com',
      'Mon, 2 Apr 2012 18:26 foo bar baz <m@example.com>:',
      'Le 3 janv. 2017 à 10:35, Jean <j@example.fr> a écrit :',
    ];
    const prefixes = ['', 'see ', '> ', 'x'.repeat(300) + ' ', 'text\n', 'line one\nline two\nline three\n'];
    for (const header of headers)
      for (const prefix of prefixes) {
        const [shipped, anchored] = both(`Reply here.\n\n${prefix}${header}\n\n> quoted\n> more\n`, 'Re: x');
        expect(anchored, `${JSON.stringify(prefix)} + ${JSON.stringify(header)}`).toBe(shipped);
      }
  });

  it.skipIf(missing('the shared mail corpus', corpusMissingReason()))('gives the same reply text, signature and forward on every text of the shared corpus, and the forward parser never reads the body of a message whose subject is not a forward', async () => {
    let texts = 0;
    let cut = 0;
    let notForward = 0;
    const forwards = new EmailForwardParser();
    for (const m of listCorpusMessages().messages) {
      const p = await parseMime(m.bytes, { attachmentSink: new InMemoryAttachmentSink({ retainContent: false }), now: () => new Date(0) });
      if (p.text === null) continue;
      texts++;
      const [shipped, anchored] = both(p.text, p.subject);
      expect(anchored, m.id).toBe(shipped);
      if (p.subject !== '' && !forwards.read('', p.subject).forwarded) {
        notForward++;
        expect(forwards.read(p.text, p.subject).forwarded, m.id).toBe(false);
      }
      if (planer.extractFromPlain(p.text) !== p.text.trim()) cut++;
    }
    expect(texts).toBeGreaterThan(1000);
    // The corpus exercises the cutting path, not only texts planer leaves alone.
    expect(cut).toBeGreaterThan(100);
    expect(notForward).toBeGreaterThan(500);
  }, 120_000);
});
