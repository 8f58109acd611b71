// The parse thread's fast paths give the same results as the slow paths they replace, on the
// shared corpus (docs/benchmarks.md, Ingest: "Cheaper parse thread"):
// - chardet restricted to its single-byte recognisers (header-charset.ts) = chardet's `analyse`
//   as decodeUnlabelledBytes reads it;
// - the charset hint sniffed only when a header needs it (TicketMailParser) = sniffed eagerly
//   from every chunk as it is written;
// - a message handed over whole as a Buffer = the same bytes as a stream;
// - the header-end search that stops early = the earliest of the three separators.
import { analyse } from 'chardet';
import iconv from 'iconv-lite';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { listCorpusMessages } from '../../test/corpus/corpus-files.js';
import { corpusMissingReason, missing } from '../../test/helpers/requirements.js';
import { analyseSingleByte } from './header-charset.js';
import { InMemoryAttachmentSink } from './in-memory-attachment-sink.js';
import { findHeaderEnd, parseMime } from './mime-parser.js';
import { TicketMailParser } from './ticket-mail-parser.js';

const SKIPPED_BY_DECODER = new Set(['gb18030', 'big5', 'shift_jis', 'euc-jp', 'euc-kr', 'utf-8', 'ascii']);
const usedByDecoder = (name: string): boolean => {
  const n = name.toLowerCase();
  return !SKIPPED_BY_DECODER.has(n) && !n.startsWith('utf-16') && !n.startsWith('utf-32') && !n.startsWith('iso-2022');
};

function chunked(bytes: Buffer, size: number): Readable {
  return Readable.from(
    (function* () {
      for (let i = 0; i < bytes.length; i += size) yield bytes.subarray(i, i + size);
    })(),
  );
}

const parse = async (raw: Readable | Buffer): Promise<string> =>
  JSON.stringify(await parseMime(raw, { attachmentSink: new InMemoryAttachmentSink({ retainContent: false }), now: () => new Date(0) }));

/** The header lines of a message that carry 8-bit bytes (unfolded as they come, raw). */
function highByteHeaderLines(bytes: Buffer): Buffer[] {
  const end = findHeaderEnd(bytes);
  const head = bytes.subarray(0, end >= 0 ? end : Math.min(bytes.length, 1024 * 1024)).toString('latin1');
  return head
    .split(/\r?\n(?![ \t])/)
    .filter((l) => /[\u0080-\u00ff]/.test(l))
    .map((l) => Buffer.from(l, 'latin1'));
}

describe('analyseSingleByte', () => {
  const synthetic = [
    ...['Réunion à café', 'Grüße aus Köln', 'Zażółć gęślą jaźń', 'Счет на оплату', 'Привет мир', 'Καλημέρα', 'שלום', 'مرحبا', 'Merhaba dünya', 'สวัสดี'].flatMap((t) =>
      ['windows-1252', 'iso-8859-2', 'windows-1251', 'koi8-r', 'iso-8859-7', 'windows-1255', 'windows-1256', 'iso-8859-9', 'windows-874'].map((cs) => iconv.encode(t, cs)),
    ),
    ...Array.from({ length: 300 }, (_, i) => Buffer.from(Array.from({ length: 1 + ((i * 7) % 300) }, (_, j) => (i * 131 + j * 29 + ((i * j) % 7)) % 256))),
  ];

  it('gives the matches decodeUnlabelledBytes reads from chardet analyse, in the same order (synthetic and random bytes)', () => {
    for (const bytes of synthetic) expect(analyseSingleByte(bytes)).toEqual(analyse(bytes).filter((m) => usedByDecoder(m.name)));
  });

  it.skipIf(missing('the shared mail corpus', corpusMissingReason()))('does so on every 8-bit header line of the corpus', () => {
    let lines = 0;
    for (const m of listCorpusMessages().messages) {
      for (const line of highByteHeaderLines(m.bytes)) {
        lines++;
        expect(analyseSingleByte(line), m.id).toEqual(analyse(line).filter((x) => usedByDecoder(x.name)));
      }
    }
    expect(lines).toBeGreaterThan(20);
  });
});

describe('findHeaderEnd', () => {
  const naive = (buf: Buffer): number => {
    const found = ['\r\n\r\n', '\n\n', '\r\r'].map((s) => buf.indexOf(s)).filter((i) => i >= 0);
    return found.length ? Math.min(...found) : -1;
  };

  it('finds the earliest empty line, whichever separator comes first', () => {
    const samples = ['a: b\r\n\r\nbody\n\n', 'a: b\n\nbody\r\n\r\n', 'a: b\r\rx\n\n', 'a: b\r\n\nx', 'a\r\n\r', 'a\n\r\n\r\n', 'no end', '', '\n\n', '\r\r\n\n'];
    for (const s of samples) expect(findHeaderEnd(Buffer.from(s)), JSON.stringify(s)).toBe(naive(Buffer.from(s)));
    for (let i = 0; i < 500; i++) {
      const b = Buffer.from(Array.from({ length: i % 60 }, (_, j) => [10, 13, 97, 58][(i * 7 + j * 13 + ((i * j) % 5)) % 4]!));
      expect(findHeaderEnd(b)).toBe(naive(b));
    }
  });

  it.skipIf(missing('the shared mail corpus', corpusMissingReason()))('on every corpus message', () => {
    for (const m of listCorpusMessages().messages) expect(findHeaderEnd(m.bytes), m.id).toBe(naive(m.bytes));
  });
});

describe.skipIf(missing('the shared mail corpus', corpusMissingReason()))('parseMime fast paths on the corpus', () => {
  // mailparser renders an attached message's missing Date with the current time.
  beforeEach(() => vi.useFakeTimers({ toFake: ['Date'], now: new Date('2026-01-01T00:00:00Z') }));
  afterEach(() => {
    vi.useRealTimers();
    vi.restoreAllMocks();
  });

  it('a Buffer gives the same result as the same bytes streamed', { timeout: 300_000 }, async () => {
    for (const m of listCorpusMessages().messages) expect(await parse(m.bytes), m.id).toBe(await parse(Readable.from([m.bytes])));
  });

  it('the charset hint sniffed when a header needs it gives what sniffing every chunk as it is written gave', { timeout: 300_000 }, async () => {
    const withHighBytes = listCorpusMessages().messages.filter((m) => highByteHeaderLines(m.bytes).length > 0 || m.bytes.some((b) => b >= 0x80));
    expect(withHighBytes.length).toBeGreaterThan(50);
    const lazy: string[] = [];
    for (const m of withHighBytes) lazy.push(await parse(m.bytes), await parse(chunked(m.bytes, 1024)));
    // The slow path: every offered chunk scanned at once (the hint read right after each offer).
    const offer = TicketMailParser.prototype.offerCharsetSource;
    const spy = vi.spyOn(TicketMailParser.prototype, 'offerCharsetSource').mockImplementation(function (this: TicketMailParser, chunk: Buffer) {
      offer.call(this, chunk);
      void this.charsetHint;
    });
    const eager: string[] = [];
    for (const m of withHighBytes) eager.push(await parse(m.bytes), await parse(chunked(m.bytes, 1024)));
    expect(spy).toHaveBeenCalled();
    expect(eager).toEqual(lazy);
  });
});
