// Issue 13 items 4 and 7 measured on the whole shared corpus: every attachment has a name, and
// subjects, display names and file names carry no U+FFFD (the mark of header bytes decoded in the
// wrong charset) — compared with what mailparser alone gives for the same headers.
import { Readable } from 'node:stream';
import { MailParser, type AddressObject, type AttachmentStream, type MessageText } from 'mailparser';
import { describe, expect, it } from 'vitest';
import { InMemoryAttachmentSink } from '../../src/ingest/in-memory-attachment-sink.js';
import { parseMime } from '../../src/ingest/mime-parser.js';
import { corpusMissingReason, missing } from '../helpers/requirements.js';
import { listCorpusMessages } from './corpus-files.js';

const REPLACEMENT = '\ufffd';

/** What plain mailparser makes of the same message's subject, From name and file names. */
async function baseline(bytes: Buffer): Promise<string[]> {
  const parser = new MailParser({ skipTextToHtml: true, skipTextLinks: true, skipImageLinks: true });
  const out: string[] = [];
  parser.on('headers', (h) => {
    const subject = h.get('subject');
    if (typeof subject === 'string') out.push(subject);
    const from = h.get('from') as AddressObject | undefined;
    for (const a of from?.value ?? []) out.push(a.name ?? '');
  });
  parser.on('error', () => undefined);
  parser.end(bytes);
  try {
    for await (const item of parser as AsyncIterable<AttachmentStream | MessageText>) {
      if (item.type === 'attachment') {
        out.push(item.filename ?? '');
        item.content.resume();
        item.release?.();
      }
    }
  } catch {
    // broken input: what was read is compared
  }
  return out;
}

describe.skipIf(missing('the shared mail corpus', corpusMissingReason()))('real-world corpus: ticket-ready names and headers', () => {
  it('names every attachment, and decodes undeclared 8-bit headers', { timeout: 300_000 }, async () => {
    const { messages } = listCorpusMessages();
    let attachments = 0;
    let unnamed = 0;
    let tnefFiles = 0;
    let nameOnlyFrom = 0;
    let garbled = 0;
    let garbledBaseline = 0;
    const garbledIds: string[] = [];
    for (const message of messages) {
      const m = await parseMime(Readable.from([message.bytes]), { attachmentSink: new InMemoryAttachmentSink({ retainContent: false }), maxBytes: 20 * 1024 * 1024 });
      attachments += m.attachments.length;
      unnamed += m.attachments.filter((a) => !a.filename).length;
      if (/winmail\.dat|ms-tnef/i.test(message.bytes.subarray(0, 2_000_000).toString('latin1'))) tnefFiles += m.attachments.length;
      if (m.from && m.from.address === null) nameOnlyFrom++;
      const ours = [m.subject, m.from?.name ?? '', ...m.attachments.map((a) => a.filename ?? '')];
      if (ours.some((v) => v.includes(REPLACEMENT))) {
        garbled++;
        garbledIds.push(message.id);
      }
      if ((await baseline(message.bytes)).some((v) => v.includes(REPLACEMENT))) garbledBaseline++;
    }
    console.log(
      [
        `ticket-ready corpus: ${messages.length} messages, ${attachments} attachments, unnamed: ${unnamed}; files from messages carrying TNEF: ${tnefFiles}; name-only From kept: ${nameOnlyFrom}`,
        `  subject/From name/file names with U+FFFD: ${garbled} messages (mailparser alone: ${garbledBaseline})${garbledIds.length ? ` — ${garbledIds.slice(0, 10).join(', ')}` : ''}`,
      ].join('\n'),
    );
    expect(unnamed).toBe(0);
    expect(garbled).toBeLessThan(garbledBaseline);
  });
});
