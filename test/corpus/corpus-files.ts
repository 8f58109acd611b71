import { readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, extname, join, relative } from 'node:path';
import { corpusDir } from '../helpers/shared-dir.js';

/** The shared, read-only corpus (never copied into the repo: licences are mixed, some copyleft). */
export const CORPUS_ROOT = corpusDir();

/** Structured-result, attachment payload and API-recording files that are not messages. */
const NON_MESSAGE_EXT = new Set([
  '.xml', '.out', '.exp', '.ics', '.json', '.list', '.tnef', '.html', '.htm', '.rtf', '.png', '.jpg',
  '.doc', '.md', '.dat', '.bin', '.pdf', '.wav', '.mp3', '.ini', '.gz', '.cfg', '.sys', '.bat', '.src',
  '.gitattributes', '.py', '.rb', '.js', '.ts', '.go', '.c', '.h', '.pl', '.php',
]);
const NON_MESSAGE_NAME = /^(license|copying|readme|notice|authors|index\.md)/i;
/** Folders holding JSON API recordings or reply-body snippets (no RFC 5322 header block). */
const NON_MESSAGE_DIRS = new Set(['api-docs-samples', 'graph-mocks', 'graph-api-recorded', 'gmail-api-recorded', 'crisp-email-reply-parser']);
/** Expected-output files that sit next to the inputs (mime4j decoded parts, talon expected text). */
const EXPECTED_OUTPUT = /(_decoded_|_reply_text$|-summary\.txt$|\.list$)/;

export interface CorpusMessage {
  /** Path relative to the corpus root, with `#n` for the n-th message of an mbox. */
  id: string;
  folder: string;
  bytes: Buffer;
}

export interface CorpusListing {
  messages: CorpusMessage[];
  skippedFiles: number;
  mboxFiles: number;
}

function walk(dir: string): string[] {
  return readdirSync(dir)
    .sort()
    .flatMap((name) => {
      const path = join(dir, name);
      return statSync(path).isDirectory() ? (name.startsWith('.') ? [] : walk(path)) : [path];
    });
}

function isMessageFile(path: string): boolean {
  const rel = relative(CORPUS_ROOT, path);
  const name = basename(path);
  if (NON_MESSAGE_DIRS.has(rel.split('/')[0]!)) return false;
  if (NON_MESSAGE_NAME.test(name) || EXPECTED_OUTPUT.test(name)) return false;
  return !NON_MESSAGE_EXT.has(extname(name).toLowerCase());
}

/**
 * Splits an mbox (mboxrd/mboxo: messages separated by "From " lines) into messages, dropping the
 * separator line. A file that does not start with "From " is one message.
 */
export function splitMbox(bytes: Buffer): Buffer[] {
  if (!bytes.subarray(0, 5).equals(Buffer.from('From '))) return [bytes];
  const text = bytes.toString('latin1');
  const starts: number[] = [];
  const separator = /(^|\r?\n)From [^\r\n]*\r?\n/g;
  for (const match of text.matchAll(separator)) starts.push(match.index! + match[1]!.length);
  return starts.map((start, i) => {
    const headerEnd = text.indexOf('\n', start) + 1;
    const end = i + 1 < starts.length ? starts[i + 1]! : text.length;
    return Buffer.from(text.slice(headerEnd, end), 'latin1');
  });
}

export function listCorpusMessages(): CorpusListing {
  const files = walk(CORPUS_ROOT);
  const messages: CorpusMessage[] = [];
  let skippedFiles = 0;
  let mboxFiles = 0;
  for (const path of files) {
    if (!isMessageFile(path)) {
      skippedFiles++;
      continue;
    }
    const rel = relative(CORPUS_ROOT, path);
    const parts = splitMbox(readFileSync(path));
    if (parts.length > 1) mboxFiles++;
    parts.forEach((bytes, i) =>
      messages.push({ id: parts.length > 1 ? `${rel}#${i}` : rel, folder: rel.split('/')[0]!, bytes }),
    );
  }
  return { messages, skippedFiles, mboxFiles };
}
