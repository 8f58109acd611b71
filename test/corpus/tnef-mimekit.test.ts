// TNEF (winmail.dat) unpacking measured on MimeKit's TNEF test files (MIT, shared corpus, read in
// place): every attachment name in each `<name>.list` must be among the files we unpack. The
// `.list` files also name the message body MimeKit extracts (`body.rtf`, `body.html`): that is
// the TNEF message's body, not a file, and is counted apart.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseTnef } from '../../src/ingest/tnef.js';
import { corpusMissingReason, missing } from '../helpers/requirements.js';
import { CORPUS_ROOT } from './corpus-files.js';

const DIR = join(CORPUS_ROOT, 'mimekit', 'UnitTests', 'TestData', 'tnef');
const BODY = new Set(['body.rtf', 'body.html']);

describe.skipIf(missing('the shared mail corpus', corpusMissingReason()))('TNEF: MimeKit test files against their .list names', () => {
  it('finds every listed attachment name (prints the agreement)', () => {
    expect(existsSync(DIR)).toBe(true);
    const files = readdirSync(DIR).filter((f) => f.endsWith('.tnef')).sort();
    let expected = 0;
    let found = 0;
    let bodies = 0;
    let unpacked = 0;
    const misses: string[] = [];
    for (const file of files) {
      const list = readFileSync(join(DIR, file.replace(/\.tnef$/, '.list')), 'utf8').split(/\r?\n/).map((l) => l.trim()).filter(Boolean);
      const attachments = parseTnef(readFileSync(join(DIR, file)));
      unpacked += attachments.length;
      const names = new Set(attachments.map((a) => a.filename));
      for (const name of list) {
        if (BODY.has(name)) {
          bodies++;
          continue;
        }
        expected++;
        if (names.has(name)) found++;
        else misses.push(`${file}: ${name}`);
      }
      // Where MimeKit's extracted copy of a file sits next to the .list, the bytes agree (its
      // checkout turned CRLF into LF in text files; OLE objects it keeps with their 16-byte interface id).
      const extracted = join(DIR, file.replace(/\.tnef$/, ''));
      for (const a of attachments) {
        const copy = a.filename ? join(extracted, a.filename) : null;
        if (!copy || !existsSync(copy)) continue;
        const theirs = readFileSync(copy);
        const same = theirs.equals(a.data) || theirs.subarray(16).equals(a.data) || Buffer.from(a.data.toString('latin1').replace(/\r\n/g, '\n'), 'latin1').equals(theirs);
        expect(same, `${file}: ${a.filename} content`).toBe(true);
      }
    }
    console.log(
      `TNEF (mimekit): ${files.length} files, ${unpacked} attachments unpacked; listed attachment names found: ${found}/${expected} (${((100 * found) / expected).toFixed(1)} %); ` +
        `${bodies} listed bodies (body.rtf/body.html) are the message body, not files${misses.length ? `; missing: ${misses.join(', ')}` : ''}`,
    );
    expect(misses).toEqual([]);
    expect(found).toBe(expected);
  });
});
