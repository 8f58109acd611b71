// safeHtml on real mail: every HTML body of ../shared/corpus (newsletters, phishing and spam from
// spamscope, Outlook and Apple Mail messages, parser torture tests) sanitised, then parsed the
// way a browser parses it: nothing executable, loading or page-restyling is left.
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { InMemoryAttachmentSink } from '../../src/ingest/in-memory-attachment-sink.js';
import { parseMime } from '../../src/ingest/mime-parser.js';
import { sanitizeEmailHtml } from '../../src/messages/safe-html.js';
import { unsafeConstructs } from '../helpers/html-safety.js';
import { corpusMissingReason, missing } from '../helpers/requirements.js';
import { listCorpusMessages } from './corpus-files.js';

describe.skipIf(missing('the shared mail corpus', corpusMissingReason()))('safeHtml over the corpus', () => {
  it('leaves no unsafe construct in any corpus message’s HTML', async () => {
    let html = 0;
    let unsafeAsReceived = 0;
    const findings: string[] = [];
    for (const m of listCorpusMessages().messages) {
      const parsed = await parseMime(Readable.from([m.bytes]), { attachmentSink: new InMemoryAttachmentSink() });
      if (parsed.html === null) continue;
      html++;
      if (unsafeConstructs(parsed.html).length > 0) unsafeAsReceived++;
      const found = unsafeConstructs(sanitizeEmailHtml(parsed.html)!);
      if (found.length > 0) findings.push(`${m.id}: ${found.slice(0, 3).join(', ')}`);
    }
    console.log(`corpus: ${html} messages with HTML, ${unsafeAsReceived} unsafe as received, ${findings.length} unsafe after sanitising`);
    expect(html).toBeGreaterThan(100);
    expect(unsafeAsReceived).toBeGreaterThan(20);
    expect(findings).toEqual([]);
  }, 120_000);
});
